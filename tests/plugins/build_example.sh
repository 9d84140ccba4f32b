#!/bin/sh
# build_example.sh BUILD_DIR SOURCE_DIR - the SDK smoke test a third party would run:
# install the main build into a scratch prefix, build examples/storage-memory-example out of
# tree against that prefix with find_package(stratus_sdk), and run the installed conformance
# kit against the plugin it produced. Fails on the first step that fails.
# SPDX-License-Identifier: Apache-2.0
set -eu
build=${1:?usage: build_example.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: build_example.sh BUILD_DIR SOURCE_DIR}
scratch=$(mktemp -d /tmp/stratus-example.XXXXXX)
trap 'rm -rf "$scratch"' EXIT INT TERM

echo "== install $build into $scratch/prefix"
cmake --install "$build" --prefix "$scratch/prefix" >"$scratch/install.log" 2>&1 || {
    cat "$scratch/install.log"; exit 1; }
test -f "$scratch/prefix/include/stratus/stratus_storage.h"
kit="$scratch/prefix/bin/stratus-conformance"
test -x "$kit" || { echo "stratus-conformance was not installed"; exit 1; }

echo "== configure and build the example against the installed SDK"
cmake -S "$src/examples/storage-memory-example" -B "$scratch/example" \
    -DCMAKE_PREFIX_PATH="$scratch/prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="-Werror" >"$scratch/configure.log" 2>&1 || {
    cat "$scratch/configure.log"; exit 1; }
cmake --build "$scratch/example" >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; exit 1; }
so="$scratch/example/stratus-storage-example.so"
test -f "$so"

echo "== the plugin exports exactly one symbol"
if command -v nm >/dev/null; then
    nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' >"$scratch/syms"
    cat "$scratch/syms"
    test "$(cat "$scratch/syms")" = "stratus_plugin_entry"
fi

echo "== conformance"
"$kit" "$so"
