"""Cold start of the ``accelsim`` command, as ratios to a bare ``python -c pass`` measured in the same run.

    python3 benchmarks/bench_cold_start.py [--graph deit_tiny.json] [--rounds 7] [--importtime]
        [--compare DIR]

Each command runs in a fresh interpreter (what a shell loop or a fresh Ray worker pays), the
commands taking turns round by round so that a change in the machine's load hits them alike; the
median and the best of the rounds are printed, wall-clock and CPU (user + system of the child: on
a loaded machine wall-clock waits for a core, CPU time much less), with the load average before
and after; the ratios are CPU time over ``python -c pass``'s. The first round only warms the
caches (numba's on-disk cache, ``.pyc`` files) and is not counted.

``--graph``: a DeiT-Tiny saved by ``accelsim lower deit_tiny_patch16_224 -o deit_tiny.json``
(issue 24's target is measured on it); without it the hand-built DeiT-Tiny of
``accelsim.ir.builders`` is saved and used (the same GEMM shapes, no torch needed).
The ``floor`` row imports what a simulate of a saved graph cannot do without (numpy, PyYAML and
pydantic with one model class, the first of which loads pydantic's field and plugin modules); the
``numba`` row adds numba and one cached kernel (numba's first call loads its whole CPU target;
SciPy's BLAS probe deferred as accelsim does, :mod:`accelsim._numba`):
what a run that compiles its kernels pays on top (``accelsim simulate`` of a small transformer
interprets them instead, ``accelsim.cli._interpret_pays``).
``--importtime``: also prints the imports of the cold simulate that cost the most
(``python -X importtime``, cumulative microseconds).

Bytecode: an installed package has its ``.pyc`` files (pip compiles them), so every command
reads them from a temporary ``PYTHONPYCACHEPREFIX`` that round 0 fills, whatever
``PYTHONDONTWRITEBYTECODE`` says here (with it set, each run would compile accelsim's modules
from source, ~0.1 s of a cold simulate that no installed copy pays); ``--source`` keeps this
environment's setting.
The error rows time a refused input: a mistyped model or config name, a config that is not
YAML, a graph file that is not JSON (each one line on stderr, exit 2).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: what the ``accelsim`` console script runs (``[project.scripts]``), from this checkout (a checkout
#: from before ``accelsim.cli.console`` ran ``main``)
ENTRY = "import sys, accelsim.cli as c; f = getattr(c, 'console', None); sys.exit(f() if f else c.main())"


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _env(root: Path, pycache: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    if pycache is not None:  # as installed: .pyc files (the module docstring)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall s, CPU s, exit code) of one run."""
    cpu, t = _child_cpu(), time.perf_counter()
    # from a neutral folder: `python -c` puts the working directory first on sys.path
    proc = subprocess.run(
        argv, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - t, _child_cpu() - cpu, proc.returncode


def _import_profile(argv: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _self, cum_us, name = (x for x in line.replace("import time:", "|").split("|"))
        if not name.startswith("  "):  # top-level imports: what the command itself pulled in
            rows.append((int(cum_us), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", type=Path, default=None, help="a saved DeiT-Tiny graph (accelsim lower)")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    ap.add_argument("--importtime", action="store_true", help="print the top imports of the cold simulate")
    ap.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="another checkout (e.g. `git archive <commit> | tar -x -C DIR`): its commands take turns with ours",
    )
    ap.add_argument(
        "--source",
        action="store_true",
        help="keep this environment's PYTHONDONTWRITEBYTECODE (default: .pyc files, as installed)",
    )
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        pycache = None if args.source else Path(tmp) / "pycache"

        def env(root: Path) -> dict[str, str]:
            return _env(root, pycache)

        graph = args.graph
        if graph is None:
            sys.path.insert(0, str(ROOT))
            from accelsim.ir.builders import vit_graph

            graph = vit_graph("tiny").save(Path(tmp) / "deit_tiny.json")
        kernel = Path(tmp) / "_floor_kernel.py"  # one cached numba kernel: numba's own cold cost
        kernel.write_text("import numba\n\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\n")
        # pydantic loads its field and plugin modules with the first model class (~40 ms)
        floor = "import numpy, yaml; from pydantic import BaseModel\nclass M(BaseModel):\n    x: int = 1"
        with_numba = (
            f"import sys; sys.path.insert(0, {tmp!r}); "
            "from accelsim._numba import defer_blas_probe; defer_blas_probe(); "
            "import numpy, yaml, _floor_kernel; from pydantic import BaseModel; _floor_kernel.f(1)"
        )
        bad_yaml = Path(tmp) / "bad.yaml"
        bad_yaml.write_text("name: x\nboard: zcu102\narray: {rows: 32, cols: [\n")
        bad_graph = Path(tmp) / "corrupt.json"
        bad_graph.write_text(graph.read_text()[: len(graph.read_text()) // 2])
        accelsim = {
            "accelsim --help": ["--help"],
            f"accelsim simulate {graph.name}": ["simulate", str(graph)],
            "accelsim simulate (unknown --hw, error)": ["simulate", str(graph), "--hw", "zcu1O2"],
            "accelsim simulate (unknown model, error)": ["simulate", "deit_tinyy"],
            "accelsim simulate --hw bad.yaml (not YAML, error)": [
                "simulate",
                str(graph),
                "--hw",
                str(bad_yaml),
            ],
            "accelsim simulate corrupt.json (not JSON, error)": ["simulate", str(bad_graph)],
            "accelsim simulate --hw published/hg_pipe (dataflow)": [
                "simulate",
                str(graph),
                "--hw",
                "published/hg_pipe",
            ],
            "accelsim configs": ["configs"],
        }
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([py, "-c", "pass"], env(ROOT)),
            "floor: numpy, yaml, one pydantic model": ([py, "-c", floor], env(ROOT)),
            "numba: numpy pydantic yaml numba + 1 cached kernel": ([py, "-c", with_numba], env(ROOT)),
        }
        checkouts = [("", ROOT)] + ([(f" [{args.compare.name}]", args.compare)] if args.compare else [])
        for label, argv in accelsim.items():
            for suffix, root in checkouts:
                commands[label + suffix] = ([py, "-c", ENTRY, *argv], env(root))
        print(
            f"{_load()} (before); {os.cpu_count()} CPUs; python {sys.version.split()[0]}; "
            + (
                "bytecode as this environment says"
                if pycache is None
                else ".pyc files written (as installed)"
            )
        )
        walls: dict[str, list[float]] = {k: [] for k in commands}
        cpus: dict[str, list[float]] = {k: [] for k in commands}
        codes: dict[str, int] = {}
        for r in range(args.rounds + 1):
            for label, (argv, env) in commands.items():
                wall, cpu, codes[label] = _time(argv, env)
                if r:  # round 0 warms numba's cache and the .pyc files
                    walls[label].append(wall)
                    cpus[label].append(cpu)
        bare = statistics.median(cpus["python -c pass"])
        print(f"{'':<66}{'wall s':>14}{'CPU s':>14}{'CPU':>7}")
        print(f"{'command':<66}{'median':>7}{'best':>7}{'median':>7}{'best':>7}{'x pass':>7}  exit")
        for label in commands:
            w, c = walls[label], cpus[label]
            print(
                f"{label:<66}{statistics.median(w):>7.3f}{min(w):>7.3f}{statistics.median(c):>7.3f}"
                f"{min(c):>7.3f}{statistics.median(c) / bare:>7.1f}  {codes[label]}"
            )
        print(f"{_load()} (after); {args.rounds} rounds, median and best per command")
        if args.importtime:
            label = f"accelsim simulate {graph.name}"
            for suffix, root in checkouts:
                print(f"\nimports of `{label}`{suffix} (top level, cumulative ms; python -X importtime):")
                for us, name in _import_profile(commands[label + suffix][0], env(root), 12):
                    print(f"  {us / 1e3:8.1f}  {name}")


if __name__ == "__main__":
    main()
