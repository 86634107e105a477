#!/usr/bin/env bash
# ctest's install_consumer: install the build into a temporary prefix, then build and run
# tests/consumer/consumer.c against that prefix twice: through find_package(turboquant) and
# through pkg-config. Nothing from the source tree is on the include or library path.
# usage: run.sh BUILD_DIR C_COMPILER [CMAKE]
set -euo pipefail
build=$1
cc=$2
cmake=${3:-cmake}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

echo "== install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" --component library >/dev/null

echo "== find_package(turboquant)"
"$cmake" -S "$here" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" >/dev/null
"$cmake" --build "$tmp/build" >/dev/null
"$tmp/build/consumer"

echo "== pkg-config turboquant"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig:$prefix/lib64/pkgconfig
flags=$(pkg-config --cflags --libs turboquant)
echo "pkg-config: $flags"
# shellcheck disable=SC2086  # the flags are words
"$cc" -std=c99 -Wall -Wextra -Werror "$here/consumer.c" -o "$tmp/consumer_pc" $flags -lm
libdir=$(pkg-config --variable=libdir turboquant)
LD_LIBRARY_PATH=$libdir "$tmp/consumer_pc"
