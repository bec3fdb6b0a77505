"""Stream transports and servers backed by the library's TCP implementation."""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import logging
import os
import socket
import sys
from asyncio import constants, events, sslproto, transports, trsock
from ctypes import byref, c_size_t, c_void_p
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from . import _bindings as _b
from . import _seam
from . import _tls
from . import _trampolines as _t
from ._trampolines import _run_in
from ._seam import DGRAM_HEADER as _DGRAM_HEADER
from ._seam import QUEUE_MAX as _QUEUE_MAX
from ._seam import WRITE_ARENA as _WRITE_ARENA
from ._errors import make_error

if TYPE_CHECKING:  # pragma: no cover
    from ._loop import EventLoop

logger = logging.getLogger("asyncio")

_LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
_BYTES_LIKE = (bytes, bytearray, memoryview)


def _borrowed_socket(fd: int) -> Optional[socket.socket]:
    """A socket object for an fd the library owns (detach it before GC)."""
    if fd < 0:
        return None
    try:
        return socket.socket(fileno=fd)
    except OSError:
        return None


class Transport(transports._FlowControlMixin):
    """A stream transport (asyncio.Transport) driven by libasyncloop: TCP,
    Unix sockets, pipes.  (asyncio's _FlowControlMixin is a base so that
    asyncio's own loop.sendfile() fallback accepts it; the library does the
    flow control.)

    Created by :meth:`EventLoop.create_connection` and for every connection a
    server accepts.  The library owns the socket; ``get_extra_info('socket')``
    gives an :class:`asyncio.trsock.TransportSocket` over it that is valid
    until the connection is lost.  ``peername``/``sockname`` are read once,
    on first use, and kept.
    """

    __slots__ = (
        "_protocol", "_factory", "_server", "_handle", "_key",
        "_closing", "_closed", "_eof", "_paused", "_conn_lost", "_buffered",
        "_sock", "_names_read", "_lost_exc", "_factory_exc", "_pipe",
        "_owned", "_seam", "_wq", "_held", "_context", "_tls_feed",
        "__weakref__",
    )

    def __init__(self, loop: "EventLoop", protocol: Optional[asyncio.BaseProtocol],
                 factory: Any = None, server: Optional["Server"] = None,
                 context: Optional[contextvars.Context] = None) -> None:
        super().__init__(None, loop)
        #: The protocol factory and callbacks run in this context: a copy of
        #: the one current when the endpoint was created (see _run_in).
        self._context = contextvars.copy_context() if context is None else context
        self._protocol = protocol
        self._factory = factory
        self._server = server
        self._handle: Optional[int] = None
        self._key: Optional[int] = None
        self._closing = False
        self._closed = False
        self._eof = False
        self._paused = False
        self._conn_lost = 0
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)
        #: a TLS protocol's (_tls.SSLProtocol) reader of the read arena
        self._tls_feed = getattr(protocol, "_tls_feed", None)
        self._sock: Optional[socket.socket] = None
        self._names_read = False
        self._lost_exc: Optional[BaseException] = None
        self._factory_exc: Optional[BaseException] = None
        self._pipe: Any = None  # the file object of a pipe transport
        self._owned = False  # _sock is the caller's socket object (sock=)
        self._seam = loop._seam
        self._wq = 0  # bytes queued in the loop's write queue (_seam)
        self._held: Optional[List[Any]] = None  # data read before pause_reading

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._closed:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        if self._handle is not None and not self._closed:
            info.append(f"fd={self._loop._lib.aloop_transport_get_fd(self._handle)}")
        if not self._closed:
            info.append("open")
        return "<{}>".format(" ".join(info))

    # -- callbacks from the library (see _trampolines) ----------------------

    def _on_connection_made(self, handle: int) -> None:
        self._handle = handle
        loop = self._loop
        loop._transports[handle] = self
        protocol = self._protocol
        ctx = self._context
        if protocol is None:
            try:
                protocol = ctx.run(self._factory)
                connection_made = protocol.connection_made  # (None fails here, as asyncio)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001
                self._factory_exc = exc
                self._closing = True
                loop._lib.aloop_transport_abort(handle)
                return
            self._protocol = protocol
            self._factory = None
            self._buffered = isinstance(protocol, asyncio.BufferedProtocol)
            self._tls_feed = getattr(protocol, "_tls_feed", None)
        else:
            connection_made = protocol.connection_made
        # As asyncio's loop.call_soon(protocol.connection_made, transport): an
        # exception goes to the loop's exception handler ("Exception in
        # callback ..."), and the connection goes on.
        events.Handle(connection_made, (self,), loop, ctx)._run()

    def _on_eof_received(self) -> bool:
        try:
            return bool(self._context.run(self._protocol.eof_received))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return False

    def _on_connection_lost(self, error: int) -> None:
        if self._closed:
            return  # already delivered when close()/abort() scheduled it
        loop = self._loop
        self._closing = True
        self._closed = True
        self._release_socket()
        handle = self._handle
        if handle is not None:
            loop._transports.pop(handle, None)
        self._handle = None
        pipe = self._pipe
        if pipe is not None:
            self._pipe = None
            try:
                pipe.close()
            except OSError:
                pass
        exc = self._lost_exc
        if exc is None and error:
            exc = make_error(error)
        self._lost_exc = None
        protocol = self._protocol
        try:
            if protocol is not None:  # else the factory failed
                self._context.run(protocol.connection_lost, exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as e:  # noqa: BLE001
            _run_in(self._context, loop.call_exception_handler, {
                "message": "Exception in callback protocol.connection_lost()",
                "exception": e,
                "transport": self,
                "protocol": protocol,
            })
        finally:
            server, self._server = self._server, None
            if server is not None:
                server._detach(self)
            if self._tls_feed is not None:
                # A TLS protocol (its SSLContext, SSLObject and 256 KiB
                # buffer) is let go once told, as asyncio's transports let
                # their protocol go: this transport lives on until the
                # library frees its handle.
                self._protocol = None
                self._tls_feed = None

    @property
    def _start_tls_compatible(self) -> bool:
        """loop.start_tls() works on stream sockets (not on pipes)."""
        return self._pipe is None

    @property
    def _sendfile_compatible(self) -> Any:
        """asyncio's sendfile mode: native for sockets, none for pipes."""
        if self._pipe is not None:
            return constants._SendfileMode.UNSUPPORTED
        return constants._SendfileMode.TRY_NATIVE

    def _on_pause_writing(self) -> None:
        if self._closed:
            return
        self._protocol_paused = True
        # (also called inside write(), maybe from this transport's own
        # callback: _run_in)
        _run_in(self._context, self._call_pause_writing)

    def _call_pause_writing(self) -> None:
        try:
            self._protocol.pause_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._loop.call_exception_handler({
                "message": "protocol.pause_writing() failed",
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })

    def _on_resume_writing(self) -> None:
        if self._closed:
            return
        self._protocol_paused = False
        _run_in(self._context, self._call_resume_writing)

    def _call_resume_writing(self) -> None:
        try:
            self._protocol.resume_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._loop.call_exception_handler({
                "message": "protocol.resume_writing() failed",
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })

    def _on_data(self, data: Any) -> None:
        """Bytes read for the protocol (an event of the loop's poll): bytes,
        or for a buffered protocol a view of the read arena, valid during
        this call only."""
        if self._closing:
            return  # as asyncio: nothing is delivered after close()/abort()
        if self._paused:
            # Read before pause_reading(): delivered by resume_reading().
            if self._held is None:
                self._held = []
            self._held.append(bytes(data))  # (a view of the arena is copied)
            return
        if not self._buffered:
            try:
                self._context.run(self._protocol.data_received, data)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001
                self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
            return
        feed = self._tls_feed
        if feed is not None:
            # TLS (_tls): the records go from the arena into the BIO.
            try:
                self._context.run(feed, data)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001
                self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")
            return
        self._context.run(self._buffered_data, data)

    def _buffered_data(self, data: bytes) -> None:
        """_on_data for an asyncio.BufferedProtocol (in the context)."""
        protocol = self._protocol
        view = memoryview(data)
        while view:
            try:
                buf = protocol.get_buffer(-1)
                dst = memoryview(buf).cast("B")
                if not dst.nbytes:
                    raise RuntimeError("get_buffer() returned an empty buffer")
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001
                self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
                return
            n = min(dst.nbytes, view.nbytes)
            dst[:n] = view[:n]
            view = view[n:]
            del dst, buf
            try:
                protocol.buffer_updated(n)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001
                self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")
                return
            if self._closing or self._paused:
                if view and not self._closing:
                    self._held = [bytes(view)] + (self._held or [])
                return

    def _on_eof(self) -> None:
        """The peer closed its side (an event of the loop's poll)."""
        if self._closing:
            return
        if self._paused:
            if self._held is None:
                self._held = []
            self._held.append(None)
            return
        if not self._on_eof_received():
            # connection_lost is scheduled in the context, as asyncio does
            # from its reader's callback.
            _run_in(self._context, self.close)

    def _deliver_held(self) -> None:
        """What was read before pause_reading(), after resume_reading()."""
        held = self._held
        while held and not self._paused and not self._closing:
            item = held.pop(0)
            if item is None:
                self._on_eof()
            else:
                self._on_data(item)
        if not held:
            self._held = None

    # -- helpers -------------------------------------------------------------

    def _adopt_socket(self, sock: socket.socket) -> None:
        """sock= : the library got a duplicate of sock's fd; the transport
        keeps the socket object (get_extra_info) and closes it at the end."""
        self._sock = sock
        self._owned = True
        self._names_read = True
        extra = self._extra
        extra["socket"] = trsock.TransportSocket(sock)
        try:
            extra["sockname"] = sock.getsockname()
        except OSError:
            extra["sockname"] = None
        try:
            extra["peername"] = sock.getpeername()
        except OSError:
            extra["peername"] = None

    def _release_socket(self) -> None:
        sock = self._sock
        if sock is not None:
            self._sock = None
            try:
                if self._owned:
                    sock.close()
                else:
                    sock.detach()  # never close: the library owns the fd
            except OSError:
                pass

    def _read_names(self) -> None:
        if self._names_read:
            return
        self._names_read = True
        extra = self._extra
        handle = self._handle
        if self._pipe is not None:
            return
        if handle is None or self._closed:
            extra.setdefault("peername", None)
            extra.setdefault("sockname", None)
            return
        sock = _borrowed_socket(self._loop._lib.aloop_transport_get_fd(handle))
        if sock is None:
            return
        self._sock = sock
        extra["socket"] = trsock.TransportSocket(sock)
        try:
            extra["sockname"] = sock.getsockname()
        except OSError:
            extra["sockname"] = None
        try:
            extra["peername"] = sock.getpeername()
        except OSError:
            extra["peername"] = None

    def _kill(self) -> None:
        """Loop close: abort without calling the protocol.  As asyncio, the
        transport is not marked closing: it just stops working with its
        loop (repr() still says 'open')."""
        self._release_socket()
        if self._handle is not None:
            self._loop._lib.aloop_transport_abort(self._handle)
            self._handle = None
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            # In the endpoint's context, as asyncio reports it from its
            # reader's callback.
            _run_in(self._context, self._loop.call_exception_handler, {
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        self._force_close(exc)

    def _force_close(self, exc: Optional[BaseException]) -> None:
        if self._closed:
            return
        if self._lost_exc is None:
            self._lost_exc = exc
        self._closing = True
        self._held = None
        handle = self._handle
        if handle is not None:
            loop = self._loop
            self._seam.settle(handle)
            loop._lib.aloop_transport_abort(handle)
            loop._poll_skip = 0  # the library closes the socket at the next poll
            # As asyncio: connection_lost is scheduled now (the library's
            # own event comes later and finds it delivered).
            loop.call_soon(self._on_connection_lost, 0)

    # -- asyncio.BaseTransport ----------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """peername, sockname and socket (an asyncio.trsock.TransportSocket)."""
        if not self._names_read and name in ("peername", "sockname", "socket"):
            self._read_names()
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Flushes the write buffer, then closes; connection_lost(None) follows."""
        if self._closing:
            return
        self._closing = True
        self._held = None
        handle = self._handle
        if handle is None:
            return
        if not self._wq:
            out = c_size_t()
            lib = self._loop._lib
            if lib.aloop_transport_get_write_buffer_size(handle, byref(out)) == 0 and not out.value:
                # Nothing to flush: as asyncio, connection_lost is scheduled
                # now (the library's own event finds it delivered).
                lib.aloop_transport_close(handle)
                loop = self._loop
                loop._poll_skip = 0  # the library closes the socket at the next poll
                loop.call_soon(self._on_connection_lost, 0)
                return
        self._queue_op(_seam.OP_CLOSE, self._loop._lib.aloop_transport_close)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)
        self._tls_feed = getattr(protocol, "_tls_feed", None)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[return-value]

    # -- asyncio.ReadTransport ----------------------------------------------

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True
        if self._handle is not None:
            self._loop._lib.aloop_transport_pause_reading(self._handle)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._held:
            self._loop.call_soon(self._deliver_held)
        if self._handle is not None:
            self._loop._lib.aloop_transport_resume_reading(self._handle)

    # -- asyncio.WriteTransport ---------------------------------------------

    def write(self, data: Any) -> None:
        """Sends data without blocking; what the socket does not take at once
        is buffered and sent in order (pause_writing() above the high water
        mark)."""
        if type(data) is not bytes:
            if not isinstance(data, _BYTES_LIKE):
                raise TypeError(
                    f"data argument must be a bytes-like object, not {type(data).__name__!r}")
            data = bytes(data)
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        # After close() the library still takes writes while it flushes the
        # buffer (as asyncio's socket transport does): asyncio's sslproto
        # hands over the records it holds from resume_writing() during its
        # close. Once the close is under way (or after abort) the library
        # answers ALOOP_ECLOSED and the data is dropped as asyncio drops it.
        if self._closed or self._handle is None:
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        # Queued in the loop's write queue, sent by the next poll (_seam).
        seam = self._seam
        n = len(data)
        off = seam.woff
        end = off + n
        q = self._wq + n
        if q <= _QUEUE_MAX and end <= _WRITE_ARENA and seam.wn < seam.wcap and not seam.later:
            seam.warena[off:end] = data
            j = seam.wn
            ops = seam.ops
            ops[2 * j] = self._handle
            ops[2 * j + 1] = n
            seam.wn = j + 1
            seam.woff = end
            if not self._wq:
                seam.wtrs.append(self)
            self._wq = q
            return
        if seam.busy and seam.wcap:
            # Written by a callback inside a flush (or behind such a write):
            # after what is queued, and after the writes waiting before it.
            seam.later.append((self, data))
            return
        # Order: what is queued goes first, then what callbacks of that
        # flush wrote (Seam.later, queued again when the flush is done).
        for _ in range(16):
            seam.flush()
            if not seam.wn or seam.busy:
                break
        loop = self._loop
        rc = loop._lib.aloop_transport_write(self._handle, data, len(data))
        if rc < 0:
            self._write_failed(rc)
        if loop._pending_exc is not None:  # pause_writing() runs inside write
            loop._raise_pending()

    def _write_later(self, data: Any) -> None:
        """A write made inside a flush, now behind what was queued then
        (Seam._consumed)."""
        self.write(data)

    def _write_failed(self, rc: int) -> None:
        if rc in (_b.ALOOP_ECLOSED, _b.ALOOP_EBADF):  # type: ignore[attr-defined]
            self._closing = True
            self._conn_lost += 1
            return
        if rc == _b.ALOOP_EBUSY:  # type: ignore[attr-defined]
            raise RuntimeError("unable to write; sendfile is in progress")
        if rc == _b.ALOOP_ENOTLOOPTHREAD:  # type: ignore[attr-defined]
            raise make_error(rc)  # debug mode: a call from another thread
        self._fatal_error(make_error(rc), "Fatal write error on socket transport")

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = True
        if self._handle is not None:
            self._queue_op(_seam.OP_EOF, self._loop._lib.aloop_transport_write_eof)

    def _queue_op(self, op: int, call: Any) -> None:
        """close / write_eof after the queued writes (Seam.queue_op)."""
        rc = self._seam.queue_op(self, op, call)
        if rc == _b.ALOOP_ENOTLOOPTHREAD:  # type: ignore[attr-defined]
            raise make_error(rc)  # debug mode: a call from another thread

    def can_write_eof(self) -> bool:
        if self._handle is None or self._closed:
            return True
        return self._loop._lib.aloop_transport_can_write_eof(self._handle) == 1

    def abort(self) -> None:
        """Closes at once, dropping buffered data; connection_lost(None) follows."""
        self._force_close(None)

    def get_write_buffer_size(self) -> int:
        if self._handle is None or self._closed:
            return 0
        out = c_size_t()
        if self._loop._lib.aloop_transport_get_write_buffer_size(self._handle, byref(out)) < 0:
            return self._wq
        return out.value + self._wq

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        """(low, high), as asyncio."""
        if self._handle is None or self._closed:
            return (16 * 1024, 64 * 1024)
        high, low = c_size_t(), c_size_t()
        lib = self._loop._lib
        rc = lib.aloop_transport_get_write_buffer_limits(self._handle, byref(high), byref(low))
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))
        return (low.value, high.value)

    def set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        if self._handle is None or self._closed:
            return
        loop = self._loop
        lib = loop._lib
        rc = lib.aloop_transport_set_write_buffer_limits(self._handle, high, low)
        if loop._pending_exc is not None:
            loop._raise_pending()
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))


class _Absent:
    """A method asyncio's transport of this kind does not have: looking it
    up raises AttributeError, as there."""

    def __set_name__(self, owner: Any, name: str) -> None:
        self._name = name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        raise AttributeError(
            f"{(objtype or type(obj)).__name__!r} object has no attribute {self._name!r}")


class ReadPipeTransport(Transport):
    """The transport of loop.connect_read_pipe(): the methods of asyncio's
    read pipe transport (an asyncio.ReadTransport), no writing ones."""

    __slots__ = ()

    write = writelines = write_eof = can_write_eof = abort = _Absent()
    get_write_buffer_size = get_write_buffer_limits = set_write_buffer_limits = _Absent()


class WritePipeTransport(Transport):
    """The transport of loop.connect_write_pipe(): as asyncio's write pipe
    transport, the reading methods raise NotImplementedError."""

    __slots__ = ()

    def is_reading(self) -> bool:
        raise NotImplementedError

    def pause_reading(self) -> None:
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError


class Server(asyncio.AbstractServer):
    """A listening server (asyncio.AbstractServer) driven by libasyncloop.

    It keeps the state of asyncio's own ``Server`` with the same meaning:
    ``_sockets`` (the listening socket objects, None once closed),
    ``_active_count`` (connections attached, counted until their
    connection_lost) and ``_waiters`` (futures of wait_closed(), None once
    the server is closed and its last connection is gone).  ``wait_closed``
    follows the running Python's asyncio: before 3.12 it returns at once
    when the server is already closed; from 3.12 on it waits for the
    connections then too.

    The library does the listening and accepting; with ``ssl=`` every
    accepted connection is wrapped in asyncio's ``sslproto.SSLProtocol``
    (``_tls``'s subclass; TLS by Python's ssl module over the library's
    transport).
    """

    def __init__(self, loop: "EventLoop", protocol_factory: Any, ssl_context: Any = None,
                 ssl_handshake_timeout: Optional[float] = None,
                 ssl_shutdown_timeout: Optional[float] = None) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._handle: Optional[int] = None
        self._key: Optional[int] = None
        self._freed = False
        self._sockets: Optional[List[socket.socket]] = []
        self._borrowed = True  # _sockets are the library's fds (detach them)
        self._active_count = 0
        #: The accepted transports until their connection_lost (asyncio's
        #: Server._clients; close_clients() / abort_clients()).
        self._clients: Dict["Transport", None] = {}
        #: A Unix server made from sock=: (path, inode) of its socket file,
        #: removed by close() if it is still that file (Python 3.13).
        self._unix_cleanup: Optional[Tuple[Any, int]] = None
        self._waiters: Optional[List[asyncio.Future]] = []
        self._serving_forever_fut: Optional[asyncio.Future] = None
        #: The context current when the server started serving: each
        #: connection runs its factory and callbacks in a copy of it (as
        #: asyncio's accept task per connection).
        self._context = contextvars.copy_context()

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} sockets={self.sockets!r}>"

    # -- library callbacks ---------------------------------------------------

    def _on_connection(self, transport_h: int) -> int:
        loop = self._loop
        if self._sockets is None:  # closed: refuse what was still queued
            return -1
        ctx = self._context.copy()
        protocol = None
        try:
            protocol = ctx.run(self._protocol_factory)
            if self._ssl_context is None:
                protocol.connection_made  # noqa: B018 (None fails here, as asyncio)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            # As asyncio's accept: reported in debug mode only; the
            # connection is closed.
            if loop.get_debug():
                context = {
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc,
                }
                if protocol is not None:
                    context["protocol"] = protocol
                ctx.run(loop.call_exception_handler, context)
            return self._refuse(transport_h)
        waiter = None
        app_protocol = protocol
        if self._ssl_context is not None:
            waiter = loop.create_future()
            try:
                protocol = _tls.Protocol(
                    loop, app_protocol, self._ssl_context, waiter, server_side=True,
                    ssl_handshake_timeout=self._ssl_handshake_timeout,
                    ssl_shutdown_timeout=self._ssl_shutdown_timeout)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001
                loop.call_exception_handler({
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc, "protocol": app_protocol,
                })
                return -1
        tr = Transport(loop, protocol, server=self, context=ctx)
        key = _t.register(tr)
        tr._key = key
        rc = loop._lib.aloop_transport_set_protocol(transport_h, _t.PROTOCOL_REF, key, _t.free_cb)
        if rc < 0:
            tr._server = None
            return -1
        tr._handle = transport_h
        self._attach(tr)
        if waiter is not None:
            waiter.add_done_callback(
                lambda w: _ssl_accept_done(loop, w, tr, app_protocol))
        return 0

    def _refuse(self, transport_h: int) -> int:
        """Closes an accepted connection without the library's report of a
        refused one (asyncio reports a failed protocol factory in debug
        mode only): it gets a protocol that does nothing, and is aborted."""
        loop = self._loop
        tr = Transport(loop, asyncio.Protocol(), context=self._context)
        tr._closing = True
        key = _t.register(tr)
        tr._key = key
        lib = loop._lib
        if lib.aloop_transport_set_protocol(transport_h, _t.PROTOCOL_REF, key, _t.free_cb) < 0:
            return -1
        tr._handle = transport_h
        lib.aloop_transport_abort(transport_h)
        return 0

    # (transport is optional: asyncio 3.12's Server._attach()/_detach() take
    # none, 3.13's take the transport.)
    def _attach(self, transport: Optional["Transport"] = None) -> None:
        self._active_count += 1
        if transport is not None:
            self._clients[transport] = None

    def _detach(self, transport: Optional["Transport"] = None) -> None:
        self._active_count -= 1
        if transport is not None:
            self._clients.pop(transport, None)
        if self._active_count == 0 and self._sockets is None:
            self._wakeup()

    def _wakeup(self) -> None:
        waiters = self._waiters
        self._waiters = None
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(waiter)

    def _attach_handle(self, handle: int) -> None:
        self._handle = handle
        self._loop._servers[handle] = self
        lib = self._loop._lib
        if self._sockets:
            self._borrowed = False
            return  # sock=: the caller's own socket object
        n = lib.aloop_server_socket_count(handle)
        socks = []
        for i in range(max(n, 0)):
            sock = _borrowed_socket(lib.aloop_server_socket_fd(handle, i))
            if sock is not None:
                socks.append(sock)
        self._sockets = socks

    def _drop_sockets(self, sockets: Optional[List[socket.socket]]) -> None:
        for s in sockets or ():
            try:
                if self._borrowed:
                    s.detach()
                else:
                    s.close()
            except OSError:
                pass

    def _release(self) -> None:
        """Frees the library handle."""
        if self._freed:
            return
        self._freed = True
        handle = self._handle
        loop = self._loop
        if handle is not None:
            loop._servers.pop(handle, None)
            if loop._handle is not None:
                loop._lib.aloop_server_free(handle)
        if self._key is not None:
            _t.objects.pop(self._key, None)

    def _kill(self) -> None:
        """Loop close: free the library's server without calling anything."""
        sockets, self._sockets = self._sockets, None
        self._drop_sockets(sockets)
        self._freed = True
        if self._handle is not None:
            self._loop._lib.aloop_server_free(self._handle)

    def _track_close(self) -> None:
        """After close: free the handle once the library says it is done."""
        handle = self._handle
        if handle is None or self._freed:
            return
        loop = self._loop
        lib = loop._lib
        out = c_void_p()
        if lib.aloop_server_wait_closed(handle, byref(out)) < 0:
            self._release()
            return
        fut_h = out.value

        def done(fh: int) -> None:
            lib.aloop_future_free(fh)
            self._release()

        loop._add_core_done_callback(fut_h, done)

    # -- asyncio.AbstractServer ---------------------------------------------

    def close(self) -> None:
        """Stops listening; accepted connections stay open."""
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        self._drop_sockets(sockets)
        handle = self._handle
        if handle is not None and not self._freed:
            self._loop._lib.aloop_server_close(handle)
            self._loop._poll_skip = 0
            self._track_close()
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
            self._serving_forever_fut = None
        cleanup, self._unix_cleanup = self._unix_cleanup, None
        if cleanup is not None:
            _remove_unix_socket_file(*cleanup)
        if self._active_count == 0:
            self._wakeup()

    def close_clients(self) -> None:
        """Closes every accepted connection (flushing; Python 3.13)."""
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self) -> None:
        """Aborts every accepted connection (Python 3.13)."""
        for transport in list(self._clients):
            transport.abort()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        if self._sockets is None or self._handle is None or self._freed:
            return False
        return self._loop._lib.aloop_server_is_serving(self._handle) == 1

    @property
    def sockets(self) -> Tuple[trsock.TransportSocket, ...]:
        if self._sockets is None:
            return ()
        return tuple(trsock.TransportSocket(s) for s in self._sockets)

    def _start_serving(self) -> None:
        if self._sockets is None or self._handle is None:
            return
        lib = self._loop._lib
        if lib.aloop_server_is_serving(self._handle) != 1:
            self._context = contextvars.copy_context()
        rc = lib.aloop_server_start_serving(self._handle)
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))

    async def start_serving(self) -> None:
        """Starts accepting connections (for start_serving=False servers)."""
        self._start_serving()
        # Skip one loop iteration, as asyncio does.
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        """Accepts connections until cancelled (then closes the server)."""
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Waits until the server is closed and its connections are gone.

        As asyncio of the running Python: before 3.12 it returns at once
        when the server is already closed (or was never closed: then it
        waits for close() and the connections)."""
        if self._waiters is None:
            return
        if self._sockets is None and _WAIT_CLOSED_311:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()


#: Server.wait_closed returns at once on a closed server (asyncio < 3.12).
_WAIT_CLOSED_311 = sys.version_info < (3, 12)


def _unix_socket_file(sock: socket.socket) -> Optional[Tuple[Any, int]]:
    """(path, inode) of the file a bound Unix socket listens on, or None
    (abstract or unnamed socket, or no file)."""
    path = sock.getsockname()
    if not path or path[0] in (0, "\0"):
        return None
    try:
        return path, os.stat(path).st_ino
    except OSError:
        return None


def _remove_unix_socket_file(path: Any, ino: int) -> None:
    """Removes the socket file at path if it is still the server's (as
    asyncio 3.13's _stop_serving: a file someone replaced is left alone)."""
    try:
        if os.stat(path).st_ino == ino:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)


