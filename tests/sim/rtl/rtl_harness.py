"""Build the RTL arrays of ``accelsim/sim/reference/rtl/`` with Verilator and run GEMMs through them.

Used by ``test_rtl_array.py`` and ``benchmarks/bench_rtl.py``. One Verilator build holds several
arrays side by side (a generated top level, ``rtl_tb_top``, instantiates ``ws_gemm`` and
``os_gemm`` once per array size and runs the clock in Verilog, so the simulation never waits on
Python between cycles), because on two cores a build costs far more than simulating every case.
One simulator run then takes a whole list of GEMMs: the cocotb testbench (``rtl_tb.py``) reads
them from a JSON file, drives each through its array and writes the results back as JSON.

The build directory is keyed by a hash of everything that goes into it (sources, generated top,
Verilator and cocotb versions), so a cached build is reused only when it is the same build; a file
lock lets two pytest-xdist workers share it instead of building twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.sim.engines.systolic import DATAFLOW_CODES, NO_PACKING, Packing, packed_dims
from accelsim.sim.reference.rtl import SOURCES

HERE = Path(__file__).resolve().parent
TOPLEVEL = "rtl_tb_top"
TB_MODULE = "rtl_tb"  # rtl_tb.py next to this file
IDX_W = 16  # width of the length ports (the RTL's IDX_W parameter)
CYC_W = 32
INSTALL_HINT = (
    "RTL oracle needs Verilator with g++ and make (apt-get install verilator g++ make) and cocotb 1.x "
    "(pip install 'cocotb>=1.9.2,<2'): {why}"
)

# --timing: the clock generator of the top level runs inside Verilator. Lint is test_rtl_array.py's job.
_VERILATOR_ARGS = ("--timing", "--timescale", "1ns/1ps", "-Wno-fatal")
# Verilator's make variables: -O1 for the model's per-cycle code, -O0 for the rest (see build())
_MAKE_FAST_COMPILE = "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O0"
_KEEP_BUILDS = 4


def missing_tools() -> str | None:
    """``None`` when Verilator and cocotb's runner are usable, else one line saying what to install."""
    for tool in ("verilator", "g++", "make"):  # Verilator compiles the model with g++ through make
        if shutil.which(tool) is None:
            return INSTALL_HINT.format(why=f"{tool} is not on PATH")
    try:
        _get_runner()
    except ImportError as e:
        return INSTALL_HINT.format(why=f"cannot import cocotb.runner ({e})")
    return None


def _get_runner(public_top_only: bool = False) -> Any:
    """cocotb's Verilator runner (cocotb 1.x's ``cocotb.runner``; 2.x moved it and needs Verilator
    5.036 or newer, which Debian's 5.006 is not).

    ``public_top_only``: build without the runner's ``--public-flat-rw``, which makes every signal of
    every PE visible to cocotb: at 32x64 that is 150 MB of C++ symbol tables and a build of tens of
    minutes. The top level then marks the signals the testbench uses (``/*verilator public_flat_rw*/``)
    and Verilator may inline and optimise everything below it.
    """
    with warnings.catch_warnings():  # "Python runners ... are an experimental feature"
        warnings.simplefilter("ignore", UserWarning)
        from cocotb.runner import Verilator, get_runner

    if not public_top_only:
        return get_runner("verilator")

    class _TopOnly(Verilator):  # type: ignore[misc]
        def _build_command(self) -> list[Any]:
            return [[a for a in cmd if a != "--public-flat-rw"] for cmd in super()._build_command()]

    return _TopOnly()


@dataclass(frozen=True)
class ArraySpec:
    """One array instance of a build: dataflow family ``"ws"`` (also runs ``is``) or ``"os"``, and
    its packing (two products per DSP at most, WP486): ``ws`` holds ``pc`` columns of the stationary
    operand per PE and streams ``ps`` vectors per cycle; ``os`` owns ``pc`` outputs along N per PE."""

    kind: str
    rows: int
    cols: int
    pc: int = 1
    ps: int = 1

    @property
    def name(self) -> str:
        packed = "" if (self.pc, self.ps) == (1, 1) else f"_p{self.pc}{self.ps}"
        return f"{self.kind}_r{self.rows}c{self.cols}{packed}"


