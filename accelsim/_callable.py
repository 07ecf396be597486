"""Let a subpackage be called as the function it is named after.

``accelsim.lower``, ``accelsim.compress`` and ``accelsim.search`` name both a subpackage and
the public function of the flow (DESIGN.md). Importing a subpackage binds the *module* to the
parent's attribute, whichever was bound before, so the module itself forwards calls to the
function and ``accelsim.lower(model)`` works however the name was reached.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any


def make_module_callable(module_name: str, func: Callable[..., Any]) -> None:
    """Make ``sys.modules[module_name](...)`` call ``func(...)``."""

    class _CallableModule(types.ModuleType):
        __doc__ = func.__doc__

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule
