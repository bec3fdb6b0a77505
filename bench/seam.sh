#!/usr/bin/env bash
# Seam costs per host (C, Python, Node, Go): ns per call into the library,
# ns per callback out of it, wake-up latency. Runs each host's probe REPS
# times and prints the medians as a Markdown table (the one in
# docs/architecture.md). A benchmark: never part of `make test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${BUILD_DIR:-build}
REPS=${REPS:-5}
export ASYNCLOOP_LIBRARY=${ASYNCLOOP_LIBRARY:-$PWD/$BUILD_DIR/libasyncloop.so}
export ASYNCLOOP_NODE_ADDON=${ASYNCLOOP_NODE_ADDON:-$PWD/$BUILD_DIR/bindings/node/asyncloop.node}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

gcc -O2 -Iinclude -o "$out/seam_c" bench/seam_c.c "$ASYNCLOOP_LIBRARY" -lpthread \
  -Wl,-rpath,"$(dirname "$ASYNCLOOP_LIBRARY")"
CGO_ENABLED=0 go build -o "$out/seam_go" ./bench/seam_go

for i in $(seq "$REPS"); do
  "$out/seam_c" >>"$out/c.jsonl"
  PYTHONPATH=bindings/python python3 bench/seam_python.py 2>/dev/null >>"$out/python.jsonl"
  if [ -f "$ASYNCLOOP_NODE_ADDON" ]; then node bench/seam_node.js 2>/dev/null >>"$out/node.jsonl"; fi
  "$out/seam_go" 2>/dev/null >>"$out/go.jsonl"
done

python3 - "$out" <<'PY'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
print("| host | call into the library (ns) | callback out of it (ns) | wake-up latency (µs) |")
print("|---|---:|---:|---:|")
for host in ("c", "python", "node", "go"):
    f = out / f"{host}.jsonl"
    rows = [json.loads(l) for l in f.read_text().splitlines() if l.strip()] if f.exists() else []
    if not rows:
        print(f"| {host} | n/a | n/a | n/a |")
        continue
    med = lambda k: statistics.median(r[k] for r in rows)
    print(f"| {host} | {med('call_ns'):.0f} | {med('callback_ns'):.0f} | {med('wakeup_us'):.1f} |")
c = [json.loads(l) for l in (out / "c.jsonl").read_text().splitlines() if l.strip()]
c = [r["call_2t_ns"] for r in c if "call_2t_ns" in r]
if c:
    print(f"\nC, two threads calling at once (each on its own loop): "
          f"{statistics.median(c):.0f} ns per call")
print(f"\n(medians of {len(rows)} runs each)")
PY
