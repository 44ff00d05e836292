#!/usr/bin/env bash
# A local network of 4 validators and 1 observer on loopback, in the background.
#   scripts/devnet.sh up [DIR]      build, write the network (ebill genesis init) and start it
#   scripts/devnet.sh status [DIR]  each node's role, height and tip
#   scripts/devnet.sh logs [DIR]    follow the nodes' logs
#   scripts/devnet.sh down [DIR]    stop every node (SIGTERM, then wait)
# DIR defaults to ./devnet. Ports are free loopback ports picked by `ebill genesis init`.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-}"
dir="${2:-devnet}"
target="${CARGO_TARGET_DIR:-target}"
ebill="$target/debug/ebill"
node="$target/debug/ebill-node"

nodes() { find "$dir" -mindepth 2 -maxdepth 2 -name config.toml -printf '%h\n' 2>/dev/null | sort; }

case "$cmd" in
  up)
    cargo build -q -p ebill-node -p ebill-client
    if [ -e "$dir/genesis.json" ]; then
      echo "reusing the network in $dir"
    else
      "$ebill" --json genesis init --validators 4 --observers 1 --out "$dir" > "$dir.json.tmp"
      mv "$dir.json.tmp" "$dir/network.json"
    fi
    for n in $(nodes); do
      if [ -f "$n/pid" ] && kill -0 "$(cat "$n/pid")" 2>/dev/null; then
        echo "$(basename "$n") already running"
        continue
      fi
      RUST_LOG="${RUST_LOG:-info}" nohup "$node" --config "$n/config.toml" > "$n/node.log" 2>&1 &
      echo $! > "$n/pid"
    done
    # Each node logs "ebill-node ready" once its API listens; wait for all (bounded).
    for n in $(nodes); do
      for _ in $(seq 1 300); do
        grep -q "ebill-node ready" "$n/node.log" 2>/dev/null && break
        if ! kill -0 "$(cat "$n/pid")" 2>/dev/null; then
          echo "$(basename "$n") exited:"; tail -5 "$n/node.log"; exit 1
        fi
        sleep 0.1
      done
    done
    "$0" status "$dir"
    ;;
  status)
    for n in $(nodes); do
      api=$(sed -n 's/^api = "\(.*\)"/\1/p' "$n/config.toml")
      printf '%-14s http://%-22s ' "$(basename "$n")" "$api"
      "$ebill" --node "http://$api" --json status 2>/dev/null || echo "down"
    done
    ;;
  logs)
    tail -n 20 -F $(for n in $(nodes); do echo "$n/node.log"; done)
    ;;
  down)
    for n in $(nodes); do
      if [ -f "$n/pid" ]; then
        pid=$(cat "$n/pid")
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        rm -f "$n/pid"
        echo "$(basename "$n") stopped"
      fi
    done
    ;;
  *)
    echo "usage: $0 up|down|status|logs [DIR]" >&2
    exit 2
    ;;
esac
