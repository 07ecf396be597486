#!/usr/bin/env bash
# Create the isolated SCALE-Sim v3 venv used as the cycle-count reference.
# SCALE-Sim 3.0.0 (PyPI `scalesim`) pins numpy<2.3, which conflicts with accelsim's numpy, hence
# its own venv (git-ignored: benchmarks/.venv-*/).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/.venv-scalesim"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "scalesim==3.0.0" "numpy<2.3"
"$venv/bin/python" -c "import importlib.metadata as m; print('scalesim', m.version('scalesim'), 'numpy', m.version('numpy'))"
