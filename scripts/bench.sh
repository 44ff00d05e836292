#!/usr/bin/env bash
# One benchmark run: builds in release mode, measures ebill against this machine's own
# limits, prints a table and writes JSON.
#   scripts/bench.sh [--quick] [--out FILE.json]
# The release build uses its own target directory (RocksDB compiles once per profile,
# about 20 minutes on 2 cores the first time), so it never blocks the test build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${EBILL_BENCH_TARGET_DIR:-/var/tmp/ebill-target-release}"
cargo build --release --locked -p ebill-node -p ebill-client -p ebill-bench
exec "$CARGO_TARGET_DIR/release/ebill-bench" --node-bin "$CARGO_TARGET_DIR/release/ebill-node" --ebill-bin "$CARGO_TARGET_DIR/release/ebill" "$@"
