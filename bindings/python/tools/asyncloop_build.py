"""PEP 517 build backend of the asyncloop-engine distribution (package `asyncloop`).

    pip install ./bindings/python          # from a checkout (needs Go + a C compiler)
    pip install asyncloop_engine-X.tar.gz  # from the sdist: the same, no checkout needed

Nothing is ever written into the source tree: the library is built in a
temporary folder and the wheel is assembled in memory.

The wheel holds the pure-Python package plus libasyncloop.so, built with
``go build -buildmode=c-shared -trimpath -ldflags="-s -w"`` (stripped) and
tagged ``py3-none-manylinux_2_X_<arch>``: the tag is computed from the
library itself (the newest GLIBC_2.X symbol version it needs; it must need
nothing but glibc). The version of the distribution is the library's:
ALOOP_VERSION_* of include/asyncloop.h, as generated into asyncloop/_abi.py
by tools/gen_abi.py (the one reader of the header).

The sdist is self-contained: it carries the Go sources the library needs
(engine/: go.mod, go.sum, core/, capi/, include/asyncloop.h and vendor/ from
``go mod vendor``), so it builds wherever Go and a C compiler are installed,
without the network.

Environment:
  GO                          the go command (default: `go` on PATH)
  ASYNCLOOP_SOURCE_DIR        the repository root to build from (default: the
                              sdist's engine/, else ../.. of this package)
  ASYNCLOOP_PREBUILT_LIBRARY  use this already-built libasyncloop.so instead of
                              running go build (it must be stripped and of the
                              same version; used by the tests to save time)

No dependency beyond the standard library (Python 3.11+).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import runpy
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

PKG_ROOT = Path(__file__).resolve().parent.parent  # bindings/python, or the sdist root
PACKAGE = "asyncloop"
LIBRARY = "libasyncloop.so"
#: Libraries a manylinux wheel may need (PEP 600: glibc's own).
GLIBC_LIBS = {"libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6", "librt.so.1",
              "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def log(msg: str) -> None:
    print(f"asyncloop-build: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Sources, metadata, version
# ---------------------------------------------------------------------------

def engine_root() -> Path:
    """The folder holding go.mod, core/, capi/ and include/asyncloop.h."""
    candidates = []
    env = os.environ.get("ASYNCLOOP_SOURCE_DIR")
    if env:
        candidates.append(Path(env))
    candidates += [PKG_ROOT / "engine", PKG_ROOT.parent.parent]
    for c in candidates:
        if (c / "go.mod").is_file() and (c / "capi").is_dir() and (c / "core").is_dir() \
                and (c / "include" / "asyncloop.h").is_file():
            return c.resolve()
    raise SystemExit("asyncloop-build: cannot find the Go sources of libasyncloop (looked in "
                     + ", ".join(str(c) for c in candidates) + "); build from a checkout of the "
                     "repository or from the sdist, or set ASYNCLOOP_SOURCE_DIR")


def version() -> str:
    """ALOOP_VERSION_* of the header, from the generated asyncloop/_abi.py."""
    return "%d.%d.%d" % runpy.run_path(str(PKG_ROOT / PACKAGE / "_abi.py"))["VERSION"]


def project() -> dict:
    return tomllib.loads((PKG_ROOT / "pyproject.toml").read_text())["project"]


def dist_name() -> str:
    return re.sub(r"[-_.]+", "_", project()["name"]).lower()


def metadata() -> str:
    p = project()
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {p['name']}",
        f"Version: {version()}",
        f"Summary: {p['description']}",
        f"License-Expression: {p['license']}",
        f"Requires-Python: {p['requires-python']}",
    ]
    lines += [f"Classifier: {c}" for c in p.get("classifiers", [])]
    lines += [f"Project-URL: {k}, {v}" for k, v in p.get("urls", {}).items()]
    for extra, reqs in p.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    readme = p.get("readme")
    body = ""
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        body = (PKG_ROOT / readme).read_text()
    return "\n".join(lines) + "\n\n" + body


def package_files() -> list[Path]:
    """The package's files from the source tree (no library, no caches)."""
    out = []
    for f in sorted((PKG_ROOT / PACKAGE).rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".so"):
            out.append(f)
    return out


# ---------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------

def go_command() -> str:
    go = os.environ.get("GO") or shutil.which("go")
    if not go:
        for c in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
            if os.access(c, os.X_OK):
                return c
        raise SystemExit("asyncloop-build: building libasyncloop needs Go (https://go.dev/dl/) "
                         "and a C compiler: put `go` on PATH or set GO")
    return go


