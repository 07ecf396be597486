"""Executors: how a batch of independent tasks is run. The search loop is the same for all of them.

An executor maps a module-level function over argument tuples and returns the results **in
argument order**, so the optimizer is told in ask order whatever finished first: the same seed
gives the same study on every backend. :class:`LocalExecutor` runs in this process;
:class:`RayExecutor` runs each task as a Ray task (on a local Ray, or a cluster by address).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from accelsim.errors import AccelsimError

log = logging.getLogger(__name__)
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn(*args)`` for each args tuple; results in input order."""

    name: str

    def put(self, obj: Any) -> Any:
        """A handle of ``obj`` to pass to many tasks (the object itself, or an object-store ref)."""
        ...

    def map(self, fn: Callable[..., R], args: Sequence[tuple[Any, ...]]) -> list[R]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs tasks one after the other in this process (the in-memory compression cache is shared)."""

    name = "local"

    def put(self, obj: Any) -> Any:
        return obj

    def map(self, fn: Callable[..., R], args: Sequence[tuple[Any, ...]]) -> list[R]:
        return [fn(*a) for a in args]

    def close(self) -> None:
        pass


class RayExecutor:
    """Runs each task as a Ray task.

    Args:
        address: a Ray cluster address (``"auto"``, ``"ray://head:10001"``); ``None`` starts a
            local Ray with ``num_cpus`` CPUs, or joins the one the ``RAY_ADDRESS`` variable names.
        num_cpus: CPUs of a local Ray (``None``: all of this machine's).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:  # pragma: no cover - ray is an optional dependency
            raise AccelsimError("--backend ray needs ray: pip install 'accelsim[ray]'") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["num_cpus"] = num_cpus
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = address or os.environ.get("RAY_ADDRESS") or "a local Ray"
                first = str(e).strip().splitlines()
                raise AccelsimError(
                    f"--backend ray: cannot start or join {where}: {first[0] if first else e}"
                ) from None
            self._started = True
        self._remote: Any = None

    def put(self, obj: Any) -> Any:
        """Ship ``obj`` to the object store once; tasks given the returned ref receive ``obj``.

        The object lives as long as the caller holds the ref, so a batch's graphs are freed with it.
        """
        return self._ray.put(obj)

    def map(self, fn: Callable[..., R], args: Sequence[tuple[Any, ...]]) -> list[R]:
        if self._remote is None:
            self._remote = self._ray.remote(_one_process_task)
        # Top-level ObjectRef arguments are resolved by Ray before the task runs.
        futures = [self._remote.remote(fn, *a) for a in args]
        return list(self._ray.get(futures))

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def _one_process_task(fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)`` with sweeps inline: Ray already runs one task per CPU, and a sweep forking a
    process per core inside each would oversubscribe them (``accelsim.sim.simulate_many``)."""
    key = "ACCELSIM_WORKERS"  # accelsim.sim.driver.WORKERS_ENV, not imported: a compress task needs no simulator
    old = os.environ.get(key)
    os.environ[key] = "1"
    try:
        return fn(*args)
    finally:
        if old is None:
            del os.environ[key]
        else:
            os.environ[key] = old


def check_backend(backend: str, address: str | None = None) -> None:
    """Refuse, before any work, an unknown backend, Ray not installed, or a Ray cluster address
    (``address``, else the ``RAY_ADDRESS`` variable) that nothing answers on.

    Joining an unreachable cluster would otherwise fail in ``ray.init`` after half a minute of
    retries, with the study already created.

    Raises:
        AccelsimError: naming the backend or the address and where it came from.
    """
    if backend not in ("local", "ray"):
        raise AccelsimError(f"backend: unknown {backend!r} (allowed: local, ray)")
    if backend == "local":
        return
    try:
        import ray  # noqa: F401
    except ImportError:  # pragma: no cover - ray is an optional dependency
        raise AccelsimError("--backend ray needs ray: pip install 'accelsim[ray]'") from None
    where, source = (address, "address") if address else (os.environ.get("RAY_ADDRESS"), "RAY_ADDRESS")
    if not where or where in ("auto", "local"):
        return
    host, _, port = where.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise AccelsimError(f"{source} {where!r}: not a Ray address (HOST:PORT, ray://HOST:PORT or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        raise AccelsimError(
            f"{source} {where!r}: no Ray cluster answers there ({e.strerror or e}); "
            "start one with `ray start --head`, or unset RAY_ADDRESS for a local Ray"
        ) from None


def make_executor(backend: str, address: str | None = None, num_cpus: int | None = None) -> Executor:
    """``"local"`` or ``"ray"``; anything else is an :class:`AccelsimError` listing both."""
    if backend == "local":
        return LocalExecutor()
    if backend == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus)
    raise AccelsimError(f"backend: unknown {backend!r} (allowed: local, ray)")


__all__ = ["Executor", "LocalExecutor", "RayExecutor", "check_backend", "make_executor"]
