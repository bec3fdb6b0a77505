#!/usr/bin/env python3
"""The one reader of include/asyncloop.h: generates every binding's mirror of it.

    python3 tools/gen_abi.py            # rewrite the generated files
    python3 tools/gen_abi.py --check    # exit 1 if any generated file is stale
    python3 tools/gen_abi.py --list     # the function names the header declares

The header is hand-written and stays the contract (its comments are the
documentation; a description it were generated from would have to carry all of
it).  This script parses it once into a model (errors, enums, handle types,
callback types, structs, function prototypes) and writes from that model:

  bindings/python/asyncloop/_abi.py  ctypes types, structs, SIGNATURES, error table
  bindings/go/zabi.go                Go's function table (purego), error constants
                                     and table, version constants
  bindings/node/src/abi_funcs.h      the addon's ALN_FUNCS(X) list (dlsym table)
  bindings/node/abi.js               error codes, names and messages for the JS layer
  tests/c/abi_check.c                compiled in the build: the parsed prototypes
                                     against the public header, and their cgo
                                     translation against the cgo export header

The CTest check `abi-generated` runs --check, so a header change that is not
regenerated fails `make test`.  Standard library only (Go's gofmt formats the
Go output).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "include" / "asyncloop.h"

# Functions that may wait: Python binds them through CDLL (GIL released).
BLOCKING = {"aloop_loop_run", "aloop_loop_run_once", "aloop_loop_run_until_complete",
            "aloop_loop_poll", "aloop_loop_poll_args"}

# `void *` values the library stores and hands back but never dereferences
# (the host's userdata, a future's result, an executor job's argument). The
# cgo exports take them, like handles and function pointers, as uintptr_t so
# that Go never holds a foreign value in a pointer-typed variable.
HOST_VALUES = {"userdata", "result", "arg"}

GO_KEYWORDS = {
    "break", "case", "chan", "const", "continue", "default", "defer", "else",
    "fallthrough", "for", "func", "go", "goto", "if", "import", "interface",
    "map", "package", "range", "return", "select", "struct", "switch", "type", "var",
}


def strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def norm(ctype: str) -> str:
    """'const char *const *' -> 'char**' ; 'unsigned int' -> 'unsigned int'."""
    t = re.sub(r"\bconst\b", " ", ctype)
    t = re.sub(r"\s*\*\s*", "*", t)
    return re.sub(r"\s+", " ", t).strip()


def c_decl(ctype: str) -> str:
    """A C type as written, whitespace normalised: 'const char *const *'."""
    t = re.sub(r"\s*\*\s*", " *", " ".join(ctype.split()))
    t = re.sub(r"\* (?=\*)", "*", t)
    t = re.sub(r"\*const\b", "* const", t)
    return t.replace("* const", "*const").strip()


def split_params(params: str) -> list[tuple[str, str]]:
    params = " ".join(params.split())
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


@dataclass
class Function:
    name: str
    ret: str                          # C type as written
    params: list[tuple[str, str]]     # (C type as written, name)
    thread_safe: bool                 # documented THREAD-SAFE
    release_gil: bool                 # Python binds it through CDLL


@dataclass
class Header:
    """Everything the generators need, read once from the header."""

    version: tuple[int, int, int] = (0, 0, 0)
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # (EBADF, -9, msg)
    enums: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    handles: set[str] = field(default_factory=set)
    tags: dict[str, str] = field(default_factory=dict)  # struct tag -> typedef name
    callbacks: dict[str, tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)
    structs: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    functions: list[Function] = field(default_factory=list)

    # -- parsing -------------------------------------------------------------

    @classmethod
    def parse(cls, raw: str) -> "Header":
        h = cls()
        text = strip_comments(raw)
        ver = {k: int(v) for k, v in re.findall(r"#define ALOOP_VERSION_(MAJOR|MINOR|PATCH) (\d+)", text)}
        h.version = (ver["MAJOR"], ver["MINOR"], ver["PATCH"])
        h.errors = [(n, int(v), msg) for n, v, msg in
                    re.findall(r'X\((E\w+),\s*(-?\d+),\s*"([^"]*)"\)', raw)]
        if not h.errors:
            raise SystemExit("gen_abi: no ALOOP_ERRNO_MAP entries found")
        for m in re.finditer(r"typedef\s+struct\s+(\w+)\s+(\w+)\s*;", text):
            h.handles.add(m.group(2))
            h.tags[m.group(1)] = m.group(2)
        for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{.*?\}\s*(\w+)\s*;", text, re.S):
            h.tags[m.group(1)] = m.group(2)
        for m in re.finditer(r"typedef\s+enum\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;", text, re.S):
            body, name = m.group(1), m.group(2)
            if "ALOOP_ERRNO_MAP" in body:
                continue
            h.enums[name] = [(i.group(1), i.group(2))
                             for i in re.finditer(r"(ALOOP_\w+)\s*=\s*(-?\w+)", body)]
        # Callback typedefs and structs in source order (structs may use
        # callbacks and callbacks may use structs).
        pattern = re.compile(
            r"typedef\s+([\w\s\*]+?)\(\s*\*\s*(\w+)\s*\)\s*\((.*?)\)\s*;"
            r"|typedef\s+struct\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;", re.S)
        for m in pattern.finditer(text):
            if m.group(2):
                h.callbacks[m.group(2)] = (m.group(1).strip(), split_params(m.group(3)))
                continue
            body, name = m.group(4), m.group(5)
            fields = []
            for fm in re.finditer(r"([^;{}]+);", body):
                decl = " ".join(fm.group(1).split())
                fp = re.match(r"^(.*?)\(\s*\*\s*(\w+)\s*\)\s*\((.*)\)$", decl)
                if fp:
                    ret, fname, params = fp.group(1), fp.group(2), fp.group(3)
                    cb = f"{name[:-2]}_{fname}_cb"
                    h.callbacks[cb] = (ret.strip(), split_params(params))
                    fields.append((fname, "callback", cb))
                else:
                    dm = re.match(r"^(.*?)(\w+)$", decl)
                    fields.append((dm.group(2), "value", dm.group(1).strip()))
            h.structs[name] = fields
        # Function prototypes, with the comment just before each.
        start = raw.index("#ifndef ALOOP_NO_PROTOTYPES")
        proto = re.compile(
            r"(?P<doc>/\*(?:(?!\*/).)*\*/\s*)?"
            r"^(?P<ret>(?:const\s+)?(?:unsigned\s+)?\w+\s*\**)\s*(?P<name>aloop_\w+)\s*"
            r"\((?P<params>[^)]*)\)\s*;", re.S | re.M)
        for m in proto.finditer(raw[start:]):
            name = m.group("name")
            doc = (m.group("doc") or "").lstrip("/* \n")
            thread_safe = doc.startswith("THREAD-SAFE")
            h.functions.append(Function(
                name=name, ret=m.group("ret").strip(),
                params=split_params(strip_comments(m.group("params"))),
                thread_safe=thread_safe,
                release_gil=name in BLOCKING or thread_safe))
        names = [f.name for f in h.functions]
        if len(names) != len(set(names)):
            raise SystemExit("gen_abi: a function is declared twice")
        # Every `aloop_x(` after the marker must have been understood.
        declared = set(re.findall(r"\b(aloop_\w+)\s*\(", strip_comments(raw[start:])))
        if declared != set(names):
            raise SystemExit(f"gen_abi: prototypes not understood: {sorted(declared - set(names))}")
        return h

    # -- type classification ----------------------------------------------------

    def resolve(self, ctype: str) -> str:
        """Normalised type with `struct tag` replaced by its typedef name."""
        t = norm(ctype)
        if t.startswith("struct "):
            tag = t[7:].rstrip("*")
            t = self.tags.get(tag, tag) + t[len(t.rstrip("*")):]
        return t

    def kind(self, ctype: str, name: str) -> tuple[str, int]:
        """(kind, pointer depth): kind is 'handle', 'callback', 'host' (a
        HOST_VALUES void *), 'enum', 'struct', 'char', 'void' or the scalar's
        normalised name."""
        t = self.resolve(ctype)
        base = t.rstrip("*")
        stars = len(t) - len(base)
        bare = name[4:] if name.startswith("out_") else name
        if base in self.handles:
            return "handle", stars
        if base in self.callbacks:
            return "callback", stars
        if base in self.enums:
            return "enum", stars
        if base in self.structs:
            return "struct", stars
        if base == "void" and stars >= 1 and bare in HOST_VALUES:
            return "host", stars - 1
        return base, stars


# ---------------------------------------------------------------------------
# Python (ctypes)
# ---------------------------------------------------------------------------

PY_SIMPLE = {
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


def py_type(h: Header, ctype: str, name: str = "", *, callback_ret: bool = False,
            callback_param: bool = False) -> str:
    raw = ctype
    t = h.resolve(ctype)
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
    if t in PY_SIMPLE:
        return PY_SIMPLE[t]
    base = t.rstrip("*")
    stars = len(t) - len(base)
    if base in h.enums:
        return "c_int" if stars == 0 else "POINTER(c_int)"
    if base in h.callbacks:
        return base if stars == 0 else "POINTER(c_void_p)"
    if base in h.handles:
        if stars == 1:
            return "c_void_p"
        if stars == 2:
            return "POINTER(c_void_p)"
    if base in h.structs:
        if stars == 1:
            return f"POINTER({base})"
        if stars == 2:
            return f"POINTER(POINTER({base}))"
    raise SystemExit(f"gen_abi: no ctypes type for {raw!r} ({name})")


def emit_python(h: Header) -> str:
    out = [
        '"""Generated by tools/gen_abi.py from include/asyncloop.h.',
        "",
        "DO NOT EDIT: regenerate with `python3 tools/gen_abi.py`.",
        '"""',
        "# fmt: off",
        "# flake8: noqa",
        "from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int,",
        "                    c_int8, c_int16, c_int32, c_int64, c_long, c_longlong,",
        "                    c_size_t, c_uint, c_uint8, c_uint16, c_uint32, c_uint64,",
        "                    c_ulong, c_void_p)",
        "",
        "#: The header's ALOOP_VERSION_MAJOR, _MINOR, _PATCH.",
        f"VERSION = {h.version!r}",
        "",
        "#: name (without ALOOP_) -> value of every ALOOP_E* code.",
        "ERRNO_CODES = {",
    ]
    out += [f"    {n!r}: {v}," for n, v, _ in h.errors]
    out += ["}", "", "#: value -> description of every ALOOP_E* code (aloop_strerror's).",
            "ERRNO_MESSAGES = {"]
    out += [f"    {v}: {msg!r}," for _, v, msg in h.errors]
    out += ["}", ""]
    for ename, items in h.enums.items():
        out.append(f"# {ename}")
        out += [f"{n} = {v}" for n, v in items]
        out.append("")
    # Structs first as forward declarations (callbacks may point to them).
    for sname in h.structs:
        out += [f"class {sname}(Structure):", "    pass", ""]
    out.append("")
    for cname, (ret, params) in h.callbacks.items():
        r = py_type(h, ret, callback_ret=True)
        args = [py_type(h, t, n, callback_param=True) for t, n in params]
        out.append(f"{cname} = CFUNCTYPE({', '.join([r] + args)})")
    out.append("")
    for sname, fields in h.structs.items():
        out.append(f"{sname}._fields_ = [")
        for fname, kind, t in fields:
            out.append(f"    ({fname!r}, {t if kind == 'callback' else py_type(h, t, fname)}),")
        out.append("]")
    out += ["", "#: name -> (restype, argtypes, release_gil)", "SIGNATURES = {"]
    for f in h.functions:
        args = ", ".join(py_type(h, t, n) for t, n in f.params)
        out.append(f"    {f.name!r}: ({py_type(h, f.ret)}, [{args}], {f.release_gil}),")
    out += ["}", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Go (purego)
# ---------------------------------------------------------------------------

GO_SCALARS = {
    "int": "int32", "unsigned int": "uint32", "double": "float64", "size_t": "uintptr",
    "int8_t": "int8", "uint8_t": "uint8", "int16_t": "int16", "uint16_t": "uint16",
    "int32_t": "int32", "uint32_t": "uint32", "int64_t": "int64", "uint64_t": "uint64",
}


def camel(name: str) -> str:
    parts = name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def go_type(h: Header, ctype: str, name: str, *, ret: bool = False) -> str:
    """The purego type: handles, callbacks and host values are uintptr; a
    `const char *` argument is *byte (NUL-terminated, nil for NULL), a
    returned one a string (purego copies it); other memory is unsafe.Pointer."""
    kind, stars = h.kind(ctype, name)
    t = h.resolve(ctype)
    if kind in ("handle", "callback", "host"):
        depth = stars - (1 if kind == "handle" else 0)
        return "*" * depth + "uintptr"
    if kind == "enum":
        return "*" * stars + "int32"
    if kind in GO_SCALARS:
        if stars == 0:
            return GO_SCALARS[kind]
        if stars == 1:
            return "*" + GO_SCALARS[kind]
    if kind == "char" and stars == 1:
        if ret:
            return "string"
        return "*byte" if "const" in ctype else "unsafe.Pointer"
    if kind == "void" and stars == 0:
        return ""
    if stars == 1:
        return "unsafe.Pointer"  # void *, structs, arrays
    if stars == 2 and kind in ("void", "struct"):
        return "*unsafe.Pointer"
    if stars == 2 and kind == "char":
        return "unsafe.Pointer"  # a NULL-terminated array of strings
    raise SystemExit(f"gen_abi: no Go type for {ctype!r} ({name}) in {t}")


def go_param(name: str) -> str:
    n = camel(name)
    return n + "_" if n in GO_KEYWORDS else n


def emit_go(h: Header) -> str:
    major, minor, patch = h.version
    out = [
        "// Code generated by tools/gen_abi.py from include/asyncloop.h; DO NOT EDIT.",
        "",
        "package asyncloop",
        "",
        'import "unsafe"',
        "",
        "// The version of include/asyncloop.h this binding was generated from. A",
        "// library with the same major and at least this minor is accepted at load.",
        "const (",
        f"\tVersionMajor = {major}",
        f"\tVersionMinor = {minor}",
        f"\tVersionPatch = {patch}",
        ")",
        "",
        "// Error codes of the library (ALOOP_E* in include/asyncloop.h). They are",
        "// negative; where an errno exists the code equals -errno on Linux.",
        "const (",
    ]
    out += [f"\t{n} = {v}" for n, v, _ in h.errors]
    out += [")", "",
            "// errorTable mirrors ALOOP_ERRNO_MAP: code -> {name without ALOOP_, message}.",
            "var errorTable = map[int][2]string{"]
    out += [f"\t{n}: {{{go_quote(n)}, {go_quote(msg)}}}," for n, _, msg in h.errors]
    out += ["}", "",
            "// abi holds one Go function per function of include/asyncloop.h (lib.go",
            "// binds them with purego). Handles, callbacks and userdata are uintptr; a",
            "// const char * argument is a NUL-terminated *byte (nil for NULL).",
            "type abi struct {"]
    for f in h.functions:
        params = ", ".join(f"{go_param(n)} {go_type(h, t, n)}" for t, n in f.params)
        r = go_type(h, f.ret, "", ret=True)
        out.append(f"\t{camel(f.name[6:])} func({params}) {r}".rstrip())
    out += ["}", "",
            "// symbols lists every function of the header with the field that binds it.",
            "func (a *abi) symbols() []abiSymbol {",
            "\treturn []abiSymbol{"]
    out += [f'\t\t{{"{f.name}", &a.{camel(f.name[6:])}}},' for f in h.functions]
    out += ["\t}", "}", "",
            "type abiSymbol struct {",
            "\tname string",
            "\tfptr any",
            "}", ""]
    out += emit_go_structs(h)
    return gofmt("\n".join(out))


def go_struct_name(cname: str) -> str:
    """aloop_server_options_t -> cServerOptions."""
    base = cname[len("aloop_"):-len("_t")]
    return "c" + "".join(p[:1].upper() + p[1:] for p in base.split("_"))


def go_field_type(h: Header, kind: str, ctype: str, fname: str) -> str:
    """A struct member's Go type: callbacks, handles and host values are
    uintptr; strings *byte; other pointers unsafe.Pointer, or a pointer to the
    mirror of a struct of the header."""
    if kind == "callback":
        return "uintptr"
    k, stars = h.kind(ctype, fname)
    if k in ("handle", "callback", "host"):
        return "uintptr"
    if k == "enum" and stars == 0:
        return "int32"
    if stars == 0 and k in GO_SCALARS:
        return GO_SCALARS[k]
    if k == "char" and stars == 1:
        return "*byte"
    if k == "struct" and stars == 1:
        return "*" + go_struct_name(h.resolve(ctype).rstrip("*"))
    if stars >= 1:
        return "unsafe.Pointer"
    raise SystemExit(f"gen_abi: no Go type for member {fname} ({ctype})")


# LP64 sizes (= alignments) of the members' C types, for the layout model that
# both sides are checked against: the Go mirrors by bindings/go/header_test.go,
# the C compiler by tests/c/abi_check.c.
LP64_SIZES = {"int": 4, "unsigned int": 4, "int32_t": 4, "uint32_t": 4, "int16_t": 2,
              "uint16_t": 2, "int8_t": 1, "uint8_t": 1, "double": 8, "size_t": 8,
              "int64_t": 8, "uint64_t": 8}


def lp64_layout(h: Header, sname: str) -> tuple[int, list[tuple[str, int]]]:
    """(sizeof, [(member, offsetof)]) of a header struct on an LP64 platform."""
    off, align, fields = 0, 1, []
    for fname, kind, ctype in h.structs[sname]:
        if kind == "callback":
            size = 8
        else:
            k, stars = h.kind(ctype, fname)
            size = 8 if stars or k == "host" else (4 if k == "enum" else LP64_SIZES[k])
        off = (off + size - 1) // size * size
        fields.append((fname, off))
        off += size
        align = max(align, size)
    return (off + align - 1) // align * align, fields


def emit_go_structs(h: Header) -> list[str]:
    out = ["// Mirrors of the header's structs (LP64 layout; header_test.go checks",
           "// them against structLayouts, which tests/c/abi_check.c checks against",
           "// the C compiler). Members as in the header, in Go's spelling.", ""]
    for sname, fields in h.structs.items():
        out.append(f"// {go_struct_name(sname)} is {sname}.")
        out.append(f"type {go_struct_name(sname)} struct {{")
        for fname, kind, ctype in fields:
            out.append(f"\t{go_param(fname)} {go_field_type(h, kind, ctype, fname)}")
        out += ["}", ""]
    out += ["// structLayouts is the layout model: sizeof and every member's offsetof.",
            "var structLayouts = []structLayout{"]
    for sname, fields in h.structs.items():
        size, offs = lp64_layout(h, sname)
        g = go_struct_name(sname)
        members = ", ".join(f'{{"{f}", unsafe.Offsetof({g}{{}}.{go_param(f)}), {o}}}' for f, o in offs)
        out.append(f'\t{{"{sname}", unsafe.Sizeof({g}{{}}), {size}, []memberLayout{{{members}}}}},')
    out += ["}", "",
            "type structLayout struct {",
            "\tname       string",
            "\tsize, want uintptr",
            "\tmembers    []memberLayout",
            "}", "",
            "type memberLayout struct {",
            "\tname      string",
            "\toff, want uintptr",
            "}", ""]
    # Enums as Go constants (ALOOP_STDIO_PIPE -> stdioPipe).
    out += ["// The header's enum values.", "const ("]
    for ename, items in h.enums.items():
        for n, v in items:
            out.append(f"\t{camel(n[len('ALOOP_'):].lower())} = {v}")
    out += [")", ""]
    return out


def go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gofmt(src: str) -> str:
    exe = shutil.which("gofmt")
    if exe is None:
        go = shutil.which("go")
        if go:
            goroot = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True).stdout.strip()
            cand = Path(goroot) / "bin" / "gofmt"
            exe = str(cand) if cand.exists() else None
    if exe is None:
        raise SystemExit("gen_abi: gofmt (from the Go toolchain) is needed for the Go output")
    r = subprocess.run([exe], input=src, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"gen_abi: gofmt failed:\n{r.stderr}")
    return r.stdout


