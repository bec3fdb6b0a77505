"""Mapping of ALOOP_E* codes to Python exceptions."""

from __future__ import annotations

import os
import socket
from typing import Optional

from . import _bindings as _b

_NAMES = {v: "ALOOP_" + k for k, v in _b.ERRNO_CODES.items()}
_MESSAGES = {
    -3000: "internal error (a panic was recovered)",
    -3001: "object is closed",
    -3002: "invalid state",
    -3003: "called from a thread other than the loop's",
    -3004: "name resolution failed",
    -3005: "loop stopped before the future completed",
    -3006: "buffer too small",
    -3999: "unknown error",
}


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
        text = message or _MESSAGES.get(code, "unknown error")
        super().__init__(f"[{name}] {text}")
        self.code = code
        self.name = name

    def __reduce__(self):  # pragma: no cover - pickling support
        return (type(self), (self.code, self.args[0] if self.args else None))


class ResolveError(Error, socket.gaierror):
    """ALOOP_ERESOLVE: name resolution failed (also a :class:`socket.gaierror`)."""


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
    return Error(code, detail or None)


def check(lib: "_b.Library", rc: int) -> int:
    """Returns rc if >= 0, else raises the matching exception."""
    if rc < 0:
        raise make_error(rc, _b.last_error(lib))
    return rc
