#!/usr/bin/env bash
# Builds the Python package (pip install ., core library only) into a virtual environment
# under build-python/ and runs tests/python/ (with pytest when it is installed, else each file
# as a plain script). The venv sees the system's site-packages for NumPy. test_hf.py (the
# transformers cache) skips, saying so, unless torch and transformers are installed (in the
# venv or the system: pip install torch transformers).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
venv=build-python/venv
[ -x "$venv/bin/python" ] || "$PY" -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check .
if "$venv/bin/python" -c "import pytest" 2>/dev/null; then
  "$venv/bin/python" -m pytest -q tests/python
else
  for t in tests/python/test_*.py; do "$venv/bin/python" "$t"; done
fi
