#!/usr/bin/env python3
"""asyncloop's benchmarks, side by side with the peers, in one run.

    python3 bench/run.py [--quick] [--suites python,c,node,go] [--only REGEX]
                         [--reps N] [--duration SECONDS] [--no-readme]
                         [--write-latest]

(`make bench` runs it; `BENCH_QUICK=1 make bench` is the short run.)

Every implementation of a workload is measured in the same run: within each
repetition the implementations take turns (their order rotates from one
repetition to the next), and the result is the median over the repetitions.
Servers are separate processes, one per implementation, and the load comes
from one client written in C (bench/client/echo_client.c), the same for
every server. All traffic is on 127.0.0.1, bounded in count and in time.

Suites and implementations:
  python  asyncio, uvloop, rloop (PyPI, pinned in bench/requirements.txt),
          asyncloop (bindings/python)
  c       libuv (Debian's libuv1-dev) vs asyncloop (include/asyncloop.h)
  node    node-net (node:net, node:dgram, node:tls, node:child_process) vs
          asyncloop (the N-API addon)
  go      go-net (net, net.UDPConn, crypto/tls over net) vs asyncloop
          (bindings/go, purego)
  interop the example library examples/rpc (libaloop_rpc, written only
          against include/asyncloop.h) driven from c, python, node and go
          on each host's own loop (bench/interop/); ratios host/c

A workload whose feature an implementation does not have (it raises
NotImplementedError, or its package / binding is missing) is reported with
"value": null and a "note"; nothing is estimated or faked.

Writes bench/results/latest.json, latest.md (tables), latest.png (chart of
asyncloop's ratio to each peer) and fills the results section of
bench/README.md (and of README.md, if it has the same markers). A partial
run (--suites without every suite, or --only) leaves the committed results
and the READMEs as they are: it writes bench/results/partial.json,
partial.md and partial.png (git-ignored) instead, unless --write-latest
asks for latest.* (the READMEs still only change after a complete run).
Benchmarks never decide whether `make test` passes: this script exits 0
whenever it could measure, whatever the numbers are.

Environment:
  BENCH_QUICK=1        fewer repetitions and shorter runs (< 3 minutes)
  BENCH_REPS, BENCH_DURATION   override the repetitions / seconds per run
  BENCH_SUITES         like --suites
  BUILD_DIR            the CMake build folder (default: build)
  BENCH_OUT            where the bench builds its programs (default
                       $BUILD_DIR/bench)
  BENCH_VENV           the virtual environment (default $BUILD_DIR/bench-venv)
  ASYNCLOOP_LIBRARY    libasyncloop.so (default $BUILD_DIR/libasyncloop.so,
                       else built with `go build` into $BENCH_OUT)
  ASYNCLOOP_NODE_ADDON the Node addon (default
                       $BUILD_DIR/bindings/node/asyncloop.node, else built
                       with CMake into $BENCH_OUT)
"""

import argparse
import datetime
import json
import os
import platform
import re
import select
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
BUILD = Path(os.environ.get("BUILD_DIR") or (ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
OUT = Path(os.environ.get("BENCH_OUT") or (BUILD / "bench"))
VENV = Path(os.environ.get("BENCH_VENV") or (BUILD / "bench-venv"))
REQUIREMENTS = BENCH / "requirements.txt"

SUITES = ("python", "c", "node", "go", "interop")
IMPLS = {
    "python": ["asyncio", "uvloop", "rloop", "asyncloop"],
    "c": ["libuv", "asyncloop"],
    "node": ["node-net", "asyncloop"],
    "go": ["go-net", "asyncloop"],
    "interop": ["c", "python", "node", "go"],
}
IDLE_CONNECTIONS = 10_000
IDLE_SETTLED_S = 3.0  # idle_10k_rss_settled: seconds after the connections opened

# Python request/response workloads: name -> (server mode, client mode,
# connections, request size).
PY_NET = {
    "tcp_echo_1k_c1": ("protocol", "echo", 1, 1024),
    "tcp_echo_1k_c10": ("protocol", "echo", 10, 1024),
    # The same requests from a thread per connection with blocking sockets
    # (echo_client's threads mode): the server sees them spread out.
    "tcp_echo_1k_c10_threads": ("protocol", "threads", 10, 1024),
    "tcp_echo_1k_c100": ("protocol", "echo", 100, 1024),
    "tcp_echo_16k_c1": ("protocol", "echo", 1, 16 * 1024),
    "tcp_echo_16k_c10": ("protocol", "echo", 10, 16 * 1024),
    "tcp_echo_100k_c1": ("protocol", "echo", 1, 100 * 1024),
    "tcp_echo_100k_c10": ("protocol", "echo", 10, 100 * 1024),
    "streams_echo_1k_c10": ("streams", "echo", 10, 1024),
    "tls_echo_1k_c10": ("tls", "echo", 10, 1024),
    "tls_echo_64k_c10": ("tls", "echo", 10, 64 * 1024),
    "sock_echo_1k_c10": ("sock", "echo", 10, 1024),
    "udp_echo_1k": ("udp", "udp", 10, 1024),
    "bulk_64k": ("protocol", "bulk", 1, 64 * 1024),
    "http_hello_c50": ("http", "http", 50, 1024),
}
PY_MICRO = ["call_soon", "call_soon_threadsafe", "call_later_cancel", "sleep0_tasks",
            "getaddrinfo_numeric", "spawn_true"]
# The order of the report (the order).
PY_ORDER = ["call_soon", "call_soon_threadsafe", "call_later_cancel", "sleep0_tasks",
            "tcp_echo_1k_c1", "tcp_echo_1k_c10", "tcp_echo_1k_c10_threads", "tcp_echo_1k_c100", "tcp_echo_16k_c1",
            "tcp_echo_16k_c10", "tcp_echo_100k_c1", "tcp_echo_100k_c10", "streams_echo_1k_c10",
            "tls_echo_1k_c10", "tls_echo_64k_c10", "sock_echo_1k_c10", "udp_echo_1k",
            "bulk_64k", "http_hello_c50", "getaddrinfo_numeric", "spawn_true", "idle_10k_rss", "idle_10k_rss_settled"]
HOST_NET = {
    "tcp_echo_1k_c10": ("tcp", "echo", 10, 1024),
    "tcp_echo_1k_c1": ("tcp", "echo", 1, 1024),
}
# The C suite also measures the engine where no binding hides it: large
# messages, bulk transfer and memory per idle connection (issue 18).
C_NET = {
    "tcp_echo_1k_c10_threads": ("tcp", "threads", 10, 1024),
    "tcp_echo_100k_c10": ("tcp", "echo", 10, 100 * 1024),
    "bulk_64k": ("tcp", "bulk", 1, 64 * 1024),
}
C_ORDER = list(HOST_NET) + list(C_NET) + ["idle_10k_rss", "idle_10k_rss_settled"]
# The Node suite also measures datagrams, TLS (the local CA) and subprocesses
# against Node's own modules (issue 13); spawn_true runs in
# bench/micro/node_micro.js.
NODE_NET = {
    "udp_echo_1k": ("udp", "udp", 10, 1024),
    "tls_echo_1k_c10": ("tls", "echo", 10, 1024),
}
NODE_MICRO = ["spawn_true"]
NODE_ORDER = list(HOST_NET) + list(NODE_NET) + NODE_MICRO
# The interop suite (issue 16): libaloop_rpc's server and client on one loop
# in one process, driven by each host: name -> (driver mode, calls in
# flight, payload bytes). "call": the host awaits every call natively
# (wrap_future / wrapFuture / WrapFuture) and checks the reply; "lib": the
# library drives the calls itself (rpc_client_bench), the host only runs
# its loop. Values are requests/s; the ratios are host/c.
INTEROP = {
    "rpc_call_64b_c8": ("call", 8, 64),
    "rpc_lib_64b_c8": ("lib", 8, 64),
}
# The Go suite also measures datagrams and TLS (the local CA) against Go's
# own net.UDPConn and crypto/tls over net (issue 14).
GO_NET = {
    "udp_echo_1k": ("udp", "udp", 10, 1024),
    "tls_echo_1k_c10": ("tls", "echo", 10, 1024),
}
GO_ORDER = list(HOST_NET) + list(GO_NET)


_T0 = time.monotonic()


def log(msg):
    print(f"[bench {time.monotonic() - _T0:5.1f}s] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------
# Setup: virtual environment, programs, library, certificates
# ---------------------------------------------------------------------------

def in_bench_venv():
    try:
        return Path(sys.prefix).resolve() == VENV.resolve()
    except OSError:
        return False


def ensure_venv():
    """Creates the venv and installs bench/requirements.txt; True if usable."""
    py = VENV / "bin" / "python"
    if not py.exists():
        log(f"creating the virtual environment {VENV}")
        r = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if r.returncode != 0 or not py.exists():
            log(f"cannot create a venv ({(r.stderr or r.stdout).strip().splitlines()[-1:]})")
            return False
    stamp = VENV / ".bench-requirements"
    want = REQUIREMENTS.read_text()
    if not stamp.exists() or stamp.read_text() != want:
        log(f"pip install -r {REQUIREMENTS.relative_to(ROOT)} (into {VENV})")
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "-r", str(REQUIREMENTS)], text=True)
        if r.returncode == 0:
            stamp.write_text(want)
        else:
            log("pip install failed: the peers that are missing are reported as such")
    return True


def reexec_in_venv():
    if os.environ.get("BENCH_NO_VENV") or in_bench_venv():
        return
    if ensure_venv():
        py = str(VENV / "bin" / "python")
        os.execv(py, [py, str(Path(__file__).resolve())] + sys.argv[1:])
    log("falling back to pip install --user")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--user",
                    "--disable-pip-version-check", "-r", str(REQUIREMENTS)])


