#!/usr/bin/env bash
# One benchmark run: builds in release mode, measures ebill against this machine's own
# limits, prints a table and writes JSON.
#   scripts/bench.sh [--quick] [--out FILE.json]
# The release build uses its own target directory (RocksDB compiles once per profile,
# about 20 minutes on 2 cores the first time), so it never blocks the test build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${EBILL_BENCH_TARGET_DIR:-/var/tmp/ebill-target-release}"
# wrk (Debian's package) makes the GET load with a fraction of the CPU of the built-in
# client, which matters when the load generator shares 2 cores with the node.
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing wrk for the GET load"
  apt-get install -y -qq wrk >/dev/null 2>&1 || echo "wrk not installed: the built-in client makes the GET load"
fi
cargo build --release --locked -p ebill-node -p ebill-client -p ebill-bench
exec "$CARGO_TARGET_DIR/release/ebill-bench" --node-bin "$CARGO_TARGET_DIR/release/ebill-node" --ebill-bin "$CARGO_TARGET_DIR/release/ebill" "$@"
