"""What a cold ``accelsim`` command imports (its speed is benchmarks/bench_cold_start.py's): each
check runs the command in a fresh interpreter and reads ``sys.modules`` after it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.ir.builders import vit_graph

#: the console script on argv, printing which of ``heavy`` it imported as it ends
_CONSOLE = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules))))\n"
    "from accelsim.cli import console\n"
    "console(sys.argv[1:])\n"
)


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_a_jitted_simulate_loads_numba_without_scipy_linalg(tmp_path: Path) -> None:
    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    code = (
        "import json, sys\n"
        "import accelsim\n"
        "r = accelsim.simulate(accelsim.Graph.load(sys.argv[1]), accelsim.HardwareConfig.load('zcu102'))\n"
        "heavy = ('numba', 'torch', 'timm', 'scipy.linalg', 'networkx', 'rich')\n"
        "loaded = sorted(m for m in heavy if m in sys.modules)\n"
        "import numba.np.arraymath\n"
        "blas = numba.np.arraymath._HAVE_BLAS\n"
        # a kernel that does use BLAS still compiles and imports SciPy's then
        "import numba, numpy as np\n"
        "dot = numba.njit(lambda a, b: np.dot(a, b))\n"
        "value = float(dot(np.arange(3.0), np.arange(3.0)))\n"
        "print(json.dumps([r.fits, loaded, blas, value, 'scipy.linalg' in sys.modules]))\n"
    )
    proc = _run(code, str(gpath))
    assert proc.returncode == 0, proc.stderr
    fits, loaded, blas, value, linalg_after = json.loads(proc.stdout.splitlines()[-1])
    assert (fits, loaded, blas) == (True, ["numba"], True)
    assert (value, linalg_after) == (5.0, True)  # 0*0 + 1*1 + 2*2


@pytest.mark.parametrize(
    "options",
    [[], ["--hw", "kv260", "--set", "array.dataflow=[ws, os]", "--trace", "TRACE"]],
)
def test_cli_simulate_of_a_small_transformer_interprets_its_kernels_with_the_jitted_results(
    tmp_path: Path, options: list[str]
) -> None:
    from accelsim._io import strict_json
    from accelsim.cli import _hardware, build_parser
    from accelsim.ir import Graph
    from accelsim.sim import simulate

    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    out = tmp_path / "r.json"
    options = [str(tmp_path / "t.json") if o == "TRACE" else o for o in options]
    argv = ["simulate", str(gpath), *options, "--json", str(out)]
    proc = _run(
        _CONSOLE.format(heavy=("numba", "llvmlite", "scipy", "networkx", "torch", "timm", "rich")), *argv
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
    # this process compiles the kernels: the report is the same to the last field
    report = simulate(Graph.load(gpath), _hardware(build_parser().parse_args(argv)))
    assert json.loads(out.read_text()) == json.loads(strict_json(report.to_dict()))


def test_only_small_transformers_at_batch_one_are_interpreted() -> None:
    from accelsim.cli import _interpret_pays
    from accelsim.ir import Op, OpKind, Tensor

    g = vit_graph("tiny")
    assert _interpret_pays(g)  # its one convolution is the patch embedding
    g.meta["input_shape"] = [2, 3, 224, 224]
    assert not _interpret_pays(g)  # a batch multiplies the tiles
    assert not _interpret_pays(vit_graph("base", img_size=1024))  # 2,280 GMACs
    g = vit_graph("tiny")
    g.add_tensor(Tensor("dw_out", (1, 192, 14, 14)))
    g.add_tensor(Tensor("dw_in", (1, 192, 14, 14)))
    attrs = {"batch": 1, "in_ch": 192, "out_ch": 192, "in_h": 14, "in_w": 14, "out_h": 14, "out_w": 14}
    attrs |= {"kh": 3, "kw": 3, "stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 192}
    g.add_op(Op("dw", OpKind.DWCONV2D, ("dw_in",), ("dw_out",), attrs))
    assert not _interpret_pays(g)  # convolutional stages: many small tiles


def test_help_imports_no_numeric_library() -> None:
    code = (
        "import json, sys\nfrom accelsim.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    rc = e.code\n"
        "heavy = ('numpy', 'numba', 'pydantic', 'yaml', 'networkx', 'torch')\n"
        "print(json.dumps([rc, sorted(m for m in heavy if m in sys.modules)]))\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == [0, []]


def test_an_unknown_model_is_refused_before_numpy_numba_or_torch_load() -> None:
    code = (
        "import json, sys\nfrom accelsim.cli import main\n"
        "rc = main(['simulate', 'deit_tinyy', '--hw', 'zcu104'])\n"
        "heavy = ('numpy', 'numba', 'torch', 'timm')\n"
        "print(json.dumps([rc, sorted(m for m in heavy if m in sys.modules)]))\n"
    )
    # after the --hw config (a dataflow design ignores the model), before anything heavier
    proc = _run(code)
    assert json.loads(proc.stdout.splitlines()[-1]) == [2, []]
    assert proc.stderr == (
        "accelsim: error: unknown timm model 'deit_tinyy'; "
        "did you mean 'deit_tiny_patch16_224' or 'deit_tiny_distilled_patch16_224'?\n"
    )


def test_yaml_errors_keep_the_pure_python_parsers_words(tmp_path: Path) -> None:
    # configs are parsed by libyaml where present; its refusals are worded by PyYAML's own parser
    from accelsim.config import read_yaml
    from accelsim.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: c: 2\n")
    with pytest.raises(ConfigError) as e:
        read_yaml(bad)
    assert str(e.value) == f"{bad}: invalid YAML at line 2, column 5: mapping values are not allowed here"
    bad.write_text("clock_mhz: 200\narray: {rows: 8}\nclock_mhz: 250\n")
    with pytest.raises(ConfigError) as e:
        read_yaml(bad)
    assert (
        str(e.value)
        == f"{bad}: invalid YAML at line 3, column 1: duplicate key 'clock_mhz' (first at line 1)"
    )
    bad.write_text("clock_mhz: 200\narray: {rows: 8, dataflow: [ws, os]}\n")
    assert read_yaml(bad) == {"clock_mhz": 200, "array": {"rows": 8, "dataflow": ["ws", "os"]}}


def test_the_console_entry_ends_without_teardown_but_with_its_output_and_atexit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    out = tmp_path / "r.json"
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
        "from accelsim.cli import console\n"
        "console(['simulate', sys.argv[1], '--json', sys.argv[2]])\n"
    )
    proc = _run(code, str(gpath), str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "atexit ran\n"
    assert main(["simulate", str(gpath)]) == 0
    assert proc.stdout == capsys.readouterr().out  # all of it: nothing left in a buffer
    assert proc.stdout.startswith("vit_64x1h2 (W8A8) on sa32x64_ws.zcu102")
    assert json.loads(out.read_text())["graph"] == "vit_64x1h2"
    # a bad input: the one-line error and exit code 2 come through the same door
    proc = _run(code, str(tmp_path / "missing.json"), str(out))
    assert proc.returncode == 2 and proc.stderr.startswith("accelsim: error: ")
    assert proc.stderr.endswith("atexit ran\n")


def test_a_dataflow_designs_analytic_simulate_never_loads_numba(tmp_path: Path) -> None:
    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    code = _CONSOLE.format(heavy=("numba", "llvmlite", "torch"))
    proc = _run(code, "simulate", str(gpath), "--hw", "published/hg_pipe")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
    assert "the design's own stage shapes are simulated" in proc.stdout


def test_main_called_in_a_process_of_its_own_caller_leaves_the_kernels_compiled(tmp_path: Path) -> None:
    # interpreting is for the console script's process only: a test suite calling main() keeps numba
    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    code = (
        "import json, sys\nfrom accelsim.cli import main\n"
        "rc = main(['simulate', sys.argv[1]])\n"
        "from accelsim import _numba\nfrom accelsim.sim._schedule_kernel import run_schedule\n"
        "print(json.dumps([rc, _numba._interpreted, type(run_schedule).__name__]))\n"
    )
    proc = _run(code, str(gpath))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == [0, False, "CPUDispatcher"]


def test_a_cold_simulate_turns_the_collector_back_on_once_its_inputs_are_loaded(tmp_path: Path) -> None:
    import gc

    gpath = str(vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json"))
    code = (
        "import atexit, gc, json, sys\n"
        "atexit.register(lambda: print(json.dumps([gc.isenabled(), gc.get_freeze_count()])))\n"
        "from accelsim.cli import console\n"
        "console(sys.argv[1:])\n"
    )
    for argv in (["simulate", gpath], ["simulate", gpath, "--hw", "published/hg_pipe"]):
        proc = _run(code, *argv)
        assert proc.returncode == 0, proc.stderr
        enabled, frozen = json.loads(proc.stdout.splitlines()[-1])
        # on for the simulation, with numpy, the config classes and the inputs frozen
        assert enabled and frozen > 10_000
    # a refused input ends the process before: off, and nothing frozen
    proc = _run(code, "simulate", str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and json.loads(proc.stdout.splitlines()[-1]) == [False, 0]
    # main() in its caller's process leaves the collector as it was
    frozen = gc.get_freeze_count()
    assert main(["simulate", gpath]) == 0
    assert gc.isenabled() and gc.get_freeze_count() == frozen
