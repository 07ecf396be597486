"""What a cold ``accelsim`` command imports (its speed is benchmarks/bench_cold_start.py's): each
check runs the command in a fresh interpreter and reads ``sys.modules`` after it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.ir.builders import vit_graph


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_simulating_a_saved_graph_imports_no_torch_scipy_linalg_or_networkx(tmp_path: Path) -> None:
    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    code = (
        "import json, sys\n"
        "from accelsim.cli import main\n"
        "rc = main(['simulate', sys.argv[1]])\n"
        "heavy = ('torch', 'timm', 'scipy.linalg', 'networkx', 'rich')\n"
        "loaded = sorted(m for m in heavy if m in sys.modules)\n"
        "import numba.np.arraymath\n"
        "blas = numba.np.arraymath._HAVE_BLAS\n"
        # a kernel that does use BLAS still compiles and imports SciPy's then
        "import numba, numpy as np\n"
        "dot = numba.njit(lambda a, b: np.dot(a, b))\n"
        "value = float(dot(np.arange(3.0), np.arange(3.0)))\n"
        "print(json.dumps([rc, loaded, blas, value, 'scipy.linalg' in sys.modules]))\n"
    )
    proc = _run(code, str(gpath))
    assert proc.returncode == 0, proc.stderr
    rc, loaded, blas, value, linalg_after = json.loads(proc.stdout.splitlines()[-1])
    assert (rc, loaded, blas) == (0, [], True)
    assert (value, linalg_after) == (5.0, True)  # 0*0 + 1*1 + 2*2


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


def test_an_unknown_model_is_refused_before_numpy_pydantic_or_torch_load() -> None:
    code = (
        "import json, sys\nfrom accelsim.cli import main\n"
        "rc = main(['simulate', 'deit_tinyy', '--hw', 'zcu104'])\n"
        "heavy = ('numpy', 'pydantic', 'torch', 'timm')\n"
        "print(json.dumps([rc, sorted(m for m in heavy if m in sys.modules)]))\n"
    )
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
