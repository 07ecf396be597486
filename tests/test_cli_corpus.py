"""A corpus of bad command lines and bad files, each run in-process through ``accelsim.cli.main``.

The standard every case is held to: exit 2 (3 for a design that does not fit), exactly one line on
stderr that matches the case's pattern (naming the file or field and what is allowed), no exception
escaping ``main``, and the working folder exactly as it was (no input changed, no output, half or
whole, left behind). A few cases are the other side of a fix (a UTF-16 file is read) and expect
exit 0.

Cases are grouped by the class of the robustness issue (``silent``: accepted and wrong before;
``traceback``: a crash before; ``partial``: a failure that left files behind before).
"""

from __future__ import annotations

import copy
import json
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


def _sim(*extra: str) -> list[str]:
    return ["simulate", "g.json", *extra]


G = {"g.json": graph()}

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
]  # fmt: skip


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass
class Outcome:
    code: int | None
    err: str
    exc: BaseException | None
    changed: list[str]


def run_case(case: Case, root: Path, capsys: Any, monkeypatch: Any) -> Outcome:
    for name, content in case.files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(root)
    before = _snapshot(root)
    code: int | None = None
    exc: BaseException | None = None
    try:
        code = main(case.argv)
    except SystemExit as e:
        code = int(e.code) if isinstance(e.code, int) else 2
    except Exception as e:
        exc = e
    err = capsys.readouterr().err
    after = _snapshot(root)
    changed = sorted(
        n for n in before.keys() | after.keys() if before.get(n) != after.get(n) and n not in case.new_files
    )
    return Outcome(code, err, exc, changed)


def classify(case: Case, out: Outcome) -> str:
    """``handled`` when the case meets the standard, else what went wrong."""
    if out.exc is not None:
        return "traceback"
    if out.code != case.code:
        return "accepted-wrongly" if out.code == 0 else f"exit-{out.code}"
    if out.changed and case.code != 0:
        return "files-changed"
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
