#!/usr/bin/env bash
# install_c.sh SOURCE_DIR BUILD_DIR [package|subdir]
#
# package: `cmake --install BUILD_DIR --prefix P` into a fresh temporary
#   prefix outside the checkout; checks the files (versioned library with its
#   SONAME and symlinks, header, CMake package, pkg-config file), then builds
#   tests/install/c/echo_roundtrip.c (copied out of the checkout) against the
#   prefix twice, with find_package(asyncloop 0.1) and with pkg-config, and
#   runs both: an echo round trip over loopback through the installed copy.
# subdir: builds the same consumer with the source tree as a subproject,
#   through add_subdirectory and through FetchContent (the library is rebuilt
#   by `go build`, which mostly hits Go's build cache).
set -euo pipefail
src=$(cd "${1:?usage: install_c.sh SOURCE_DIR BUILD_DIR [package|subdir]}" && pwd)
build=$(cd "${2:?}" && pwd)
mode=${3:-package}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/asyncloop-install-c.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cp -r "$src/tests/install/c" "$tmp/consumer"

ver=$(sed -n 's/^#define ALOOP_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' "$src/include/asyncloop.h" | paste -sd.)
major=${ver%%.*}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

if [ "$mode" = package ]; then
  prefix=$tmp/prefix
  cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
  lib=$prefix/lib
  [ -f "$lib/libasyncloop.so.$ver" ] && [ ! -L "$lib/libasyncloop.so.$ver" ] || fail "no $lib/libasyncloop.so.$ver"
  [ "$(readlink "$lib/libasyncloop.so.$major")" = "libasyncloop.so.$ver" ] || fail "libasyncloop.so.$major is not a symlink to libasyncloop.so.$ver"
  [ "$(readlink "$lib/libasyncloop.so")" = "libasyncloop.so.$major" ] || fail "libasyncloop.so is not a symlink to libasyncloop.so.$major"
  soname=$(readelf -d "$lib/libasyncloop.so.$ver" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [ "$soname" = "libasyncloop.so.$major" ] || fail "SONAME is '$soname', want libasyncloop.so.$major"
  cmp -s "$prefix/include/asyncloop.h" "$src/include/asyncloop.h" || fail "installed header differs"
  for f in lib/cmake/asyncloop/asyncloopConfig.cmake lib/cmake/asyncloop/asyncloopConfigVersion.cmake lib/pkgconfig/asyncloop.pc; do
    [ -f "$prefix/$f" ] || fail "no $f"
  done
  echo "ok: installed $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"

  # find_package(asyncloop 0.1 REQUIRED) -> asyncloop::asyncloop
  cmake -S "$tmp/consumer" -B "$tmp/cmk" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
    -DASYNCLOOP_FROM=package >"$tmp/cmk.log" 2>&1 || { cat "$tmp/cmk.log"; fail "consumer configure"; }
  grep -q "asyncloop $ver from $prefix/lib/cmake/asyncloop" "$tmp/cmk.log" || { cat "$tmp/cmk.log"; fail "find_package found another asyncloop"; }
  cmake --build "$tmp/cmk" >"$tmp/cmk-build.log" 2>&1 || { cat "$tmp/cmk-build.log"; fail "consumer build"; }
  readelf -d "$tmp/cmk/echo_roundtrip" | grep -q "NEEDED.*\[libasyncloop.so.$major\]" || fail "consumer does not need libasyncloop.so.$major"
  (cd "$tmp" && env -u ASYNCLOOP_LIBRARY -u LD_LIBRARY_PATH "$tmp/cmk/echo_roundtrip") | tee "$tmp/out1"
  grep -q "^echo ok $ver " "$tmp/out1" || fail "find_package consumer"
  # A version the prefix cannot satisfy is refused.
  sed -i "s/find_package(asyncloop 0.1 REQUIRED)/find_package(asyncloop $((major + 1)).0 REQUIRED)/" "$tmp/consumer/CMakeLists.txt"
  if cmake -S "$tmp/consumer" -B "$tmp/cmk2" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/cmk2.log" 2>&1; then
    fail "find_package(asyncloop $((major + 1)).0) accepted version $ver"
  fi

  # pkg-config
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
  [ "$(pkg-config --modversion asyncloop)" = "$ver" ] || fail "pkg-config --modversion"
  libdir=$(pkg-config --variable=libdir asyncloop)
  # shellcheck disable=SC2046
  ${CC:-cc} -o "$tmp/pc_roundtrip" "$tmp/consumer/echo_roundtrip.c" $(pkg-config --cflags --libs asyncloop) \
    "-Wl,-rpath,$libdir" || fail "build with pkg-config"
  (cd "$tmp" && env -u ASYNCLOOP_LIBRARY -u LD_LIBRARY_PATH "$tmp/pc_roundtrip") | tee "$tmp/out2"
  grep -q "^echo ok $ver " "$tmp/out2" || fail "pkg-config consumer"
  echo "ok: find_package and pkg-config consumers did an echo round trip through $prefix"
else
  for how in subdir fetch; do
    cmake -S "$tmp/consumer" -B "$tmp/$how" "${generator[@]}" -DASYNCLOOP_FROM=$how \
      -DASYNCLOOP_SOURCE_DIR="$src" >"$tmp/$how.log" 2>&1 || { cat "$tmp/$how.log"; fail "$how configure"; }
    cmake --build "$tmp/$how" >"$tmp/$how-build.log" 2>&1 || { cat "$tmp/$how-build.log"; fail "$how build"; }
    # Only the library is built in a subproject: no tests, no examples.
    if cmake --build "$tmp/$how" --target help | grep -qE 'test-loop|echo_server'; then
      fail "$how: the subproject defines its tests or examples"
    fi
    [ -z "$(find "$src" -maxdepth 1 -newer "$tmp/consumer" -name 'CMakeCache.txt')" ] || fail "$how wrote into the source tree"
    (cd "$tmp" && env -u ASYNCLOOP_LIBRARY -u LD_LIBRARY_PATH "$tmp/$how/echo_roundtrip") | tee "$tmp/out-$how"
    grep -q "^echo ok $ver " "$tmp/out-$how" || fail "$how consumer"
  done
  echo "ok: add_subdirectory and FetchContent consumers did an echo round trip"
fi
