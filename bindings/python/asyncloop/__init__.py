"""asyncloop: asyncio's event loop with its I/O done by libasyncloop.

Usage::

    import asyncloop
    asyncloop.run(main())                # like asyncio.run

    with asyncio.Runner(loop_factory=asyncloop.new_event_loop) as r:
        r.run(main())

    asyncio.run(main(), loop_factory=asyncloop.new_event_loop)   # Python 3.12+

    asyncloop.install()                  # deprecated from Python 3.12 on (as
    asyncio.run(main())                  # uvloop.install): sets EventLoopPolicy

Supported: CPython 3.11, 3.12 and 3.13 with the GIL.  ``EventLoopPolicy``
and ``install()`` are asyncio's policy system, which Python 3.14 deprecates
(removal planned for 3.16): they are made only when first used, and from
3.16 on they are gone, as in uvloop.  A free-threaded build running without
the GIL is refused at import (see ``_check_gil``).

The shared library is found through the environment variable
``ASYNCLOOP_LIBRARY``, else a ``libasyncloop.so`` inside this package, else
``build/libasyncloop.so`` of the source tree.  It is loaded when the first
loop is created; its version must have this package's major version and at
least its minor version (``VERSION``), else ImportError says which is which.
"""

import sys as _sys

from ._errors import Error, NotLoopThreadError, ResolveError, err_name
from ._loop import EventLoop, new_event_loop, run
from ._subprocess import SubprocessTransport
from ._transports import DatagramTransport, Server, Transport

from ._version import VERSION, __version__  # the library's version (include/asyncloop.h)


def library_version() -> str:
    """The version string of the loaded library ("major.minor.patch")."""
    from . import _bindings

    return _bindings.load().aloop_version_string().decode()


def library_path() -> str:
    """The path of the shared library this package uses (loads it)."""
    from . import _bindings

    return _bindings.load().path


def live_handles() -> int:
    """The number of live library handles in the process, of every loop
    (aloop_live_handles): for leak tests, it returns to where it started
    once everything is closed."""
    import ctypes

    from . import _bindings

    n = ctypes.c_size_t()
    lib = _bindings.load()
    rc = lib.aloop_live_handles(ctypes.byref(n))
    if rc < 0:
        raise Error(rc, _bindings.last_error(lib))
    return n.value


__all__ = [
    "DatagramTransport",
    "EventLoop",
    "Error",
    "NotLoopThreadError",
    "ResolveError",
    "Server",
    "SubprocessTransport",
    "Transport",
    "err_name",
    "library_path",
    "library_version",
    "live_handles",
    "new_event_loop",
    "run",
]

#: asyncio's policy system (deprecated by Python 3.14, removed by 3.16).
_POLICY_NAMES = ("EventLoopPolicy", "install")
if _sys.version_info < (3, 16):
    __all__ += _POLICY_NAMES


def __getattr__(name: str):  # noqa: ANN202 - module __getattr__ (PEP 562)
    if name not in _POLICY_NAMES:
        raise AttributeError(f"module 'asyncloop' has no attribute {name!r}")
    if _sys.version_info >= (3, 16):
        raise AttributeError(
            f"module 'asyncloop' has no attribute {name!r} (asyncio's event loop policy "
            "system is gone in Python 3.16: use asyncloop.run() or "
            "asyncio.Runner(loop_factory=asyncloop.new_event_loop))")
    if name == "EventLoopPolicy" and _sys.version_info >= (3, 14):
        import warnings

        warnings.warn(
            "asyncloop.EventLoopPolicy is deprecated with asyncio's policy system "
            "(Python 3.14): use asyncloop.run() or "
            "asyncio.Runner(loop_factory=asyncloop.new_event_loop)",
            DeprecationWarning, stacklevel=2)
    from . import _policy

    return getattr(_policy, name)


def _check_gil() -> None:
    """Refuses a free-threaded interpreter running without the GIL.

    The binding is not safe there: it calls the library through
    ``ctypes.PyDLL`` (the thread stays attached to the interpreter during
    the call, which in a free-threaded build stalls every stop-the-world
    pause, the garbage collector's included, for as long as a call lasts),
    and it shares per-loop state (the ready queue, the write arena of the
    batched seam, the registry of objects handed to the library) between
    the loop thread and ``call_soon_threadsafe`` callers on the strength of
    the GIL, without locks of its own.  With the GIL enabled
    (``PYTHON_GIL=1`` or ``-X gil=1``) a free-threaded build works as any
    other."""
    is_gil_enabled = getattr(_sys, "_is_gil_enabled", None)
    if is_gil_enabled is not None and not is_gil_enabled():
        raise ImportError(
            "asyncloop does not support free-threaded Python running without the GIL "
            f"(Python {_sys.version.split()[0]}, GIL disabled): its ctypes binding "
            "relies on the GIL. Run with the GIL enabled: PYTHON_GIL=1 or "
            "python -X gil=1.")


_check_gil()
