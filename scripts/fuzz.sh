#!/usr/bin/env bash
# Builds every fuzz target of fuzz/ and runs each for SECONDS (default 30), one after the
# other, on one core (-jobs=1 -workers=1). Exits non-zero if any target crashes, times
# out or runs out of memory; the input that did it is left in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Seeds come from the golden vectors and the reference chain (fuzz/src/seeds.rs); each
# target writes them into fuzz/corpus/<target>/ when it starts, and libFuzzer keeps what
# it finds there, so later runs start where earlier ones stopped.
#
# Installs only what is missing, and says so: cargo-fuzz (`cargo install cargo-fuzz
# --locked`). The targets build with the machine's stable toolchain and no sanitizer:
# the project's crates have no unsafe code (unsafe_code = "deny"), debug assertions and
# overflow checks stay on, and stable needs nothing fetched. EBILL_FUZZ_SANITIZER=address
# builds with AddressSanitizer instead, which needs nightly (installed with
# `rustup toolchain install nightly --profile minimal` if missing).
#
# Environment: EBILL_FUZZ_TARGET_DIR (default /var/tmp/ebill-fuzz-target),
# EBILL_FUZZ_SANITIZER (none | address, default none), EBILL_FUZZ_MAX_LEN (libFuzzer's
# -max_len, default: guessed from the corpus).
#
# Exit status: 0 no finding; 1 a target found something (or failed to build); 3 a tool
# it needs could not be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-30}"
shift || true
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi

sanitizer="${EBILL_FUZZ_SANITIZER:-none}"
target_dir="${EBILL_FUZZ_TARGET_DIR:-/var/tmp/ebill-fuzz-target}"
toolchain=stable
if [ "$sanitizer" != none ]; then
  toolchain=nightly
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing the nightly toolchain (needed for -s $sanitizer)"
    rustup toolchain install nightly --profile minimal || {
      echo "fuzz.sh: could not install nightly" >&2
      exit 3
    }
  fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked || {
    echo "fuzz.sh: could not install cargo-fuzz" >&2
    exit 3
  }
fi

fuzz=(cargo "+$toolchain" fuzz)
echo "== building the fuzz targets ($toolchain, sanitizer $sanitizer, $target_dir)"
start=$(date +%s)
"${fuzz[@]}" build -s "$sanitizer" --target-dir "$target_dir" || exit 1
echo "built in $(($(date +%s) - start)) s"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${fuzz[@]}" list)
fi
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# A corpus outlives the golden vectors it grew from, and an older version's golden
# votes and bundles, signed by the same public golden keys, still verify: the targets'
# check that only a seed verifies would then report a forgery that is none (it did on
# 2026-12-01). So the corpora are kept only while the seeds' sources are unchanged.
seeds_sum=$(cat crates/types/tests/vectors/*.json genesis/examples/*.json fuzz/src/*.rs |
  sha256sum | cut -d' ' -f1)
stamp=fuzz/corpus/.seeds-sha256
if [ -d fuzz/corpus ] && [ "$(cat "$stamp" 2>/dev/null)" != "$seeds_sum" ]; then
  echo "fuzz.sh: the seeds' sources changed since the corpora grew: starting them afresh"
  find fuzz/corpus -mindepth 1 -delete
fi
mkdir -p fuzz/corpus
echo "$seeds_sum" >"$stamp"

failed=()
printf '%-20s %8s %12s %10s %8s %8s\n' target seconds executions exec/s cov corpus
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts" "$logs/$t"
  max_len=()
  if [ -n "${EBILL_FUZZ_MAX_LEN:-}" ]; then
    max_len=("-max_len=$EBILL_FUZZ_MAX_LEN")
  fi
  status=0
  touch "$logs/$t/start"
  # -jobs=1 runs the fuzzer in one child process, logging to fuzz-0.log in the cwd.
  (
    cd "$logs/$t" &&
      EBILL_FUZZ_SEED_DIR="$OLDPWD/$corpus" "$bin_dir/$t" \
        -jobs=1 -workers=1 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$OLDPWD/$artifacts/" "${max_len[@]}" \
        "$OLDPWD/$corpus"
  ) >"$logs/$t/driver.log" 2>&1 || status=$?
  log="$logs/$t/fuzz-0.log"
  [ -f "$log" ] || log="$logs/$t/driver.log"
  # Read off the log; an early crash leaves some of these out (no match is no error).
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1 || true)
  cov=$({ grep -o 'cov: [0-9]*' "$log" || true; } | tail -1 | cut -d' ' -f2)
  units=$(find "$corpus" -type f | wc -l)
  rate=""
  if [ -n "$runs" ] && [ -n "$took" ] && [ "$took" -gt 0 ]; then
    rate=$((runs / took))
  fi
  printf '%-20s %8s %12s %10s %8s %8s\n' "$t" "${took:-?}" "${runs:-?}" "${rate:-?}" \
    "${cov:-?}" "$units"
  new=$(find "$artifacts" -type f -newer "$logs/$t/start" | wc -l)
  if [ "$status" -ne 0 ] || [ "$new" -gt 0 ]; then
    failed+=("$t")
    echo "---- $t: exit status $status; its log:"
    tail -n 60 "$log"
    echo "---- artifacts:"
    ls -l "$artifacts"
  fi
done

echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
