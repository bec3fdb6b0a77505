#!/usr/bin/env bash
# check_exports.sh LIBRARY HEADER
# Asserts that the aloop_* symbols libasyncloop.so exports (nm -D --defined-only)
# are exactly the functions include/asyncloop.h declares: nothing missing,
# nothing extra. The declared functions are those tools/gen_abi.py (the one
# reader of the header) finds.
set -euo pipefail

lib=${1:?usage: check_exports.sh LIBRARY HEADER}
header=${2:?usage: check_exports.sh LIBRARY HEADER}
python=${PYTHON:-python3}
gen="$(cd "$(dirname "$0")/../.." && pwd)/tools/gen_abi.py"

[ -f "$lib" ] || { echo "FAIL: no library at $lib"; exit 1; }
[ -f "$header" ] || { echo "FAIL: no header at $header"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$python" "$gen" --list --header "$header" | sort -u >"$tmp/declared"

nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "W" || $2 == "i" {print $3}' \
  | sed -E 's/@.*$//' | grep -E '^aloop_' | sort -u >"$tmp/exported" || true

declared=$(wc -l <"$tmp/declared")
exported=$(wc -l <"$tmp/exported")
if [ "$declared" -eq 0 ]; then
  echo "FAIL: found no function declarations in $header"
  exit 1
fi

missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
status=0
if [ -n "$missing" ]; then
  echo "FAIL: declared in the header but not exported by the library:"
  printf '  %s\n' $missing
  status=1
fi
if [ -n "$extra" ]; then
  echo "FAIL: exported by the library but not declared in the header:"
  printf '  %s\n' $extra
  status=1
fi
# Anything else an export of the library must not look like: other aloop-ish
# names (e.g. a typo'd prefix) that bypass the check above.
odd=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | grep -iE '^_?aloop' | grep -vE '^aloop_[a-z0-9_]+$' || true)
if [ -n "$odd" ]; then
  echo "FAIL: exported symbols with an irregular aloop prefix:"
  printf '  %s\n' $odd
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "ok: $exported aloop_* symbols exported, exactly the $declared functions declared in $(basename "$header")"
fi
exit "$status"