def sh(argv, what, cwd=ROOT, env=None, timeout=600):
    """Runs a build step; returns None or the error text."""
    try:
        r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{what}: {e}"
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        return f"{what} failed: " + " | ".join(lines[-3:])
    return None


def soname(lib):
    """The DT_SONAME of a shared library (None if it has none or readelf is
    missing)."""
    try:
        r = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True)
    except OSError:
        return None
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", r.stdout)
    return m.group(1) if m else None


def newer(target, *sources):
    if not target.exists():
        return False
    t = target.stat().st_mtime
    return all(Path(s).stat().st_mtime <= t for s in sources)


class Setup:
    """Everything built or found before measuring; notes of what is missing."""

    def __init__(self):
        self.env = dict(os.environ)
        self.missing = {}  # (suite, impl) -> note; suite-wide with impl None
        self.versions = {}
        self.client = None
        self.tls = None  # (cafile, cert, key)
        self.library = None

    def note_missing(self, suite, impl, note):
        self.missing[(suite, impl)] = note
        log(f"{suite}/{impl or '*'}: {note}")

    def missing_note(self, suite, impl):
        return self.missing.get((suite, None)) or self.missing.get((suite, impl))

    def run(self, suites):
        OUT.mkdir(parents=True, exist_ok=True)
        logs = OUT / "logs"
        logs.mkdir(exist_ok=True)
        for f in logs.glob("*.log"):  # one run's server logs only
            f.unlink()
        self.build_client()
        self.find_library()
        if "python" in suites or "node" in suites or "go" in suites:
            self.make_certs()
        if "python" in suites:
            self.check_python()
        if "c" in suites:
            self.build_c()
        if "node" in suites:
            self.find_node_addon()
        if "go" in suites:
            self.build_go()
        if "interop" in suites:
            self.build_interop(suites)

    def build_client(self):
        src = BENCH / "client" / "echo_client.c"
        exe = OUT / "echo_client"
        tls = Path("/usr/include/openssl/ssl.h").exists()
        flags = ["-DWITH_TLS"] if tls else []
        libs = ["-lssl", "-lcrypto"] if tls else []
        if not newer(exe, src):
            log("building the load client (gcc)")
            err = sh(["gcc", "-O2", "-Wall", "-pthread", *flags, "-o", str(exe), str(src), *libs],
                     "gcc echo_client")
            if err:
                raise SystemExit(f"[bench] {err}")
        self.client = exe
        self.client_tls = tls
        if not tls:
            log("OpenSSL headers missing (libssl-dev): the TLS workloads are not measured")

    def find_library(self):
        lib = self.env.get("ASYNCLOOP_LIBRARY")
        if lib and Path(lib).exists():
            self.library = Path(lib).resolve()
        elif (BUILD / "libasyncloop.so").exists():
            self.library = BUILD / "libasyncloop.so"
        else:
            out = OUT / "libasyncloop.so"
            log(f"building {out} with go build -buildmode=c-shared ./capi")
            env = dict(self.env, CGO_ENABLED="1")
            # -X: no asynchronous preemption (ALOOP_GO_LDFLAGS, capi/main.go)
            err = sh(["go", "build", "-buildmode=c-shared",
                      "-ldflags=-X=runtime.godebugDefault=asyncpreemptoff=1", "-o", str(out), "./capi"],
                     "go build ./capi", env=env)
            if err:
                for s in SUITES:
                    self.note_missing(s, "asyncloop", f"libasyncloop.so not built ({err})")
                return
            self.library = out
        self.env["ASYNCLOOP_LIBRARY"] = str(self.library)
        log(f"library: {self.library}")

    def make_certs(self):
        d = OUT / "tls"
        ca, cert, key = d / "ca.pem", d / "server.pem", d / "server.key"
        if ca.exists() and cert.exists() and key.exists():
            self.tls = (ca, cert, key)
            return
        if not shutil.which("openssl"):
            self.note_missing("python-tls", None, "the openssl command is missing: no local CA")
            return
        d.mkdir(parents=True, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                   "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        steps = [
            ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
             "-subj", "/CN=asyncloop bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign"],
            ["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost"],
            ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "3650", "-extfile", "ext.cnf"],
        ]
        for argv in steps:
            err = sh(argv, "openssl", cwd=d)
            if err:
                self.note_missing("python-tls", None, f"local CA not made ({err})")
                return
        self.tls = (ca, cert, key)

    def check_python(self):
        for mod in ("uvloop", "rloop"):
            r = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True, text=True)
            if r.returncode != 0:
                self.note_missing("python", mod, f"{mod} is not installed (pip install -r "
                                                 f"bench/requirements.txt failed?)")
        # The servers import asyncloop from this source tree. An installed
        # package has its bytecode compiled (pip does it at install, as the
        # peers' packages have); without it, every server process compiles
        # the binding's source at start, whose transient memory stays in its
        # RSS (about 5 MiB: idle_10k_rss), and PYTHONDONTWRITEBYTECODE would
        # keep it from being cached.
        err = sh([sys.executable, "-m", "compileall", "-q", str(ROOT / "bindings" / "python" / "asyncloop")],
                 "compileall bindings/python")
        if err:
            log(f"warning: the binding's bytecode was not compiled: {err}")

    def build_c(self):
        # libuv: Debian's libuv1-dev, installed if missing.
        if subprocess.run(["dpkg", "-s", "libuv1-dev"], capture_output=True).returncode != 0:
            log("installing libuv1-dev (apt-get)")
            sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
            if sudo is None:
                self.note_missing("c", "libuv", "libuv1-dev is not installed (and no root/sudo)")
            else:
                env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
                err = sh(sudo + ["apt-get", "install", "-y", "-qq", "libuv1-dev"], "apt-get install",
                         env=env)
                if err:
                    sh(sudo + ["apt-get", "update", "-qq"], "apt-get update", env=env)
                    err = sh(sudo + ["apt-get", "install", "-y", "-qq", "libuv1-dev"],
                             "apt-get install libuv1-dev", env=env)
                if err:
                    self.note_missing("c", "libuv", err)
        if ("c", "libuv") not in self.missing:
            src = BENCH / "servers" / "uv_echo_server.c"
            exe = OUT / "uv_echo_server"
            err = None if newer(exe, src) else sh(
                ["gcc", "-O2", "-Wall", "-o", str(exe), str(src), "-luv"], "gcc uv_echo_server")
            if err:
                self.note_missing("c", "libuv", err)
        if self.library is not None:
            src = BENCH / "servers" / "aloop_echo_server.c"
            exe = OUT / "aloop_echo_server"
            libdir = OUT / "aloop-lib"
            libdir.mkdir(exist_ok=True)
            # The linker wants libasyncloop.so, the loader the library's
            # soname (libasyncloop.so.<major>): link both to the library.
            for name in {"libasyncloop.so", soname(self.library)} - {None}:
                link = libdir / name
                if link.is_symlink() or link.exists():
                    link.unlink()
                link.symlink_to(self.library.resolve())
            err = None if newer(exe, src, ROOT / "include" / "asyncloop.h") else sh(
                ["gcc", "-O2", "-Wall", "-I", str(ROOT / "include"), "-o", str(exe), str(src),
                 "-L", str(libdir), "-lasyncloop", f"-Wl,-rpath,{libdir}"], "gcc aloop_echo_server")
            if err:
                self.note_missing("c", "asyncloop", err)

    def find_node_addon(self):
        if not shutil.which("node"):
            self.note_missing("node", None, "suite skipped: node is not installed")
            return
        addon = self.env.get("ASYNCLOOP_NODE_ADDON")
        cands = [Path(addon)] if addon else []
        cands += [BUILD / "bindings" / "node" / "asyncloop.node",
                  OUT / "node-addon" / "bindings" / "node" / "asyncloop.node"]
        found = next((c for c in cands if c.exists()), None)
        err = None
        if found is None and (ROOT / "bindings" / "node" / "CMakeLists.txt").exists():
            log("building the Node addon with CMake (bindings/node)")
            bdir = OUT / "node-addon"
            err = sh(["cmake", "-S", str(ROOT / "bindings" / "node"), "-B", str(bdir),
                      "-DBUILD_TESTING=OFF", "-DASYNCLOOP_NODE_NO_CTEST=ON"], "cmake bindings/node")
            err = err or sh(["cmake", "--build", str(bdir)], "cmake --build (node addon)")
            found = bdir / "bindings" / "node" / "asyncloop.node"
            if err or not found.exists():
                found = None
        if found is None or not (ROOT / "bindings" / "node" / "index.js").exists():
            why = f" ({err})" if err else ""
            self.note_missing("node", None, "suite skipped: the asyncloop Node binding (addon + "
                                            f"bindings/node/index.js) is not built yet{why}")
            return
        self.env["ASYNCLOOP_NODE_ADDON"] = str(found.resolve())
        log(f"node addon: {found}")

    def build_go(self):
        if not shutil.which("go"):
            self.note_missing("go", None, "suite skipped: go is not installed")
            return
        env = dict(self.env, CGO_ENABLED="0")
        for name, impl in (("go_net_echo", "go-net"), ("go_aloop_echo", "asyncloop")):
            err = sh(["go", "build", "-o", str(OUT / name), f"./bench/servers/{name}"],
                     f"go build ./bench/servers/{name}", env=env)
            if err:
                if impl == "asyncloop":
                    self.note_missing("go", None, f"suite skipped: the Go binding does not build ({err})")
                else:
                    self.note_missing("go", impl, err)

    def build_interop(self, suites):
        """The interop drivers (bench/interop/): rpc_c (gcc, linked with
        libaloop_rpc) and rpc_go (go build); Python and Node run from source."""
        rpc = BUILD / "examples" / "libaloop_rpc.so"
        if not rpc.exists():
            self.note_missing("interop", None, f"suite skipped: {rpc} is not built (make build)")
            return
        self.env["ALOOP_RPC_LIBRARY"] = str(rpc)
        src = BENCH / "interop" / "rpc_c.c"
        exe = OUT / "rpc_c"
        err = None
        if not newer(exe, src, rpc):
            err = sh(["gcc", "-O2", "-Wall", f"-I{ROOT / 'include'}", f"-I{ROOT / 'examples' / 'rpc'}",
                      "-o", str(exe), str(src), f"-L{rpc.parent}", "-laloop_rpc",
                      f"-L{BUILD}", "-lasyncloop", f"-Wl,-rpath,{rpc.parent}",
                      f"-Wl,-rpath,{BUILD}"], "gcc bench/interop/rpc_c.c")
        if err:
            self.note_missing("interop", "c", err)
        if not shutil.which("go"):
            self.note_missing("interop", "go", "go is not installed")
        else:
            err = sh(["go", "build", "-o", str(OUT / "rpc_go"), "./bench/interop/rpc_go"],
                     "go build ./bench/interop/rpc_go", env=dict(self.env, CGO_ENABLED="0"))
            if err:
                self.note_missing("interop", "go", err)
        if "node" not in suites:
            self.find_node_addon()
        if self.missing_note("node", None):
            self.note_missing("interop", "node", self.missing_note("node", None))
        elif not (rpc.parent / "aloop_rpc.node").exists():
            self.note_missing("interop", "node", "examples/rpc/node's addon is not built")

    def collect_versions(self):
        v = self.versions
        v["python"] = platform.python_version()
        for mod in ("uvloop", "rloop", "matplotlib"):
            try:
                from importlib.metadata import version
                v[mod] = version(mod)
            except Exception:
                pass
        try:
            import ssl
            v["openssl"] = ssl.OPENSSL_VERSION
        except ImportError:
            pass
        for key, argv in (("node", ["node", "--version"]), ("go", ["go", "version"]),
                          ("gcc", ["gcc", "-dumpfullversion"]),
                          ("libuv", ["dpkg-query", "-W", "-f", "${Version}", "libuv1-dev"])):
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                if r.returncode == 0 and r.stdout.strip():
                    v[key] = r.stdout.strip().replace("go version ", "")
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.library is not None:
            try:
                import ctypes
                lib = ctypes.CDLL(str(self.library))
                lib.aloop_version_string.restype = ctypes.c_char_p
                v["asyncloop"] = lib.aloop_version_string().decode()
            except Exception:
                pass
        try:
            r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                               capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                                       capture_output=True, text=True, timeout=30).stdout.strip()
                v["asyncloop_commit"] = r.stdout.strip() + ("+dirty" if dirty else "")
        except (OSError, subprocess.TimeoutExpired):
            pass


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except OSError:
        pass
    distro = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = ", " + line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs{mem}, {platform.system()} {platform.release()}"
            f"{distro}")


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

