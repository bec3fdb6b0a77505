"""C -> Python callbacks.

One ctypes trampoline per callback type, created once for the process.  The
``userdata`` handed to the library is a small integer key into
:data:`objects`; the library's ``free_cb`` (:data:`free_cb`) removes it.

The library calls these on the loop thread, inside ``aloop_loop_run_once``
(or inside the failing call, for ``free_cb``).  A Python exception must never
unwind into C: every trampoline catches ``BaseException``.  Errors of user
callbacks are reported the way asyncio reports them (the loop's exception
handler, a fatal error closing the transport); ``KeyboardInterrupt``,
``SystemExit`` and errors of the binding itself are stored on the loop
(``loop._pending_exc``) and re-raised by the loop as soon as the C call
returns (the wasmtime-py pattern).
"""

from __future__ import annotations

import contextvars
import ctypes
import itertools
from ctypes import string_at
from typing import Any, Dict

from . import _bindings as _b

#: key (the C userdata) -> Python object.  Every object has a ``_loop``.
objects: Dict[int, Any] = {}
_next_key = itertools.count(1).__next__


def register(obj: Any) -> int:
    """Stores obj and returns its key (the userdata to give to C)."""
    key = _next_key()
    objects[key] = obj
    return key


def _store(obj: Any, exc: BaseException) -> None:
    loop = getattr(obj, "_loop", None)
    if loop is not None and loop._pending_exc is None:
        loop._pending_exc = exc


_pop = objects.pop
_get = objects.get


def _run_in(ctx: contextvars.Context, fn: Any, *args: Any) -> Any:
    """fn(*args) in ctx, an endpoint's context; in place when ctx is already
    the current context (a call made by one of that endpoint's callbacks
    that calls back into it, e.g. pause_writing inside write()): a Context
    cannot be entered twice, and it is the right one then."""
    try:
        return ctx.run(fn, *args)
    except RuntimeError as exc:
        # Raised by ctx.run itself (no frame of fn in the traceback)?
        tb = exc.__traceback__
        if (tb is None or tb.tb_next is not None
                or not str(exc).startswith("cannot enter context")):
            raise
    return fn(*args)


class _Call:
    """A protocol callback the loop's poll found, queued on the loop's ready
    queue behind what was ready before the poll (asyncio's order; an asyncio
    Handle look-alike).  The methods it calls report their own errors, and
    enter their endpoint's context themselves."""

    __slots__ = ("_cancelled", "_callback", "_args")

    def __init__(self, fn: Any, args: Any) -> None:
        self._cancelled = False
        self._callback = fn
        self._args = args

    def cancel(self) -> None:
        self._cancelled = True

    def _run(self) -> None:
        self._callback(*self._args)


def _call(tr: Any, fn: Any, args: Any) -> None:
    """Runs fn(*args) for tr: queued behind the ready callbacks when the
    loop is polling, else at once (a callback of a call being made)."""
    loop = tr._loop
    if loop._seam.busy:
        loop._ready.append(_Call(fn, args))
    else:
        fn(*args)


def _call_in_context(tr: Any, fn: Any, args: Any) -> None:
    _run_in(tr._context, fn, *args)


def _call_now(tr: Any, fn: Any, args: Any) -> None:
    fn(*args)


def _forward(cbtype, method: str, with_handle: bool = False,  # type: ignore[no-untyped-def]
             defer: bool = False, in_context: bool = False):
    """A trampoline of type cbtype that calls the registered object's
    ``method`` with the callback's arguments (the object's handle first when
    with_handle; the userdata, last, selects the object), queued on the
    loop's ready queue when defer and the loop is polling (see _call); in
    the object's context (``_context``) when in_context (else the method
    enters it itself); an exception is stored and re-raised after the C
    call returns."""
    run = _call if defer else (_call_in_context if in_context else _call_now)

    def trampoline(handle, *args):  # type: ignore[no-untyped-def]
        tr = _get(args[-1])
        if tr is None:
            return
        try:
            if with_handle:
                run(tr, getattr(tr, method), (handle,) + args[:-1])
            else:
                run(tr, getattr(tr, method), args[:-1])
        except BaseException as exc:  # noqa: BLE001
            _store(tr, exc)

    return cbtype(trampoline)


@_b.aloop_free_cb
def free_cb(ud):  # type: ignore[no-untyped-def]
    _pop(ud, None)


