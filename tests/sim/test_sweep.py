"""The sweep path: ``simulate_many`` on threads and forked processes, and the cached-candidate
schedule kernel, are exact."""

from __future__ import annotations

import multiprocessing
import os
import threading
from typing import Any

import numpy as np
import pytest
from _helpers import tiny_hw

from accelsim.config.hardware import HardwareConfig
from accelsim.errors import ConfigError
from accelsim.ir import Graph
from accelsim.ir.builders import add_linear_attention, add_mbconv, add_softmax_attention, vit_graph
from accelsim.search.executors import _one_process_task
from accelsim.sim import _schedule_kernel as _kernels
from accelsim.sim import compile_graph, driver, map_graph, simulate, simulate_many


def _mixed() -> Graph:
    """Every streaming edge kind (per head, element-wise, MBConv) on several engines."""
    g = Graph("mixed")
    add_mbconv(g, "m", ch=8, hw=12, out_ch=16)
    add_softmax_attention(g, "a", heads=3, tokens=10, hd=4)
    add_linear_attention(g, "l", heads=2, tokens=12, hd=4)
    return g.validate()


def _points() -> list[HardwareConfig]:
    base = HardwareConfig.load("zcu102_trio")
    pts = []
    for rows, df, kib, overlap in ((8, "ws", 64, True), (16, "os", 128, True), (4, "is", 32, False)):
        pts.append(
            base.with_changes(
                **{"array.rows": rows, "array.dataflow": df, "buffers.input_kib": kib, "overlap": overlap}
            )
        )
    return [*pts, tiny_hw(), tiny_hw(units__softmax={"lanes": 2})]