def build_library(out_dir: Path) -> Path:
    """go build -buildmode=c-shared, stripped, with SONAME libasyncloop.so.MAJOR."""
    prebuilt = os.environ.get("ASYNCLOOP_PREBUILT_LIBRARY")
    target = out_dir / LIBRARY
    if prebuilt:
        log(f"using the prebuilt library {prebuilt} (ASYNCLOOP_PREBUILT_LIBRARY)")
        shutil.copyfile(prebuilt, target)
        return target
    root = engine_root()
    major = version().split(".")[0]
    env = dict(os.environ, CGO_ENABLED="1")
    if not (env.get("GOCACHE") or env.get("XDG_CACHE_HOME") or env.get("HOME")):
        env["GOCACHE"] = str(out_dir / "gocache")
    cmd = [go_command(), "build", "-v", "-buildmode=c-shared", "-buildvcs=false", "-trimpath",
           # -X: no asynchronous preemption (ALOOP_GO_LDFLAGS, capi/main.go)
           "-ldflags=-s -w -X=runtime.godebugDefault=asyncpreemptoff=1"
           f" -extldflags=-Wl,-soname,libasyncloop.so.{major}",
           "-o", str(target), "./capi"]
    if (root / "vendor" / "modules.txt").is_file():
        cmd.insert(2, "-mod=vendor")  # the sdist: no network
    log(f"building libasyncloop {version()} with Go in {root}")
    log("  " + " ".join(cmd))
    log("  (Go prints each package it compiles; about 30 s with a cold Go build cache, "
        "a few seconds with a warm one)")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    compiled = 0
    for line in proc.stdout:
        line = line.rstrip()
        if re.match(r"^[\w.\-]+(/[\w.\-]+)*$", line):  # a package name from -v
            compiled += 1
            log(f"  [{time.monotonic() - start:5.1f}s] compiled {line}")
        else:
            log("  " + line)
    if proc.wait() != 0:
        raise SystemExit(f"asyncloop-build: go build failed (exit {proc.returncode})")
    header = target.with_suffix(".h")  # cgo's generated header: not shipped
    header.unlink(missing_ok=True)
    log(f"built {target.name}: {target.stat().st_size / 1e6:.1f} MB in "
        f"{time.monotonic() - start:.1f} s ({compiled} packages compiled, the rest cached)")
    return target


