"""``simulate(graph, hw) -> Report`` = build_report(run(map_graph(graph, hw))), and sweeps.

Per hardware point this is NumPy over all ops plus one Numba call; the graph is flattened once
(:func:`~accelsim.sim.graph_arrays.compile_graph`) and reused by every point of a sweep.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from accelsim._gc import collector_paused
from accelsim.config.hardware import HardwareConfig
from accelsim.errors import ConfigError
from accelsim.ir.graph import Graph
from accelsim.sim.graph_arrays import GraphArrays, compile_graph
from accelsim.sim.mapping import map_graph
from accelsim.sim.report import Report, build_report
from accelsim.sim.schedule import RunResult, Schedule, run

if TYPE_CHECKING:  # multiprocessing is imported when a sweep forks, not by `accelsim simulate`
    from multiprocessing.connection import Connection

HardwareLike = HardwareConfig | str | Path
T = TypeVar("T")


def resolve_hardware(hw: HardwareLike) -> HardwareConfig:
    """A config as given, or loaded from a name in ``hw_configs/`` or a YAML path."""
    return hw if isinstance(hw, HardwareConfig) else HardwareConfig.load(hw)


def simulate(graph: Graph | GraphArrays, hw: HardwareLike) -> Report:
    """Simulate one frame of ``graph`` on the accelerator ``hw``.

    Args:
        graph: a lowered :class:`~accelsim.ir.Graph` (or its cached :class:`GraphArrays`).
        hw: a :class:`HardwareConfig`, a config name in ``hw_configs/`` or a YAML path.

    Returns:
        The :class:`Report`. A design that does not fit its board is still simulated, with
        ``fits`` False and ``overflow`` naming each overflowing resource.

    Raises:
        ConfigError: invalid config, or operand bits the packing table does not cover.
        GraphFormatError: an op without the attributes its kind needs.

    Examples:
        >>> from accelsim.ir import Graph, Op, OpKind, Tensor
        >>> g = Graph("fc")
        >>> for t in (Tensor("x", (64, 64)), Tensor("w", (64, 64), weight=True), Tensor("y", (64, 64))):
        ...     g.add_tensor(t)
        >>> g.add_op(Op("fc", OpKind.MATMUL, ("x", "w"), ("y",), {"M": 64, "K": 64, "N": 64}, macs=64**3))
        >>> r = simulate(g, "zcu102")
        >>> r.total_macs, r.fits
        (262144, True)
    """
    schedule = map_graph(graph, resolve_hardware(hw))
    return build_report(schedule, run(schedule))


def simulate_many(
    graph: Graph | GraphArrays,
    hws: Iterable[HardwareLike],
    workers: int | None = None,
    pool: Literal["processes", "threads"] = "processes",
) -> list[Report]:
    """Simulate one graph on many hardware points (the graph is flattened once), on every core.

    ``pool="processes"`` (the default) forks ``workers - 1`` processes, each of which inherits the
    flattened graph and the points and simulates every ``workers``-th block of a few points (this
    process takes its share too); a worker sends back each report's numbers, from which this process builds the
    :class:`Report` (its per-layer table, if asked for, maps and runs the point again here).
    ``pool="threads"`` runs the schedule kernel, which releases the GIL, on ``workers - 1`` threads
    while this thread maps and reports. Either way the reports come back in the order of ``hws``
    and equal :func:`simulate`'s exactly.

    Why processes by default (benchmarks/README.md, ``bench_sim.py`` [2], 1,000 DeiT-Small
    points on the 2-core machine shared with other jobs): a point is about half kernel and half
    mapping and report, and that half holds the GIL, so threads cannot pass ~2x however many cores
    there are; they measured 0.64-0.92x inline (1 kernel thread), their CPU time 9-53% above it.
    Processes split the whole point and scale with the cores, for a fixed ~2-3 ms of fork per
    worker in this process and 15-25% more CPU per point (copy-on-write faults, two busy cores
    sharing caches): with a free core they ran 1.5x inline and 2x threads (4,111 against 2,705 and
    2,029 points/s, load 2.3; medians of 8 alternating runs: 1.24-1.5x inline); with none (the
    other jobs taking both cores) 0.56-0.94x inline. On an idle machine that should
    be ~1.6x on 2 cores and near ``cores / 1.2`` on more, until the forks (serial, ~2.5 ms each)
    weigh (estimated from these CPU figures; no idle or many-core machine was measured).
    ``ACCELSIM_WORKERS=1`` keeps a saturated machine's sweeps inline.

    Args:
        graph: a lowered Graph (or its :class:`GraphArrays`).
        hws: hardware configs, names or YAML paths.
        workers: processes (or threads), this one included. ``None``: the ``ACCELSIM_WORKERS``
            environment variable if set (``1``: inline), else every core this process may run on,
            but at most one per :data:`MIN_POINTS_PER_WORKER` points, and inline inside a worker
            process (a search's Ray task, a multiprocessing worker: no pools within pools).
        pool: ``"processes"`` or ``"threads"``. Processes are forked only where that is safe: on
            Linux, and with no other thread running in this process (a lock another thread holds
            would stay held in the child); elsewhere the sweep runs inline.

    Raises:
        ConfigError: as :func:`simulate`, for the first point (in the order of ``hws``) that fails,
            naming its index in ``hws`` and its name; ``workers`` < 1, an unknown ``pool`` or a bad
            ``ACCELSIM_WORKERS``.
        GraphFormatError: as :func:`simulate`.
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"simulate_many: workers must be >= 1, got {workers}")
    if pool not in ("processes", "threads"):
        raise ConfigError(f"simulate_many: pool must be 'processes' or 'threads', got {pool!r}")
    ga = compile_graph(graph)
    points = list(hws)
    if workers is None:
        most = len(points) // MIN_POINTS_PER_WORKER
        workers = min(default_workers(), most) if most > 1 else 1
    n = min(workers, len(points))
    if n > 1 and pool == "processes" and not _can_fork():
        n = 1
    with collector_paused():
        if n <= 1:
            return _inline(ga, points)
        if pool == "threads":
            return _in_threads(ga, points, n)
        return _in_processes(ga, points, n)


