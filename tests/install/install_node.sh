#!/usr/bin/env bash
# install_node.sh SOURCE_DIR
#
# Packs bindings/node with `npm pack` (from a copy of the folder outside the
# checkout, pointed at the sources with ASYNCLOOP_SOURCE_DIR, so the checkout
# is never written to; prepack stages the Go sources and builds the prebuilt
# addon + library from them), checks the tarball's contents, then installs it
# --offline into two fresh folders outside the checkout and runs an echo
# round trip with require('asyncloop-engine') in each:
#   prebuilt: the install uses prebuilds/linux-x64/ (the library is found
#             beside the addon through its RUNPATH $ORIGIN);
#   source:   ASYNCLOOP_BUILD_FROM_SOURCE=1: the install builds the library
#             and the addon from the sources bundled in the tarball (Go offline).
# Finally `npm run build` in the copied folder builds build/ from the checkout.
set -euo pipefail
src=$(cd "${1:?usage: install_node.sh SOURCE_DIR}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/asyncloop-install-node.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset ASYNCLOOP_LIBRARY ASYNCLOOP_NODE_ADDON ASYNCLOOP_BUILD_FROM_SOURCE NODE_PATH
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
ver=$(sed -n 's/^#define ALOOP_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' "$src/include/asyncloop.h" | paste -sd.)
major=${ver%%.*}
plat=$(node -p 'process.platform + "-" + process.arch')

cp -r "$src/bindings/node" "$tmp/pkg"
rm -rf "$tmp/pkg/node_modules" "$tmp/pkg/build" "$tmp/pkg/prebuilds" "$tmp/pkg/engine"
start=$SECONDS
(cd "$tmp/pkg" && ASYNCLOOP_SOURCE_DIR="$src" npm pack --pack-destination "$tmp" >"$tmp/pack.log" 2>&1) \
  || { cat "$tmp/pack.log"; fail "npm pack"; }
tgz=$tmp/asyncloop-engine-$ver.tgz
[ -f "$tgz" ] || { ls "$tmp"; fail "no asyncloop-engine-$ver.tgz"; }
[ ! -e "$tmp/pkg/prebuilds" ] && [ ! -e "$tmp/pkg/engine" ] || fail "postpack left prebuilds/ or engine/ behind"
tar tzf "$tgz" | sed 's|^package/||' | sort >"$tmp/contents"
for f in package.json index.js index.d.ts scripts/install.js "prebuilds/$plat/asyncloop.node" \
         "prebuilds/$plat/libasyncloop.so.$major" src/asyncloop_node.c CMakeLists.txt \
         engine/go.mod engine/include/asyncloop.h engine/capi/main.go engine/vendor/modules.txt; do
  grep -qx "$f" "$tmp/contents" || fail "the tarball lacks $f"
done
echo "ok: packed $(basename "$tgz") in $((SECONDS - start)) s ($(du -k "$tgz" | cut -f1) KiB, $(wc -l <"$tmp/contents") files)"

install_and_run() {  # MODE
  local mode=$1 app=$tmp/app-$1 out inst dir
  mkdir "$app"
  cp "$src/tests/install/node/echo_roundtrip.js" "$app/"
  echo '{"name": "app", "version": "1.0.0", "private": true}' >"$app/package.json"
  start=$SECONDS
  if [ "$mode" = source ]; then
    export ASYNCLOOP_BUILD_FROM_SOURCE=1 GOFLAGS=-mod=vendor GOPROXY=off
  fi
  (cd "$app" && npm install --offline --foreground-scripts "$tgz" >"$tmp/install.log" 2>&1) \
    || { cat "$tmp/install.log"; fail "npm install"; }
  grep "asyncloop-engine:" "$tmp/install.log" | sed 's/^ *//' || true
  echo "ok: npm install --offline in $((SECONDS - start)) s"
  unset ASYNCLOOP_BUILD_FROM_SOURCE GOFLAGS GOPROXY

  out=$(cd "$app" && node echo_roundtrip.js) || fail "echo round trip"
  echo "$out"
  # shellcheck disable=SC2086
  set -- $out
  [ "$1 $2 $3" = "echo ok $ver" ] || fail "unexpected output: $out"
  inst=$app/node_modules/asyncloop-engine
  if [ "$mode" = source ]; then dir=$inst/build; else dir=$inst/prebuilds/$plat; fi
  [ "$4" = "$dir/libasyncloop.so.$major" ] || fail "library loaded from $4, want $dir/libasyncloop.so.$major"
  [ "$5" = "$dir/asyncloop.node" ] || fail "addon loaded from $5, want $dir/asyncloop.node"
  readelf -d "$dir/asyncloop.node" | grep -q 'R.*PATH.*\[\$ORIGIN\]' || fail "the addon has no RUNPATH \$ORIGIN"
  readelf -S "$dir/libasyncloop.so.$major" | grep -q '\.symtab' && fail "the library is not stripped"
  echo "ok: require('asyncloop-engine') from $dir"
}

install_and_run prebuilt
install_and_run source

# npm run build (here: in the copied folder, from the checkout's sources).
(cd "$tmp/pkg" && ASYNCLOOP_SOURCE_DIR="$src" npm run build >"$tmp/build.log" 2>&1) || { cat "$tmp/build.log"; fail "npm run build"; }
[ -f "$tmp/pkg/build/asyncloop.node" ] && [ -f "$tmp/pkg/build/libasyncloop.so.$major" ] || fail "npm run build made no build/"
out=$(cd "$tmp" && node -p "require('$tmp/pkg').version.addon") || fail "require after npm run build"
[ "$out" = "$tmp/pkg/build/asyncloop.node" ] || fail "after npm run build the addon is $out"
echo "ok: npm run build"
