#!/usr/bin/env bash
# The asyncloop demo: one echo server written in C, and echo clients in C,
# Python, Node and Go, all driving the same libasyncloop.so. Each client sends
# 1 MiB in 16 KiB chunks, checks every byte, and prints one line.
#
#   examples/demo.sh            (after `make build`; `make demo` does both)
#
# Exits non-zero if the server fails or any client fails or is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
HOST=${HOST:-127.0.0.1}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-120}

export ASYNCLOOP_LIBRARY="$BUILD_DIR/libasyncloop.so"
export ASYNCLOOP_NODE_ADDON="$BUILD_DIR/bindings/node/asyncloop.node"

for f in "$ASYNCLOOP_LIBRARY" "$BUILD_DIR/examples/echo_server" "$BUILD_DIR/examples/echo_client"; do
  if [ ! -e "$f" ]; then
    echo "demo: $f is missing; build first (make build)" >&2
    exit 1
  fi
done

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The server stops when its stdin reaches EOF: give it a FIFO that this
# script holds open on fd 3, so it also stops if this script dies.
mkfifo "$tmp/server.stdin"
"$BUILD_DIR/examples/echo_server" "$HOST" 0 <"$tmp/server.stdin" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
exec 3>"$tmp/server.stdin"

port=""
for _ in $(seq 1 100); do
  if grep -q '^PORT ' "$tmp/server.out" 2>/dev/null; then
    port=$(sed -n 's/^PORT \([0-9][0-9]*\)$/\1/p' "$tmp/server.out" | head -1)
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "demo: the C echo server did not start:" >&2
  cat "$tmp/server.err" >&2 || true
  exit 1
fi
echo "C echo server (examples/c/echo_server.c) on $HOST port $port; clients:"

failed=0
# run_client LABEL FILE-THAT-MUST-EXIST COMMAND...
run_client() {
  local label=$1 needed=$2
  shift 2
  if [ ! -e "$needed" ]; then
    printf '%-8sFAILED: %s is missing\n' "$label" "${needed#"$ROOT"/}"
    failed=1
    return
  fi
  local rc=0
  timeout "$CLIENT_TIMEOUT" "$@" >"$tmp/client.out" 2>"$tmp/client.err" || rc=$?
  # the client prints its own line: "<Label padded to 8>1048576 bytes echoed, ..."
  local line
  line=$(grep -E "^${label} +[0-9]+ bytes echoed" "$tmp/client.out" | head -1 || true)
  if [ "$rc" -eq 0 ] && [ -n "$line" ] && [[ "$line" == *" 1048576 bytes echoed"* ]]; then
    echo "$line"
  else
    if [ -n "$line" ]; then echo "$line"; fi
    if [ "$rc" -eq 124 ]; then
      printf '%-8sFAILED: timed out after %ss\n' "$label" "$CLIENT_TIMEOUT"
    else
      printf '%-8sFAILED (exit %d)\n' "$label" "$rc"
    fi
    sed 's/^/         | /' "$tmp/client.out" "$tmp/client.err" | tail -20
    failed=1
  fi
}

run_client C "$BUILD_DIR/examples/echo_client" \
  "$BUILD_DIR/examples/echo_client" "$HOST" "$port"
run_client Python "$ROOT/examples/python/echo_client.py" \
  env PYTHONPATH="$ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}" \
  python3 "$ROOT/examples/python/echo_client.py" "$HOST" "$port"
run_client Node "$ROOT/examples/node/echo_client.js" \
  node "$ROOT/examples/node/echo_client.js" "$HOST" "$port"
run_client Go "$ROOT/examples/go/echo_client" \
  env CGO_ENABLED=0 go run ./examples/go/echo_client "$HOST" "$port"

# Stop the server: EOF on its stdin, then wait (SIGTERM if it hangs).
exec 3>&-
server_rc=0
for _ in $(seq 1 100); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$server_pid" 2>/dev/null; then
  echo "demo: the server did not stop on EOF; sending SIGTERM" >&2
  kill -TERM "$server_pid" 2>/dev/null || true
  failed=1
fi
wait "$server_pid" || server_rc=$?
server_pid=""
if [ "$server_rc" -ne 0 ]; then
  echo "demo: the C echo server exited with status $server_rc:" >&2
  cat "$tmp/server.err" >&2 || true
  failed=1
fi

if [ "$failed" -ne 0 ]; then
  echo "demo: FAILED"
  exit 1
fi
echo "demo: every client got all its bytes back"
