#!/usr/bin/env bash
# with_python.sh VERSION VENV_DIR [pytest arguments...]
# with_python.sh VERSION VENV_DIR --setup
#
# Runs pytest (from the source tree's root) on CPython VERSION (3.11, 3.12,
# 3.13, ...), the interpreter's own standard library and `test.test_asyncio`
# included. CTest's python-VERSION entries call it; `make deps` calls it with
# --setup, which only finds the interpreter and gives it pytest.
#
# The interpreter: $ASYNCLOOP_PYTHON_<X>_<Y> if set (e.g. ASYNCLOOP_PYTHON_3_12),
# else the first of: python3, pyenv's $PYENV_ROOT/versions/VERSION.* (newest
# first; free-threaded "t" builds are not taken), /usr/local/bin/pythonVERSION,
# /usr/bin/pythonVERSION, pythonVERSION on PATH, that really is VERSION.
# pytest: the interpreter's own when it has one, else a venv VENV_DIR/VERSION
# with pytest installed from PyPI (made once, under a lock: several CTest
# entries may start together).
#
# No such interpreter: exit 77, which CTest reports as "Skipped" and lists
# under "The following tests did not run" (never as passed); with
# ASYNCLOOP_REQUIRE_PYTHONS=1 it is a failure instead. This repository's
# machines (developers' and CI's) have CPython 3.12 and 3.13 under pyenv
# beside 3.11; no package registry they reach serves CPython interpreters.
set -euo pipefail
ver=${1:?usage: with_python.sh VERSION VENV_DIR [--setup | pytest args...]}
venv_root=${2:?usage: with_python.sh VERSION VENV_DIR [--setup | pytest args...]}
shift 2
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

is_version() {  # PYTHON: is it CPython $ver, with the GIL?
  "$1" -c "
import sys
want = tuple(int(p) for p in '$ver'.split('.'))
gil = getattr(sys, '_is_gil_enabled', lambda: True)()
sys.exit(0 if sys.version_info[:2] == want and sys.implementation.name == 'cpython' and gil else 1)
" >/dev/null 2>&1
}

find_python() {
  local var="ASYNCLOOP_PYTHON_${ver//./_}" c cands=()
  if [ -n "${!var:-}" ]; then
    cands+=("${!var}")
  else
    cands+=(python3)
    local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    if [ -d "$pyenv_root/versions" ]; then
      while IFS= read -r d; do
        case "$d" in *t) continue ;; esac
        cands+=("$pyenv_root/versions/$d/bin/python$ver")
      done < <(ls "$pyenv_root/versions" 2>/dev/null | grep -E "^${ver//./\\.}(\.[0-9]+)?[a-z0-9]*$" | sort -V -r)
    fi
    cands+=("/usr/local/bin/python$ver" "/usr/bin/python$ver" "python$ver")
  fi
  for c in "${cands[@]}"; do
    if [ "${c#/}" = "$c" ]; then c=$(command -v "$c" 2>/dev/null) || continue; fi
    [ -x "$c" ] || continue
    if is_version "$c"; then "$c" -c 'import sys; print(sys.executable)'; return 0; fi
  done
  return 1
}

if ! py=$(find_python); then
  msg="CPython $ver not found (looked for \$ASYNCLOOP_PYTHON_${ver//./_}, python3, pyenv's versions/$ver.*, python$ver)"
  if [ "${ASYNCLOOP_REQUIRE_PYTHONS:-0}" = 1 ]; then
    echo "FAIL: $msg, and ASYNCLOOP_REQUIRE_PYTHONS=1" >&2
    exit 1
  fi
  if [ "${1:-}" = --setup ]; then
    echo "NOT RUN: $msg: the python-$ver CTest entries will be reported as not run (Skipped)."
  else
    echo "NOT RUN: $msg: these tests did not run on Python $ver."
  fi
  exit 77
fi

run=$py
if ! "$py" -c "import pytest" >/dev/null 2>&1; then
  venv=$venv_root/$ver
  mkdir -p "$venv_root"
  (
    flock 9
    if ! "$venv/bin/python" -c "import pytest" >/dev/null 2>&1 || ! is_version "$venv/bin/python"; then
      echo "with_python: making $venv ($py) with pytest from PyPI"
      rm -rf "$venv"
      "$py" -m venv "$venv"
      "$venv/bin/python" -m pip install -q pytest
    fi
  ) 9>"$venv_root/$ver.lock"
  run=$venv/bin/python
fi

if [ "${1:-}" = --setup ]; then
  echo "Python $ver: $py ($("$run" -m pytest --version 2>&1 | head -1) in $("$run" -c 'import sys; print(sys.prefix)'))"
  exit 0
fi
echo "Python $ver: $("$py" -c 'import sys; print(sys.version.split()[0])') $py (pytest: $run)"
cd "$src"
exec "$run" -m pytest "$@"