# ---------------------------------------------------------------------------
# Scheduled callbacks / future done-callbacks / fd callbacks
# ---------------------------------------------------------------------------


@_b.aloop_callback_cb
def callback_cb(loop_h, ud):  # type: ignore[no-untyped-def]
    obj = _get(ud)
    if obj is None:
        return
    try:
        obj()
    except BaseException as exc:  # noqa: BLE001
        _store(obj, exc)


@_b.aloop_future_cb
def future_cb(fut_h, ud):  # type: ignore[no-untyped-def]
    obj = _get(ud)
    if obj is None:
        return
    try:
        obj(fut_h)
    except BaseException as exc:  # noqa: BLE001
        _store(obj, exc)


@_b.aloop_fd_cb
def fd_cb(loop_h, fd, ud):  # type: ignore[no-untyped-def]
    obj = _get(ud)
    if obj is None:
        return
    try:
        obj()
    except BaseException as exc:  # noqa: BLE001
        _store(obj, exc)


@_b.aloop_exception_cb
def exception_cb(loop_h, ctx, ud):  # type: ignore[no-untyped-def]
    obj = _get(ud)
    if obj is None:
        return
    try:
        obj(ctx.contents)
    except BaseException as exc:  # noqa: BLE001
        _store(obj, exc)


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


@_b.aloop_connection_cb
def connection_cb(server_h, transport_h, ud):  # type: ignore[no-untyped-def]
    srv = _get(ud)
    if srv is None:
        return -1
    try:
        return srv._on_connection(transport_h)
    except BaseException as exc:  # noqa: BLE001
        _store(srv, exc)
        return -1


# ---------------------------------------------------------------------------
# Stream protocol (the userdata is the Python Transport)
# ---------------------------------------------------------------------------

_SYSEXC = (SystemExit, KeyboardInterrupt)


_connection_made = _forward(_b.aloop_protocol_connection_made_cb, "_on_connection_made", with_handle=True)


@_b.aloop_protocol_data_received_cb
def _data_received(t, data, n, ud):  # type: ignore[no-untyped-def]
    tr = _get(ud)
    if tr is None:
        return
    try:
        tr._on_data(string_at(data, n))
    except BaseException as exc:  # noqa: BLE001
        _store(tr, exc)


@_b.aloop_protocol_eof_received_cb
def _eof_received(t, ud):  # type: ignore[no-untyped-def]
    tr = _get(ud)
    if tr is None:
        return 0
    try:
        return 1 if tr._on_eof_received() else 0
    except BaseException as exc:  # noqa: BLE001
        _store(tr, exc)
        return 0


_connection_lost = _forward(_b.aloop_protocol_connection_lost_cb, "_on_connection_lost")


_pause_writing = _forward(_b.aloop_protocol_pause_writing_cb, "_on_pause_writing")


_resume_writing = _forward(_b.aloop_protocol_resume_writing_cb, "_on_resume_writing")


def _make_protocol() -> _b.aloop_protocol_t:
    p = _b.aloop_protocol_t()
    p.size = ctypes.sizeof(_b.aloop_protocol_t)
    p.connection_made = _connection_made
    p.data_received = _data_received
    p.eof_received = _eof_received
    p.connection_lost = _connection_lost
    p.pause_writing = _pause_writing
    p.resume_writing = _resume_writing
    return p


#: The C protocol of the loop's stream transports: queued
#: (ALOOP_PROTOCOL_QUEUED), so that inside aloop_loop_poll its events are
#: records the loop dispatches (EventLoop._dispatch_events) for
#: asyncio.Protocol and asyncio.BufferedProtocol alike; the callbacks
#: above run only for what a call causes synchronously (pause_writing
#: inside a write) or outside a poll.
PROTOCOL = _make_protocol()
PROTOCOL.flags = _b.ALOOP_PROTOCOL_QUEUED
PROTOCOL_REF = ctypes.byref(PROTOCOL)
#: The same callbacks, called during the poll (not queued): a subprocess's
#: stdin pipe, whose connection_lost must keep its place among the
#: subprocess protocol's callbacks, which are called during the poll too.
INLINE_PROTOCOL = _make_protocol()
INLINE_PROTOCOL_REF = ctypes.byref(INLINE_PROTOCOL)


# ---------------------------------------------------------------------------
# Datagram protocol (the userdata is the Python DatagramTransport)
# ---------------------------------------------------------------------------


