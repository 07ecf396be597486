"""accelsim: lower timm ViTs to a dataflow graph and simulate them on FPGA systolic-array accelerators.

The flow (see DESIGN.md): ``compress(model, recipe)`` -> ``lower(model)`` -> ``Graph`` ->
``simulate(graph, hw)`` -> ``Report``; ``search(space)`` explores both sides together.

Every name but the errors is imported lazily: loading and simulating a saved graph never pays for
``import torch``, and ``accelsim --help`` not even for networkx or numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from accelsim import errors as _errors
from accelsim._lazy import lazy_exports
from accelsim.errors import (
    AccelsimError,
    AccumulatorOverflowError,
    ConfigError,
    DataError,
    GraphFormatError,
    InputShapeError,
    ResourceError,
    UnknownModelError,
    UnsupportedOpError,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY: dict[str, str] = {
    "Graph": "accelsim.ir",
    "Op": "accelsim.ir",
    "OpKind": "accelsim.ir",
    "Tensor": "accelsim.ir",
    "lower": "accelsim.lower",
    "HardwareConfig": "accelsim.config.hardware",
    "BoardSpec": "accelsim.config.hardware",
    "simulate": "accelsim.sim",
    "simulate_scalesim": "accelsim.sim",
    "simulate_dataflow": "accelsim.sim.dataflow",
    "Report": "accelsim.sim",
    "CompressionRecipe": "accelsim.config.compression",
    "compress": "accelsim.compress",
    "evaluate": "accelsim.eval",
    "Workload": "accelsim.config.workload",
    "SearchSpace": "accelsim.config.search",
    "search": "accelsim.search",
}

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.compress import compress
    from accelsim.config.compression import CompressionRecipe
    from accelsim.config.hardware import BoardSpec, HardwareConfig
    from accelsim.config.search import SearchSpace
    from accelsim.config.workload import Workload
    from accelsim.eval import evaluate
    from accelsim.ir import Graph, Op, OpKind, Tensor
    from accelsim.lower import lower
    from accelsim.search import search
    from accelsim.sim import Report, simulate, simulate_scalesim
    from accelsim.sim.dataflow import simulate_dataflow


_lazy_getattr, __dir__ = lazy_exports(globals(), _LAZY)


def __getattr__(name: str) -> Any:
    if name in _errors.DEPRECATED_NAMES:
        return _errors.deprecated_name(__name__, name)
    return _lazy_getattr(name)


__all__ = [
    "AccelsimError",
    "AccumulatorOverflowError",
    "BoardSpec",
    "CompressionRecipe",
    "ConfigError",
    "DataError",
    "Graph",
    "GraphFormatError",
    "HardwareConfig",
    "InputShapeError",
    "Op",
    "OpKind",
    "Report",
    "ResourceError",
    "SearchSpace",
    "Tensor",
    "UnknownModelError",
    "UnsupportedOpError",
    "Workload",
    "__version__",
    "compress",
    "evaluate",
    "lower",
    "search",
    "simulate",
    "simulate_dataflow",
    "simulate_scalesim",
]