def _ssl_accept_done(loop: "EventLoop", waiter: asyncio.Future, tr: "Transport",
                     protocol: Any) -> None:
    """The TLS handshake of an accepted connection ended (asyncio's
    _accept_connection2): on failure, close the transport and report it in
    debug mode."""
    if waiter.cancelled():
        tr.close()
        return
    exc = waiter.exception()
    if exc is None:
        return
    tr.close()
    if loop.get_debug():
        loop.call_exception_handler({
            "message": "Error on transport creation for incoming connection",
            "exception": exc, "protocol": protocol, "transport": tr,
        })


def _c_addr(family: int, addr: Any) -> Tuple[Optional[bytes], int]:
    """A Python address -> (host, port) for the library."""
    if addr is None:
        return None, 0
    if family == socket.AF_UNIX or isinstance(addr, (str, bytes)) and not isinstance(addr, tuple):
        p = os.fsencode(addr)
        if p.startswith(b"\0"):
            return b"@" + p[1:], 0
        if p.startswith(b"@"):
            return b"./" + p, 0
        return p, 0
    host, port = addr[0], addr[1]
    return (host.encode("idna") if isinstance(host, str) else host), int(port)


def _py_addr(family: int, host: Optional[bytes], port: int) -> Any:
    """(host, port) from the library -> the Python address of this family."""
    h = (host or b"").decode("utf-8", "surrogateescape")
    if family == socket.AF_UNIX:
        if not h or h == "@":  # an unnamed socket (a socketpair's)
            return None
        if h.startswith("@"):
            return "\0" + h[1:]
        return h
    if family == socket.AF_INET6:
        return (h, port, 0, 0)
    return (h, port)