def readline(fd, timeout):
    """One line (str, without the newline) from fd within timeout, or ''."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace").strip()


class Server:
    """A server process: prints PORT <n> (or MISSING <why>), ends at stdin EOF."""

    def __init__(self, label, argv, env, log_path):
        self.label, self.argv, self.env, self.log_path = label, argv, env, log_path
        self.proc = None
        self.port = None
        self.missing = None
        self.error = None

    def start(self, timeout=60):
        self.port = self.missing = self.error = None
        self.logf = open(self.log_path, "ab")
        self.logf.write(f"\n=== {' '.join(map(str, self.argv))}\n".encode())
        self.logf.flush()
        try:
            self.proc = subprocess.Popen([str(a) for a in self.argv], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.logf, env=self.env,
                                         cwd=ROOT)
        except OSError as e:
            self.error = f"cannot start: {e}"
            return self
        line = readline(self.proc.stdout.fileno(), timeout)
        if line.startswith("PORT "):
            self.port = int(line.split()[1])
        elif line.startswith("MISSING"):
            self.missing = line[len("MISSING"):].strip()
            self.stop()
        else:
            self.stop()
            self.error = f"did not start (first line {line!r}; see {self.log_path})"
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            log(f"{self.label}: did not exit at stdin EOF, killing pid {self.proc.pid}")
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()
        self.logf.close()
        self.proc = None


def rss_mib(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no {field}")


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.samples = {}   # (suite, workload, impl) -> [values]
        self.meta = {}      # (suite, workload) -> (unit, higher_is_better)
        self.notes = {}     # (suite, workload, impl) -> note
        self.failures = {}  # (suite, workload, impl) -> [errors]
        self.extra = {}     # (suite, workload, impl) -> {name: [values]}

    def add(self, suite, workload, impl, value, unit, hib):
        self.meta[(suite, workload)] = (unit, hib)
        self.samples.setdefault((suite, workload, impl), []).append(value)

    def declare(self, suite, workload, unit, hib):
        self.meta.setdefault((suite, workload), (unit, hib))

    def note(self, suite, workload, impl, note):
        self.notes.setdefault((suite, workload, impl), note)

    def fail(self, suite, workload, impl, err):
        self.failures.setdefault((suite, workload, impl), []).append(str(err))


def fmt(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


class Runner:
    def __init__(self, setup, reps, duration, warmup, quick, only):
        self.setup = setup
        self.reps = reps
        self.duration = duration
        self.warmup = warmup
        self.quick = quick
        self.only = re.compile(only) if only else None
        self.res = Results()

    def wanted(self, name):
        return self.only is None or self.only.search(name)

    @staticmethod
    def order(impls, rep):
        k = rep % len(impls)
        return impls[k:] + impls[:k]

    def client(self, args, timeout):
        argv = [str(self.setup.client)] + [str(a) for a in args]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"client timed out after {timeout:.0f} s")
        lines = r.stdout.strip().splitlines()
        try:
            d = json.loads(lines[-1]) if lines else {}
        except ValueError:
            d = {}
        if r.returncode != 0 or "error" in d or not d:
            raise BenchError(d.get("error") or (r.stderr.strip().splitlines() or ["client failed"])[-1])
        return d

    # -- request/response and bulk workloads over long-lived servers ---------

    def net_group(self, suite, impls, mode, workloads, server_argv):
        """Starts one server per implementation (for one server mode), then
        measures the workloads, the implementations taking turns."""
        workloads = [w for w in workloads if self.wanted(w[0])]
        if not workloads:
            return
        for name, cmode, conns, size in workloads:
            self.declare(suite, name, cmode)
        servers = {}
        for impl in impls:
            note = self.setup.missing_note(suite, impl)
            if mode == "tls":
                note = note or self.setup.missing_note("python-tls", impl)
                if not self.setup.client_tls:
                    note = note or "the load client was built without OpenSSL (libssl-dev missing)"
            if note:
                for w in workloads:
                    self.note_all(suite, w[0], w[1], impl, note)
                continue
            argv = server_argv(impl, mode)
            srv = Server(f"{suite}/{impl}/{mode}", argv, self.setup.env,
                         OUT / "logs" / f"{suite}-{impl}-{mode}.log").start()
            if srv.missing or srv.error:
                note = srv.missing or f"server failed: {srv.error}"
                log(f"{suite}/{impl} ({mode}): {note}")
                for w in workloads:
                    self.note_all(suite, w[0], w[1], impl, note)
                continue
            servers[impl] = srv
        try:
            self.warm_servers(suite, servers, workloads[0])
            for name, cmode, conns, size in workloads:
                for rep in range(self.reps):
                    for impl in self.order(impls, rep):
                        srv = servers.get(impl)
                        if srv is None:
                            continue
                        self.measure_net(suite, name, impl, srv, cmode, conns, size, rep)
        finally:
            for srv in servers.values():
                srv.stop()

    def client_args(self, name, cmode, port, conns, size, duration, warmup):
        args = [cmode, "-p", port, "-c", conns, "-s", size, "-d", duration, "-w", warmup]
        if name.startswith("tls_"):
            args += ["-t", self.setup.tls[0]]
        if cmode == "bulk":
            args += ["-W", 4]
        return args

    def warm_servers(self, suite, servers, workload):
        """One untimed client pass (the group's first workload, no warm-up
        of its own, result discarded) against each server before the
        measured repetitions. A server's first connections can be much
        slower than the later ones: stock asyncio's server is ~4x slower
        until a first connection has closed (glibc raises its mmap threshold
        when the first large mmapped chunk, asyncio's 256 KiB recv buffer,
        is freed), which made the first repetition cold and, with 2
        repetitions (BENCH_QUICK), its median the mean of a cold and a warm
        run."""
        name, cmode, conns, size = workload
        duration = min(0.3, self.duration)
        for impl, srv in servers.items():
            args = self.client_args(name, cmode, srv.port, conns, size, duration, 0)
            try:
                self.client(args, timeout=duration + 60)
            except BenchError as e:
                log(f"{suite}/{impl}: the warm-up pass ({name}) failed: {e}; measuring anyway")
        time.sleep(0.05)  # let the warm-up connections close

    def declare(self, suite, name, cmode):
        if cmode == "bulk":
            self.res.declare(suite, name, "MB/s", True)
        else:
            self.res.declare(suite, name, "req/s", True)
            self.res.declare(suite, name + "_p50", "us", False)
            self.res.declare(suite, name + "_p99", "us", False)

    def note_all(self, suite, name, cmode, impl, note):
        self.res.note(suite, name, impl, note)
        if cmode != "bulk":
            self.res.note(suite, name + "_p50", impl, note)
            self.res.note(suite, name + "_p99", impl, note)

    def measure_net(self, suite, name, impl, srv, cmode, conns, size, rep):
        if not srv.alive():
            log(f"{suite}/{impl}: the server died; restarting it (see {srv.log_path})")
            self.res.fail(suite, name, impl, "the server process died")
            srv.stop()
            srv.start()
            if srv.port is None:
                return
            self.warm_servers(suite, {impl: srv}, (name, cmode, conns, size))
        args = self.client_args(name, cmode, srv.port, conns, size, self.duration, self.warmup)
        try:
            d = self.client(args, timeout=self.duration + self.warmup + 60)
        except BenchError as e:
            log(f"{suite} {name} rep {rep + 1} {impl}: FAILED: {e}")
            self.res.fail(suite, name, impl, e)
            if cmode != "bulk":
                self.res.fail(suite, name + "_p50", impl, e)
                self.res.fail(suite, name + "_p99", impl, e)
            time.sleep(0.1)
            return
        if cmode == "bulk":
            self.res.add(suite, name, impl, d["mb_per_s"], "MB/s", True)
            msg = f"{d['mb_per_s']:.0f} MB/s"
        else:
            self.res.add(suite, name, impl, d["req_per_s"], "req/s", True)
            self.res.add(suite, name + "_p50", impl, d["p50_us"], "us", False)
            self.res.add(suite, name + "_p99", impl, d["p99_us"], "us", False)
            msg = f"{fmt(d['req_per_s'])} req/s, p50 {d['p50_us']:.0f} us, p99 {d['p99_us']:.0f} us"
            if d.get("lost"):
                msg += f", {d['lost']} lost"
        log(f"{suite} {name} rep {rep + 1}/{self.reps} {impl}: {msg}")
        time.sleep(0.05)  # let the previous connections close

    # -- Python ----------------------------------------------------------------

    def py_server_argv(self, impl, mode):
        argv = [sys.executable, BENCH / "servers" / "py_echo_server.py", impl, mode]
        if mode == "tls" and self.setup.tls:
            argv += ["--cert", self.setup.tls[1], "--key", self.setup.tls[2]]
        return argv

    def python_micro(self, impls):
        self.micro("python", impls, PY_MICRO,
                   lambda impl, name: [sys.executable, str(BENCH / "micro" / "py_micro.py"),
                                       impl, name])

    def micro(self, suite, impls, names, argv_of):
        """In-process workloads: one fresh process per measurement (argv_of(impl,
        name)) that prints {"value", "unit"} or {"missing"} as one JSON line."""
        for name in names:
            if not self.wanted(name):
                continue
            self.res.declare(suite, name, "ops/s", True)
            for impl in impls:
                note = self.setup.missing_note(suite, impl)
                if note:
                    self.res.note(suite, name, impl, note)
            for rep in range(self.reps):
                for impl in self.order(impls, rep):
                    if self.setup.missing_note(suite, impl) or \
                            (suite, name, impl) in self.res.notes:
                        continue
                    argv = argv_of(impl, name)
                    try:
                        r = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                                           env=self.setup.env, cwd=ROOT)
                        lines = r.stdout.strip().splitlines()
                        d = json.loads(lines[-1]) if lines else None
                        if r.returncode != 0 or d is None:
                            err = (r.stderr.strip().splitlines() or ["no output"])[-1]
                            raise BenchError(err)
                    except (BenchError, ValueError, subprocess.TimeoutExpired) as e:
                        log(f"{suite} {name} rep {rep + 1} {impl}: FAILED: {e}")
                        self.res.fail(suite, name, impl, e)
                        continue
                    if "missing" in d:
                        log(f"{suite} {name} {impl}: {d['missing']}")
                        self.res.note(suite, name, impl, d["missing"])
                        continue
                    self.res.add(suite, name, impl, d["value"], d["unit"], True)
                    log(f"{suite} {name} rep {rep + 1}/{self.reps} {impl}: {fmt(d['value'])} {d['unit']}")

    def idle_rss(self, suite, impls, server_argv):
        """idle_10k_rss: a fresh server per measurement; its VmRSS while
        IDLE_CONNECTIONS idle connections are open (also recorded: the RSS
        before they opened, and the anonymous part, RssAnon, which leaves out
        the mapped program and libraries)."""
        name = "idle_10k_rss"
        if not self.wanted(name):
            return
        self.res.declare(suite, name, "MiB", False)
        # The same servers IDLE_SETTLED_S seconds later: what stays once a
        # server has been idle a while (asyncloop gives its free heap back
        # after a second without work; the runtimes of the peers have
        # their own timing).
        settled_name = name + "_settled"
        self.res.declare(suite, settled_name, "MiB", False)
        reps = 1 if self.quick else min(self.reps, 3)
        for impl in impls:
            note = self.setup.missing_note(suite, impl)
            if note:
                self.res.note(suite, name, impl, note)
        for rep in range(reps):
            for impl in self.order(impls, rep):
                if self.setup.missing_note(suite, impl):
                    continue
                srv = Server(f"{suite}/{impl}/idle", server_argv(impl),
                             self.setup.env, OUT / "logs" / f"{suite}-{impl}-idle.log").start()
                if srv.missing or srv.error:
                    self.res.note(suite, name, impl, srv.missing or f"server failed: {srv.error}")
                    continue
                cl = None
                try:
                    time.sleep(0.2)
                    before = rss_mib(srv.pid)
                    cl = subprocess.Popen([str(self.setup.client), "idle", "-p", str(srv.port),
                                           "-c", str(IDLE_CONNECTIONS), "-d", "90"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE)
                    line = readline(cl.stdout.fileno(), 120)
                    d = json.loads(line) if line.startswith("{") else {"error": line or "no output"}
                    if "error" in d:
                        raise BenchError(d["error"])
                    time.sleep(0.5)  # let the server settle
                    if not srv.alive():
                        raise BenchError("the server died")
                    value = rss_mib(srv.pid)
                    anon = rss_mib(srv.pid, "RssAnon")
                    self.res.add(suite, name, impl, value, "MiB", False)
                    ex = self.res.extra.setdefault((suite, name, impl), {})
                    ex.setdefault("rss_before_mib", []).append(round(before, 1))
                    ex.setdefault("rss_anon_mib", []).append(round(anon, 1))
                    log(f"{suite} {name} rep {rep + 1}/{reps} {impl}: {value:.1f} MiB with "
                        f"{IDLE_CONNECTIONS} connections (anonymous {anon:.1f} MiB; before: "
                        f"{before:.1f} MiB; connected in {d['connect_seconds']:.1f} s)")
                    time.sleep(IDLE_SETTLED_S - 0.5)
                    if not srv.alive():
                        raise BenchError("the server died")
                    settled = rss_mib(srv.pid)
                    settled_anon = rss_mib(srv.pid, "RssAnon")
                    self.res.add(suite, settled_name, impl, settled, "MiB", False)
                    self.res.extra.setdefault((suite, settled_name, impl), {}).setdefault(
                        "rss_anon_mib", []).append(round(settled_anon, 1))
                    log(f"{suite} {settled_name} rep {rep + 1}/{reps} {impl}: {settled:.1f} MiB "
                        f"after {IDLE_SETTLED_S:g} s idle (anonymous {settled_anon:.1f} MiB)")
                except (BenchError, OSError, ValueError) as e:
                    log(f"{suite} {name} rep {rep + 1} {impl}: FAILED: {e}")
                    self.res.fail(suite, name, impl, e)
                finally:
                    if cl is not None:
                        try:
                            cl.stdin.close()
                            cl.wait(60)
                        except subprocess.TimeoutExpired:
                            cl.kill()
                            cl.wait()
                        cl.stdout.close()
                        cl.stderr.close()
                    srv.stop()
                    time.sleep(0.2)

    def python(self):
        impls = IMPLS["python"]
        self.python_micro(impls)
        groups = {}
        for name, (mode, cmode, conns, size) in PY_NET.items():
            groups.setdefault(mode, []).append((name, cmode, conns, size))
        for mode, workloads in groups.items():
            self.net_group("python", impls, mode, workloads, self.py_server_argv)
        self.idle_rss("python", impls, lambda impl: self.py_server_argv(impl, "protocol"))

    # -- C, Node, Go -------------------------------------------------------------

    def host_suite(self, suite):
        impls = IMPLS[suite]
        skip = self.setup.missing_note(suite, None)
        net = dict(HOST_NET, **(C_NET if suite == "c" else NODE_NET if suite == "node"
                                else GO_NET if suite == "go" else {}))
        groups = {}  # server mode -> workloads
        for n, (mode, c, k, s) in net.items():
            groups.setdefault(mode, []).append((n, c, k, s))
        if skip:
            for name, cmode, _, _ in sum(groups.values(), []):
                if self.wanted(name):
                    self.declare(suite, name, cmode)
                    for impl in impls:
                        self.note_all(suite, name, cmode, impl, skip)
            if suite == "node":
                for name in NODE_MICRO:
                    if self.wanted(name):
                        self.res.declare(suite, name, "ops/s", True)
                        for impl in impls:
                            self.res.note(suite, name, impl, skip)
            return

        def argv(impl, mode):
            if suite == "c":
                return [OUT / ("uv_echo_server" if impl == "libuv" else "aloop_echo_server")]
            tls = ["--cert", self.setup.tls[1], "--key", self.setup.tls[2]] \
                if mode == "tls" and self.setup.tls else []
            if suite == "node":
                return ["node", BENCH / "servers" / "node_echo_server.js", impl, mode, *tls]
            return [OUT / ("go_net_echo" if impl == "go-net" else "go_aloop_echo"), mode, *tls]

        for mode, workloads in groups.items():
            self.net_group(suite, impls, mode, workloads, argv)
        if suite == "node":
            self.micro(suite, impls, NODE_MICRO,
                       lambda impl, name: ["node", str(BENCH / "micro" / "node_micro.js"),
                                           impl, name])
        if suite == "c":
            self.idle_rss(suite, impls, lambda impl: argv(impl, "tcp"))


    def interop(self):
        """Each host's driver as its own process per run, the hosts taking
        turns within each repetition."""
        suite = "interop"
        impls = IMPLS[suite]
        skip = self.setup.missing_note(suite, None)
        argv = {"c": [OUT / "rpc_c"], "python": [sys.executable, BENCH / "interop" / "rpc_py.py"],
                "node": ["node", BENCH / "interop" / "rpc_node.js"], "go": [OUT / "rpc_go"]}
        for name, (mode, inflight, size) in INTEROP.items():
            if not self.wanted(name):
                continue
            self.res.declare(suite, name, "req/s", True)
            for impl in impls:
                note = skip or self.setup.missing_note(suite, impl)
                if note:
                    self.res.note(suite, name, impl, note)
            if skip:
                continue
            for rep in range(self.reps):
                for impl in self.order(impls, rep):
                    if self.setup.missing_note(suite, impl):
                        continue
                    args = [str(a) for a in argv[impl] + [mode, self.duration, self.warmup,
                                                          inflight, size]]
                    try:
                        r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                                           env=self.setup.env,
                                           timeout=60 + 4 * (self.duration + self.warmup))
                        lines = r.stdout.strip().splitlines()
                        d = json.loads(lines[-1]) if lines else {}
                        if r.returncode != 0 or "value" not in d:
                            raise BenchError(d.get("error") or
                                             (r.stderr.strip().splitlines() or ["failed"])[-1])
                    except (BenchError, ValueError, subprocess.TimeoutExpired) as e:
                        log(f"{suite}/{name}/{impl}: {e}")
                        self.res.fail(suite, name, impl, e)
                        continue
                    self.res.add(suite, name, impl, d["value"], "req/s", True)
                    log(f"{suite}/{name}/{impl} rep {rep + 1}: {fmt(d['value'])} req/s")


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def workload_order(suite, workload):
    base = re.sub(r"_p(50|99)$", "", workload)
    suffix = {"": 0, "_p50": 1, "_p99": 2}[workload[len(base):]]
    names = (PY_ORDER if suite == "python" else C_ORDER if suite == "c"
             else NODE_ORDER if suite == "node" else GO_ORDER if suite == "go"
             else list(INTEROP) if suite == "interop" else list(HOST_NET))
    idx = names.index(base) if base in names else len(names)
    return (SUITES.index(suite), idx, suffix)


def build_report(res, runner, setup, suites, started, finished):
    entries = []
    for (suite, workload), (unit, hib) in sorted(res.meta.items(),
                                                 key=lambda kv: workload_order(*kv[0])):
        for impl in IMPLS[suite]:
            key = (suite, workload, impl)
            vals = res.samples.get(key, [])
            e = {"suite": suite, "workload": workload, "impl": impl,
                 "value": round(statistics.median(vals), 3) if vals else None,
                 "unit": unit, "higher_is_better": hib,
                 "samples": [round(v, 3) for v in vals]}
            fails = res.failures.get(key, [])
            if key in res.notes:
                e["note"] = res.notes[key]
            elif fails and not vals:
                e["note"] = f"failed: {fails[0]}"
            elif fails:
                e["note"] = f"{len(fails)} of {len(vals) + len(fails)} runs failed: {fails[0]}"
            elif not vals:
                e["note"] = "not measured"
            if key in res.extra:
                e.update({k: v for k, v in res.extra[key].items()})
            entries.append(e)
    ratios = []
    by = {(e["suite"], e["workload"], e["impl"]): e for e in entries}
    for (suite, workload), (unit, hib) in sorted(res.meta.items(),
                                                 key=lambda kv: workload_order(*kv[0])):
        if suite == "interop":  # each host relative to the same library driven from C
            c = by.get((suite, workload, "c"))
            for host in IMPLS[suite][1:]:
                h = by.get((suite, workload, host))
                r = h["value"] / c["value"] if c and h and c["value"] and h["value"] else None
                ratios.append({"suite": suite, "workload": workload, "peer": host,
                               "ratio": round(r, 4) if r is not None else None})
            continue
        a = by.get((suite, workload, "asyncloop"))
        for peer in IMPLS[suite]:
            if peer == "asyncloop":
                continue
            p = by.get((suite, workload, peer))
            r = None
            if a and p and a["value"] and p["value"]:
                r = a["value"] / p["value"] if hib else p["value"] / a["value"]
            ratios.append({"suite": suite, "workload": workload, "peer": peer,
                           "ratio": round(r, 4) if r is not None else None})
    load = os.getloadavg()
    return {
        "date": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "machine": machine_description(),
        "reps": runner.reps,
        "quick": runner.quick,
        "duration_s": runner.duration,
        "warmup_s": runner.warmup,
        "suites": list(suites),
        "loadavg_end": [round(x, 2) for x in load],
        "versions": setup.versions,
        "ratio_definition": "asyncloop relative to the peer, oriented so that > 1 means asyncloop "
                            "is better: asyncloop/peer for higher-is-better values, peer/asyncloop "
                            "for lower-is-better ones (latency, memory)",
        "results": entries,
        "ratios": ratios,
    }


def markdown(report, image=None):
    lines = []
    quick = " (BENCH_QUICK: fewer, shorter runs)" if report["quick"] else ""
    when = report["date"].replace("T", " ").replace("+00:00", " UTC")
    lines.append(f"Measured {when} on {report['machine']}; median of {report['reps']} "
                 f"repetition(s){quick}, {report['duration_s']} s per run. Load average at the "
                 f"end: {', '.join(map(str, report['loadavg_end']))}.")
    if report["loadavg_end"] and report["loadavg_end"][0] > (os.cpu_count() or 1):
        lines.append("")
        lines.append("**The machine was busy with other work during this run (load average above "
                     "the number of CPUs): these numbers are noisy.**")
    v = report.get("versions", {})
    if v:
        lines.append("")
        lines.append("Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".")
    lines.append("")
    lines.append("Ratio columns: asyncloop relative to the peer, **> 1 means asyncloop is better** "
                 "(asyncloop/peer for throughput, peer/asyncloop for latency and memory).")
    if image:
        lines += ["", f"![asyncloop relative to each peer]({image})"]
    notes = []

    def cell(e):
        if e["value"] is not None and "note" not in e:
            return fmt(e["value"])
        txt = fmt(e["value"]) if e["value"] is not None else "n/a"
        if e.get("note"):
            if e["note"] not in notes:
                notes.append(e["note"])
            txt += f" [{notes.index(e['note']) + 1}]"
        return txt

    by = {(e["suite"], e["workload"], e["impl"]): e for e in report["results"]}
    rat = {(r["suite"], r["workload"], r["peer"]): r["ratio"] for r in report["ratios"]}
    for suite in SUITES:
        rows = []
        seen = []
        for e in report["results"]:
            if e["suite"] == suite and e["workload"] not in seen:
                seen.append(e["workload"])
        if not seen:
            continue
        impls = IMPLS[suite]
        peers = [i for i in impls if i not in ("asyncloop", "c" if suite == "interop" else "")]
        lines += ["", f"### {suite}", ""]
        if suite == "interop":
            lines += ["The example library (examples/rpc) driven from each host; ratio columns: "
                      "host/c (1 = as fast as from C).", ""]
        head = ["workload", "unit"] + impls + [f"{p}/c" if suite == "interop" else f"vs {p}"
                                               for p in peers]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(impls) + len(peers))) + "|")
        for w in seen:
            e0 = by[(suite, w, impls[0])]
            row = [f"`{w}`", e0["unit"]]
            row += [cell(by[(suite, w, i)]) for i in impls]
            for p in peers:
                r = rat.get((suite, w, p))
                row.append(f"{r:.2f}×" if r is not None else "–")
            rows.append("| " + " | ".join(row) + " |")
        lines += rows
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"{i + 1}. {n}" for i, n in enumerate(notes)]
    return "\n".join(lines) + "\n"


def draw_chart(report, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"chart not drawn: matplotlib is not available ({e})"
    rows = []  # (label, {peer: ratio}, note)
    by = {(e["suite"], e["workload"], e["impl"]): e for e in report["results"]}
    seen = []
    for r in report["ratios"]:
        key = (r["suite"], r["workload"])
        if key[0] == "interop":
            continue  # host/c, not asyncloop/peer: in the table only
        if key[1].endswith("_p99"):
            continue  # in the table; the chart shows throughput and p50
        if key not in seen:
            seen.append(key)
    peers_all = ["asyncio", "uvloop", "rloop", "libuv", "node-net", "go-net"]
    colors = {"asyncio": "#4c72b0", "uvloop": "#dd8452", "rloop": "#55a868",
              "libuv": "#c44e52", "node-net": "#8172b3", "go-net": "#937860"}
    for suite, w in seen:
        ratios = {r["peer"]: r["ratio"] for r in report["ratios"]
                  if r["suite"] == suite and r["workload"] == w}
        a = by.get((suite, w, "asyncloop"))
        note = None
        if a is not None and a["value"] is None:
            note = "asyncloop: n/a"
        elif all(v is None for v in ratios.values()):
            note = "no peer measured"
        rows.append((f"{suite} · {w}", ratios, note))
    if not rows:
        return "chart not drawn: no results"
    n = len(rows)
    fig, ax = plt.subplots(figsize=(11, 1.4 + 0.3 * n))
    bar_h = 0.8
    used = set()
    for i, (label, ratios, note) in enumerate(rows):
        peers = [p for p in peers_all if p in ratios]
        k = len(peers)
        for j, p in enumerate(peers):
            r = ratios[p]
            y = i - bar_h / 2 + bar_h * (j + 0.5) / k
            if r is None:
                continue
            ax.barh(y, r - 1, left=1, height=bar_h / k * 0.9,
                    color=colors[p], label=p if p not in used else None)
            used.add(p)
            ax.text(r, y, f" {r:.2f}×" if r >= 1 else f"{r:.2f}× ", va="center",
                    ha="left" if r >= 1 else "right", fontsize=6)
        if note:
            ax.text(1.02, i, note, va="center", ha="left", fontsize=7, color="#777777",
                    style="italic")
    ax.set_xscale("log", base=2)
    vals = [r for _, rs, _ in rows for r in rs.values() if r]
    lo = min(vals + [0.5]) / 1.6
    hi = max(vals + [2]) * 1.6
    ax.set_xlim(lo, hi)
    ticks = [t for t in (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16, 32, 64)
             if lo <= t <= hi]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}×" if t >= 1 else f"1/{1 / t:g}×" for t in ticks])
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_yticks(range(n))
    ax.set_yticklabels([r[0] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_ylim(n - 0.5, -0.5)
    ax.grid(axis="x", which="major", linestyle=":", linewidth=0.5)
    ax.set_xlabel("asyncloop relative to the peer (> 1: asyncloop better; "
                  "throughput a/p, latency & memory p/a)")
    quick = ", BENCH_QUICK" if report["quick"] else ""
    when = report["date"].replace("T", " ").replace("+00:00", " UTC")
    ax.set_title(f"asyncloop vs peers — {when}, median of {report['reps']}{quick}\n"
                 f"{report['machine']}", fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, title="peer",
              title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


def update_readme(readme, report, image_rel):
    if not readme.exists():
        return False
    text = readme.read_text()
    if START not in text or END not in text:
        return False
    body = markdown(report, image=image_rel)
    new = text.split(START)[0] + START + "\n" + body + END + text.split(END, 1)[1]
    readme.write_text(new)
    return True


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    ap.add_argument("--suites", default=os.environ.get("BENCH_SUITES", ",".join(SUITES)))
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY"),
                    help="measure only the workloads whose name matches this regex")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "0")))
    ap.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", "0")))
    ap.add_argument("--no-readme", action="store_true", help="do not update the README(s)")
    ap.add_argument("--write-latest", action="store_true",
                    help="a partial run (--suites / --only) writes bench/results/latest.* "
                         "(by default it writes partial.*, leaving latest.* as it is)")
    args = ap.parse_args()

    reexec_in_venv()

    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    for s in suites:
        if s not in SUITES:
            raise SystemExit(f"unknown suite {s!r} (one of {', '.join(SUITES)})")
    reps = args.reps or (2 if args.quick else 5)
    duration = args.duration or (0.4 if args.quick else 1.5)
    warmup = 0.1 if args.quick else 0.3

    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    log(f"suites {', '.join(suites)}; {reps} repetitions of {duration} s "
        f"(+{warmup} s warm-up){' [quick]' if args.quick else ''}; "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    setup = Setup()
    setup.run(suites)
    setup.collect_versions()

    runner = Runner(setup, reps, duration, warmup, args.quick, args.only)
    if "python" in suites:
        runner.python()
    for s in ("c", "node", "go"):
        if s in suites:
            runner.host_suite(s)
    if "interop" in suites:
        runner.interop()

    finished = datetime.datetime.now(datetime.timezone.utc)
    report = build_report(runner.res, runner, setup, suites, started, finished)
    complete = set(suites) == set(SUITES) and not args.only
    # A partial run must not replace the committed results of a full one.
    stem = "latest" if complete or args.write_latest else "partial"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    err = draw_chart(report, RESULTS / f"{stem}.png")
    if err:
        log(err)
    md = markdown(report, image=f"{stem}.png" if err is None else None)
    (RESULTS / f"{stem}.md").write_text("# asyncloop benchmarks\n\n" + md)
    if not complete and not args.no_readme:
        log("a partial run (--suites / --only): the README section is left as it is")
    if complete and not args.no_readme:
        for readme, rel in ((BENCH / "README.md", "results/latest.png"),
                            (ROOT / "README.md", "bench/results/latest.png")):
            if update_readme(readme, report, rel if err is None else None):
                log(f"updated {readme.relative_to(ROOT)}")
    print(md)
    log(f"done in {time.monotonic() - t0:.0f} s: bench/results/{stem}.json, {stem}.md, {stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