# ---------------------------------------------------------------------------
# Node (N-API addon and JS layer)
# ---------------------------------------------------------------------------


def emit_node_funcs(h: Header) -> str:
    out = [
        "/* Generated by tools/gen_abi.py from include/asyncloop.h. DO NOT EDIT.",
        " *",
        " * ALN_FUNCS(X) calls X(name) for every function of the header: the addon",
        " * binds each one with dlsym when it loads the library. */",
        "#ifndef ASYNCLOOP_NODE_ABI_FUNCS_H",
        "#define ASYNCLOOP_NODE_ABI_FUNCS_H",
        "",
        "#define ALN_FUNCS(X) \\",
    ]
    out += [f"  X({f.name}) \\" for f in h.functions]
    out[-1] = out[-1][:-2]
    out += ["", "#endif", ""]
    return "\n".join(out)


# Node's `code` for the library's own errors (those without an errno). An
# errno code keeps its POSIX name, as Node's system errors do
# (ALOOP_ECONNREFUSED -> 'ECONNREFUSED'); the others get Node's code where
# Node has one for the same condition (a failed name lookup is 'ENOTFOUND' in
# node:dns, an invalid state 'ERR_INVALID_STATE', libuv's unknown 'UNKNOWN'),
# else ERR_ASYNCLOOP_*. index.js refines the TLS ones from the message
# (ERR_TLS_CERT_ALTNAME_INVALID, CERT_HAS_EXPIRED, ...).
NODE_CODES = {
    "EPANIC": "ERR_ASYNCLOOP_PANIC",
    "ECLOSED": "ERR_ASYNCLOOP_CLOSED",
    "ESTATE": "ERR_INVALID_STATE",
    "ENOTLOOPTHREAD": "ERR_ASYNCLOOP_NOT_LOOP_THREAD",
    "ERESOLVE": "ENOTFOUND",
    "ESTOPPED": "ERR_ASYNCLOOP_STOPPED",
    "ENOSPACE": "ERR_ASYNCLOOP_NOSPACE",
    "ETLS": "ERR_ASYNCLOOP_TLS",
    "ECERT": "ERR_ASYNCLOOP_CERT",
    "ENOLOOP": "ERR_ASYNCLOOP_NO_LOOP",
    "EUNKNOWN": "UNKNOWN",
}


