#!/usr/bin/env python3
"""The exported ABI of libasyncloop, recorded in abi/asyncloop.abi and checked.

    python3 tools/abi_check.py            # check include/asyncloop.h against the record
    python3 tools/abi_check.py --update   # rewrite the record (refused across a break)
    python3 tools/abi_check.py --strict   # also fail when the record lacks new items

The record lists, one item a line: every function prototype, every callback
typedef, every struct (its members in order), every enum constant and every
integer #define of include/asyncloop.h, plus the header's major version.
Parameter names are dropped (renaming one is no ABI change), the rest is
normalised C text.

A change is an ABI break when a recorded item is removed or altered. Growth is
not a break: a new function, constant or type, a new enumerator, and members
appended at the end of a struct (the structs passed across the ABI carry their
own `size` field for that). A break is allowed only together with a major
version bump (ALOOP_VERSION_MAJOR in the header), after which --update starts
the new record.

Exit status: 0 when the header keeps every recorded item (growth is reported
and, with --strict, fails: the record is stale); 1 on a break without a major
bump (the build fails); 2 on usage errors. The build runs the plain check
(CMake, before the library is built); CTest runs --strict.

Self-contained on purpose (only the C preprocessor, `$CC -E`, to expand the
header's X-macros), so that it can be folded into a header generator later.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "include" / "asyncloop.h"
RECORD = ROOT / "abi" / "asyncloop.abi"

KEYWORDS = {
    "void", "char", "short", "int", "long", "float", "double", "signed", "unsigned",
    "const", "volatile", "restrict", "struct", "union", "enum", "_Bool",
}
QUALIFIERS = {"const", "volatile", "restrict"}
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|\.\.\.|\S")


def header_version(text: str) -> tuple[int, int, int]:
    parts = []
    for name in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(rf"^#define ALOOP_VERSION_{name} (\d+)\s*$", text, re.M)
        if not m:
            raise SystemExit(f"abi_check: no ALOOP_VERSION_{name} in the header")
        parts.append(int(m.group(1)))
    return parts[0], parts[1], parts[2]


def preprocess(header: Path) -> str:
    cc = shlex.split(os.environ.get("CC") or "cc")
    out = subprocess.run(cc + ["-E", "-P", "-x", "c", str(header)],
                         check=True, capture_output=True, text=True)
    return out.stdout


def is_word(t: str) -> bool:
    return bool(re.match(r"[A-Za-z_]", t))


def render(tokens: list[str]) -> str:
    out = ""
    prev = ""
    for t in tokens:
        if out and ((is_word(prev) or prev[:1].isdigit()) and (is_word(t) or t[:1].isdigit())
                    or is_word(prev) and t == "*"
                    or prev in {",", "=", "{", ";"} or t in {"=", "{", "}"}):
            out += " "
        out += t
        prev = t
    return out


def split_top(tokens: list[str], sep: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    depth = 0
    for t in tokens:
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        if t == sep and depth == 0:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def matching(tokens: list[str], i: int) -> int:
    """Index of the bracket closing tokens[i]."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] in "([{":
            depth += 1
        elif tokens[j] in ")]}":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced brackets in " + " ".join(tokens))


def strip_names(tokens: list[str], in_params: bool) -> list[str]:
    """Drops parameter names from every parameter list inside tokens.

    A '(' group is a parameter list when it follows an identifier or a ')'
    (a function or a function pointer); a group starting with '*' is a
    declarator, `(*name)`, whose name is dropped only inside a parameter list
    (it is the parameter's name there, the member's or typedef's elsewhere).
    """
    out: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t == "(":
            j = matching(tokens, i)
            inner = tokens[i + 1:j]
            if inner and inner[0] == "*":
                stars = [x for x in inner if x == "*"]
                rest = [x for x in inner if x != "*"]
                if in_params and rest and is_word(rest[-1]) and rest[-1] not in KEYWORDS:
                    rest = rest[:-1]
                out += ["("] + stars + strip_names(rest, in_params) + [")"]
            elif out and (is_word(out[-1]) or out[-1] == ")"):
                params = []
                for p in split_top(inner, ","):
                    p = strip_names(p, True)
                    params.append(drop_name(p))
                joined: list[str] = []
                for k, p in enumerate(params):
                    if k:
                        joined.append(",")
                    joined += p
                out += ["("] + joined + [")"]
            else:
                out += ["("] + strip_names(inner, in_params) + [")"]
            i = j + 1
            continue
        out.append(t)
        i += 1
    return out


def drop_name(param: list[str]) -> list[str]:
    """`const char *msg` -> `const char *`; `void` and `aloop_loop_t *` stay."""
    if not param or not is_word(param[-1]) or param[-1] in KEYWORDS:
        return param
    before = param[:-1]
    if "*" in before or any(is_word(x) and x not in QUALIFIERS for x in before):
        return before
    return param


def items_of(header: Path) -> dict[str, str]:
    """name -> normalised declaration, for every ABI item of the header."""
    raw = header.read_text()
    items: dict[str, str] = {}
    for m in re.finditer(r"^#define (ALOOP_[A-Z0-9_]+)[ \t]+([^\\\n]*?)\s*(?:/\*.*)?$", raw, re.M):
        name, value = m.group(1), m.group(2)
        if name.startswith("ALOOP_VERSION_"):
            continue
        items["const " + name] = render(TOKEN.findall(value))
    text = preprocess(header)
    for decl in split_top(TOKEN.findall(text), ";"):
        if not any(re.match(r"(aloop|ALOOP)_", t) for t in decl):
            continue  # system headers
        if decl[0] == "typedef" and decl[1] == "enum":
            body = decl[decl.index("{") + 1:matching(decl, decl.index("{"))]
            items["type " + decl[-1]] = "enum"
            value = -1
            for e in split_top(body, ","):
                if not e:
                    continue
                if "=" in e:
                    expr = render(e[e.index("=") + 1:])
                    value = int(eval(expr, {"__builtins__": {}}))  # integer literals only
                else:
                    value += 1
                items["const " + e[0]] = str(value)
        elif decl[0] == "typedef" and decl[1] in ("struct", "union") and "{" in decl:
            open_ = decl.index("{")
            body = decl[open_ + 1:matching(decl, open_)]
            members = [render(strip_names(mb, False)) for mb in split_top(body, ";") if mb]
            items["struct " + decl[-1]] = "; ".join(members)
        elif decl[0] == "typedef":
            norm = strip_names(decl, False)
            name = decl[-1] if is_word(decl[-1]) else next(
                t for t in decl if re.match(r"aloop_\w+_(cb|fn)$", t))
            items["type " + name] = render(norm)
        else:
            name = next((t for k, t in enumerate(decl)
                         if re.match(r"aloop_\w+$", t) and k + 1 < len(decl) and decl[k + 1] == "("),
                        None)
            if name is None:
                continue
            items["function " + name] = render(strip_names(decl, False))
    return items


def read_record(path: Path) -> tuple[int, dict[str, str]]:
    major = -1
    items: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("major "):
            major = int(line.split()[1])
            continue
        key, _, value = line.partition(": ")
        items[key] = value
    return major, items


def write_record(path: Path, major: int, items: dict[str, str]) -> None:
    lines = [
        "# The exported ABI of libasyncloop (include/asyncloop.h), one item a line.",
        "# Generated by tools/abi_check.py --update; checked when the library is built.",
        "# Removing or altering an item needs a major version bump (ALOOP_VERSION_MAJOR).",
        f"major {major}",
    ]
    order = {"function": 0, "type": 1, "struct": 2, "const": 3}
    for key in sorted(items, key=lambda k: (order[k.split()[0]], k)):
        lines.append(f"{key}: {items[key]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def compare(old: dict[str, str], new: dict[str, str]) -> tuple[list[str], list[str]]:
    """(breaks, growth) going from the record to the header."""
    breaks, growth = [], []
    for key, value in old.items():
        if key not in new:
            breaks.append(f"removed  {key}: {value}")
        elif new[key] != value:
            if key.startswith("struct ") and (new[key] + "; ").startswith(value + "; "):
                growth.append(f"grown    {key}: {new[key]}")
            else:
                breaks.append(f"altered  {key}\n    was: {value}\n    now: {new[key]}")
    for key in new:
        if key not in old:
            growth.append(f"added    {key}: {new[key]}")
    return breaks, growth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--header", type=Path, default=HEADER)
    ap.add_argument("--record", type=Path, default=RECORD)
    ap.add_argument("--update", action="store_true", help="rewrite the record")
    ap.add_argument("--strict", action="store_true", help="fail when the record lacks new items")
    ap.add_argument("--stamp", type=Path, help="touch this file on success (for the build)")
    args = ap.parse_args()

    major = header_version(args.header.read_text())[0]
    new = items_of(args.header)
    if not any(k.startswith("function ") for k in new):
        print(f"abi_check: found no functions in {args.header}", file=sys.stderr)
        return 2
    if not args.record.exists():
        if args.update:
            write_record(args.record, major, new)
            print(f"abi_check: wrote {args.record} ({len(new)} items)")
            return 0
        print(f"abi_check: no record at {args.record}; run python3 tools/abi_check.py --update",
              file=sys.stderr)
        return 1
    rec_major, old = read_record(args.record)
    breaks, growth = compare(old, new)
    bumped = major > rec_major
    if breaks and not bumped:
        print(f"abi_check: FAIL: {len(breaks)} ABI break(s) against {args.record} "
              f"without a major version bump (ALOOP_VERSION_MAJOR is still {major}):",
              file=sys.stderr)
        for b in breaks:
            print("  " + b, file=sys.stderr)
        print("Keep the recorded items as they are (add new functions instead), or bump "
              "ALOOP_VERSION_MAJOR and then run: python3 tools/abi_check.py --update",
              file=sys.stderr)
        return 1
    if args.update:
        write_record(args.record, major, new)
        print(f"abi_check: wrote {args.record}: {len(new)} items, major {major}"
              + (f" (new major: {len(breaks)} break(s) accepted)" if breaks else "")
              + (f", {len(growth)} new" if growth else ""))
        return 0
    stale = bumped or growth
    if stale:
        what = f"major bumped to {major}" if bumped else f"{len(growth)} new item(s)"
        print(f"abi_check: {'FAIL' if args.strict else 'note'}: the record is stale ({what}):",
              file=sys.stderr)
        for g in growth[:20]:
            print("  " + g, file=sys.stderr)
        if len(growth) > 20:
            print(f"  ... and {len(growth) - 20} more", file=sys.stderr)
        print("Record them: python3 tools/abi_check.py --update", file=sys.stderr)
        if args.strict:
            return 1
    else:
        print(f"abi_check: ok: {len(new)} items of {args.header.name} match {args.record.name} "
              f"(major {major})")
    if args.stamp:
        args.stamp.parent.mkdir(parents=True, exist_ok=True)
        args.stamp.write_text("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
