#!/usr/bin/env bash
# Builds the Python package (pip install ., core library only) into a virtual environment
# under build-python/ and runs tests/python/ (with pytest when it is installed, else as a
# plain script). The venv sees the system's site-packages for NumPy.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
venv=build-python/venv
[ -x "$venv/bin/python" ] || "$PY" -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check .
if "$venv/bin/python" -c "import pytest" 2>/dev/null; then
  "$venv/bin/python" -m pytest -q tests/python
else
  "$venv/bin/python" tests/python/test_turboquant.py
fi
