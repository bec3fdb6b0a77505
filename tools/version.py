#!/usr/bin/env python3
"""The version of asyncloop lives in one place: ALOOP_VERSION_MAJOR/MINOR/PATCH
in include/asyncloop.h (the library reports it through aloop_version()).

    python3 tools/version.py            # print it
    python3 tools/version.py --check    # exit 1 if a copy disagrees (a CTest entry)
    python3 tools/version.py --set 0.2.0  # change the header and every copy

Derived from the header, no copy to keep: the CMake project version (and so
asyncloopConfigVersion.cmake, asyncloop.pc, the library's file name and
SONAME), the Python distribution and asyncloop.__version__ (the build backend
reads the header). Copies that their ecosystem needs literally, checked here:
bindings/node/package.json "version", and VersionMajor/Minor/Patch in
bindings/go/lib.go. Every binding compares its version with aloop_version()
when it loads the library (same major, library minor >= its minor).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "include" / "asyncloop.h"
PACKAGE_JSON = ROOT / "bindings" / "node" / "package.json"
GO_LIB = ROOT / "bindings" / "go" / "lib.go"
PARTS = ("Major", "Minor", "Patch")


def header_version() -> str:
    text = HEADER.read_text()
    return ".".join(re.search(rf"^#define ALOOP_VERSION_{p.upper()} (\d+)", text, re.M).group(1)
                    for p in PARTS)


def copies() -> dict[str, str]:
    found = {str(PACKAGE_JSON.relative_to(ROOT)): json.loads(PACKAGE_JSON.read_text())["version"]}
    text = GO_LIB.read_text()
    go = [re.search(rf"\bVersion{p}\s*=\s*(\d+)", text) for p in PARTS]
    found[str(GO_LIB.relative_to(ROOT))] = ".".join(m.group(1) if m else "?" for m in go)
    return found


def set_version(new: str) -> None:
    major, minor, patch = new.split(".")
    text = HEADER.read_text()
    for p, v in zip(PARTS, (major, minor, patch)):
        text = re.sub(rf"^(#define ALOOP_VERSION_{p.upper()}) \d+", rf"\g<1> {v}", text, flags=re.M)
    HEADER.write_text(text)
    pj = PACKAGE_JSON.read_text()
    PACKAGE_JSON.write_text(re.sub(r'("version":\s*")[^"]*(")', rf"\g<1>{new}\g<2>", pj, count=1))
    go = GO_LIB.read_text()
    for p, v in zip(PARTS, (major, minor, patch)):
        go = re.sub(rf"(\bVersion{p}\s*=\s*)\d+", rf"\g<1>{v}", go, count=1)
    GO_LIB.write_text(go)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--set", metavar="X.Y.Z")
    args = ap.parse_args()
    if args.set:
        if not re.fullmatch(r"\d+\.\d+\.\d+", args.set):
            ap.error("--set wants MAJOR.MINOR.PATCH")
        set_version(args.set)
    want = header_version()
    if not args.check:
        print(want)
        if not args.set:
            return 0
    bad = {f: v for f, v in copies().items() if v != want}
    for f, v in bad.items():
        print(f"version: FAIL: {f} says {v}, include/asyncloop.h says {want} "
              f"(python3 tools/version.py --set {want})", file=sys.stderr)
    if not bad:
        print(f"version: ok: {want} in include/asyncloop.h and every copy ({', '.join(copies())})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
