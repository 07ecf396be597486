"""``simulate(graph, hw) -> Report`` = build_report(run(map_graph(graph, hw))), and sweeps.

Per hardware point this is NumPy over all ops plus one Numba call; the graph is flattened once
(:func:`~accelsim.sim.graph_arrays.compile_graph`) and reused by every point of a sweep.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from accelsim.config.hardware import HardwareConfig
from accelsim.errors import ConfigError
from accelsim.ir.graph import Graph
from accelsim.sim.graph_arrays import GraphArrays, compile_graph
from accelsim.sim.mapping import map_graph
from accelsim.sim.report import Report, build_report
from accelsim.sim.schedule import RunResult, Schedule, run

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
    graph: Graph | GraphArrays, hws: Iterable[HardwareLike], workers: int | None = None
) -> list[Report]:
    """Simulate one graph on many hardware points (the graph is flattened once).

    A point costs the mapping and the report (NumPy and Python, in this thread) plus one
    schedule-kernel call, which releases the GIL: with ``workers`` > 1 the kernel calls run on
    ``workers - 1`` threads while this thread maps the next points and reports the finished ones.
    Reports come back in the order of ``hws`` and equal :func:`simulate`'s exactly.

    Args:
        graph: a lowered Graph (or its :class:`GraphArrays`).
        hws: hardware configs, names or YAML paths.
        workers: threads, this one included (default 1, inline: on the shared 2-core machine
            measured, a second thread was 0.77x as fast, ``benchmarks/README.md``).

    Raises:
        ConfigError: as :func:`simulate`, for the first point that fails, naming its index in
            ``hws`` and its name.
        GraphFormatError: as :func:`simulate`.
    """
    ga = compile_graph(graph)
    n_workers = workers if workers is not None else 1
    if n_workers < 1:
        raise ConfigError(f"simulate_many: workers must be >= 1, got {n_workers}")
    if n_workers == 1:
        return [_point(j, hw, lambda h: simulate(ga, h)) for j, hw in enumerate(hws)]
    reports: list[Report] = []
    # A few points in flight per kernel thread: enough that a thread always has the next one,
    # few enough that this thread reports as it goes instead of mapping every point first.
    in_flight: deque[tuple[Schedule, Future[RunResult]]] = deque()
    with ThreadPoolExecutor(max_workers=n_workers - 1) as pool:
        for j, hw in enumerate(hws):
            schedule = _point(j, hw, lambda h: map_graph(ga, h))
            in_flight.append((schedule, pool.submit(run, schedule)))
            if len(in_flight) > 2 * (n_workers - 1):
                done, job = in_flight.popleft()
                reports.append(build_report(done, job.result()))
        reports.extend(build_report(done, job.result()) for done, job in in_flight)
    return reports


def _point(j: int, hw: HardwareLike, fn: Callable[[HardwareConfig], T]) -> T:
    """``fn`` of hardware point ``j``; a ConfigError names the point."""
    try:
        return fn(resolve_hardware(hw))
    except ConfigError as err:
        name = hw.name if isinstance(hw, HardwareConfig) else str(hw)
        raise ConfigError(f"hardware point {j} ({name}): {err}") from None


__all__ = ["HardwareLike", "resolve_hardware", "simulate", "simulate_many"]
