"""asyncloop: asyncio's event loop with its I/O done by libasyncloop.

Usage::

    import asyncloop
    asyncloop.run(main())                # like asyncio.run

    asyncloop.install()                  # or: make asyncio use asyncloop
    asyncio.run(main())

    with asyncio.Runner(loop_factory=asyncloop.new_event_loop) as r:
        r.run(main())

The shared library is found through the environment variable
``ASYNCLOOP_LIBRARY``, else a ``libasyncloop.so`` inside this package, else
``build/libasyncloop.so`` of the source tree.  It is loaded when the first
loop is created; its version must have this package's major version and at
least its minor version (``VERSION``), else ImportError says which is which.
"""

from ._errors import Error, NotLoopThreadError, ResolveError, err_name
from ._loop import EventLoop, EventLoopPolicy, install, new_event_loop, run
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


__all__ = [
    "DatagramTransport",
    "EventLoop",
    "EventLoopPolicy",
    "Error",
    "NotLoopThreadError",
    "ResolveError",
    "Server",
    "SubprocessTransport",
    "Transport",
    "err_name",
    "install",
    "library_path",
    "library_version",
    "new_event_loop",
    "run",
]
