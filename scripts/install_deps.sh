#!/usr/bin/env bash
# Installs everything the build, the tests and the evaluation need: Debian packages with
# apt-get, Python packages with pip. Idempotent: skips what is already there.
set -euo pipefail

APT_PACKAGES=(cmake g++ make pkg-config libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev)
PIP_PACKAGES=(numpy matplotlib)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install_deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
need_pip=()
for p in "${PIP_PACKAGES[@]}"; do
  "$PY" -c "import $p" >/dev/null 2>&1 || need_pip+=("$p")
done
if ((${#need_pip[@]})); then
  echo "install_deps: pip install ${need_pip[*]}"
  "$PY" -m pip install -q --disable-pip-version-check "${need_pip[@]}"
fi
echo "install_deps: ok"