@dataclass(frozen=True)
class RtlBuild:
    """A finished Verilator build: its directory and what it holds."""

    directory: Path
    arrays: tuple[ArraySpec, ...]
    max_dim: int  # every GEMM dimension (M, K, N) must be at most this
    data_w: int
    acc_w: int


@dataclass(frozen=True)
class GemmCase:
    """``A @ B`` on an ``rows x cols`` array under ``dataflow`` with ``packing`` (the fast model's)."""

    a: np.ndarray
    b: np.ndarray
    rows: int
    cols: int
    dataflow: str
    packing: Packing = NO_PACKING

    @property
    def spec(self) -> ArraySpec:
        """The array instance that runs this case."""
        return array_spec(self.dataflow, self.rows, self.cols, self.packing)


@dataclass(frozen=True)
class RtlResult:
    """What the RTL reported for one GEMM."""

    product: np.ndarray  # A @ B as the array computed it (int64)
    last_mac_cycle: int  # the RTL's own counter: index of the last cycle any PE did a MAC
    busy_cycles: int  # cycles from start to done, as the testbench saw them
    sim_seconds: float  # wall time of the simulation from start to done
    # CPU time of the simulator process over the same span: what a loaded machine does not inflate
    sim_cpu_seconds: float = 0.0
    timed_out: bool = False  # done never came (product empty, cycles -1)


@dataclass(frozen=True)
class _Ports:
    """How the testbench talks to one kind of array: P is written first, Q second, both row by row."""

    module: str
    lens: tuple[str, str, str]  # length inputs: rows of P, columns of P, columns of Q
    p: str  # prefix of P's write port (x_we, x_waddr, x_wdata for X)
    q: str
    size_params: tuple[str, str, str]  # the memories' sizes, all set to the build's max_dim
    pack_params: tuple[str, ...]  # the module's packing parameters: ArraySpec.pc (and .ps)


_PORTS = {
    "ws": _Ports(
        "ws_gemm", ("t_len", "sr_len", "sc_len"), "x", "s", ("MAX_T", "MAX_SR", "MAX_SC"), ("PC", "PS")
    ),
    "os": _Ports("os_gemm", ("m_len", "k_len", "n_len"), "a", "b", ("MAX_M", "MAX_K", "MAX_N"), ("PN",)),
}


def _addr_w(n: int) -> int:
    return max(1, (n - 1).bit_length())  # Verilog's $clog2(n), at least one bit


_PUBLIC = "/*verilator public_flat_rw*/"  # what the testbench may see (build_top's public_top_only)


def top_source(arrays: Sequence[ArraySpec], max_dim: int, data_w: int, acc_w: int) -> str:
    """Verilog of the generated top level: a clock, a reset and one array per spec, every port of
    array ``name`` wired to a top-level signal ``name_port`` that the testbench drives or reads (the
    only signals public to it)."""
    aw = _addr_w(max_dim)
    row_in, row_out = max_dim * data_w, max_dim * acc_w
    lines = [
        f"// generated by {Path(__file__).name}: the RTL arrays side by side, one clock",
        f"module {TOPLEVEL};",
        f"    reg clk {_PUBLIC} = 1'b0;",
        "    always #5 clk = ~clk;",
        f"    reg rst {_PUBLIC} = 1'b1;",
    ]
    for spec in arrays:
        ports_of = _PORTS[spec.kind]
        lens, p, q = ports_of.lens, ports_of.p, ports_of.q
        n = spec.name
        # each array's clock is gated by its enable (set while clk is low): an idle array gets no
        # edges and costs the simulation nothing; all are enabled until the testbench's reset is over
        lines += [f"    reg {n}_en {_PUBLIC} = 1'b1;", f"    wire {n}_clk = clk & {n}_en;"]
        ports = {"clk": f"{n}_clk", "rst": "rst"}
        for length in lens:
            lines.append(f"    reg [{IDX_W - 1}:0] {n}_{length} {_PUBLIC} = {IDX_W}'d1;")
        for op in (p, q):
            lines += [
                f"    reg {n}_{op}_we {_PUBLIC} = 1'b0;",
                f"    reg [{aw - 1}:0] {n}_{op}_waddr {_PUBLIC} = {aw}'d0;",
                f"    reg [{row_in - 1}:0] {n}_{op}_wdata {_PUBLIC} = {row_in}'d0;",
            ]
        lines += [
            f"    reg {n}_start {_PUBLIC} = 1'b0;",
            f"    reg [{aw - 1}:0] {n}_o_raddr {_PUBLIC} = {aw}'d0;",
            f"    wire {n}_busy {_PUBLIC};",
            f"    wire {n}_done {_PUBLIC};",
            f"    wire [{CYC_W - 1}:0] {n}_last_mac_cycle {_PUBLIC};",
            f"    wire [{row_out - 1}:0] {n}_o_rdata {_PUBLIC};",
        ]
        names = [*lens, f"{p}_we", f"{p}_waddr", f"{p}_wdata", f"{q}_we", f"{q}_waddr", f"{q}_wdata"]
        names += ["start", "busy", "done", "last_mac_cycle", "o_raddr", "o_rdata"]
        ports.update({port: f"{n}_{port}" for port in names})
        params = {"ROWS": spec.rows, "COLS": spec.cols, "DATA_W": data_w, "ACC_W": acc_w}
        params.update(dict.fromkeys(ports_of.size_params, max_dim))
        params.update(zip(ports_of.pack_params, (spec.pc, spec.ps), strict=False))
        plist = ", ".join(f".{k}({v})" for k, v in params.items())
        conns = ", ".join(f".{k}({v})" for k, v in ports.items())
        lines.append(f"    {ports_of.module} #({plist}) {n} ({conns});")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        yield