_FAMILY_BYTES = sys.byteorder


def _sockaddr(raw: bytes, family: int) -> Any:
    """A struct sockaddr (as recvfrom gave it) -> the Python address, as the
    socket module makes it."""
    if len(raw) < 2:
        return None  # no address (as socket.recvfrom)
    fam = int.from_bytes(raw[:2], _FAMILY_BYTES)
    if fam == socket.AF_INET:
        return (socket.inet_ntop(socket.AF_INET, raw[4:8]), int.from_bytes(raw[2:4], "big"))
    if fam == socket.AF_INET6:
        return (socket.inet_ntop(socket.AF_INET6, raw[8:24]), int.from_bytes(raw[2:4], "big"),
                int.from_bytes(raw[4:8], "big"), int.from_bytes(raw[24:28], _FAMILY_BYTES))
    if fam == socket.AF_UNIX:
        path = raw[2:]
        if path == b"\0":
            return None  # an unnamed peer (a socketpair's): recvfrom gives none
        if path[:1] == b"\0":
            return path  # Linux's abstract namespace: bytes, as socket does
        return path.split(b"\0", 1)[0].decode(sys.getfilesystemencoding(), "surrogateescape")
    return _py_addr(family, None, 0)


_NATIVE = sys.byteorder
#: An ALOOP_WRITE_SENDTO header without an address (the remote address).
_NO_DEST = bytes(4)
_V4_HEAD = (16).to_bytes(4, _NATIVE) + socket.AF_INET.to_bytes(2, _NATIVE)
_V6_HEAD = (28).to_bytes(4, _NATIVE) + socket.AF_INET6.to_bytes(2, _NATIVE)
_inet_pton = socket.inet_pton
#: Python < 3.13 drops an empty datagram in sendto(); 3.13 sends it.
_SEND_EMPTY = sys.version_info >= (3, 13)
#: Destinations a transport keeps encoded, and senders it keeps decoded
#: (then it starts again).
_DEST_CACHE = 256
_ADDR_CACHE = 256
_NO_ADDR = object()
_OP_SENDTO = _seam.OP_SENDTO