_dg_connection_made = _forward(_b.aloop_datagram_protocol_connection_made_cb, "_on_connection_made", with_handle=True, defer=True)


@_b.aloop_datagram_protocol_datagram_received_cb
def _dg_datagram_received(d, data, n, host, port, ud):  # type: ignore[no-untyped-def]
    tr = _get(ud)
    if tr is None:
        return
    try:
        _call(tr, tr._on_datagram, (string_at(data, n) if n else b"", host, port))
    except BaseException as exc:  # noqa: BLE001
        _store(tr, exc)


_dg_error_received = _forward(_b.aloop_datagram_protocol_error_received_cb, "_on_error_received", defer=True)


_dg_connection_lost = _forward(_b.aloop_datagram_protocol_connection_lost_cb, "_on_connection_lost", defer=True)


_dg_pause_writing = _forward(_b.aloop_datagram_protocol_pause_writing_cb, "_on_pause_writing", defer=True)


_dg_resume_writing = _forward(_b.aloop_datagram_protocol_resume_writing_cb, "_on_resume_writing", defer=True)


DATAGRAM_PROTOCOL = _b.aloop_datagram_protocol_t()
DATAGRAM_PROTOCOL.size = ctypes.sizeof(_b.aloop_datagram_protocol_t)
DATAGRAM_PROTOCOL.connection_made = _dg_connection_made
DATAGRAM_PROTOCOL.datagram_received = _dg_datagram_received
DATAGRAM_PROTOCOL.error_received = _dg_error_received
DATAGRAM_PROTOCOL.connection_lost = _dg_connection_lost
DATAGRAM_PROTOCOL.pause_writing = _dg_pause_writing
DATAGRAM_PROTOCOL.resume_writing = _dg_resume_writing
DATAGRAM_PROTOCOL.flags = _b.ALOOP_PROTOCOL_QUEUED  # records, see _seam
DATAGRAM_PROTOCOL_REF = ctypes.byref(DATAGRAM_PROTOCOL)


# ---------------------------------------------------------------------------
# Subprocess protocol (the userdata is the Python SubprocessTransport)
# ---------------------------------------------------------------------------


_sp_connection_made = _forward(_b.aloop_subprocess_protocol_connection_made_cb, "_on_connection_made", with_handle=True, in_context=True)


@_b.aloop_subprocess_protocol_pipe_data_received_cb
def _sp_pipe_data_received(p, fd, data, n, ud):  # type: ignore[no-untyped-def]
    tr = _get(ud)
    if tr is None:
        return
    try:
        _run_in(tr._context, tr._on_pipe_data, fd, string_at(data, n))
    except BaseException as exc:  # noqa: BLE001
        _store(tr, exc)


_sp_pipe_connection_lost = _forward(_b.aloop_subprocess_protocol_pipe_connection_lost_cb, "_on_pipe_lost", in_context=True)


_sp_process_exited = _forward(_b.aloop_subprocess_protocol_process_exited_cb, "_on_process_exited", in_context=True)


_sp_connection_lost = _forward(_b.aloop_subprocess_protocol_connection_lost_cb, "_on_connection_lost", in_context=True)


_sp_pause_writing = _forward(_b.aloop_subprocess_protocol_pause_writing_cb, "_on_pause_writing")


_sp_resume_writing = _forward(_b.aloop_subprocess_protocol_resume_writing_cb, "_on_resume_writing")


SUBPROCESS_PROTOCOL = _b.aloop_subprocess_protocol_t()
SUBPROCESS_PROTOCOL.size = ctypes.sizeof(_b.aloop_subprocess_protocol_t)
SUBPROCESS_PROTOCOL.connection_made = _sp_connection_made
SUBPROCESS_PROTOCOL.pipe_data_received = _sp_pipe_data_received
SUBPROCESS_PROTOCOL.pipe_connection_lost = _sp_pipe_connection_lost
SUBPROCESS_PROTOCOL.process_exited = _sp_process_exited
SUBPROCESS_PROTOCOL.connection_lost = _sp_connection_lost
SUBPROCESS_PROTOCOL.pause_writing = _sp_pause_writing
SUBPROCESS_PROTOCOL.resume_writing = _sp_resume_writing
SUBPROCESS_PROTOCOL_REF = ctypes.byref(SUBPROCESS_PROTOCOL)
