#!/usr/bin/env python3
"""Generates asyncloop/_abi.py (the ctypes mirror of the C header).

    python3 bindings/python/tools/gen_abi.py            # rewrite _abi.py
    python3 bindings/python/tools/gen_abi.py --check    # exit 1 if stale

Reads include/asyncloop.h, the one contract, and emits: the ALOOP_E* codes,
the enum constants, one CFUNCTYPE per callback typedef, one Structure per
struct typedef (callback members typed), and SIGNATURES: every function
prototype with its ctypes restype/argtypes and whether the binding releases
the GIL around it (the run functions and the functions the header documents
as THREAD-SAFE, which other threads call).  tests/python/test_abi.py runs
--check, so a header change that is not regenerated fails the tests.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
HEADER = ROOT / "include" / "asyncloop.h"
OUTPUT = HERE.parent / "asyncloop" / "_abi.py"

# Functions that may wait: bound through CDLL so that the GIL is released.
BLOCKING = {"aloop_loop_run", "aloop_loop_run_once", "aloop_loop_run_until_complete",
            "aloop_loop_poll"}


def strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def norm(ctype: str) -> str:
    """'const char *const *' -> 'char**' ; 'unsigned int' -> 'unsigned int'."""
    t = ctype.replace("const", " ")
    t = re.sub(r"\s*\*\s*", "*", t)
    return re.sub(r"\s+", " ", t).strip()


class Gen:
    def __init__(self, text: str) -> None:
        self.raw = text
        self.text = strip_comments(text)
        self.handles: set[str] = set()
        self.callbacks: dict[str, tuple[str, list[tuple[str, str]]]] = {}
        self.structs: dict[str, list[tuple[str, str]]] = {}  # name -> [(field, ctypes expr)]
        self.enums: dict[str, list[tuple[str, str]]] = {}
        self.funcs: dict[str, tuple[str, list[tuple[str, str]], bool]] = {}
        self.tags: dict[str, str] = {}  # struct tag -> typedef name

    # -- type mapping ---------------------------------------------------------

    def ctype(self, ctype: str, name: str = "", *, callback_ret: bool = False,
              callback_param: bool = False) -> str:
        raw = ctype
        t = norm(ctype)
        if t.startswith("struct "):
            tag = t[7:].rstrip("*")
            t = self.tags.get(tag, tag) + t[len(t.rstrip("*")):]
        if callback_param and t == "char*" and name == "data":
            # Binary data handed to a callback: an address (read it with
            # ctypes.string_at), never a NUL-terminated c_char_p.
            return "c_void_p"
        if t == "void":
            return "None"
        if t == "void*":
            if callback_ret:
                return "c_void_p"
            # The bytes of a write/send are passed as Python bytes.
            if name == "data" and "const" in raw:
                return "c_char_p"
            return "c_void_p"
        simple = {
            "int": "c_int", "unsigned int": "c_uint", "double": "c_double",
            "size_t": "c_size_t", "char*": "c_char_p", "int*": "POINTER(c_int)",
            "double*": "POINTER(c_double)", "size_t*": "POINTER(c_size_t)",
            "void**": "POINTER(c_void_p)", "char**": "POINTER(c_char_p)",
            "unsigned int*": "POINTER(c_uint)",
            "int8_t": "c_int8", "uint8_t": "c_uint8", "int16_t": "c_int16",
            "uint16_t": "c_uint16", "int32_t": "c_int32", "uint32_t": "c_uint32",
            "int64_t": "c_int64", "uint64_t": "c_uint64", "long": "c_long",
            "unsigned long": "c_ulong", "long long": "c_longlong",
            "int64_t*": "POINTER(c_int64)", "uint64_t*": "POINTER(c_uint64)",
            "uint32_t*": "POINTER(c_uint32)", "int32_t*": "POINTER(c_int32)",
        }
        if t in simple:
            return simple[t]
        base = t.rstrip("*")
        stars = len(t) - len(base)
        if base in self.enums:
            return "c_int" if stars == 0 else "POINTER(c_int)"
        if base in self.callbacks:
            return base if stars == 0 else "POINTER(c_void_p)"
        if base in self.handles:
            if stars == 1:
                return "c_void_p"
            if stars == 2:
                return "POINTER(c_void_p)"
        if base in self.structs:
            if stars == 1:
                return f"POINTER({base})"
            if stars == 2:
                return f"POINTER(POINTER({base}))"
        raise SystemExit(f"gen_abi: unmapped C type {raw!r} ({name})")

    @staticmethod
    def split_params(params: str) -> list[tuple[str, str]]:
        params = params.strip()
        if params in ("", "void"):
            return []
        out = []
        for p in params.split(","):
            p = p.strip()
            m = re.match(r"^(.*?)(\w+)$", p)
            if not m or not m.group(1).strip():
                raise SystemExit(f"gen_abi: cannot parse parameter {p!r}")
            out.append((m.group(1).strip(), m.group(2)))
        return out

    # -- parsing ------------------------------------------------------------------

    def parse(self) -> None:
        text = self.text
        for m in re.finditer(r"typedef\s+struct\s+(\w+)\s+(\w+)\s*;", text):
            self.handles.add(m.group(2))
            self.tags[m.group(1)] = m.group(2)
        for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{.*?\}\s*(\w+)\s*;", text, re.S):
            self.tags[m.group(1)] = m.group(2)
        for m in re.finditer(r"typedef\s+enum\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;", text, re.S):
            body, name = m.group(1), m.group(2)
            if "ALOOP_ERRNO_MAP" in body:
                continue
            items = []
            for im in re.finditer(r"(ALOOP_\w+)\s*=\s*(-?\w+)", body):
                items.append((im.group(1), im.group(2)))
            self.enums[name] = items
        # Callback typedefs and structs in source order (structs may use
        # callbacks and callbacks may use structs).
        pattern = re.compile(
            r"typedef\s+([\w\s\*]+?)\(\s*\*\s*(\w+)\s*\)\s*\((.*?)\)\s*;"
            r"|typedef\s+struct\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;", re.S)
        for m in pattern.finditer(text):
            if m.group(2):
                ret, name, params = m.group(1), m.group(2), m.group(3)
                self.callbacks[name] = (ret.strip(), self.split_params(" ".join(params.split())))
            else:
                body, name = m.group(4), m.group(5)
                self.structs[name] = []  # allow self-reference in mapping
                fields = []
                for fm in re.finditer(r"([^;{}]+);", body):
                    decl = " ".join(fm.group(1).split())
                    fp = re.match(r"^(.*?)\(\s*\*\s*(\w+)\s*\)\s*\((.*)\)$", decl)
                    if fp:
                        ret, fname, params = fp.group(1), fp.group(2), fp.group(3)
                        cb_name = f"{name[:-2]}_{fname}_cb" if name.endswith("_t") else f"{name}_{fname}_cb"
                        self.callbacks[cb_name] = (ret.strip(), self.split_params(params))
                        fields.append((fname, cb_name))
                    else:
                        dm = re.match(r"^(.*?)(\w+)$", decl)
                        fields.append((dm.group(2), self.ctype(dm.group(1), dm.group(2))))
                self.structs[name] = fields
        self.errno = [(n, int(v)) for n, v in re.findall(r"X\((E\w+),\s*(-?\d+),", self.raw)]
        # Function prototypes (with the doc comment before each).
        raw = self.raw
        start = raw.index("#ifndef ALOOP_NO_PROTOTYPES")
        section = raw[start:]
        proto = re.compile(
            r"(?P<doc>/\*(?:(?!\*/).)*\*/\s*)?"
            r"^(?P<ret>(?:const\s+)?(?:unsigned\s+)?\w+\s*\**)\s*(?P<name>aloop_\w+)\s*\((?P<params>[^)]*)\)\s*;",
            re.S | re.M)
        for m in proto.finditer(section):
            name = m.group("name")
            doc = m.group("doc") or ""
            ret = m.group("ret")
            params = self.split_params(" ".join(strip_comments(m.group("params")).split()))
            release = name in BLOCKING or doc.lstrip("/* \n").startswith("THREAD-SAFE")
            self.funcs[name] = (ret, params, release)

    # -- output ---------------------------------------------------------------------

    def emit(self) -> str:
        out = [
            '"""Generated by bindings/python/tools/gen_abi.py from include/asyncloop.h.',
            "",
            "DO NOT EDIT: regenerate with `python3 bindings/python/tools/gen_abi.py`.",
            '"""',
            "# fmt: off",
            "# flake8: noqa",
            "from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int,",
            "                    c_int8, c_int16, c_int32, c_int64, c_long, c_longlong,",
            "                    c_size_t, c_uint, c_uint8, c_uint16, c_uint32, c_uint64,",
            "                    c_ulong, c_void_p)",
            "",
            "#: name (without ALOOP_) -> value of every ALOOP_E* code.",
            "ERRNO_CODES = {",
        ]
        for n, v in self.errno:
            out.append(f"    {n!r}: {v},")
        out.append("}")
        out.append("")
        for ename, items in self.enums.items():
            out.append(f"# {ename}")
            for n, v in items:
                out.append(f"{n} = {v}")
            out.append("")
        # Structs first as forward declarations (callbacks may point to them).
        for sname in self.structs:
            out.append(f"class {sname}(Structure):")
            out.append("    pass")
            out.append("")
        out.append("")
        for cname, (ret, params) in self.callbacks.items():
            r = self.ctype(ret, callback_ret=True)
            args = [self.ctype(t, n, callback_param=True) for t, n in params]
            out.append(f"{cname} = CFUNCTYPE({', '.join([r] + args)})")
        out.append("")
        for sname, fields in self.structs.items():
            out.append(f"{sname}._fields_ = [")
            for fname, ftype in fields:
                out.append(f"    ({fname!r}, {ftype}),")
            out.append("]")
        out.append("")
        out.append("#: name -> (restype, argtypes, release_gil)")
        out.append("SIGNATURES = {")
        for name, (ret, params, release) in self.funcs.items():
            r = self.ctype(ret)
            args = ", ".join(self.ctype(t, n) for t, n in params)
            out.append(f"    {name!r}: ({r}, [{args}], {release}),")
        out.append("}")
        out.append("")
        return "\n".join(out)


def generate() -> str:
    g = Gen(HEADER.read_text())
    g.parse()
    return g.emit()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if _abi.py is stale")
    args = ap.parse_args()
    new = generate()
    old = OUTPUT.read_text() if OUTPUT.exists() else ""
    if args.check:
        if new != old:
            print(f"{OUTPUT} is stale: run python3 {Path(__file__).relative_to(ROOT)}",
                  file=sys.stderr)
            return 1
        return 0
    if new != old:
        OUTPUT.write_text(new)
        print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