def _dest(addr: Any) -> Optional[bytes]:
    """The ALOOP_WRITE_SENDTO header and struct sockaddr of a destination the
    library accepted (None: not a numeric (host, port) this encodes)."""
    if addr is None:
        return _NO_DEST
    if type(addr) is not tuple or not 2 <= len(addr) <= 4:
        return None
    host, port = addr[0], addr[1]
    if type(host) is not str or type(port) is not int or not 0 <= port <= 65535:
        return None
    p = port.to_bytes(2, "big")
    try:
        return _V4_HEAD + p + _inet_pton(socket.AF_INET, host) + bytes(8)
    except (OSError, ValueError):
        pass
    try:
        # (flowinfo and scope_id are not sent: as the library's sendto)
        return _V6_HEAD + p + bytes(4) + _inet_pton(socket.AF_INET6, host) + bytes(4)
    except (OSError, ValueError):
        return None


class DatagramTransport(asyncio.DatagramTransport, asyncio.Transport):
    """A datagram endpoint (asyncio.DatagramTransport) driven by libasyncloop."""

    max_size = 256 * 1024

    def __init__(self, loop: "EventLoop", factory: Any, family: int,
                 address: Any = None) -> None:
        super().__init__(None)
        self._loop = loop
        self._protocol: Any = None
        self._factory = factory
        self._family = family
        self._address = address
        self._handle: Optional[int] = None
        self._key: Optional[int] = None
        self._closing = False
        self._closed = False
        #: senders' struct sockaddr (as the poll's records carry them) ->
        #: their Python address
        self._addrs: Dict[bytes, Any] = {}
        self._conn_lost = 0
        self._sock: Optional[socket.socket] = None
        self._factory_exc: Optional[BaseException] = None
        self._lost_exc: Optional[BaseException] = None
        #: The factory and the protocol's callbacks run in this context (a
        #: copy of the creator's).
        self._context = contextvars.copy_context()
        #: sock= of create_datagram_endpoint: the caller's socket object (the
        #: library has a duplicate of its fd); closed with the transport.
        self._owned_sock: Optional[socket.socket] = None
        self._seam = loop._seam
        self._wq = 0  # datagram bytes queued in the loop's write queue (_seam)
        #: connected (remote_addr, or a connected sock=): sendto goes to the
        #: peer (address given: must be remote_addr, if any)
        self._peer = bool(address)
        #: sendto's addresses -> their encoding for the write queue (_dest),
        #: once the library accepted them
        self._dests: Dict[Any, bytes] = {}

    def __repr__(self) -> str:
        state = " closed" if self._closed else (" closing" if self._closing else "")
        return f"<{self.__class__.__name__}{state}>"

    # -- library callbacks -------------------------------------------------------

    def _on_connection_made(self, handle: int) -> None:
        self._handle = handle
        loop = self._loop
        loop._transports[handle] = self  # type: ignore[assignment]
        if _DGRAM_HEADER:
            # The datagrams the library holds count as asyncio counts them.
            loop._lib.aloop_datagram_set_write_overhead(handle, _DGRAM_HEADER)
        sock = self._owned_sock
        if sock is None:
            sock = _borrowed_socket(loop._lib.aloop_datagram_get_fd(handle))
        if sock is not None:
            self._sock = sock
            self._family = sock.family
            extra = self._extra
            extra["socket"] = trsock.TransportSocket(sock)
            try:
                extra["sockname"] = sock.getsockname()
            except OSError:
                extra["sockname"] = None
            try:
                extra["peername"] = sock.getpeername()
            except OSError:
                extra["peername"] = None
            self._peer = bool(self._address or extra["peername"])
        ctx = self._context
        try:
            protocol = _run_in(ctx, self._factory)
            connection_made = protocol.connection_made  # (None fails here, as asyncio)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._factory_exc = exc
            self._closing = True
            loop._lib.aloop_datagram_abort(handle)
            return
        self._protocol = protocol
        self._factory = None
        # As asyncio's call_soon(protocol.connection_made, transport): in a
        # copy of the endpoint's context, an exception to the handler.
        events.Handle(connection_made, (self,), loop, ctx.copy())._run()

    def _on_datagram_raw(self, data: bytes, raw: bytes) -> None:
        """A datagram record of the loop's poll: raw is the sender's struct
        sockaddr (b"" for none)."""
        addr = self._addrs.get(raw, _NO_ADDR)
        if addr is _NO_ADDR:
            addr = self._sender(raw)
        try:
            self._context.run(self._protocol.datagram_received, data, addr)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._fatal_error(exc, "Fatal error: protocol.datagram_received() call failed.")

    def _sender(self, raw: bytes) -> Any:
        """Decodes a sender's struct sockaddr, and keeps it: the peers of an
        endpoint take turns, so each is decoded once (while they are at
        most _ADDR_CACHE)."""
        addrs = self._addrs
        if len(addrs) >= _ADDR_CACHE:
            addrs.clear()
        addr = addrs[raw] = _sockaddr(raw, self._family)
        return addr

    def _on_datagram(self, data: bytes, host: Optional[bytes], port: int) -> None:
        try:
            _run_in(self._context, self._protocol.datagram_received, data,
                    _py_addr(self._family, host, port))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._fatal_error(exc, "Fatal error: protocol.datagram_received() call failed.")

    def _on_error_received(self, error: int) -> None:
        try:
            _run_in(self._context, self._protocol.error_received, make_error(error))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._fatal_error(exc, "Fatal error: protocol.error_received() call failed.")

    def _release_socket(self) -> None:
        sock, self._sock = self._sock, None
        owned, self._owned_sock = self._owned_sock, None
        try:
            if owned is not None:
                owned.close()
            elif sock is not None:
                sock.detach()  # never close: the library owns the fd
        except OSError:
            pass

    def _on_connection_lost(self, error: int) -> None:
        loop = self._loop
        self._closing = True
        self._closed = True
        self._release_socket()
        if self._handle is not None:
            loop._transports.pop(self._handle, None)
        self._handle = None
        exc = self._lost_exc
        if exc is None and error:
            exc = make_error(error)
        self._lost_exc = None
        protocol = self._protocol
        if protocol is None:
            return
        try:
            _run_in(self._context, protocol.connection_lost, exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as e:  # noqa: BLE001
            _run_in(self._context, loop.call_exception_handler, {
                "message": "Exception in callback protocol.connection_lost()",
                "exception": e, "transport": self, "protocol": protocol,
            })

    def _kill(self) -> None:
        """Loop close: abort without calling the protocol."""
        self._closing = self._closed = True
        self._release_socket()
        if self._handle is not None:
            self._loop._lib.aloop_datagram_abort(self._handle)
            self._handle = None

    def _on_pause_writing(self) -> None:
        Transport._on_pause_writing(self)  # type: ignore[arg-type]

    def _on_resume_writing(self) -> None:
        Transport._on_resume_writing(self)  # type: ignore[arg-type]

    _call_pause_writing = Transport._call_pause_writing
    _call_resume_writing = Transport._call_resume_writing

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if not isinstance(exc, OSError):
            _run_in(self._context, self._loop.call_exception_handler, {
                "message": message, "exception": exc,
                "transport": self, "protocol": self._protocol,
            })
        if self._closed:
            return
        if self._lost_exc is None:
            self._lost_exc = exc
        self._closing = True
        self._abort_now()

    # -- asyncio.DatagramTransport ---------------------------------------------

    def sendto(self, data: Any, addr: Any = None) -> None:
        if type(data) is not bytes:
            if not isinstance(data, _BYTES_LIKE):
                raise TypeError(
                    f"data argument must be a bytes-like object, not {type(data).__name__!r}")
            data = bytes(data)
        if not data and not _SEND_EMPTY:
            return
        if self._peer:  # a connected socket: send() to its peer, as asyncio
            if self._address and addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = None
        if self._closing and (self._address or self._closed or self._handle is None):
            # asyncio's rule: after close() or abort() the socket still
            # sends until connection_lost, for an endpoint without a remote
            # address (the library takes those sends); a connected one
            # counts the send as lost, as does any endpoint after
            # connection_lost (warned about from the fifth on).
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        seam = self._seam
        if seam.wcap:
            # Queued in the loop's write queue, sent by the next poll (_seam),
            # to an address the library already accepted (so it is valid).
            try:
                head = self._dests.get(addr)
            except TypeError:  # unhashable: never cached
                head = None
            if head is not None:
                n = len(data)
                j = seam.wn
                off = seam.woff
                mid = off + len(head)
                end = mid + n
                m = n + _DGRAM_HEADER  # what asyncio counts for it
                q = self._wq + m
                if j < seam.wcap and end <= _WRITE_ARENA and q <= _QUEUE_MAX and not seam.later:
                    warena = seam.warena
                    warena[off:mid] = head
                    warena[mid:end] = data
                    ops = seam.ops
                    ops[2 * j] = self._handle
                    ops[2 * j + 1] = (end - off) | _OP_SENDTO
                    seam.wn = j + 1
                    seam.woff = end
                    if m:
                        if not q - m:
                            seam.wtrs.append(self)
                        self._wq = q
                    return
            if seam.busy:
                # Sent by a callback that runs inside a flush or a poll (a
                # stream's pause_writing(), a subprocess protocol's): the
                # queue cannot be flushed now, and sending at once would
                # overtake what is queued. It goes behind it (_seam.later).
                seam.later.append((self, (data, addr)))
                return
            if seam.wn:
                seam.flush()  # order: what is queued goes first
        host, port = _c_addr(self._family, addr)
        lib = self._loop._lib
        rc = lib.aloop_datagram_sendto(self._handle, data, len(data), host, port)
        if rc < 0:
            if rc == _b.ALOOP_EINVAL:  # type: ignore[attr-defined]
                raise ValueError(f"Invalid address: {addr!r}")
            if rc in (_b.ALOOP_ECLOSED, _b.ALOOP_EBADF):  # type: ignore[attr-defined]
                self._closing = True
                return
            self._protocol.error_received(make_error(rc, _b.last_error(lib)))
            return
        dests = self._dests
        try:
            if addr not in dests:
                head = _dest(addr)
                if head is not None:
                    if len(dests) >= _DEST_CACHE:
                        dests.clear()
                    dests[addr] = head
        except TypeError:
            pass

    def _write_later(self, item: Any) -> None:
        """A sendto() (item: (data, addr)) or close() (item: None) made while
        the write queue could not be flushed, now that what was queued
        before it is done (Seam._consumed)."""
        if self._handle is None or self._closed:
            return
        if item is None:
            self._close_now()
            return
        closing = self._closing  # a close() after it waits behind it
        self._closing = False
        try:
            self.sendto(*item)
        except ValueError as exc:  # an address the library refused
            self._on_error_value(exc)
        finally:
            self._closing = closing

    def _on_error_value(self, exc: BaseException) -> None:
        try:
            _run_in(self._context, self._protocol.error_received, exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as e:  # noqa: BLE001
            self._fatal_error(e, "Fatal error: protocol.error_received() call failed.")

    def abort(self) -> None:
        if self._closed:
            return
        self._closing = True
        self._abort_now()

    def _abort_now(self) -> None:
        """abort() and fatal errors: what is queued goes first (Seam.settle),
        the library drops what the socket has not taken."""
        if self._handle is not None:
            self._seam.settle(self._handle)
            self._wq = 0
            self._loop._lib.aloop_datagram_abort(self._handle)
            self._loop._poll_skip = 0

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._handle is not None:
            seam = self._seam
            if seam.busy and any(tr is self for tr, _ in seam.later):
                seam.later.append((self, None))  # behind its sends (sendto)
                return
            self._close_now()

    def _close_now(self) -> None:
        if self._handle is not None:
            seam = self._seam
            if seam.wn:
                # After the queued datagrams: as an operation behind them
                # (or at once when the queue is full or not in use).
                seam.queue_op(self, _seam.OP_CLOSE, self._loop._lib.aloop_datagram_close)
            else:
                self._loop._lib.aloop_datagram_close(self._handle)
            self._loop._poll_skip = 0

    def is_closing(self) -> bool:
        return self._closing

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_write_buffer_size(self) -> int:
        if self._handle is None or self._closed:
            return 0
        out = c_size_t()
        if self._loop._lib.aloop_datagram_get_write_buffer_size(self._handle, byref(out)) < 0:
            return self._wq
        return out.value + self._wq

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        if self._handle is None or self._closed:
            return (16 * 1024, 64 * 1024)
        high, low = c_size_t(), c_size_t()
        lib = self._loop._lib
        rc = lib.aloop_datagram_get_write_buffer_limits(self._handle, byref(high), byref(low))
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))
        return (low.value, high.value)

    def set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        if self._handle is None or self._closed:
            return
        lib = self._loop._lib
        rc = lib.aloop_datagram_set_write_buffer_limits(self._handle, high, low)
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))