def elf_info(path: Path) -> tuple[str, list[str], tuple[int, int], bool]:
    """(arch, DT_NEEDED, newest GLIBC_2.X needed, has .symtab) of a 64-bit LE ELF."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit(f"asyncloop-build: {path} is not a 64-bit little-endian ELF library")
    machine = struct.unpack_from("<H", data, 18)[0]
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    sections = []
    for i in range(shnum):
        name, typ, _flags, _addr, off, size, link, _info, _align, _entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize)
        sections.append((name, typ, off, size, link))
    shstr = sections[shstrndx]

    def cstr(off: int) -> str:
        return data[off:data.index(b"\0", off)].decode()

    names = [cstr(shstr[2] + s[0]) for s in sections]
    needed: list[str] = []
    glibc = (2, 0)
    for (name, typ, off, size, link), sname in zip(sections, names):
        strtab = sections[link][2]
        if typ == 6:  # SHT_DYNAMIC
            for k in range(0, size, 16):
                tag, val = struct.unpack_from("<qQ", data, off + k)
                if tag == 1:  # DT_NEEDED
                    needed.append(cstr(strtab + val))
        elif typ == 0x6FFFFFFE:  # SHT_GNU_verneed
            pos = off
            while True:
                _ver, cnt, _file, aux, nxt = struct.unpack_from("<HHIII", data, pos)
                apos = pos + aux
                for _ in range(cnt):
                    _hash, _fl, _other, vname, anext = struct.unpack_from("<IHHII", data, apos)
                    m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", cstr(strtab + vname))
                    if m:
                        glibc = max(glibc, (int(m.group(1)), int(m.group(2))))
                    apos += anext
                if not nxt:
                    break
                pos += nxt
    arch = ELF_MACHINES.get(machine)
    if arch is None:
        raise SystemExit(f"asyncloop-build: unsupported ELF machine {machine}")
    return arch, needed, glibc, ".symtab" in names


def platform_tag(lib: Path) -> str:
    arch, needed, glibc, has_symtab = elf_info(lib)
    if has_symtab:
        raise SystemExit(f"asyncloop-build: {lib} is not stripped (build it with -ldflags=-s -w)")
    foreign = [n for n in needed if n not in GLIBC_LIBS]
    if foreign:
        raise SystemExit(f"asyncloop-build: {lib} needs {foreign}: not a manylinux library")
    tag = f"manylinux_{glibc[0]}_{glibc[1]}_{arch}"
    log(f"{lib.name} needs {', '.join(needed)} and GLIBC_{glibc[0]}.{glibc[1]}: tag {tag}")
    return tag


def check_library_version(lib: Path) -> None:
    """The library reports the version this package is built as."""
    code = ("import ctypes,sys; v=ctypes.CDLL(sys.argv[1]).aloop_version(); "
            "print(f'{v>>16}.{(v>>8)&255}.{v&255}')")
    out = subprocess.run([sys.executable, "-c", code, str(lib)], capture_output=True, text=True)
    got = out.stdout.strip()
    if out.returncode != 0 or got != version():
        raise SystemExit(f"asyncloop-build: {lib} reports version {got or out.stderr.strip()!r}, "
                         f"the package is {version()}")


# ---------------------------------------------------------------------------
# Wheels
# ---------------------------------------------------------------------------

def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, tag: str, files: list[tuple[str, bytes, int]],
                 purelib: bool) -> str:
    name, ver = dist_name(), version()
    dist_info = f"{name}-{ver}.dist-info"
    files = list(files) + [
        (f"{dist_info}/METADATA", metadata().encode(), 0o644),
        (f"{dist_info}/WHEEL", (
            "Wheel-Version: 1.0\n"
            "Generator: asyncloop_build (bindings/python/tools/asyncloop_build.py)\n"
            f"Root-Is-Purelib: {'true' if purelib else 'false'}\n"
            f"Tag: {tag}\n").encode(), 0o644),
    ]
    record = [_record_line(a, d) for a, d, _ in files] + [f"{dist_info}/RECORD,,"]
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode(), 0o644))
    wheel_name = f"{name}-{ver}-{tag}.whl"
    path = Path(wheel_directory) / wheel_name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data, mode in files:
            info = zipfile.ZipInfo(arcname, ZIP_DATE)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    log(f"wrote {path}")
    return wheel_name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with tempfile.TemporaryDirectory(prefix="asyncloop-build-") as tmp:
        lib = build_library(Path(tmp))
        tag = "py3-none-" + platform_tag(lib)
        check_library_version(lib)
        files = [(f"{PACKAGE}/{f.relative_to(PKG_ROOT / PACKAGE).as_posix()}", f.read_bytes(), 0o644)
                 for f in package_files()]
        files.append((f"{PACKAGE}/{LIBRARY}", lib.read_bytes(), 0o755))
        return _write_wheel(wheel_directory, tag, files, purelib=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """A .pth to this source tree; the library is the checkout's build/libasyncloop.so
    (or $ASYNCLOOP_LIBRARY), as when running from the checkout."""
    pth = (str(PKG_ROOT) + "\n").encode()
    return _write_wheel(wheel_directory, "py3-none-any", [(f"_{dist_name()}.pth", pth, 0o644)],
                        purelib=True)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info = Path(metadata_directory) / f"{dist_name()}-{version()}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(metadata())
    return dist_info.name


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_sdist = get_requires_for_build_wheel
get_requires_for_build_editable = get_requires_for_build_wheel


# ---------------------------------------------------------------------------
# The sdist
# ---------------------------------------------------------------------------

def _engine_files(root: Path) -> list[Path]:
    """What `go build ./capi` reads: go.mod, go.sum, the header, core/ and capi/
    without tests."""
    out = [root / "go.mod", root / "go.sum", root / "include" / "asyncloop.h"]
    for sub in ("core", "capi"):
        for f in sorted((root / sub).rglob("*")):
            rel = f.relative_to(root)
            if f.is_file() and not f.name.endswith("_test.go") and "testdata" not in rel.parts:
                out.append(f)
    return out


def build_sdist(sdist_directory, config_settings=None):
    name, ver = dist_name(), version()
    base = f"{name}-{ver}"
    root = engine_root()
    with tempfile.TemporaryDirectory(prefix="asyncloop-sdist-") as tmp:
        engine = Path(tmp) / "engine"
        for f in _engine_files(root):
            dst = engine / f.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)
        if (root / "vendor" / "modules.txt").is_file():
            shutil.copytree(root / "vendor", engine / "vendor")
        else:
            log("vendoring the Go dependencies of core/ and capi/ (go mod vendor)")
            env = dict(os.environ, GOFLAGS="-mod=mod")
            subprocess.run([go_command(), "mod", "vendor"], cwd=engine, env=env, check=True)
        members: list[tuple[str, Path | bytes]] = [
            ("PKG-INFO", metadata().encode()),
            ("pyproject.toml", PKG_ROOT / "pyproject.toml"),
            ("tools/asyncloop_build.py", Path(__file__).resolve()),
        ]
        readme = project().get("readme")
        if readme:
            members.append((readme, PKG_ROOT / readme))
        members += [(f.relative_to(PKG_ROOT).as_posix(), f) for f in package_files()]
        members += [(f"engine/{f.relative_to(engine).as_posix()}", f)
                    for f in sorted(engine.rglob("*")) if f.is_file()]
        path = Path(sdist_directory) / f"{base}.tar.gz"
        with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
            for arcname, src in members:
                data = src if isinstance(src, bytes) else src.read_bytes()
                info = tarfile.TarInfo(f"{base}/{arcname}")
                info.size = len(data)
                info.mode = 0o644
                info.mtime = int(time.mktime(ZIP_DATE + (0, 0, -1)))
                tf.addfile(info, io.BytesIO(data))
    log(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path.name
