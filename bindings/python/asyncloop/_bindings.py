"""Low-level ctypes layer: a one-to-one mirror of ``include/asyncloop.h``.

Nothing here is idiomatic; the rest of the package builds on it.  The types
and the table ``SIGNATURES`` (every function of the header with its ctypes
types) live in ``_abi.py``, generated from the header by ``tools/gen_abi.py``
(the one generator of every binding's declarations); the CTest check
``abi-generated`` fails when it is stale.

Functions that may block, or that are THREAD-SAFE and therefore called from
threads other than the loop's, are bound through :class:`ctypes.CDLL` (the GIL
is released during the call).  Every other function runs on the loop thread
and cannot block, so it is bound through :class:`ctypes.PyDLL` (the GIL is
kept: ~100 ns cheaper per call).

The library is located by :func:`find_library` and loaded lazily by
:func:`load`.  After ``os.fork()`` every function of a loaded library is
replaced in the child by a stub that raises :class:`RuntimeError` (the Go
runtime inside the library does not survive fork, golang/go#15538), and the
next :func:`load` in the child loads a fresh copy (see "fork" below).
"""

from __future__ import annotations

import ctypes
import os
import threading
from ctypes import c_double, c_int, c_void_p
from pathlib import Path
from typing import Any, Callable, List, Optional

from ._abi import *  # noqa: F401,F403  (types, structs, constants)
from ._abi import ERRNO_CODES, SIGNATURES

from ._version import VERSION

#: The major version of the C ABI this binding was written for.
ABI_MAJOR = VERSION[0]

for _name, _value in ERRNO_CODES.items():
    globals()["ALOOP_" + _name] = _value
del _name, _value
ALOOP_OK = 0


# ---------------------------------------------------------------------------
# fork
# ---------------------------------------------------------------------------
# The Go runtime inside a loaded library does not survive os.fork(): only
# the forking thread exists in the child, and calling into that runtime
# hangs or crashes (golang/go#15538).  So, in a child:
#  - the inherited library is dead: every function of it raises
#    RuntimeError (FORK_MESSAGE), so loops created before the fork fail
#    clearly instead of hanging (closing them is quiet);
#  - the first loop created in the child loads a fresh copy of the library
#    (a copy in memory, memfd_create: dlopen would return the dead one for
#    the same file), with a runtime of its own; about 10 ms and 10 MB
#    once per child that uses asyncloop (multiprocessing's fork workers).
#  - a process that never loaded the library (it only imported asyncloop)
#    forks without any of this.

FORK_MESSAGE = (
    "this asyncloop loop was created before os.fork(): the Go runtime inside "
    "libasyncloop does not survive fork (golang/go#15538). Create a new loop "
    "in the child (asyncio.run, asyncloop.new_event_loop): it uses a fresh "
    "copy of the library."
)

#: True in a child process created by os.fork() after the library was
#: loaded: the next load() loads a fresh copy.
forked = False


def _fork_stub(name: str) -> Callable[..., Any]:
    def stub(*args: Any) -> Any:
        raise RuntimeError(f"{name}: {FORK_MESSAGE}")

    stub.__name__ = name
    return stub


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def _missing_stub(name: str, path: str) -> Callable[..., Any]:
    def stub(*args: Any) -> Any:
        raise NotImplementedError(f"asyncloop: {path} does not export {name}")

    stub.__name__ = name
    return stub


#: Functions the high-level layer cannot work without.
_REQUIRED = (
    "aloop_version", "aloop_loop_new", "aloop_loop_close", "aloop_loop_free",
    "aloop_loop_run_once", "aloop_loop_wakeup", "aloop_last_error",
    "aloop_loop_set_event_queue", "aloop_loop_set_write_queue", "aloop_loop_poll",
    "aloop_loop_poll_args", "aloop_loop_flush",
)


class Library:
    """The loaded library: one attribute per C function of the header."""

    path: str

    def __init__(self, path: str) -> None:
        self.path = path
        cdll = ctypes.CDLL(path)
        pydll = ctypes.PyDLL(path)
        missing: List[str] = []
        for name, (restype, argtypes, release_gil) in SIGNATURES.items():
            try:
                fn = getattr(cdll if release_gil else pydll, name)
            except AttributeError:
                missing.append(name)
                setattr(self, name, _missing_stub(name, path))
                continue
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)
        #: Functions of the header the library does not export.
        self.missing = missing
        # Extra binding (not in the header table): aloop_loop_run_once through
        # PyDLL, for zero-timeout polls that cannot block (keeps the GIL,
        # ~100 ns cheaper).
        if "aloop_loop_run_once" not in missing:
            fn = getattr(pydll, "aloop_loop_run_once")
            fn.restype, fn.argtypes = c_int, [c_void_p, c_double]
            self.aloop_loop_run_once_nowait = fn
        # ... and aloop_loop_poll_args (the seam's poll) with the block's address as an int
        # (a c_void_p converts faster than a pointer to a Structure), waiting
        # (GIL released) or not.
        if "aloop_loop_poll_args" not in missing:
            for dll, attr in ((cdll, "aloop_loop_poll_args_wait"), (pydll, "aloop_loop_poll_args_nowait")):
                fn = getattr(dll, "aloop_loop_poll_args")
                fn.restype, fn.argtypes = c_int, [c_void_p]
                setattr(self, attr, fn)
        required = [n for n in _REQUIRED if n in missing]
        if required:
            raise ImportError(
                f"asyncloop: {path} lacks function(s) this binding needs: "
                f"{', '.join(required)}"
            )
        self._cdll = cdll
        self._pydll = pydll

    #: True once a fork made this copy of the library unusable (in the child).
    dead = False

    def _poison(self) -> None:
        self.dead = True
        for name in list(SIGNATURES) + ["aloop_loop_run_once_nowait", "aloop_loop_poll_args_wait",
                                          "aloop_loop_poll_args_nowait"]:
            setattr(self, name, _fork_stub(name))

    def __getattr__(self, name: str) -> Any:  # only for names not in the table
        raise AttributeError(name)


