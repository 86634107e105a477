#!/usr/bin/env bash
# The README's main job on a fresh machine: install dependencies and the real models,
# build everything, then compare every cache codec on a real model (`tq eval` with its
# embedded defaults: SmolLM2-135M-Instruct, the bundled text, the default codec list).
# Extra arguments go to `tq eval` (e.g. --model gemma3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/setup_models.sh
bash scripts/setup_text.sh
bash scripts/build.sh
exec build/bin/tq eval "$@"
