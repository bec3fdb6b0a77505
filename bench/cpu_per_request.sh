#!/bin/bash
# cpu_per_request.sh REPS NAME=SERVER [NAME=SERVER ...]
#
# A/B of echo servers that follow the bench protocol (print "PORT <n>",
# exit at the end of stdin): each repetition runs the load client against
# every server in turn and reads the server process's CPU time (all of its
# threads, /proc/PID/stat utime+stime) around the run. Prints, per server,
# the median requests/s and the median server CPU microseconds per request:
# the engine's cost per request, which a busy 2-core machine disturbs less
# than it disturbs throughput. Used for issue 18's profile
# (docs/architecture.md, "The engine's cost").
#
#   CONNS=10 SIZE=1024 DURATION=1.5 bench/cpu_per_request.sh 7 \
#     libuv=build/bench/uv_echo_server asyncloop=build/bench/aloop_echo_server
#
# The servers are built by `python3 bench/run.py --suites c` (build/bench).
# CLIENT_ARGS: more load-client arguments (TLS: "-t build/bench/tls/ca.pem").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
client=${CLIENT:-$here/build/bench/echo_client}
reps=$1; shift
tmp=$(mktemp -d)
declare -A port pid
cleanup() { for k in "${!pid[@]}"; do kill "${pid[$k]}" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
for kv in "$@"; do
  k=${kv%%=*}; s=${kv#*=}
  mkfifo "$tmp/$k.in"
  "$s" < "$tmp/$k.in" > "$tmp/$k.out" 2>&1 &
  pid[$k]=$!
  exec {fd}> "$tmp/$k.in"  # held open: the server runs until the script ends
done
for kv in "$@"; do
  k=${kv%%=*}
  for _ in $(seq 50); do grep -q '^PORT' "$tmp/$k.out" && break; sleep 0.1; done
  port[$k]=$(awk '/^PORT/{print $2}' "$tmp/$k.out")
  [ -n "${port[$k]}" ] || { echo "$k did not start: $(cat "$tmp/$k.out")" >&2; exit 1; }
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for r in $(seq "$reps"); do
  for kv in "$@"; do
    k=${kv%%=*}
    t0=$(ticks "${pid[$k]}")
    out=$("$client" echo -p "${port[$k]}" -c "${CONNS:-10}" -s "${SIZE:-1024}" -d "${DURATION:-1.5}" -w 0.2 ${CLIENT_ARGS:-})
    t1=$(ticks "${pid[$k]}")
    echo "$k $out $((t1 - t0))" >> "$tmp/results"
  done
done
python3 - "$tmp/results" "$(getconf CLK_TCK)" <<'PY'
import json, statistics as st, sys, collections
rps, cpu = collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, rest = line.split(" ", 1)
    js, ticks = rest.rsplit(" ", 1)
    d = json.loads(js)
    rps[k].append(d["req_per_s"])
    # the warm-up's requests are not counted: CPU over the whole run is
    # slightly over-attributed, the same way for every server
    cpu[k].append(int(ticks) / int(sys.argv[2]) * 1e6 / max(d["requests"], 1))
for k in rps:
    print(f"{k:12s} req/s {st.median(rps[k]):10.0f}   server CPU {st.median(cpu[k]):.2f} us/request")
PY
