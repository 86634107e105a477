#!/usr/bin/env bash
# Fetches cuobjdump and nvdisasm from PyPI (wheels nvidia-cuda-cuobjdump and
# nvidia-cuda-nvdisasm) into build-sass-tools/ (ignored), so SASS can be read on a
# machine whose CUDA toolkit lacks them; prints the bin directory to put on PATH.
# Usage: PATH=$(bench/cuda/sass_tools.sh):$PATH; cuobjdump -sass obj.o > k.sass
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/build-sass-tools
if [ ! -x "$dir/bin/cuobjdump" ]; then
  mkdir -p "$dir/wheels" "$dir/bin"
  python3 -m pip download --quiet --no-deps nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm -d "$dir/wheels" >&2
  for w in "$dir"/wheels/*.whl; do python3 -m zipfile -e "$w" "$dir/unpacked"; done
  for tool in cuobjdump nvdisasm; do
    cp "$(find "$dir/unpacked" -type f -name "$tool" | head -1)" "$dir/bin/$tool"
    chmod +x "$dir/bin/$tool"
  done
fi
echo "$dir/bin"
