"""Where the shipped data lives: ``hw_configs/`` and ``workloads/`` of the checkout (the README's
editable install), else the copies a wheel carries in ``accelsim/_data/`` (``setup.py`` puts them
there), so ``pip install`` from a URL or an sdist finds the accelerator configs too."""

from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]
_PACKAGED = Path(__file__).resolve().parent / "_data"


def data_dir(name: str) -> Path:
    """``name`` (``"hw_configs"`` or ``"workloads"``) in the checkout, else in the installed package.

    When neither exists the checkout path is returned, so that errors name the place the README's
    install reads from.
    """
    for root in (_CHECKOUT, _PACKAGED):
        if (root / name).is_dir():
            return root / name
    return _CHECKOUT / name