def node_code(name: str, value: int) -> str:
    if name in NODE_CODES:
        return NODE_CODES[name]
    if value <= -3000:
        raise SystemExit(f"gen_abi: ALOOP_{name} needs a Node code in NODE_CODES")
    return name


def emit_node_js(h: Header) -> str:
    out = [
        "// Generated by tools/gen_abi.py from include/asyncloop.h. DO NOT EDIT.",
        "'use strict';",
        "",
        "/** The header's version (ALOOP_VERSION_MAJOR, _MINOR, _PATCH). */",
        "const VERSION = Object.freeze({ major: %d, minor: %d, patch: %d });" % h.version,
        "",
        "/** Every ALOOP_E* code by its name: codes.ALOOP_EBADF === -9. */",
        "const codes = Object.freeze({",
    ]
    out += [f"  ALOOP_{n}: {v}," for n, v, _ in h.errors]
    out += ["});", "",
            "/**",
            " * code -> [name, description, Node's code]: aloop_err_name, aloop_strerror,",
            " * and the `code` of the binding's Errors (the POSIX name for an errno).",
            " */",
            "const errors = new Map([",
            ]
    out += [f"  [{v}, ['ALOOP_{n}', {js_quote(msg)}, '{node_code(n, v)}']],"
            for n, v, msg in h.errors]
    out += ["]);", "",
            "module.exports = { VERSION, codes, errors };", ""]
    return "\n".join(out)


