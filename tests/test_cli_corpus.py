"""A corpus of bad command lines and bad files, each run in-process through ``accelsim.cli.main``.

The standard every case is held to: exit 2 (3 for a design that does not fit), exactly one line on
stderr that matches the case's pattern (naming the file or field and what is allowed), no exception
escaping ``main``, and the working folder exactly as it was (no input changed, no output, half or
whole, left behind). A few cases are the other side of a fix (a UTF-16 file is read) and expect
exit 0.

Cases are grouped by the class of the robustness issue (``silent``: accepted and wrong before;
``traceback``: a crash before; ``partial``: a failure that left files behind before), then by the
classes of the second one: ``implicit-input`` (an output naming a file an input names),
``lock`` (a second driver on one study by another name), ``storage`` (databases and clusters that
cannot serve), ``size`` (an input size the model cannot take whole), ``hardware`` (a unit field
beyond what the unit has) and ``message`` (errors that list what is allowed, suggest the right
name, and come alone: one line, nothing on stdout before it).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from accelsim.cli import main

_ROOT = Path(__file__).resolve().parents[1]

GRAPH: dict[str, Any] = {
    "format": "accelsim.graph",
    "version": 1,
    "name": "mm",
    "meta": {},
    "inputs": ["x"],
    "outputs": ["y"],
    "quant": {},
    "tensors": [
        {"name": "x", "shape": [8, 16], "bits": 8, "weight": False},
        {"name": "w", "shape": [16, 8], "bits": 8, "weight": True},
        {"name": "y", "shape": [8, 8], "bits": 8, "weight": False},
    ],
    "ops": [
        {
            "name": "mm",
            "kind": "matmul",
            "inputs": ["x", "w"],
            "outputs": ["y"],
            "attrs": {"batch": 1, "M": 8, "K": 16, "N": 8},
            "macs": 1024,
        }
    ],
}


def graph(edit: Callable[[dict[str, Any]], object] | None = None) -> str:
    g = copy.deepcopy(GRAPH)
    if edit is not None:
        edit(g)
    return json.dumps(g)


HW = (_ROOT / "hw_configs" / "zcu102.yaml").read_text()
CFG = (_ROOT / "tests" / "data" / "scalesim" / "example.cfg").read_text()
TOPO = "Layer, M, N, K,\nfc1, 197, 768, 192,\n"
SPACE = (
    "name: t\nworkload: w.yaml\nhardware:\n  base: zcu102\n  knobs:\n    array.rows: [16, 32]\n"
    "compression:\n  knobs:\n    quant.wbits: [4, 8]\n"
)
WORKLOAD = "model: ref_deit\ncheckpoint: ck.pt\ndataset: {kind: digits}\n"


def hw(old: str, new: str) -> str:
    assert old in HW
    return HW.replace(old, new)


def utf16(text: str) -> bytes:
    return text.encode("utf-16")  # with its BOM


def bom8(text: str) -> bytes:
    return b"\xef\xbb\xbf" + text.encode()


@dataclass
class Case:
    id: str
    cls: str  # silent | traceback | partial | accept
    argv: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)
    code: int = 2
    pattern: str = ""  # regex the one stderr line must match (after "accelsim: error: ")
    env: dict[str, str] = field(default_factory=dict)
    new_files: tuple[str, ...] = ()  # outputs a passing (exit 0) case may create
    links: dict[str, str] = field(default_factory=dict)  # name -> target: a symlink
    hardlinks: dict[str, str] = field(default_factory=dict)  # name -> target: a hard link
    held: str | None = None  # a SQLite file a running search holds (by its own name) during the case


def _sim(*extra: str) -> list[str]:
    return ["simulate", "g.json", *extra]


def _search(*extra: str) -> list[str]:
    return ["search", "--space", "s.yaml", "--out", "o", *extra]


G = {"g.json": graph()}
S = {"s.yaml": SPACE, "w.yaml": WORKLOAD}
RECIPE_WORKLOAD = (
    "model: ref_deit\npretrained: true\nrecipe: r.yaml\ndataset: {kind: digits, max_images: 20}\n"
)
TEACHER_WORKLOAD = (
    "model: ref_deit\npretrained: true\nteacher: {model: ref_cnn, checkpoint: t.pt}\n"
    "recipe: {distill: {epochs: 1}}\ndataset: {kind: digits, max_images: 20}\n"
)
FOLDER_WORKLOAD = "model: ref_deit\npretrained: true\ndataset: {kind: imagefolder, path: data}\n"
RECONFIGURABLE = "units:\n  vector: {lanes: 64}\n  reconfigurable: {macs: 8, kernel_macs: 9}\n"

CASES = [
    # -- 1. silently wrong ------------------------------------------------------------------
    Case("out-is-input", "silent", _sim("--json", "g.json"), G, pattern=r"--json.*g\.json.*input"),
    Case("two-outs-same", "silent", _sim("--json", "o.json", "--csv", "o.json"), G, pattern=r"--json.*--csv.*same"),
    Case("outs-same-by-path", "silent", _sim("--json", "o.json", "--trace", "./d/../o.json"),
         {**G, "d/keep": ""}, pattern=r"same file"),
    Case("sqnr-csv-is-workload", "silent", ["simulate", "--workload", "w.yaml", "--accuracy", "--sqnr-csv", "w.yaml"],
         {"w.yaml": WORKLOAD}, pattern=r"--sqnr-csv.*w\.yaml.*input"),
    Case("out-is-hw", "silent", _sim("--hw", "h.yaml", "--csv", "h.yaml"), {**G, "h.yaml": HW}, pattern=r"input"),
    Case("search-out-is-space", "silent", ["search", "--space", "s.yaml", "--out", "s.yaml"],
         {"s.yaml": SPACE}, pattern=r"--out.*s\.yaml"),
    Case("graph-inflated-macs", "silent", _sim(), {"g.json": graph(lambda g: g["ops"][0].update(macs=10**6))},
         pattern=r"g\.json.*macs"),
    Case("graph-negative-M", "silent", _sim(),
         {"g.json": graph(lambda g: g["ops"][0]["attrs"].update(M=-8))}, pattern=r"g\.json.*M"),
    Case("graph-float-shape", "silent", _sim(),
         {"g.json": graph(lambda g: g["tensors"][0].update(shape=[197.9, 16]))}, pattern=r"g\.json.*shape"),
    Case("graph-weight-string", "silent", _sim(),
         {"g.json": graph(lambda g: g["tensors"][1].update(weight="false"))}, pattern=r"g\.json.*weight"),
    Case("graph-empty", "silent", _sim(), {"g.json": graph(lambda g: g.update(ops=[]))}, pattern=r"no ops"),
    Case("graph-macs-infinity", "silent", _sim(),
         {"g.json": graph().replace('"macs": 1024', '"macs": Infinity')}, pattern=r"g\.json.*(macs|Infinity)"),
    Case("graph-bits-nan", "silent", _sim(),
         {"g.json": graph().replace('"bits": 8', '"bits": NaN', 1)}, pattern=r"g\.json.*(bits|NaN)"),
    Case("hw-rows-bool", "silent", _sim("--hw", "h.yaml"), {**G, "h.yaml": hw("rows: 32", "rows: true")},
         pattern=r"h\.yaml.*array\.rows.*integer"),
    Case("hw-rows-float", "silent", _sim("--hw", "h.yaml"), {**G, "h.yaml": hw("rows: 32", "rows: 32.0")},
         pattern=r"h\.yaml.*array\.rows.*integer"),
    Case("hw-rows-string", "silent", _sim("--hw", "h.yaml"), {**G, "h.yaml": hw("rows: 32", "rows: '32'")},
         pattern=r"h\.yaml.*array\.rows.*integer"),
    Case("hw-clock-bool", "silent", _sim("--hw", "h.yaml"), {**G, "h.yaml": hw("clock_mhz: 200", "clock_mhz: true")},
         pattern=r"h\.yaml.*clock_mhz"),
    Case("hw-double-buffer-int", "silent", _sim("--hw", "h.yaml"),
         {**G, "h.yaml": hw("double_buffer: true", "double_buffer: 1")}, pattern=r"h\.yaml.*double_buffer"),
    Case("hw-duplicate-key", "silent", _sim("--hw", "h.yaml"), {**G, "h.yaml": HW + "clock_mhz: 300\n"},
         pattern=r"h\.yaml.*duplicate.*clock_mhz"),
    Case("hw-bandwidth-inf", "silent", _sim("--hw", "h.yaml", "--json", "o.json"),
         {**G, "h.yaml": hw("bandwidth_gbs: 19.2", "bandwidth_gbs: .inf")}, pattern=r"h\.yaml.*bandwidth_gbs.*finite"),
    Case("hw-bandwidth-nan", "silent", _sim("--hw", "h.yaml"),
         {**G, "h.yaml": hw("bandwidth_gbs: 19.2", "bandwidth_gbs: .nan")}, pattern=r"h\.yaml.*bandwidth_gbs"),
    Case("space-int-knob-float-range", "silent", ["search", "--space", "s.yaml", "--out", "o"],
         {"s.yaml": SPACE.replace("[16, 32]", "{low: 16.0, high: 64.0}"), "w.yaml": WORKLOAD},
         pattern=r"array\.rows.*integer"),
    Case("space-duplicate-knob", "silent", ["search", "--space", "s.yaml", "--out", "o"],
         {"s.yaml": SPACE + "hw_points_per_trial: 2\nhw_points_per_trial: 3\n", "w.yaml": WORKLOAD},
         pattern=r"duplicate.*hw_points_per_trial"),
    # -- 2. tracebacks --------------------------------------------------------------------------
    Case("graph-latin1", "traceback", _sim(), {"g.json": graph().replace('"mm"', '"caf\u00e9"').encode("latin-1")},
         pattern=r"g\.json.*UTF-8"),
    Case("hw-latin1", "traceback", _sim("--hw", "h.yaml"), {**G, "h.yaml": ("# caf\u00e9\n" + HW).encode("latin-1")},
         pattern=r"h\.yaml.*UTF-8"),
    Case("space-latin1", "traceback", ["search", "--space", "s.yaml", "--out", "o"],
         {"s.yaml": ("# caf\u00e9\n" + SPACE).encode("latin-1")}, pattern=r"s\.yaml.*UTF-8"),
    Case("workload-latin1", "traceback", ["eval", "--workload", "w.yaml"],
         {"w.yaml": ("# caf\u00e9\n" + WORKLOAD).encode("latin-1")}, pattern=r"w\.yaml.*UTF-8"),
    Case("cfg-latin1", "traceback", ["simulate", "--scalesim-config", "c.cfg", "--topology", "t.csv"],
         {"c.cfg": ("# caf\u00e9\n" + CFG).encode("latin-1"), "t.csv": TOPO}, pattern=r"c\.cfg.*UTF-8"),
    Case("topo-latin1", "traceback", ["simulate", "--scalesim-config", "c.cfg", "--topology", "t.csv"],
         {"c.cfg": CFG, "t.csv": TOPO.replace("fc1", "caf\u00e9").encode("latin-1")}, pattern=r"t\.csv.*UTF-8"),
    Case("topo-huge-M", "traceback", ["simulate", "--scalesim-config", "c.cfg", "--topology", "t.csv"],
         {"c.cfg": CFG, "t.csv": TOPO.replace("197", "1000000000000")}, pattern=r"t\.csv.*M.*at most"),
    Case("out-proc", "traceback", _sim("--json", "/proc/x.json"), G, pattern=r"/proc/x\.json"),
    Case("out-is-dir", "traceback", _sim("--json", "d"), {**G, "d/keep": ""}, pattern=r"d.*folder"),
    Case("out-no-parent", "traceback", _sim("--csv", "nope/x.csv"), G, pattern=r"nope.*(folder|directory)"),
    Case("lower-out-proc", "traceback", ["lower", "test_vit", "--img-size", "32", "-o", "/proc/x.json"], {},
         pattern=r"/proc/x\.json"),
    Case("eval-out-dir", "traceback", ["eval", "--workload", "w.yaml", "--json", "d"],
         {"w.yaml": WORKLOAD, "d/keep": ""}, pattern=r"d.*folder"),
    Case("search-out-is-file", "traceback", ["search", "--space", "s.yaml", "--out", "f"],
         {"s.yaml": SPACE, "w.yaml": WORKLOAD, "f": "x"}, pattern=r"--out.*f.*not a folder"),
    Case("search-out-proc", "traceback", ["search", "--space", "s.yaml", "--out", "/proc/x"],
         {"s.yaml": SPACE, "w.yaml": WORKLOAD}, pattern=r"/proc/x"),
    Case("search-storage-not-db", "traceback", ["search", "--space", "s.yaml", "--out", "o", "--storage", "sqlite:///f.txt"],
         {"s.yaml": SPACE, "w.yaml": WORKLOAD, "f.txt": "hello\n" * 100}, pattern=r"storage.*f\.txt.*not a database"),
    Case("search-storage-scheme", "traceback", ["search", "--space", "s.yaml", "--out", "o", "--storage", "foo://x"],
         {"s.yaml": SPACE, "w.yaml": WORKLOAD}, pattern=r"storage.*foo.*driver"),
    Case("search-storage-path", "traceback", ["search", "--space", "s.yaml", "--out", "o", "--storage", "study.db"],
         {"s.yaml": SPACE, "w.yaml": WORKLOAD}, pattern=r"storage.*study\.db.*not a database URL.*sqlite:///"),
    Case("search-seed-negative", "traceback", ["search", "--space", "s.yaml", "--out", "o", "--seed", "-1"],
         {"s.yaml": SPACE, "w.yaml": WORKLOAD}, pattern=r"seed.*-1"),
    Case("workload-bad-img-size", "traceback", ["eval", "--workload", "w.yaml"],
         {"w.yaml": "model: deit_tiny_patch16_224\nimg_size: 33\ndataset: {kind: digits}\n"},
         pattern=r"workload .w.: img_size.*33.*patch"),
    Case("workload-ref-img-size", "traceback", ["eval", "--workload", "w.yaml"],
         {"w.yaml": "model: ref_deit\nimg_size: 36\ndataset: {kind: digits}\n"}, pattern=r"w.*img_size.*36.*patch"),
    Case("graph-huge-M", "traceback", _sim(), {"g.json": graph(lambda g: (
        g["ops"][0]["attrs"].update(M=10**12), g["ops"][0].update(macs=10**12 * 128),
        g["tensors"][0].update(shape=[10**12, 16]), g["tensors"][2].update(shape=[10**12, 8])))},
        pattern=r"g\.json.*at most 2147483647"),
    Case("workload-pretrained-offline", "traceback", ["eval", "--workload", "w.yaml"],
         {"w.yaml": "model: deit_tiny_patch16_224\npretrained: true\ndataset: {kind: digits}\n"},
         env={"HF_HUB_OFFLINE": "1"}, pattern=r"pretrained.*(hub|Hugging Face).*checkpoint"),
    # -- 4. partial outputs ---------------------------------------------------------------------
    Case("trace-fails-no-json", "partial", _sim("--json", "o.json", "--trace", "/proc/t.json"), G,
         pattern=r"/proc/t\.json"),
    Case("csv-fails-json-kept", "partial", _sim("--json", "o.json", "--csv", "nope/x.csv"),
         {**G, "o.json": "{}\n"}, pattern=r"nope"),
    Case("csv-is-dir-no-json", "partial", _sim("--json", "o.json", "--csv", "d"), {**G, "d/keep": ""},
         pattern=r"d.*folder"),
    # -- the other side of the fixes: files that must be read ------------------------------------
    Case("graph-utf16", "accept", _sim(), {"g.json": utf16(graph())}, code=0),
    Case("graph-utf8-bom", "accept", _sim(), {"g.json": bom8(graph())}, code=0),
    Case("hw-utf16", "accept", _sim("--hw", "h.yaml"), {**G, "h.yaml": utf16(HW)}, code=0),
    Case("hw-utf8-bom", "accept", _sim("--hw", "h.yaml"), {**G, "h.yaml": bom8(HW)}, code=0),
    Case("scalesim-utf16", "accept", ["simulate", "--scalesim-config", "c.cfg", "--topology", "t.csv"],
         {"c.cfg": utf16(CFG), "t.csv": utf16(TOPO)}, code=0),
    Case("scalesim-utf8-bom", "accept", ["simulate", "--scalesim-config", "c.cfg", "--topology", "t.csv"],
         {"c.cfg": bom8(CFG), "t.csv": bom8(TOPO)}, code=0),
    # decoded, so the error is about the content, not the encoding
    Case("space-utf16", "accept", ["search", "--space", "s.yaml", "--out", "o"],
         {"s.yaml": utf16(SPACE + "bogus: 1\n")}, pattern=r"s\.yaml.*bogus: unknown field"),
    Case("workload-utf16", "accept", ["eval", "--workload", "w.yaml"],
         {"w.yaml": utf16(WORKLOAD + "bogus: 1\n")}, pattern=r"w\.yaml.*bogus: unknown field"),
    # -- 5. an output that is a file an input names (overwritten, exit 0, before) -----------------
    Case("eval-json-is-checkpoint", "implicit-input", ["eval", "--workload", "w.yaml", "--json", "ck.pt"],
         {"w.yaml": WORKLOAD, "ck.pt": b"weights"}, pattern=r"--json ck\.pt: is an input"),
    Case("simulate-csv-is-checkpoint", "implicit-input", ["simulate", "--workload", "w.yaml", "--csv", "ck.pt"],
         {"w.yaml": WORKLOAD, "ck.pt": b"weights"}, pattern=r"--csv ck\.pt: is an input"),
    Case("eval-json-is-recipe", "implicit-input", ["eval", "--workload", "w.yaml", "--json", "r.yaml"],
         {"w.yaml": RECIPE_WORKLOAD, "r.yaml": "quant: {wbits: 8, abits: 8}\n"}, pattern=r"--json r\.yaml: is an input"),
    Case("eval-json-is-teacher", "implicit-input", ["eval", "--workload", "w.yaml", "--json", "t.pt"],
         {"w.yaml": TEACHER_WORKLOAD, "t.pt": b"weights"}, pattern=r"--json t\.pt: is an input"),
    Case("eval-json-in-dataset", "implicit-input", ["eval", "--workload", "w.yaml", "--json", "data/r.json"],
         {"w.yaml": FOLDER_WORKLOAD, "data/a/x.png": b""}, pattern=r"--json data/r\.json: is in .*data, an input folder"),
    Case("search-out-in-dataset", "implicit-input", ["search", "--space", "s.yaml", "--out", "data/o"],
         {"s.yaml": SPACE, "w.yaml": FOLDER_WORKLOAD, "data/a/x.png": b""},
         pattern=r"--out data/o: is in .*data, an input folder"),
    # -- 6. a second driver on a running study's database by another name --------------------------
    Case("search-storage-symlink", "lock", _search("--storage", "sqlite:///link.db"),
         {**S, "real.db": b""}, links={"link.db": "real.db"}, held="real.db", pattern=r"another accelsim search"),
    Case("search-storage-hardlink", "lock", _search("--storage", "sqlite:///link.db"),
         {**S, "real.db": b""}, hardlinks={"link.db": "real.db"}, held="real.db", pattern=r"another accelsim search"),
    Case("search-storage-symlinked-folder", "lock", _search("--storage", "sqlite:///d/real.db"),
         {**S, "real/real.db": b""}, links={"d": "real"}, held="real/real.db", pattern=r"another accelsim search"),
    # -- 7. storage and cluster failures (tracebacks before) ------------------------------------
    Case("search-storage-mysql-no-driver", "storage", _search("--storage", "mysql://u@localhost/db"), S,
         pattern=r"storage .mysql://u@localhost/db.*'mysqldb' driver.*not installed \(pip install mysqlclient\)"),
    Case("search-storage-psycopg2-no-driver", "storage", _search("--storage", "postgresql+psycopg2://u@localhost/db"),
         S, pattern=r"'psycopg2' driver.*not installed \(pip install psycopg2-binary\)"),
    Case("search-storage-memory", "storage", _search("--storage", "sqlite:///:memory:"), S,
         pattern=r"storage .sqlite:///:memory:.*in-memory SQLite"),
    Case("search-ray-unreachable", "storage", _search("--backend", "ray"), S, env={"RAY_ADDRESS": "127.0.0.1:9"},
         pattern=r"RAY_ADDRESS '127\.0\.0\.1:9': no Ray cluster answers there"),
    # -- 8. an input size the patch embedding cannot take whole (timed at another size before) -----
    Case("lower-img-size-not-whole", "size", ["lower", "ref_deit", "--img-size", "33"], {},
         pattern=r"ref_deit: img_size: 33 is not a multiple of the model's patch size 8"),
    Case("simulate-img-size-not-whole", "size", ["simulate", "deit_tiny_patch16_224", "--img-size", "200"], {},
         pattern=r"deit_tiny_patch16_224: img_size: 200 is not a multiple of the model's patch size 16"),
    Case("space-timing-img-size-not-whole", "size", _search(),
         {**S, "s.yaml": SPACE + "timing: {model: deit_tiny_patch16_224, img_size: 100}\n"},
         pattern=r"timing\.img_size: 100 is not a multiple of the model's patch size 16"),
    # -- 9. a unit field beyond what the unit has (timed faster than its multipliers allow before) --
    Case("hw-reconfigurable-lane-above-macs", "hardware", _sim("--hw", "h.yaml"),
         {**G, "h.yaml": hw("units:\n  vector: {lanes: 64}\n", RECONFIGURABLE)},
         pattern=r"h\.yaml.*units\.reconfigurable.*kernel_macs \(9\) must be <= macs \(8\)"),
    # -- 10. messages: what is allowed, the right name, alone ----------------------------------------
    Case("workload-recipe-enum", "message", ["eval", "--workload", "w.yaml"],
         {"w.yaml": WORKLOAD + "recipe: {quant: {calibrator: percentil}}\n"},
         pattern=r"recipe\.quant\.calibrator: Input should be 'minmax', 'percentile' or 'mse' \(got 'percentil'\)"),
    Case("workload-qat-method-enum", "message", ["eval", "--workload", "w.yaml"],
         {"w.yaml": WORKLOAD + "recipe: {quant: {qat: {method: stx}}}\n"},
         pattern=r"recipe\.quant\.qat\.method: Input should be 'ste' or 'fogzo' \(got 'stx'\)"),
    Case("eval-unknown-reference-model", "message", ["eval", "--workload", "w.yaml"],
         {"w.yaml": "model: ref_deitt\ndataset: {kind: digits}\n"}, pattern=r"'ref_deitt'; did you mean 'ref_deit'"),
    Case("eval-unknown-timm-model", "message", ["eval", "--workload", "w.yaml"],
         {"w.yaml": "model: deit_tiny_patch16_244\ndataset: {kind: digits}\n"},
         pattern=r"'deit_tiny_patch16_244'; did you mean 'deit_tiny_patch16_224'"),
    Case("lower-huge-img-size", "message", ["lower", "test_vit", "--img-size", "1000000"], {},
         pattern=r"test_vit: input shape \[1, 3, 1000000, 1000000\] has .* elements"),
]  # fmt: skip


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass
class Outcome:
    code: int | None
    err: str
    exc: BaseException | None
    changed: list[str]
    out: str = ""


def _held(case: Case, root: Path) -> contextlib.AbstractContextManager[Any]:
    """The lock a running search holds on ``case.held`` (by the name it gave the file)."""
    if case.held is None:
        return contextlib.nullcontext()
    from accelsim.search.storage import lock_database

    return lock_database(root / case.held)


def run_case(case: Case, root: Path, capsys: Any, monkeypatch: Any) -> Outcome:
    for name, content in case.files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    for name, target in case.links.items():
        (root / name).symlink_to(root / target)
    for name, target in case.hardlinks.items():
        os.link(root / target, root / name)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(root)
    before = _snapshot(root)
    code: int | None = None
    exc: BaseException | None = None
    try:
        with _held(case, root):
            code = main(case.argv)
    except SystemExit as e:
        code = int(e.code) if isinstance(e.code, int) else 2
    except Exception as e:
        exc = e
    captured = capsys.readouterr()
    err = captured.err
    after = _snapshot(root)
    changed = sorted(
        n for n in before.keys() | after.keys() if before.get(n) != after.get(n) and n not in case.new_files
    )
    return Outcome(code, err, exc, changed, captured.out)


def classify(case: Case, out: Outcome) -> str:
    """``handled`` when the case meets the standard, else what went wrong."""
    if out.exc is not None:
        return "traceback"
    if out.code != case.code:
        return "accepted-wrongly" if out.code == 0 else f"exit-{out.code}"
    if out.changed and case.code != 0:
        return "files-changed"
    if out.out and case.code == 2:  # a report or summary printed, then an error: which to believe?
        return "stdout-before-error"
    if case.pattern:
        lines = out.err.splitlines()
        if len(lines) != 1 or not lines[0].startswith("accelsim: error: "):
            return "not-one-line"
        if not re.search(case.pattern, lines[0]):
            return "wrong-message"
    return "handled"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    out = run_case(case, tmp_path, capsys, monkeypatch)
    if out.exc is not None:
        raise out.exc
    assert classify(case, out) == "handled", (out.code, out.err, out.changed)
    assert "Traceback" not in out.err


def _kernel_lane_units() -> list[str]:
    from accelsim.config.hardware import UnitsConfig

    out = []
    for name, f in UnitsConfig.model_fields.items():
        model = next(
            (a for a in getattr(f.annotation, "__args__", (f.annotation,)) if a is not type(None)), None
        )
        if isinstance(model, type) and {"macs", "kernel_macs"} <= set(getattr(model, "model_fields", {})):
            out.append(name)
    return out


def test_the_kernel_lane_rule_covers_every_unit_with_lanes() -> None:
    """The hardware class of the corpus as a rule: every unit with ``kernel_macs`` lanes (today the
    depthwise and the reconfigurable unit; tomorrow's too) refuses a lane of more multipliers than
    the unit has, naming the unit."""
    from accelsim.config._base import validate_config
    from accelsim.config.hardware import HardwareConfig
    from accelsim.errors import ConfigError

    units = _kernel_lane_units()
    assert {"dwconv", "reconfigurable"} <= set(units)
    import yaml

    for unit in units:
        data = yaml.safe_load(HW)
        data["units"][unit] = {"macs": 8, "kernel_macs": 9}
        with pytest.raises(ConfigError, match=rf"units\.{unit}: .*kernel_macs \(9\) must be <= macs \(8\)"):
            validate_config(HardwareConfig, data, "h.yaml")
        data["units"][unit] = {"macs": 9, "kernel_macs": 9}
        validate_config(HardwareConfig, data, "h.yaml")  # a whole lane is fine