#: The environment variable that sets ``simulate_many``'s default workers (``1``: inline).
WORKERS_ENV = "ACCELSIM_WORKERS"

#: A sweep is split into no more processes than it has this many points per process: a worker
#: costs ~2-3 ms of fork here and ~3 ms to exit, and each point 15-25% more CPU than inline,
#: so a worker's share should be tens of ms (100 DeiT-Small points: ~35 ms).
MIN_POINTS_PER_WORKER = 100


def default_workers() -> int:
    """``simulate_many``'s workers when none are given: ``ACCELSIM_WORKERS``, else the cores this
    process may run on; 1 inside a worker process.

    Raises:
        ConfigError: ``ACCELSIM_WORKERS`` is not a whole number >= 1.
    """
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ConfigError(f"{WORKERS_ENV}={env!r}: must be a whole number >= 1 (1: inline)")
        return int(env)
    from multiprocessing import current_process

    if current_process().daemon:  # a multiprocessing worker (ours included) may not fork again
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _can_fork() -> bool:
    """Whether forking this process is safe: Linux (macOS's system libraries are not fork-safe, Windows
    cannot), no other Python thread, and numba's threading layer (OpenMP, TBB: not fork-safe) not started."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return False
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    return not getattr(parallel, "_is_initialized", False)


def _in_threads(ga: GraphArrays, points: list[HardwareLike], n: int) -> list[Report]:
    """The sweep with the kernel calls on ``n - 1`` threads, mapping and reports in this one."""
    reports: list[Report] = []
    # A few points in flight per kernel thread: enough that a thread always has the next one,
    # few enough that this thread reports as it goes instead of mapping every point first.
    in_flight: deque[tuple[Schedule, Future[RunResult]]] = deque()
    with ThreadPoolExecutor(max_workers=n - 1) as pool:
        for j, hw in enumerate(points):
            schedule = _point(j, hw, lambda h: map_graph(ga, h))
            in_flight.append((schedule, pool.submit(run, schedule)))
            if len(in_flight) > 2 * (n - 1):
                done, job = in_flight.popleft()
                reports.append(build_report(done, job.result()))
        reports.extend(build_report(done, job.result()) for done, job in in_flight)
    return reports


#: Points a worker takes in a row: neighbours in a sweep often share a mapping (the mapper's memo
#: remembers a few), while blocks dealt out in turn give each worker its share of small and large
#: arrays whatever the order of ``hws``.
SHARE_BLOCK = 8

#: What forked workers simulate (the flattened graph and the points): set while they are forked,
#: so that they inherit it instead of unpickling it.
_JOB: tuple[GraphArrays, list[HardwareLike]] | None = None

#: A share's reports and its first failure (index in ``hws``, the error), if any.
_Share = tuple[list[Report], tuple[int, BaseException] | None]


def _in_processes(ga: GraphArrays, points: list[HardwareLike], n: int) -> list[Report]:
    """The sweep on ``n - 1`` forked processes and this one, each taking every ``n``-th block of
    points (:func:`_indices`)."""
    import multiprocessing

    global _JOB
    ctx = multiprocessing.get_context("fork")
    procs: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        _JOB = (ga, points)
        try:
            for k in range(1, n):
                recv, send = ctx.Pipe(duplex=False)
                worker = ctx.Process(
                    target=_worker, args=(k, n, send, os.getpid()), name=f"accelsim-sweep-{k}", daemon=True
                )
                worker.start()
                send.close()
                procs.append((worker, recv))
        finally:
            _JOB = None
        shares = [_share(ga, points, _indices(0, n, len(points)))]
        for k, (proc, recv) in enumerate(procs, 1):
            try:
                keys, rows, failure = recv.recv()
            except EOFError:
                proc.join()
                raise RuntimeError(
                    f"simulate_many: worker process {k} ended without its reports (exit code {proc.exitcode})"
                ) from None
            shares.append((_rebuild(ga, points, _indices(k, n, len(points)), keys, rows), failure))
    except BaseException:
        for proc, _ in procs:
            proc.terminate()  # the workers ignore Ctrl-C: this process ends them
        raise
    finally:
        for proc, recv in procs:
            proc.join()
            proc.close()
            recv.close()
    failures = [f for _, f in shares if f is not None]
    if failures:
        raise min(failures, key=lambda f: f[0])[1]
    reports: list[Report] = [None] * len(points)  # type: ignore[list-item]
    for k, (share, _) in enumerate(shares):
        for j, report in zip(_indices(k, n, len(points)), share, strict=True):
            reports[j] = report
    return reports


def _indices(k: int, n: int, total: int) -> list[int]:
    """Worker ``k``'s points of ``n``: every ``n``-th block of up to ``SHARE_BLOCK`` points (at
    least four blocks a worker, so that a short sweep is dealt out evenly too)."""
    block = max(1, min(SHARE_BLOCK, total // (4 * n)))
    return [j for b in range(k * block, total, n * block) for j in range(b, min(b + block, total))]


def _share(ga: GraphArrays, points: list[HardwareLike], indices: list[int]) -> _Share:
    """The points ``indices`` (ascending), up to the first that fails."""
    reports: list[Report] = []
    for j in indices:
        try:
            reports.append(_point(j, points[j], lambda h: simulate(ga, h)))
        except Exception as err:  # sent to the parent, which raises it (the first in hws order)
            return reports, (j, err)
    return reports, None


def _worker(k: int, n: int, conn: Connection, parent: int) -> None:
    """A forked worker: its share of :data:`_JOB`, sent back as each report's field values."""
    import pickle
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which ends the workers
    _end_with_parent(parent)
    gc.disable()  # a sweep makes no reference cycles, and a collection would copy the parent's heap
    assert _JOB is not None
    ga, points = _JOB
    reports, failure = _share(ga, points, _indices(k, n, len(points)))
    # the numbers only: a report's _source holds the schedule and the run (the graph's arrays)
    keys = tuple(reports[0].__dict__) if reports else ()
    rows = [tuple(r.__dict__.values()) for r in reports]
    if rows:
        at = keys.index("_source")
        rows = [(*row[:at], None, *row[at + 1 :]) for row in rows]
    try:
        try:
            conn.send((keys, rows, failure))
        except (pickle.PicklingError, TypeError, AttributeError):
            if failure is None:
                raise
            j, err = failure  # an error that does not pickle: its name and message
            conn.send((keys, rows, (j, RuntimeError(f"hardware point {j}: {type(err).__name__}: {err}"))))
    except OSError:  # the parent is gone
        pass
    finally:
        conn.close()


