"""TLS for ``ssl=``: asyncio's SSLProtocol with a lean steady state.

asyncio's ``sslproto.SSLProtocol`` (the algorithm uvloop compiles) is kept
whole: its handshake, shutdown, timeouts, errors, eof rules, flow control,
BufferedProtocol apps and ``get_extra_info`` are the ones this binding runs.
What this module changes is the cost of the one state a connection spends
its life in, ``WRAPPED`` (after the handshake, before the shutdown), where a
request cost 16 Python-level calls inside sslproto (a profile of
``tls_echo_1k_c10``: docs/architecture.md, "Python: asyncio's SSLProtocol
with a lean steady state"):

* **Reads.**  The transport hands the records of the loop's read arena
  straight to :meth:`SSLProtocol._tls_feed` (one call, no
  ``get_buffer``/``buffer_updated`` copy through sslproto's buffer); it
  writes them into the incoming BIO and, in ``WRAPPED`` with a
  ``data_received`` app that is not paused, decrypts and delivers inline,
  reading only while the BIO holds bytes (no ``SSLWantReadError`` raised
  per request).
* **Writes.**  :meth:`SSLTransport.write` with nothing in sslproto's
  backlog encrypts with the SSLObject and hands the records to the
  transport's write queue at once (sslproto: write -> _write_appdata ->
  _do_write -> _process_outgoing -> _control_app_writing).

Every other case (handshake, shutdown, a BufferedProtocol app, paused
reading, a backlog, paused writing, an error) goes to sslproto's own
methods, unchanged; the fast paths produce the same calls, in the same
order, with the same results as sslproto's general ones.
"""

from __future__ import annotations

import ssl
from asyncio import sslproto
from typing import Any

_WRAPPED = sslproto.SSLProtocolState.WRAPPED
_AGAIN = sslproto.SSLAgainErrors
_BYTES_LIKE = (bytes, bytearray, memoryview)
#: Bytes asked of one SSLObject.read: a record's plaintext at most (2**14).
#: sslproto asks for max_size (256 KiB), which costs a 256 KiB allocation
#: per read (about 1 us, far more while malloc serves it by mmap); what a
#: read leaves is read by the next turn of the loop (SSLObject.pending).
_RECORD = 16384


class SSLTransport(sslproto._SSLProtocolTransport):
    """asyncio's TLS app transport with a direct write in the steady state."""

    __slots__ = ()

    def write(self, data: Any) -> None:
        """Write some data bytes to the transport (as asyncio's)."""
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(f"data: expecting a bytes-like instance, "
                            f"got {type(data).__name__}")
        if not data:
            return
        p = self._ssl_protocol
        if p._state is not _WRAPPED or p._write_backlog or p._ssl_writing_paused:
            p._write_appdata((data,))
            return
        try:
            n = p._tls_write(data)
            if n != len(data):
                # (a partial write: sslproto keeps the rest)
                rest = data[n:] if n else data
                p._write_backlog.append(rest)
                p._write_buffer_size += len(rest)
                p._do_write()
                return
            out = p._outgoing.read()
            if out:
                p._transport.write(out)
            # (nothing is buffered now: only a resume, or a pause with a
            # high-water mark of 0, can follow)
            if p._app_writing_paused or p._outgoing_high_water <= 0:
                p._control_app_writing()
        except _AGAIN:
            p._write_backlog.append(data)
            p._write_buffer_size += len(data)
            p._process_outgoing()
        except Exception as ex:
            p._fatal_error(ex, "Fatal error on SSL protocol")


