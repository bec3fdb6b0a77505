#!/usr/bin/env bash
# run.sh VENV_DIR [pytest arguments...]
# run.sh VENV_DIR --setup
#
# Runs tests/python/libraries (aiohttp, websockets, httpx, uvicorn, anyio,
# aiofiles on asyncio's loop and on asyncloop's) with python3 in the venv
# VENV_DIR, which holds the exact versions of requirements.txt from PyPI. The
# venv is made on first use, and again when requirements.txt changes, under a
# lock (`make deps` calls this with --setup; CTest's python-libraries entry
# makes it too if `make deps` did not run).
#
# The venv cannot be made (no python3 venv module, PyPI unreachable, a pin
# that no longer installs): exit 77, which CTest reports as "Skipped" and
# lists under "The following tests did not run", never as passed; with
# ASYNCLOOP_REQUIRE_LIBRARIES=1 it is a failure instead.
set -euo pipefail
venv=${1:?usage: run.sh VENV_DIR [--setup | pytest args...]}
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../../.." && pwd)
req=$here/requirements.txt
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

not_run() {
  if [ "${ASYNCLOOP_REQUIRE_LIBRARIES:-0}" = 1 ]; then
    echo "FAIL: $1, and ASYNCLOOP_REQUIRE_LIBRARIES=1" >&2
    exit 1
  fi
  if [ "${setup:-0}" = 1 ]; then
    echo "NOT RUN: $1: the python-libraries CTest entry will be reported as not run (Skipped)."
  else
    echo "NOT RUN: $1: the asyncio libraries' tests did not run."
  fi
  exit 77
}

setup=0
[ "${1:-}" = --setup ] && setup=1
py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || not_run "no python3"
stamp=$venv/.requirements
mkdir -p "$(dirname "$venv")"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The venv is current when its stamp is requirements.txt's content.
if ! (
  flock 9
  if [ -x "$venv/bin/python" ] && cmp -s "$req" "$stamp"; then exit 0; fi
  echo "python-libraries: making $venv ($py) with requirements.txt from PyPI"
  rm -rf "$venv"
  "$py" -m venv "$venv" &&
    "$venv/bin/python" -m pip install -q -r "$req" &&
    cp "$req" "$stamp" || { rm -rf "$venv"; exit 1; }
) 9>"$venv.lock" >"$log" 2>&1; then
  cat "$log"
  not_run "could not make the venv $venv (python3 -m venv, then pip install -r $req; output above)"
fi
cat "$log"

if [ "$setup" = 1 ]; then
  echo "python-libraries: $("$venv/bin/python" --version) in $venv"
  exit 0
fi
cd "$src"
echo "python-libraries: $("$venv/bin/python" --version) $venv"
# pytest-timeout: a test whose loop no longer runs at all (so that the
# cases' own asyncio timeouts cannot fire) fails with every thread's stack.
exec "$venv/bin/python" -m pytest --timeout=120 --timeout-method=thread tests/python/libraries "$@"