def _end_with_parent(parent: int) -> None:
    """Have the kernel kill this worker when ``parent``, the process that forked it, dies, even by
    SIGKILL (Linux's PR_SET_PDEATHSIG), so that no worker outlives a killed sweep."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl: the worker ends when its reports cannot be sent
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def _rebuild(
    ga: GraphArrays,
    points: list[HardwareLike],
    indices: list[int],
    keys: tuple[str, ...],
    rows: list[tuple[Any, ...]],
) -> list[Report]:
    """The Reports of a worker's rows: the same fields in the same order as ``build_report`` sets,
    with a ``_source`` that maps and runs the point again when its layers are asked for."""
    reports = []
    for j, row in zip(indices, rows, strict=False):
        values = dict(zip(keys, row, strict=True))
        values["_source"] = partial(_rerun, ga, points[j])
        report = object.__new__(Report)
        report.__dict__.update(values)
        reports.append(report)
    return reports


def _rerun(ga: GraphArrays, hw: HardwareLike) -> tuple[Schedule, RunResult]:
    schedule = map_graph(ga, resolve_hardware(hw))
    return schedule, run(schedule)


def _inline(ga: GraphArrays, points: list[HardwareLike]) -> list[Report]:
    """``simulate`` of each point, here; a ConfigError names the point."""
    reports: list[Report] = []
    try:
        for hw in points:
            reports.append(simulate(ga, hw))
    except ConfigError as err:
        raise _naming_point(err, len(reports), points[len(reports)]) from None
    return reports


def _naming_point(err: ConfigError, j: int, hw: HardwareLike) -> ConfigError:
    name = hw.name if isinstance(hw, HardwareConfig) else str(hw)
    return ConfigError(f"hardware point {j} ({name}): {err}")


def _point(j: int, hw: HardwareLike, fn: Callable[[HardwareConfig], T]) -> T:
    """``fn`` of hardware point ``j``; a ConfigError names the point."""
    try:
        return fn(resolve_hardware(hw))
    except ConfigError as err:
        raise _naming_point(err, j, hw) from None


__all__ = [
    "MIN_POINTS_PER_WORKER",
    "WORKERS_ENV",
    "HardwareLike",
    "default_workers",
    "resolve_hardware",
    "simulate",
    "simulate_many",
]