_lib: Optional[Library] = None
_load_lock = threading.Lock()


def find_library() -> str:
    """Returns the path of libasyncloop.so this binding uses.

    In order: the environment variable ``ASYNCLOOP_LIBRARY``; a
    ``libasyncloop.so`` bundled inside the package; ``build/libasyncloop.so``
    of the source tree the package lives in (``bindings/python/asyncloop``
    -> ``build/``).
    """
    env = os.environ.get("ASYNCLOOP_LIBRARY")
    if env:
        if not os.path.exists(env):
            raise ImportError(f"asyncloop: ASYNCLOOP_LIBRARY={env!r} does not exist")
        return env
    here = Path(__file__).resolve().parent
    candidates = [
        here / "libasyncloop.so",
        here.parent.parent.parent / "build" / "libasyncloop.so",
    ]
    for c in candidates:
        if c.exists():
            return str(c)
    raise ImportError(
        "asyncloop: libasyncloop.so not found; set ASYNCLOOP_LIBRARY to its "
        "absolute path (looked in: " + ", ".join(str(c) for c in candidates) + ")"
    )


def check_version(path: str, version: int) -> None:
    """The library must have this package's major version and at least its minor
    (the ABI only grows within a major version)."""
    got = (version >> 16, (version >> 8) & 0xFF, version & 0xFF)
    if got[0] != VERSION[0] or got[1] < VERSION[1]:
        raise ImportError(
            f"asyncloop: {path} is libasyncloop {'%d.%d.%d' % got}, but this asyncloop package "
            f"is {'%d.%d.%d' % VERSION} and needs libasyncloop {VERSION[0]}.x with x >= "
            f"{VERSION[1]} (set ASYNCLOOP_LIBRARY to a matching library, or reinstall the package)"
        )


def load() -> Library:
    """Loads the library once (thread-safe) and checks its major version; in
    a child of a fork that inherited it, a fresh copy (see "fork" above)."""
    global _lib
    lib = _lib
    if lib is not None:
        return lib
    with _load_lock:
        if _lib is None:
            path = find_library()
            if forked:
                lib = _load_fresh_copy(path)
            else:
                lib = Library(path)
            check_version(path, lib.aloop_version())
            _lib = lib
    assert _lib is not None
    return _lib


def _load_fresh_copy(path: str) -> Library:
    """The library at path loaded anew in a forked child: from a copy in an
    anonymous memory file (a temporary file where memfd_create is missing),
    which the dynamic loader sees as another library."""
    fd = -1
    tmp = None
    try:
        try:
            fd = os.memfd_create("libasyncloop.so", os.MFD_CLOEXEC)
            # The pid makes the name unique: the dynamic loader returns a
            # library already loaded under the same name, and a grandchild
            # inherits its parent's copy, loaded from an fd number the
            # grandchild's new copy may get again ("/proc/self/fd/N" then
            # named the inherited, dead copy).
            load_path = f"/proc/{os.getpid()}/fd/{fd}"
        except (AttributeError, OSError):
            import tempfile
            fd, tmp = tempfile.mkstemp(prefix="libasyncloop-", suffix=".so")
            load_path = tmp
        with open(path, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            off = 0
            while off < size:
                n = os.sendfile(fd, src.fileno(), off, size - off)
                if n <= 0:
                    raise OSError(f"asyncloop: short copy of {path}")
                off += n
        try:
            lib = Library(load_path)
        except OSError as exc:
            raise RuntimeError(f"asyncloop: cannot load a fresh copy of {path} after "
                               f"os.fork(): {exc}") from exc
        lib.path = path
        return lib
    finally:
        if fd >= 0:
            os.close(fd)  # the mapping keeps the copy
        if tmp is not None:
            os.unlink(tmp)


def _after_fork_in_child() -> None:
    global forked, _lib
    lib = _lib
    if lib is None:
        return  # never loaded: nothing was inherited
    forked = True
    lib._poison()
    _lib = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def last_error(lib: Library) -> str:
    """The calling thread's last detailed error message ('' if none)."""
    buf = ctypes.create_string_buffer(512)
    n = lib.aloop_last_error(buf, 512)
    if n <= 0:
        return ""
    if n >= 512:
        buf = ctypes.create_string_buffer(n + 1)
        lib.aloop_last_error(buf, n + 1)
    return buf.value.decode("utf-8", "replace")


def future_error_message(lib: Library, future: int) -> str:
    buf = ctypes.create_string_buffer(512)
    n = lib.aloop_future_error_message(future, buf, 512)
    if n <= 0:
        return ""
    if n >= 512:
        buf = ctypes.create_string_buffer(n + 1)
        lib.aloop_future_error_message(future, buf, n + 1)
    return buf.value.decode("utf-8", "replace")
