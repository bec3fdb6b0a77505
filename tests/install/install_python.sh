#!/usr/bin/env bash
# install_python.sh SOURCE_DIR [wheel|sdist]
#
# wheel: builds the wheel of bindings/python with pip (PEP 517, in-tree
#   backend; a real `go build` that mostly hits the Go build cache), checks
#   that the source tree is left untouched, that the library is stripped and
#   that auditwheel agrees with the manylinux tag, installs the wheel into a
#   fresh venv outside the checkout and runs an echo round trip with it.
# sdist: builds the sdist, installs it into a fresh venv (pip builds the
#   library from the Go sources vendored in the sdist, in its own temporary
#   folder, no checkout and no network involved), checks that wheel with
#   auditwheel too, and runs the echo round trip.
set -euo pipefail
src=$(cd "${1:?usage: install_python.sh SOURCE_DIR [wheel|sdist]}" && pwd)
mode=${2:-wheel}
py=${PYTHON:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/asyncloop-install-py.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset ASYNCLOOP_LIBRARY ASYNCLOOP_SOURCE_DIR ASYNCLOOP_PREBUILT_LIBRARY PYTHONPATH
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
ver=$(sed -n 's/^#define ALOOP_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' "$src/include/asyncloop.h" | paste -sd.)
cp "$src/tests/install/python/echo_roundtrip.py" "$tmp/"

tree_state() { (cd "$src/bindings/python" && find . -path '*/__pycache__' -prune -o -print | sort | xargs -d '\n' stat -c '%n %s %Y'); }

check_wheel() {  # WHEEL
  local whl=$1 tag
  tag=$(basename "$whl" .whl | cut -d- -f5)
  case "$tag" in manylinux_2_*) ;; *) fail "wheel tag '$tag' is not a manylinux tag" ;; esac
  "$py" -m auditwheel show "$whl" >"$tmp/auditwheel.txt" 2>&1 || { cat "$tmp/auditwheel.txt"; fail "auditwheel show"; }
  tr -s ' \n' ' ' <"$tmp/auditwheel.txt" | grep -q "consistent with the following platform tag: \"$tag\"" \
    || { cat "$tmp/auditwheel.txt"; fail "auditwheel does not confirm $tag"; }
  echo "ok: auditwheel confirms $tag for $(basename "$whl")"
}

run_echo() {  # VENV
  local venv=$1 out libpath
  out=$(cd "$tmp" && "$venv/bin/python" -I echo_roundtrip.py) || fail "echo round trip in $venv"
  echo "$out"
  set -- $out
  [ "$1 $2 $3" = "echo ok $ver" ] || fail "unexpected output: $out"
  libpath=$4
  case "$libpath" in "$venv"/lib/python3*/site-packages/asyncloop/libasyncloop.so) ;; *) fail "library loaded from $libpath, not from the venv" ;; esac
  readelf -S "$libpath" | grep -q '\.symtab' && fail "$libpath is not stripped"
  readelf -d "$libpath" | grep -q "SONAME.*libasyncloop.so.${ver%%.*}\]" || fail "$libpath has no SONAME libasyncloop.so.${ver%%.*}"
  "$venv/bin/python" -I -c "
import importlib.metadata as m, asyncloop
md = m.metadata('asyncloop-engine')
assert md['Version'] == asyncloop.__version__ == '$ver', (md['Version'], asyncloop.__version__)
assert md['License-Expression'] == 'MIT', md['License-Expression']
" || fail "metadata"
}

if [ "$mode" = wheel ]; then
  before=$(tree_state)
  start=$SECONDS
  "$py" -m pip wheel --no-deps -w "$tmp/dist" "$src/bindings/python" >"$tmp/build.log" 2>&1 \
    || { cat "$tmp/build.log"; fail "pip wheel"; }
  echo "ok: built $(ls "$tmp/dist") in $((SECONDS - start)) s"
  [ "$before" = "$(tree_state)" ] || { diff <(echo "$before") <(tree_state) || true; fail "building the wheel wrote into bindings/python"; }
  whl=$(ls "$tmp"/dist/*.whl)
  check_wheel "$whl"
  "$py" -m venv --without-pip "$tmp/venv"
  "$py" -m pip --python "$tmp/venv/bin/python" install -q --no-deps "$whl" || fail "pip install $whl"
  run_echo "$tmp/venv"
else
  before=$(tree_state)
  mkdir -p "$tmp/sdist"
  (cd "$src/bindings/python" && "$py" -B -c '
import sys
sys.path.insert(0, "tools")
import asyncloop_build
print(asyncloop_build.build_sdist(sys.argv[1]))' "$tmp/sdist") >"$tmp/sdist.log" 2>&1 || { cat "$tmp/sdist.log"; fail "build_sdist"; }
  [ "$before" = "$(tree_state)" ] || fail "building the sdist wrote into bindings/python"
  sdist=$(ls "$tmp"/sdist/*.tar.gz)
  [ "$(basename "$sdist")" = "asyncloop_engine-$ver.tar.gz" ] || fail "sdist named $(basename "$sdist")"
  tar tzf "$sdist" | grep -q "^asyncloop_engine-$ver/engine/vendor/modules.txt$" || fail "the sdist vendors no Go modules"
  echo "ok: $(basename "$sdist") ($(du -k "$sdist" | cut -f1) KiB, $(tar tzf "$sdist" | wc -l) files)"
  # Build the wheel from the sdist alone (pip unpacks it in its own temporary
  # folder), with the network for Go turned off.
  start=$SECONDS
  GOFLAGS=-mod=vendor GOPROXY=off "$py" -m pip wheel -v --no-deps -w "$tmp/dist" "$sdist" >"$tmp/build.log" 2>&1 \
    || { cat "$tmp/build.log"; fail "pip wheel $sdist"; }
  grep "asyncloop-build:" "$tmp/build.log" | sed 's/^ *//'
  grep -q "go build -mod=vendor" "$tmp/build.log" || fail "the sdist build did not use the vendored sources"
  if grep -q "in $src" "$tmp/build.log"; then fail "the sdist build used the checkout"; fi
  echo "ok: built the wheel from the sdist in $((SECONDS - start)) s"
  whl=$(ls "$tmp"/dist/*.whl)
  check_wheel "$whl"
  "$py" -m venv --without-pip "$tmp/venv"
  "$py" -m pip --python "$tmp/venv/bin/python" install -q --no-deps "$whl" || fail "pip install $whl"
  run_echo "$tmp/venv"
fi
