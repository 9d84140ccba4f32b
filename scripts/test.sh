#!/usr/bin/env bash
# test.sh - installs every dependency, builds, and runs the whole test suite three times: a
# normal build with warnings as errors, an ASan+UBSan build, and a ThreadSanitizer build (data
# races; RocksDB's internals suppressed, tests/tsan.supp). Exits non-zero on any failure.
#   scripts/test.sh            everything
#   scripts/test.sh --fast     the normal build only
#   LABEL=unit scripts/test.sh only tests with that ctest label
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
label_args=()
[ -n "${LABEL:-}" ] && label_args=(-L "$LABEL")

echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATUS_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
echo "== tests"
(cd build && ctest --output-on-failure -j 2 "${label_args[@]}")

if [ "${1:-}" != "--fast" ]; then
  echo "== build (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSTRATUS_WERROR=ON \
        -DSTRATUS_SANITIZE="address;undefined" >/dev/null
  cmake --build build-asan -j "$jobs"
  echo "== tests under ASan + UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j 2 "${label_args[@]}")

  echo "== build (TSan)"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATUS_WERROR=ON \
        -DSTRATUS_SANITIZE=thread >/dev/null
  cmake --build build-tsan -j "$jobs"
  echo "== tests under TSan"
  supp="$PWD/tests/tsan.supp"
  (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$supp" \
     ctest --output-on-failure -j 2 "${label_args[@]}")
fi
echo "== all tests passed"