def _forks_counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids ``simulate_many`` forks from here on, and forking allowed: a thread an earlier test
    left alive in this process (tqdm's monitor, a Ray client) would keep every sweep inline, and
    these tests are about the pool itself (the refusal is test_small_sweeps_and_threaded_...)."""
    real_fork, forked = os.fork, []

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    monkeypatch.setattr(driver, "_can_fork", lambda: True)
    return forked


def test_parallel_sweep_equals_simulate(monkeypatch: pytest.MonkeyPatch) -> None:
    g = _mixed()
    pts = _points()
    want = [simulate(g, hw).to_dict() for hw in pts]
    forked = _forks_counted(monkeypatch)
    for pool in ("processes", "threads"):
        for workers in (None, 1, 2, 3):
            # to_dict with the layers: a worker process's report maps and runs its point again here
            got = [r.to_dict() for r in simulate_many(g, pts, workers=workers, pool=pool)]
            assert got == want
            assert [list(d) for d in got] == [list(d) for d in want]  # the fields in the same order
    assert len(forked) == 1 + 2  # workers=2 and 3 ran processes (None: too few points to fork)
    # names and YAML paths are resolved in the worker that simulates them
    names = ["zcu102", "zcu102_trio", "zcu102"]
    got = [r.to_dict() for r in simulate_many(g, names, workers=2)]
    assert got == [simulate(g, n).to_dict() for n in names]
    # and on a ViT, more array rows take fewer cycles
    vit = vit_graph((64, 2, 2), img_size=64)
    rows = [HardwareConfig.load("zcu102").with_changes(**{"array.rows": r}) for r in (8, 16, 32)]
    cycles = [r.total_cycles for r in simulate_many(vit, rows, workers=2)]
    assert cycles == [simulate(vit, h).total_cycles for h in rows]
    assert cycles[0] > cycles[1] > cycles[2]


def test_kernel_matches_python_original() -> None:
    """The compiled schedule kernel and its Python original agree on every output array."""
    ga = compile_graph(_mixed())
    for hw in _points():
        schedule = map_graph(ga, hw)
        args = (tuple(schedule.program()), tuple(schedule.dram()), hw.overlap)
        for record in (False, True):
            fast = _kernels.run_schedule(*args, record)
            slow = _kernels.run_schedule.py_func(*args, record)
            assert fast._fields == slow._fields
            for a, b in zip(fast, slow, strict=True):
                np.testing.assert_array_equal(a, b)
            if record:
                assert len(fast.tile_op) == schedule.n_tiles


def test_occupancy_whole_bursts() -> None:
    # 100 B in 64-B bursts on 2 channels (128 B per burst round) at 48 B/cycle: ceil(128 / 48) = 3.
    assert _kernels._occupancy(100, 128, 48.0) == 3
    assert _kernels._occupancy(129, 128, 48.0) == 6  # two rounds: ceil(256 / 48)
    assert _kernels._occupancy(64, 64, 64.0) == 1


def test_workers_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="workers must be >= 1, got 0"):
        simulate_many(_mixed(), [tiny_hw()], workers=0)
    with pytest.raises(ConfigError, match="pool must be 'processes' or 'threads', got 'gpu'"):
        simulate_many(_mixed(), [tiny_hw()], pool="gpu")  # type: ignore[arg-type]


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(driver.WORKERS_ENV, raising=False)
    assert driver.default_workers() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(driver.WORKERS_ENV, "3")
    assert driver.default_workers() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(driver.WORKERS_ENV, bad)
        with pytest.raises(ConfigError, match=f"ACCELSIM_WORKERS='{bad}': must be a whole number >= 1"):
            simulate_many(_mixed(), [tiny_hw()] * 300)
    # a Ray task of the search runs its sweeps inline, and leaves the variable as it found it
    monkeypatch.delenv(driver.WORKERS_ENV)
    assert _one_process_task(driver.default_workers) == 1
    assert driver.WORKERS_ENV not in os.environ


def test_small_sweeps_and_threaded_processes_stay_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork(*args: object) -> None:
        raise AssertionError("forked")

    monkeypatch.setattr(driver, "_in_processes", no_fork)
    monkeypatch.setenv(driver.WORKERS_ENV, "2")
    pts = _points()
    assert len(simulate_many(_mixed(), pts)) == len(pts)  # fewer than MIN_POINTS_PER_WORKER a worker
    # another thread alive: a fork would copy the locks it holds, so the sweep runs inline
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert len(simulate_many(_mixed(), pts, workers=2)) == len(pts)
    finally:
        stop.set()
        other.join()


def test_a_sweep_pauses_the_collector_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep makes no reference cycles, so the collector's passes over its thousands of new
    objects free nothing: it is off while the points run, and as it was after."""
    import gc

    seen: list[bool] = []
    original = driver.simulate

    def recording(*args: Any) -> Any:
        seen.append(gc.isenabled())
        return original(*args)

    monkeypatch.setattr(driver, "simulate", recording)
    pts = _points()[:3]
    was = gc.isenabled()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            simulate_many(_mixed(), pts, workers=1)
            assert gc.isenabled() is state
        assert seen == [False] * 6
    finally:
        (gc.enable if was else gc.disable)()


def test_sweep_error_names_the_point() -> None:
    bad = tiny_hw(packing={4: 1})  # 8-bit operands have no packing entry
    for pool in ("processes", "threads"):
        for workers in (1, 2, 3):
            with pytest.raises(ConfigError, match=r"^hardware point 1 \(tiny\): .*no entry for 8-bit"):
                simulate_many(_mixed(), [tiny_hw(), bad], workers=workers, pool=pool)
            # the first bad point in the order of hws, whichever process had it
            with pytest.raises(ConfigError, match=r"^hardware point 1 \(tiny\)"):
                simulate_many(_mixed(), [tiny_hw(), bad, bad, tiny_hw(), bad], workers=workers, pool=pool)
    with pytest.raises(ConfigError, match=r"^hardware point 2 \(no_such_board\)"):
        simulate_many(_mixed(), [tiny_hw(), tiny_hw(), "no_such_board"], workers=2)
    assert multiprocessing.active_children() == []


def test_interrupted_sweep_leaves_no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in this process (here: raised in its own share) ends and reaps the forked workers."""
    parent, real_share = os.getpid(), driver._share
    forked = _forks_counted(monkeypatch)

    def share(*args: Any) -> Any:
        if os.getpid() != parent:
            return real_share(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "_share", share)
    with pytest.raises(KeyboardInterrupt):
        simulate_many(_mixed(), _points() * 4, workers=3)
    assert len(forked) == 2
    assert multiprocessing.active_children() == []
    for pid in forked:  # reaped, not left as zombies or orphans
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_a_stuck_schedule_is_an_error_not_half_filled_arrays() -> None:
    schedule = map_graph(_mixed(), tiny_hw())
    prog = schedule.program()
    # every op waits for one more predecessor than it has: nothing can ever start
    stuck = prog._replace(pred_ptr=prog.pred_ptr - np.arange(prog.pred_ptr.size))
    out = _kernels.run_schedule(tuple(stuck), tuple(schedule.dram()), True, False)
    assert out.error == _kernels.RUN_STUCK
    assert _kernels.run_schedule(tuple(prog), tuple(schedule.dram()), True, False).error == _kernels.RUN_OK
