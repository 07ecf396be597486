"""The weights sidecar of a saved graph: ``<stem>.weights.safetensors`` next to ``<stem>.json``.

The graph JSON carries structure and quantisation (``Graph.quant``); the values of the weight
tensors (``Graph.constants``) go into a safetensors file beside it, so that a saved quantised graph
can be executed bit-true without torch (safetensors' numpy API reads it). The file's metadata
names the graph, so a sidecar of another graph is refused instead of silently mis-executed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelsim.errors import GraphFormatError
from accelsim.ir.graph import Graph

SIDECAR_FORMAT = "accelsim.constants"
SIDECAR_VERSION = "1"
SUFFIX = ".weights.safetensors"


def sidecar_path(json_path: str | Path) -> Path:
    """``model.json`` -> ``model.weights.safetensors`` (same folder)."""
    p = Path(json_path)
    stem = p.name[: -len(".json")] if p.name.endswith(".json") else p.name
    return p.with_name(stem + SUFFIX)


def save_constants(graph: Graph, json_path: str | Path) -> Path:
    """Write ``graph.constants`` to the sidecar of ``json_path``; returns the sidecar's path.

    Args:
        graph: a graph whose ``constants`` hold numpy-convertible arrays keyed by tensor name.
        json_path: where the graph JSON is (or will be) saved.

    Raises:
        GraphFormatError: a constant names no tensor of the graph, or its shape differs.
    """
    from safetensors.numpy import save_file

    arrays: dict[str, np.ndarray] = {}
    for name, value in graph.constants.items():
        arr = np.ascontiguousarray(np.asarray(value))
        _check(graph, name, arr)
        arrays[name] = arr
    out = sidecar_path(json_path)
    tmp = out.with_name(out.name + ".tmp")
    # Write then rename: an interrupted save never leaves a truncated sidecar under the real name.
    save_file(
        arrays, str(tmp), metadata={"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "graph": graph.name}
    )
    tmp.replace(out)
    return out


def load_constants(graph: Graph, json_path: str | Path) -> Graph:
    """Fill ``graph.constants`` from the sidecar of ``json_path``; returns ``graph``.

    Raises:
        GraphFormatError: the sidecar is missing, unreadable, of another graph, or a constant does
            not match its tensor.
    """
    from safetensors import safe_open

    path = sidecar_path(json_path)
    if not path.is_file():
        raise GraphFormatError(f"{path}: weights sidecar not found (save it with save_constants)")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("format") != SIDECAR_FORMAT:
                raise GraphFormatError(
                    f"{path}: not an accelsim weights sidecar (format {meta.get('format')!r})"
                )
            if meta.get("graph") != graph.name:
                raise GraphFormatError(
                    f"{path}: sidecar of graph {meta.get('graph')!r}, not of graph {graph.name!r}"
                )
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except GraphFormatError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError and OSError/ValueError
        raise GraphFormatError(f"{path}: corrupt weights sidecar ({type(e).__name__}: {e})") from None
    for name, arr in arrays.items():
        _check(graph, name, arr)
    graph.constants.update(arrays)
    return graph


def save_graph(graph: Graph, json_path: str | Path) -> Path:
    """``graph.save(json_path)`` plus its sidecar when it carries constants; returns the JSON path."""
    path = graph.save(json_path)
    if graph.constants:
        save_constants(graph, path)
    return path


def load_graph(json_path: str | Path) -> Graph:
    """``Graph.load(json_path)`` plus its sidecar when one lies beside it."""
    graph = Graph.load(json_path)
    if sidecar_path(json_path).is_file():
        load_constants(graph, json_path)
    return graph


def _check(graph: Graph, name: str, arr: np.ndarray) -> None:
    if name not in graph.tensors:
        raise GraphFormatError(f"constant {name!r} names no tensor of graph {graph.name!r}")
    want = graph.tensors[name].shape
    if tuple(arr.shape) != tuple(want):
        raise GraphFormatError(f"constant {name!r}: shape {tuple(arr.shape)} != tensor shape {tuple(want)}")


__all__ = ["SUFFIX", "load_constants", "load_graph", "save_constants", "save_graph", "sidecar_path"]