def js_quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------
# C: the prototype check compiled in the build
# ---------------------------------------------------------------------------


def cgo_type(h: Header, ctype: str, name: str) -> str:
    """The C type cgo writes for the export's Go parameter: handles, callbacks
    and host values are uintptr_t, enums int, and cgo drops every const."""
    kind, stars = h.kind(ctype, name)
    if kind in ("handle", "callback", "host"):
        depth = stars - (1 if kind == "handle" else 0)
        return "uintptr_t" + "*" * depth
    if kind == "enum":
        return "int" + "*" * stars
    t = h.resolve(ctype)
    return t.replace("*", "") + "*" * t.count("*")


def emit_c_check(h: Header) -> str:
    out = [
        "/* Generated by tools/gen_abi.py from include/asyncloop.h. DO NOT EDIT.",
        " *",
        " * Compiled in the build (target abi_check); it never runs. It fails to",
        " * compile when",
        " *  1. the generator read a prototype differently from the compiler: every",
        " *     function's type, as parsed, is compared with the public header's;",
        " *  2. a cgo export of capi/ (build/libasyncloop.h) differs from its public",
        " *     prototype: each is compared with the parsed prototype, where handles,",
        " *     callbacks and userdata are uintptr_t, enums int, and const dropped",
        " *     (cgo's spelling of the same ABI).",
        " * Functions written in C (capi/errors.c) include the public header",
        " * themselves, so the compiler checks their definitions there. */",
        "#include <limits.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "#include \"asyncloop.h\"",
        "",
        "#define ALOOP_SAME_TYPE(fn, type) \\",
        "  _Static_assert(__builtin_types_compatible_p(__typeof__(fn), type), \\",
        "                 #fn \": prototype differs from include/asyncloop.h\")",
        "",
        "/* 1. The parsed prototypes are the header's. */",
    ]
    for f in h.functions:
        params = ", ".join(c_decl(t) for t, _ in f.params) or "void"
        out.append(f"ALOOP_SAME_TYPE({f.name}, {c_decl(f.ret)}({params}));")
    out += ["",
            "/* 2. The cgo exports, renamed so that they do not clash with the public",
            " * prototypes above. */"]
    exported = [f for f in h.functions if f.name not in C_IMPLEMENTED]
    out += [f"#define {f.name} cgo_{f.name}" for f in exported]
    out += ["#ifndef ALOOP_CGO_HEADER /* the build passes its path */",
            "#define ALOOP_CGO_HEADER \"libasyncloop.h\"",
            "#endif",
            "#include ALOOP_CGO_HEADER", ""]
    out += [f"#undef {f.name}" for f in exported]
    out += ["",
            "/* The cgo exports are the parsed prototypes in cgo's spelling. The C",
            " * functions of capi/errors.c are checked there (it includes the header). */"]
    for f in exported:
        params = ", ".join(cgo_type(h, t, n) for t, n in f.params) or "void"
        out.append(f"ALOOP_SAME_TYPE(cgo_{f.name}, {cgo_type(h, f.ret, '')}({params}));")
    out += ["",
            "/* 3. The generator's LP64 layout model of the structs (the Go mirrors in",
            " * bindings/go/zabi.go are checked against it by header_test.go). */",
            "#if UINTPTR_MAX == 0xffffffffffffffffu && UINT_MAX == 0xffffffffu"]
    for sname in h.structs:
        size, offs = lp64_layout(h, sname)
        out.append(f'_Static_assert(sizeof({sname}) == {size}, "{sname}: size differs from the layout model");')
        for f, o in offs:
            out.append(f'_Static_assert(offsetof({sname}, {f}) == {o}, "{sname}.{f}: offset differs from the layout model");')
    out += ["#endif", ""]
    return "\n".join(out)