def _tool_versions() -> str:
    import cocotb

    verilator = subprocess.run(["verilator", "--version"], capture_output=True, text=True, check=True)
    return f"{verilator.stdout.strip()} cocotb {cocotb.__version__}"


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    # the runner copies os.environ into the environment of every command it runs
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


def build(
    arrays: Sequence[ArraySpec],
    cache_dir: Path,
    max_dim: int = 20,
    data_w: int = 8,
    acc_w: int = 32,
    optimize: bool = False,
) -> RtlBuild:
    """Build the arrays into ``cache_dir/<hash>`` with Verilator (or reuse that build).

    Args:
        arrays: the array instances of the build.
        cache_dir: where builds live, one folder per content hash.
        max_dim: the largest M, K, N the operand memories hold.
        data_w: operand width (two's complement).
        acc_w: accumulator width.
        optimize: compile the C++ model with Verilator's default ``-Os`` throughout. Without it
            the per-cycle code gets ``-O1`` and the rest (initialisation, Verilator's runtime,
            cocotb's VPI glue) ``-O0``: about half the compile time on two cores, and for the
            tests' small GEMMs the compile is what costs (``-O0`` throughout compiles faster
            still but simulates eight times slower).

    Raises:
        RuntimeError: Verilator or the C++ compile failed (the log is ``build.log`` in the build
            directory).
    """
    top = top_source(arrays, max_dim, data_w, acc_w)
    # Verilator's VPI truncates a value wider than 64 words, and an output row is max_dim * acc_w bits wide.
    verilator_args = _VERILATOR_ARGS
    if (words := -(-max(max_dim * acc_w, max_dim * data_w) // 32)) > 64:
        verilator_args += ("-CFLAGS", f"-DVL_VALUE_STRING_MAX_WORDS={words}")
    # in SOURCES' order (the packing package before its users), each file once
    sources = list(dict.fromkeys(path for spec in arrays for path in SOURCES[_PORTS[spec.kind].module]))
    directory = build_top(TOPLEVEL, top, sources, cache_dir, optimize, verilator_args, public_top_only=True)
    return RtlBuild(directory, tuple(arrays), max_dim, data_w, acc_w)


def build_top(
    toplevel: str,
    top: str,
    sources: Sequence[Path],
    cache_dir: Path,
    optimize: bool = False,
    verilator_args: Sequence[str] = _VERILATOR_ARGS,
    public_top_only: bool = False,
) -> Path:
    """Build the generated top level ``top`` (module ``toplevel``) over ``sources`` into
    ``cache_dir/<hash>``, or reuse that build; returns its directory. ``optimize`` as in :func:`build`;
    ``public_top_only`` as in :func:`_get_runner` (the top marks its public signals).

    Raises:
        RuntimeError: Verilator or the C++ compile failed (the log is ``build.log`` in the build
            directory).
    """
    make_vars = "" if optimize else f" -- {_MAKE_FAST_COMPILE}"
    # $ACCELSIM_RTL_JOBS: parallel compile jobs (default two), not part of the build's identity
    jobs = os.environ.get("ACCELSIM_RTL_JOBS") or str(min(2, os.cpu_count() or 1))
    make_flags = f"-j{jobs}{make_vars}"
    digest = hashlib.sha256()
    for blob in (
        top,
        _tool_versions(),
        " ".join(verilator_args),
        make_vars,
        f"public_top_only={public_top_only}",
        *(p.read_text() for p in sources),
    ):
        digest.update(blob.encode())
    directory = cache_dir / f"rtl-{digest.hexdigest()[:16]}"
    stamp = directory / "build.ok"
    with _locked(cache_dir / f"{directory.name}.lock"):
        if stamp.exists():
            return directory
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        (directory / f"{toplevel}.v").write_text(top)
        try:
            with _environ(MAKEFLAGS=make_flags):
                _get_runner(public_top_only).build(
                    verilog_sources=[*map(str, sources), str(directory / f"{toplevel}.v")],
                    hdl_toplevel=toplevel,
                    build_dir=str(directory),
                    build_args=list(verilator_args),
                    log_file=str(directory / "build.log"),
                )
        except SystemExit as e:  # how cocotb's runner reports a failed command
            raise RuntimeError(f"the Verilator build failed ({e}); see {directory / 'build.log'}") from None
        stamp.write_text(top)
    _prune(cache_dir, keep=_KEEP_BUILDS)
    return directory


def _prune(cache_dir: Path, keep: int) -> None:
    """Remove all but the ``keep`` newest builds (each RTL edit makes a new one of ~10 MB)."""
    builds = sorted(cache_dir.glob("rtl-*/build.ok"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stamp in builds[keep:]:
        with _locked(cache_dir / f"{stamp.parent.name}.lock"):
            shutil.rmtree(stamp.parent, ignore_errors=True)
        (cache_dir / f"{stamp.parent.name}.lock").unlink(missing_ok=True)


def array_spec(dataflow: str, rows: int, cols: int, packing: Packing = NO_PACKING) -> ArraySpec:
    """The array instance that runs ``dataflow`` with ``packing`` (:func:`packed_dims`'s factors).

    Raises:
        ValueError: a packing the RTL does not build (more than two products per DSP, packing
            along K, or along M under os).
    """
    code = DATAFLOW_CODES[dataflow]
    p_rows, p_cols, p_stream = packed_dims(code, packing.m, packing.k, packing.n)
    if packing.macs > 2 or p_rows != 1 or (dataflow == "os" and p_stream != 1):
        raise ValueError(
            f"{dataflow} with {packing}: the RTL packs two products per DSP along N (or M under is)"
        )
    if dataflow == "os":
        return ArraySpec("os", rows, cols, p_cols)
    return ArraySpec("ws", rows, cols, p_cols, p_stream)


def array_operands(a: np.ndarray, b: np.ndarray, dataflow: str) -> tuple[str, np.ndarray, np.ndarray]:
    """``(array kind, P, Q)``: the operands the array's two memories get for ``A @ B``.

    ws: ``X = A``, ``S = B``; is: the ws array on the transposed problem (``X = Bᵀ``, ``S = Aᵀ``,
    result ``(A @ B)ᵀ``), as :mod:`accelsim.sim.reference.pe` runs it; os: ``A`` and ``B``.
    """
    if dataflow == "is":
        return "ws", np.ascontiguousarray(b.T), np.ascontiguousarray(a.T)
    return ("ws" if dataflow == "ws" else "os"), a, b


def _timeout_cycles(p_rows: int, p_cols: int, q_cols: int, rows: int, cols: int) -> int:
    # generous: every fold paying its whole SCALE-Sim fold (preload, stream, skew), twice
    folds = -(-p_cols // rows) * -(-q_cols // cols)
    return 2 * folds * (2 * rows + cols + max(p_rows, rows) + 2) + 100


def product_disagreements(label: str, product: np.ndarray, expected: np.ndarray) -> list[str]:
    """Whether an RTL run's product differs from numpy's, and in how many entries."""
    if product.shape != expected.shape or not np.array_equal(product, expected):
        wrong = int((product != expected).sum()) if product.shape == expected.shape else "all"
        return [f"{label}: product differs from numpy in {wrong} of {expected.size} entries"]
    return []


def simulate_cases(
    build_dir: Path, toplevel: str, tb_module: str, env: str, cases: Any, n_cases: int, work_dir: Path
) -> list[dict[str, Any]]:
    """Run the cocotb testbench ``tb_module`` once over a build: ``cases`` (JSON) go to it through
    ``$<env>_CASES``, its per-case results come back through ``$<env>_RESULTS``, in case order.

    Raises:
        RuntimeError: the simulation failed or did not report ``n_cases`` results (its log is
            ``work_dir/sim.log``).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    cases_json, results_json = work_dir / "cases.json", work_dir / "results.json"
    cases_json.write_text(json.dumps(cases))
    results_json.unlink(missing_ok=True)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the runner hands sys.path to the simulator's Python
    try:
        _get_runner().test(
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            test_module=tb_module,
            build_dir=str(build_dir),
            test_dir=str(work_dir),
            extra_env={f"{env}_CASES": str(cases_json), f"{env}_RESULTS": str(results_json)},
            log_file=str(work_dir / "sim.log"),
        )
    except SystemExit as e:
        raise RuntimeError(f"the RTL simulation failed ({e}); see {work_dir / 'sim.log'}") from None
    if not results_json.exists():
        raise RuntimeError(f"the RTL simulation reported no results; see {work_dir / 'sim.log'}")
    raw: list[dict[str, Any]] = json.loads(results_json.read_text())
    if len(raw) != n_cases:
        raise RuntimeError(
            f"the RTL simulation reported {len(raw)} of {n_cases} cases; see {work_dir / 'sim.log'}"
        )
    return raw


def run(rtl: RtlBuild, cases: Sequence[GemmCase], work_dir: Path) -> list[RtlResult]:
    """Simulate every case in one run of the build's simulator; results in case order.

    Raises:
        ValueError: a case's array is not in the build, or a dimension exceeds ``max_dim``.
        RuntimeError: the simulation did not report every case (its log is ``sim.log``).
    """
    built = {spec.name for spec in rtl.arrays}
    lo, hi = -(1 << (rtl.data_w - 1)), (1 << (rtl.data_w - 1)) - 1
    payload: list[dict[str, Any]] = []
    for case in cases:
        kind, p, q = array_operands(case.a, case.b, case.dataflow)
        name = case.spec.name
        if name not in built:
            raise ValueError(f"{case.dataflow} on {case.rows}x{case.cols}: array {name} is not in the build")
        if min(p.min(), q.min()) < lo or max(p.max(), q.max()) > hi:
            raise ValueError(f"operands must lie in [{lo}, {hi}] for the build's {rtl.data_w}-bit data")
        if max(*p.shape, q.shape[1]) > rtl.max_dim:
            raise ValueError(
                f"GEMM {case.a.shape} @ {case.b.shape} exceeds the build's max_dim {rtl.max_dim}"
            )
        ports = _PORTS[kind]
        payload.append(
            {
                "instance": name,
                "lens": ports.lens,
                "p": ports.p,
                "q": ports.q,
                "p_rows": p.tolist(),
                "q_rows": q.tolist(),
                "timeout_cycles": _timeout_cycles(p.shape[0], p.shape[1], q.shape[1], case.rows, case.cols),
            }
        )
    spec = {"data_w": rtl.data_w, "acc_w": rtl.acc_w, "instances": sorted(built), "cases": payload}
    raw = simulate_cases(rtl.directory, TOPLEVEL, TB_MODULE, "ACCELSIM_RTL", spec, len(cases), work_dir)
    results = []
    for case, r in zip(cases, raw, strict=True):
        out_cols = case.a.shape[0] if case.dataflow == "is" else case.b.shape[1]  # columns of Q
        out = np.array(r["out_rows"], dtype=np.int64).reshape(-1, out_cols)
        results.append(
            RtlResult(
                product=out.T if case.dataflow == "is" else out,
                last_mac_cycle=int(r["last_mac_cycle"]),
                busy_cycles=int(r["busy_cycles"]),
                sim_seconds=float(r["sim_seconds"]),
                sim_cpu_seconds=float(r["sim_cpu_seconds"]),
                timed_out=bool(r["timed_out"]),
            )
        )
    return results
