"""The streaming stage pair in RTL (``dataflow_pair.v``) against the cycle-by-cycle model of the same spec.

``SPEC_dataflow_stage.md`` defines the pair: a CIP x COP matmul stage (TT x COT x CIT iterations per frame) feeds
a three-pass LayerNorm (TT x 3 x COT) through a FIFO of depth D with credit back-pressure. For every parameter set
the RTL's first output, each frame's last output, the stall counts and the FIFO's peak fill must equal
``pair_model.simulate_pair``'s, and a few sets are also checked against cycles worked out by hand. The sets cover a
deep FIFO (the stages decouple: II = the slower trip count) and FIFOs so shallow that back-pressure sets the II
above both trip counts. The RTL is also compared with the dataflow family's event kernel (``accelsim.sim.dataflow``)
on the same sets. One Verilator build (seconds) serves all sets, because every size is a run-time input.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from pair_harness import MAX_D, MAX_L, build, run
from pair_model import PairParams, PairTiming, simulate_pair
from rtl_harness import missing_tools

from accelsim.config.dataflow import DataflowConfig
from accelsim.sim.dataflow.network import build_pipeline
from accelsim.sim.dataflow.timing import run_events
from accelsim.sim.reference.rtl import SOURCES

FRAMES = 4
# (params, what it exercises)
CASES = [
    (PairParams(tt=2, cit=1, cot=2, lm=1, ln=1, depth=16), "by hand below"),
    (PairParams(tt=3, cit=4, cot=3, lm=2, ln=1, depth=4), "deep FIFO, matmul-bound (36 > 27)"),
    (PairParams(tt=2, cit=2, cot=4, lm=3, ln=2, depth=8), "deep FIFO, LayerNorm-bound (24 > 16)"),
    (PairParams(tt=4, cit=1, cot=4, lm=1, ln=1, depth=1), "D = 1: one beat in flight"),
    (PairParams(tt=4, cit=1, cot=4, lm=1, ln=1, depth=2), "D = 2, CIT = 1"),
    (PairParams(tt=4, cit=2, cot=6, lm=4, ln=1, depth=2), "D = 2, CIT = 2, deep matmul pipeline"),
    (PairParams(tt=4, cit=2, cot=4, lm=1, ln=1, depth=1), "D = 1, CIT = 2"),
    (PairParams(tt=3, cit=1, cot=8, lm=3, ln=2, depth=3), "D = 3 < COT"),
    (PairParams(tt=1, cit=1, cot=1, lm=1, ln=1, depth=1), "one beat per frame"),
    (PairParams(tt=2, cit=3, cot=2, lm=8, ln=8, depth=1), "longest pipelines, D = 1"),
    (PairParams(tt=5, cit=1, cot=3, lm=2, ln=3, depth=16), "deep FIFO, CIT = 1"),
]
RANDOM_CASES = 12

MISSING = missing_tools()


def _random_cases() -> list[PairParams]:
    rng = random.Random(22)
    return [
        PairParams(
            tt=rng.randint(1, 5),
            cit=rng.randint(1, 5),
            cot=rng.randint(1, 8),
            lm=rng.randint(1, MAX_L),
            ln=rng.randint(1, MAX_L),
            depth=rng.choice([1, 2, 3, 4, rng.randint(1, MAX_D)]),
        )
        for _ in range(RANDOM_CASES)
    ]


ALL = [p for p, _ in CASES] + _random_cases()


@pytest.fixture(scope="module")
def rtl_results(rtl_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[PairTiming]:
    if MISSING is not None:
        pytest.skip(MISSING)
    directory = build(rtl_cache_dir)
    return run(directory, [(p, FRAMES) for p in ALL], tmp_path_factory.mktemp("pair"))


def test_model_by_hand() -> None:
    # TT=2, CIT=1, COT=2, Lm=Ln=1, deep FIFO: the matmul writes beats at 1,2,3,4 (readable one cycle later); the
    # LayerNorm reads beats 0,1 at 2,3, runs passes 1 and 2 at 4..7, so its outputs are written at 7 and 8; row 1
    # runs 8..13 (last output 14), and from then on every frame takes TT x 3 x COT = 12 cycles.
    r = simulate_pair(PairParams(tt=2, cit=1, cot=2, lm=1, ln=1, depth=16), 3)
    assert (r.first_out, r.last_out, r.matmul_stalls, r.layernorm_stalls) == (7, (14, 26, 38), 0, 2)
    # D = 1, CIT = 1, COT = 1, TT = 1: issue 0, write 1, read 2 (credit back at 3); outputs at 2+2+1 = 5, and every
    # frame after is bound by the credit loop and the three passes: issue 3, read 5 ... II = 3.
    r = simulate_pair(PairParams(tt=1, cit=1, cot=1, lm=1, ln=1, depth=1), 3)
    assert (r.first_out, r.last_out) == (5, (5, 8, 11))


def test_deep_fifo_ii_is_the_slower_trip() -> None:
    for p in (CASES[1][0], CASES[2][0], CASES[10][0]):
        assert simulate_pair(p, FRAMES).ii == max(p.matmul_trip, p.layernorm_trip), p


def test_shallow_fifo_back_pressure_sets_the_ii() -> None:
    # D = 1, CIT = 1: a beat's credit comes back the cycle after the LayerNorm reads it, so its reads in pass 0 are
    # Lm + 2 cycles apart (issue, write Lm later, readable one later, read, credit one later); the row's first beat
    # was issued during the previous row's passes 1 and 2 and is read the cycle they end. Per row:
    # (COT - 1) x (Lm + 2) + 1 + 2 x COT = 9 + 1 + 8 = 18 cycles, 72 per frame, above both trips (16 and 48).
    p = CASES[3][0]
    r = simulate_pair(p, FRAMES)
    assert r.ii == p.tt * ((p.cot - 1) * (p.lm + 2) + 1 + 2 * p.cot) == 72
    assert r.ii > max(p.matmul_trip, p.layernorm_trip)


def test_rtl_equals_model(rtl_results: list[PairTiming]) -> None:
    for p, got in zip(ALL, rtl_results, strict=True):
        assert got.first_out >= 0, f"{p}: " + ("timed out" if got.first_out == -1 else "FIFO overflow")
        assert got == simulate_pair(p, FRAMES), p


def _dataflow_config(p: PairParams, tp: int = 2, cip: int = 3, cop: int = 2) -> DataflowConfig:
    """The pair as the dataflow family's config: real T, CIN, COUT and parallelism with the pair's trip counts."""
    matmul = {
        "name": "m",
        "kind": "matmul",
        "t": p.tt * tp,
        "tp": tp,
        "cin": p.cit * cip,
        "cip": cip,
        "cout": p.cot * cop,
        "cop": cop,
        "latency": p.lm,
        "inputs": ["@in"],
    }
    norm = {
        "name": "n",
        "kind": "layernorm",
        "t": p.tt * tp,
        "tp": tp,
        "c": p.cot * cop,
        "cp": cop,
        "latency": p.ln,
        "inputs": [{"from": "m", "depth": p.depth}],
    }
    return DataflowConfig.model_validate(
        {"blocks": {"pair": {"output": "n", "stages": [matmul, norm]}}, "network": ["pair"]}
    )  # fmt: skip


def test_rtl_equals_the_dataflow_event_model(rtl_results: list[PairTiming]) -> None:
    """The family's event kernel (accelsim.sim.dataflow) gives the RTL's first and per-frame last outputs."""
    for p, got in zip(ALL, rtl_results, strict=True):
        ev = run_events(build_pipeline(_dataflow_config(p)), FRAMES)
        assert (ev.first_out, tuple(int(x) for x in ev.last_out)) == (got.first_out, got.last_out), p


def test_rtl_shallow_fifo_ii(rtl_results: list[PairTiming]) -> None:
    # the hand-picked shallow sets (D <= 3 below COT, or D = 1 behind an 8-deep pipeline) are bound by
    # back-pressure in the RTL itself, not only in the model; the deep ones are not
    bound = [r.ii > max(p.matmul_trip, p.layernorm_trip) for p, r in zip(ALL, rtl_results, strict=True)]
    assert [i for i in range(len(CASES)) if bound[i]] == [3, 4, 5, 6, 7, 9]


@pytest.mark.skipif(shutil.which("verilator") is None, reason="needs Verilator (apt-get install verilator)")
@pytest.mark.parametrize(
    "sizes", [{}, {"MAX_L": 2, "MAX_D": 2, "MAX_F": 2}, {"MAX_D": 5, "MAX_F": 3, "DATA_W": 9}]
)
def test_rtl_is_lint_clean(sizes: dict[str, int]) -> None:
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", "dataflow_pair"]
    cmd += [f"-G{k}={v}" for k, v in sizes.items()] + [str(p) for p in SOURCES["dataflow_pair"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