# Functions defined in C (capi/errors.c, capi/write.c, capi/dgsend.c), not cgo exports.
C_IMPLEMENTED = {"aloop_version", "aloop_version_string", "aloop_strerror", "aloop_err_name",
                 "aloop_transport_write", "aloop_datagram_sendto"}


# ---------------------------------------------------------------------------

OUTPUTS = {
    "bindings/python/asyncloop/_abi.py": emit_python,
    "bindings/go/zabi.go": emit_go,
    "bindings/node/src/abi_funcs.h": emit_node_funcs,
    "bindings/node/abi.js": emit_node_js,
    "tests/c/abi_check.c": emit_c_check,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    ap.add_argument("--list", action="store_true", help="print the declared function names")
    ap.add_argument("--header", type=Path, default=HEADER, help="the header --list reads")
    args = ap.parse_args()
    h = Header.parse(args.header.read_text())
    if args.list:
        print("\n".join(f.name for f in h.functions))
        return 0
    stale = []
    if args.header.resolve() != HEADER:
        ap.error("--header only goes with --list")
    for rel, emit in OUTPUTS.items():
        path = ROOT / rel
        new = emit(h)
        old = path.read_text() if path.exists() else None
        if new == old:
            continue
        if args.check:
            stale.append(rel)
        else:
            path.write_text(new)
            print(f"wrote {rel}")
    if stale:
        print("stale generated files (run python3 tools/gen_abi.py):\n  " + "\n  ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