class SSLProtocol(sslproto.SSLProtocol):
    """asyncio's SSLProtocol, fed by the transport from the read arena."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The C methods of the SSLObject (ssl.SSLObject.read/write are
        # Python wrappers around them).
        c = self._sslobj._sslobj
        self._tls_read = c.read
        self._tls_write = c.write
        self._tls_sslpending = c.pending
        # sslproto's read buffer (max_size, 256 KiB, an mmap per connection)
        # is not used when the transport feeds _tls_feed; get_buffer makes
        # it on first use otherwise.
        self._ssl_buffer = bytearray()
        self._ssl_buffer_view = memoryview(self._ssl_buffer)

    def _get_app_transport(self) -> Any:
        if self._app_transport is None:
            if self._app_transport_created:
                raise RuntimeError("Creating _SSLProtocolTransport twice")
            self._app_transport = SSLTransport(self._loop, self)
            self._app_transport_created = True
        return self._app_transport

    def _tls_feed(self, data: Any) -> None:
        """Bytes read from the socket (a view of the loop's read arena,
        valid during this call): sslproto's buffer_updated without the copy
        into its own buffer."""
        self._incoming.write(data)
        if (self._state is not _WRAPPED or self._app_reading_paused
                or self._app_protocol_is_buffer):
            self._tls_dispatch()
            return
        # sslproto's _do_read / _do_read__copied, in the WRAPPED state.
        incoming = self._incoming
        read = self._tls_read
        chunk = b"1"
        data = None
        try:
            try:
                while incoming.pending or self._tls_sslpending():
                    chunk = read(_RECORD)
                    if not chunk:
                        break
                    if data is None:
                        data = chunk
                    elif type(data) is list:
                        data.append(chunk)
                    else:
                        data = [data, chunk]
            except _AGAIN:
                pass
            if data is not None:
                self._app_protocol.data_received(
                    data if type(data) is bytes else b"".join(data))
            if not chunk:
                # close_notify
                self._call_eof_received()
                self._start_shutdown()
            if self._write_backlog:
                self._do_write()
            elif (self._outgoing.pending or self._app_writing_paused
                  or self._outgoing_high_water <= 0):
                self._process_outgoing()
            if (self._ssl_reading_paused
                    or incoming.pending >= self._incoming_high_water):
                self._control_ssl_reading()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    def _tls_dispatch(self) -> None:
        """sslproto's buffer_updated after the write into the BIO."""
        state = self._state
        if state == sslproto.SSLProtocolState.DO_HANDSHAKE:
            self._do_handshake()
        elif state == _WRAPPED:
            self._do_read()
        elif state == sslproto.SSLProtocolState.FLUSHING:
            self._do_flush()
        elif state == sslproto.SSLProtocolState.SHUTDOWN:
            self._do_shutdown()


async def start_tls(loop: Any, transport: Any, protocol: Any, sslcontext: Any, *,
                    server_side: bool = False, server_hostname: Any = None,
                    ssl_handshake_timeout: Any = None,
                    ssl_shutdown_timeout: Any = None) -> Any:
    """loop.start_tls with this module's protocol: asyncio's steps and
    errors (base_events.BaseEventLoop.start_tls)."""
    if not isinstance(sslcontext, ssl.SSLContext):
        raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, "
                        f"got {sslcontext!r}")
    if not getattr(transport, "_start_tls_compatible", False):
        raise TypeError(f"transport {transport!r} is not supported by start_tls()")
    waiter = loop.create_future()
    tls = Protocol(loop, protocol, sslcontext, waiter, server_side, server_hostname,
                   ssl_handshake_timeout=ssl_handshake_timeout,
                   ssl_shutdown_timeout=ssl_shutdown_timeout, call_connection_made=False)
    # Reading stays paused until the TLS protocol is connected: no record
    # reaches it before connection_made.
    transport.pause_reading()
    transport.set_protocol(tls)
    made = loop.call_soon(tls.connection_made, transport)
    resumed = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resumed.cancel()
        raise
    return tls._app_transport


#: The fast paths use sslproto's internals (the Python 3.11+ sslproto, from
#: uvloop); when they are not there, the binding uses SSLProtocol as is.
SUPPORTED = all(hasattr(sslproto.SSLProtocol, a) for a in (
    "_write_appdata", "_do_write", "_process_outgoing", "_control_app_writing",
    "_control_ssl_reading", "_do_read", "_do_flush", "_do_shutdown", "_do_handshake",
    "_call_eof_received", "_start_shutdown", "_fatal_error", "_get_app_transport",
)) and hasattr(sslproto, "_SSLProtocolTransport") and hasattr(ssl, "MemoryBIO")

Protocol = SSLProtocol if SUPPORTED else sslproto.SSLProtocol

__all__ = ["Protocol", "SSLProtocol", "SSLTransport", "SUPPORTED", "start_tls"]
