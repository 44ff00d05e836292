#!/usr/bin/env bash
# The README's first command: starts the dev chain (one validator, the well-known dev
# keys, data in ./ebill-data, API on http://127.0.0.1:8080) on a machine that has only
# Rust. RocksDB's bindings need libclang: this installs it when it is missing and the
# script runs as root with apt-get; otherwise it prints the exact command and stops.
#   scripts/dev.sh [ebill-node flags...]
# It builds exactly what `cargo test --workspace` builds (same profile, same features:
# `cargo run -p ebill-node` would resolve other features and compile RocksDB a second
# time), so RocksDB is compiled once for both commands (about 20 minutes on two cores,
# the first time), and then starts the node binary of that build.
set -euo pipefail
cd "$(dirname "$0")/.."

have_libclang() {
  [ -n "${LIBCLANG_PATH:-}" ] && return 0
  ldconfig -p 2>/dev/null | grep -q 'libclang' && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null && return 0
  compgen -G '/usr/lib64/libclang*.so*' >/dev/null && return 0
  return 1
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust first (https://rustup.rs), then run this again" >&2
  exit 1
fi
if ! have_libclang; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing libclang-dev (RocksDB's bindings need it)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
  else
    {
      echo "RocksDB's bindings need libclang, which this machine lacks. Install it, then run"
      echo "scripts/dev.sh again:"
      echo "  sudo apt-get install -y libclang-dev    # Debian, Ubuntu"
      echo "  sudo dnf install -y clang-devel         # Fedora, RHEL"
      echo "  brew install llvm                       # macOS (then export LIBCLANG_PATH=\$(brew --prefix llvm)/lib)"
    } >&2
    exit 1
  fi
fi
cargo test --workspace --locked --no-run
exec "${CARGO_TARGET_DIR:-target}/debug/ebill-node" --dev "$@"
