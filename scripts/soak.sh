#!/usr/bin/env bash
# Long soaks of the deterministic cluster simulator (crates/sim), in release.
#
#   scripts/soak.sh                 # 10,000 seeds each of 4/1, 7/2 and 10/3 (validators/Byzantine)
#   SEEDS=100000 FIRST_SEED=10000 scripts/soak.sh
#   BUGS=1 scripts/soak.sh          # also show how fast each planted bug is caught
#
# Each line of output is the simulator's JSON summary. Exit status is non-zero if any
# honest configuration had a violation or a stall (or a planted bug was not caught).
# Replay a failing seed S with:
#   cargo run --release -p ebill-sim -- --seeds 1 --first-seed S --validators V --byzantine F --log
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ebill-target}"
SEEDS="${SEEDS:-10000}"
FIRST_SEED="${FIRST_SEED:-0}"
HEIGHTS="${HEIGHTS:-8}"
status=0

for config in "4 1" "7 2" "10 3"; do
  set -- $config
  echo "== $1 validators, $2 Byzantine, $SEEDS seeds from $FIRST_SEED" >&2
  cargo run --quiet --release -p ebill-sim -- --seeds "$SEEDS" --first-seed "$FIRST_SEED" \
    --validators "$1" --byzantine "$2" --heights "$HEIGHTS" --json || status=1
done

if [[ "${BUGS:-0}" == "1" ]]; then
  for bug in small-quorum no-wal no-lock; do
    echo "== planted bug $bug, 200 seeds" >&2
    cargo run --quiet --release -p ebill-sim --features bugs -- --seeds 200 --bug "$bug" --json || status=1
  done
fi
exit "$status"
