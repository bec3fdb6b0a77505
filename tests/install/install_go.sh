#!/usr/bin/env bash
# install_go.sh SOURCE_DIR BUILD_DIR
#
# A consumer module outside the checkout (example.com/consumer) requires
# github.com/asyncloop/asyncloop with a `replace` to the checkout (what a
# user does before the module is published; `go get` resolves the same
# module path), builds tests/install/go/echo_roundtrip with CGO_ENABLED=0
# and without the network (GOPROXY=off), and runs its echo round trip with
# the library found each way the Go binding looks for it: beside the
# executable (libasyncloop.so.MAJOR), through $ASYNCLOOP_LIBRARY, through
# the dynamic loader's path (an installed prefix, `cmake --install`), and,
# for `go run .`, in the user's cache after the documented step
# `go run github.com/asyncloop/asyncloop/cmd/asyncloop-lib`.
set -euo pipefail
src=$(cd "${1:?usage: install_go.sh SOURCE_DIR BUILD_DIR}" && pwd)
build=$(cd "${2:?}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/asyncloop-install-go.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset ASYNCLOOP_LIBRARY LD_LIBRARY_PATH
export XDG_CACHE_HOME=$tmp/cache  # the user's cache (step 4), empty until then
ver=$(sed -n 's/^#define ALOOP_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' "$src/include/asyncloop.h" | paste -sd.)
major=${ver%%.*}
goversion=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$src/go.mod")

mkdir -p "$tmp/consumer" "$tmp/bin" "$tmp/elsewhere"
cp "$src/tests/install/go/echo_roundtrip/main.go" "$tmp/consumer/"
cp "$src/go.sum" "$tmp/consumer/go.sum"
cat >"$tmp/consumer/go.mod" <<MOD
module example.com/consumer

go $goversion

require github.com/asyncloop/asyncloop v0.0.0

replace github.com/asyncloop/asyncloop => $src
MOD
export GOPROXY=off GOFLAGS=-mod=mod CGO_ENABLED=0
(cd "$tmp/consumer" && go mod tidy && go build -o "$tmp/bin/echo_roundtrip" .) >"$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log"; fail "go build of the consumer"; }
grep -q "github.com/asyncloop/asyncloop v0.0.0" "$tmp/consumer/go.mod" || fail "go.mod lost the requirement"
echo "ok: built example.com/consumer against github.com/asyncloop/asyncloop (replace => checkout)"

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
lib=$tmp/prefix/lib/libasyncloop.so.$ver

expect() {  # OUTPUT WANTED_LIBRARY
  # shellcheck disable=SC2086
  set -- $1 "$2"
  [ "$1 $2 $3" = "echo ok $ver" ] || fail "unexpected output: $*"
  [ "$4" = "$5" ] || fail "library loaded from $4, want $5"
}

# 1. Beside the executable.
cp "$lib" "$tmp/bin/libasyncloop.so.$major"
out=$(cd "$tmp/elsewhere" && "$tmp/bin/echo_roundtrip") || fail "beside the executable"
echo "$out"; expect "$out" "$tmp/bin/libasyncloop.so.$major"
rm "$tmp/bin/libasyncloop.so.$major"
# 2. $ASYNCLOOP_LIBRARY.
out=$(cd "$tmp/elsewhere" && ASYNCLOOP_LIBRARY=$lib "$tmp/bin/echo_roundtrip") || fail "ASYNCLOOP_LIBRARY"
echo "$out"; expect "$out" "$lib"
# 3. The loader's search path (an installed prefix).
out=$(cd "$tmp/elsewhere" && LD_LIBRARY_PATH=$tmp/prefix/lib "$tmp/bin/echo_roundtrip") || fail "the loader's path"
echo "$out"; expect "$out" "libasyncloop.so.$major"
# Not found anywhere: a clear error, not a crash.
if out=$(cd "$tmp/elsewhere" && "$tmp/bin/echo_roundtrip" 2>&1); then fail "ran without a library"; fi
echo "$out" | grep -q "cannot load libasyncloop.so.$major" || fail "unclear error without a library: $out"
echo "$out" | grep -q "go run github.com/asyncloop/asyncloop/cmd/asyncloop-lib" || fail "the error does not say how to get the library: $out"
# 4. `go run .`: the executable is built in a temporary folder, so the
# library cannot be beside it; the documented step builds it into the cache.
(cd "$tmp/consumer" && go run github.com/asyncloop/asyncloop/cmd/asyncloop-lib) >"$tmp/lib.log" 2>&1 \
  || { cat "$tmp/lib.log"; fail "go run .../cmd/asyncloop-lib"; }
cached=$XDG_CACHE_HOME/asyncloop/$ver/libasyncloop.so.$major
[ -f "$cached" ] || fail "cmd/asyncloop-lib did not build $cached: $(cat "$tmp/lib.log")"
out=$(cd "$tmp/consumer" && go run .) || fail "go run . after cmd/asyncloop-lib"
echo "$out"; expect "$out" "$cached"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" diff --quiet -- go.mod go.sum || fail "building the library changed the checkout's go.mod/go.sum"
fi
echo "ok: Go consumer found the library beside the executable, via ASYNCLOOP_LIBRARY, via the loader's path, and in the cache for go run"
