#!/usr/bin/env bash
# install-deps.sh - installs every Debian 12 package Stratus needs to build and test, and the
# npm packages of tests/ (kafkajs, @platformatic/kafka, azurite). Installs only what is missing;
# uses sudo when not root.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --build  build dependencies only
#   scripts/install-deps.sh --bench  also what tests/bench/run.sh uses (jq, perf)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS="build-essential cmake pkg-config librocksdb-dev libinih-dev libcurl4-openssl-dev
 libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev libjansson-dev libjemalloc-dev"
TEST_PKGS="clang libclang-rt-14-dev kcat librdkafka-dev python3 python3-kafka python3-confluent-kafka
 procps prometheus etcd-server etcd-client"

BENCH_PKGS="jq linux-perf"

pkgs="$BUILD_PKGS"
[ "${1:-}" = "--build" ] || pkgs="$pkgs $TEST_PKGS"
[ "${1:-}" != "--bench" ] || pkgs="$pkgs $BENCH_PKGS"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js: use the machine's own node/npm when present (the Debian npm package conflicts with a
# node installed from elsewhere); otherwise Debian's.
if [ "${1:-}" != "--build" ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ "${1:-}" != "--build" ] && [ -f tests/package.json ]; then
  if [ ! -d tests/node_modules/kafkajs ] || [ ! -d tests/node_modules/azurite ] ||
     [ ! -d tests/node_modules/@platformatic/kafka ]; then
    echo "install-deps: npm install in tests/"
    (cd tests && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
