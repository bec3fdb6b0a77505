"""Mapping of ALOOP_E* codes to Python exceptions."""

from __future__ import annotations

import os
import socket
from typing import Optional

from . import _bindings as _b
from ._abi import ERRNO_MESSAGES

_NAMES = {v: "ALOOP_" + k for k, v in _b.ERRNO_CODES.items()}


class Error(OSError):
    """An asyncloop error that has no errno equivalent (codes below -3000).

    ``.code`` is the negative ALOOP_E* code and ``.name`` its name
    (``"ALOOP_ECLOSED"``).  Errors that do have an errno are raised as the
    matching :class:`OSError` subclass instead (``ConnectionRefusedError``
    ...), with ``.errno`` set and the same ``.code``/``.name`` attributes.
    """

    code: int
    name: str

    def __init__(self, code: int, message: Optional[str] = None) -> None:
        name = err_name(code)
        text = message or ERRNO_MESSAGES.get(code, "unknown error")
        super().__init__(f"[{name}] {text}")
        self.code = code
        self.name = name

    def __reduce__(self):  # pragma: no cover - pickling support
        return (type(self), (self.code, self.args[0] if self.args else None))


class ResolveError(Error, socket.gaierror):
    """ALOOP_ERESOLVE: name resolution failed (also a :class:`socket.gaierror`).

    As the ``socket.gaierror`` that ``socket.getaddrinfo`` raises, ``.errno``
    is the ``socket.EAI_*`` code (when the reason is one getaddrinfo gives)
    and ``.strerror`` the reason ("Name or service not known"); ``.code`` is
    ALOOP_ERESOLVE.
    """

    def __init__(self, code: int, message: Optional[str] = None) -> None:
        reason = (message or "name resolution failed").rsplit(": ", 1)[-1]
        eai = _EAI_CODES.get(reason.replace(" (NI_NAMEREQD)", ""))
        if eai is None:
            Error.__init__(self, code, message)
            return
        OSError.__init__(self, eai, reason)
        self.code = code
        self.name = err_name(code)


#: getaddrinfo's reasons (gai_strerror) -> socket.EAI_* codes.
_EAI_CODES = {
    text: getattr(socket, name)
    for text, name in (
        ("Name or service not known", "EAI_NONAME"),
        ("Temporary failure in name resolution", "EAI_AGAIN"),
        ("Non-recoverable failure in name resolution", "EAI_FAIL"),
        ("ai_family not supported", "EAI_FAMILY"),
        ("Address family for hostname not supported", "EAI_ADDRFAMILY"),
        ("ai_socktype not supported", "EAI_SOCKTYPE"),
        ("Servname not supported for ai_socktype", "EAI_SERVICE"),
        ("No address associated with hostname", "EAI_NODATA"),
        ("Bad value for ai_flags", "EAI_BADFLAGS"),
        ("Memory allocation failure", "EAI_MEMORY"),
        ("System error", "EAI_SYSTEM"),
    )
    if hasattr(socket, name)
}


class NotLoopThreadError(Error, RuntimeError):
    """ALOOP_ENOTLOOPTHREAD (debug mode): a non-thread-safe operation was
    called from a thread other than the loop's.  Also a RuntimeError, as
    asyncio's own check in debug mode raises."""


def err_name(code: int) -> str:
    """The ALOOP_E* name of a code (``"ALOOP_EUNKNOWN"`` if unknown)."""
    if code == 0:
        return "ALOOP_OK"
    return _NAMES.get(code, "ALOOP_EUNKNOWN")


def make_error(code: int, detail: str = "") -> OSError:
    """Builds the exception for a negative ALOOP_E* code.

    -errno codes become ``OSError(errno, strerror)``: Python picks the
    subclass (``ConnectionRefusedError`` for ECONNREFUSED ...).  ``detail``,
    the library's detailed message, is appended to the strerror text.
    """
    if -3000 < code < 0:
        errno_ = -code
        text = os.strerror(errno_)
        if detail and detail != text:
            text = detail if text.lower() in detail.lower() else f"{text}: {detail}"
        exc = OSError(errno_, text)
        exc.code = code  # type: ignore[attr-defined]
        exc.name = err_name(code)  # type: ignore[attr-defined]
        return exc
    if code == _b.ALOOP_ERESOLVE:  # type: ignore[attr-defined]
        return ResolveError(code, detail or None)
    if code == _b.ALOOP_ENOTLOOPTHREAD:  # type: ignore[attr-defined]
        return NotLoopThreadError(
            code, detail or "Non-thread-safe operation invoked on an event loop other "
                            "than the current one")
    return Error(code, detail or None)
