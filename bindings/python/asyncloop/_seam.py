"""The batched seam: one crossing into the library per loop iteration.

A ctypes call costs 0.2-1.5 us, a ctypes callback as much again, where a
Python attribute access costs tens of nanoseconds.  So the loop's stream
transports use the library's event queue (include/asyncloop.h, "The event
queue"):

* **Reads without callbacks.**  ``aloop_loop_poll`` (one call per iteration)
  reads sockets straight into a read arena and leaves each protocol event as
  a 40-byte record in an event array; both are this module's memory.  The
  poll only *collects*: :meth:`Seam.dispatch` runs from the loop's ready
  queue, behind every callback that was ready before the poll, exactly as
  asyncio's selector loop appends its I/O handles -- so callback order is
  asyncio's.
* **Writes without a call each.**  ``Transport.write`` copies small writes
  into a write arena and appends a 16-byte operation; ``close()`` and
  ``write_eof()`` are operations too, so order holds.  The next poll performs
  them first.  A transport never has more than ``QUEUE_MAX`` bytes queued
  here: beyond that (or when the arena is full) the queue is flushed at once
  (``aloop_loop_flush``) and the write goes straight to the library, which
  calls ``pause_writing`` inside it, as asyncio does.  The loop flushes when
  it stops, so a stopped loop holds no unsent byte.
* **Datagrams too.**  ``DatagramTransport.sendto`` queues an
  ``ALOOP_WRITE_SENDTO`` operation: the destination as a struct sockaddr
  (encoded once per address and cached by the transport), then the datagram.
  The library sends it in order with the other operations and reports a
  failed send as an error-received record, as asyncio reports a send that
  fails after it was buffered.
"""

from __future__ import annotations

import asyncio.selector_events
import ctypes
import mmap
import struct
import sys
from typing import TYPE_CHECKING, Any, Dict, List

from . import _bindings as _b
from . import _trampolines as _t
from ._errors import make_error

if TYPE_CHECKING:  # pragma: no cover
    from ._loop import EventLoop

#: Event records per poll (40 bytes each).
EVENTS = 1024
#: Read arena: one poll reads at most this much (256 KiB per read, as
#: asyncio's max_size).  Anonymous memory: only the pages used are resident.
READ_ARENA = 1 << 20
#: Queued write operations (16 bytes each) and their arena.
WRITE_OPS = 4096
WRITE_ARENA = 1 << 20
#: Bytes one transport may have queued here before a write is sent at once.
QUEUE_MAX = 64 * 1024
#: What the running Python's asyncio counts in a datagram transport's write
#: buffer per datagram it holds, besides its bytes: 8 on CPython >= 3.13
#: (_SelectorDatagramTransport: "include header bytes"; _header_size once
#: gh-135444 is fixed), 0 before.  A datagram queued here counts so too.
DGRAM_HEADER = getattr(asyncio.selector_events._SelectorDatagramTransport, "_header_size",
                       8 if sys.version_info >= (3, 13) else 0)

_DATA = _b.ALOOP_EVENT_DATA  # type: ignore[attr-defined]
_MADE = _b.ALOOP_EVENT_CONNECTION_MADE  # type: ignore[attr-defined]
_EOF = _b.ALOOP_EVENT_EOF  # type: ignore[attr-defined]
_LOST = _b.ALOOP_EVENT_CONNECTION_LOST  # type: ignore[attr-defined]
_PAUSE = _b.ALOOP_EVENT_PAUSE_WRITING  # type: ignore[attr-defined]
_RESUME = _b.ALOOP_EVENT_RESUME_WRITING  # type: ignore[attr-defined]
_DATAGRAM = _b.ALOOP_EVENT_DATAGRAM  # type: ignore[attr-defined]
_ERROR = _b.ALOOP_EVENT_ERROR_RECEIVED  # type: ignore[attr-defined]
_READABLE = _b.ALOOP_EVENT_READABLE  # type: ignore[attr-defined]
_WRITABLE = _b.ALOOP_EVENT_WRITABLE  # type: ignore[attr-defined]
#: fd watcher operations, indexed by writer (0 reader, 1 writer)
OP_REMOVE_WATCH = (_b.ALOOP_WRITE_REMOVE_READER << 32, _b.ALOOP_WRITE_REMOVE_WRITER << 32)  # type: ignore[attr-defined]
OP_ADD_WATCH = (_b.ALOOP_WRITE_ADD_READER << 32, _b.ALOOP_WRITE_ADD_WRITER << 32)  # type: ignore[attr-defined]
_OP_WATCH = _b.ALOOP_WRITE_REMOVE_READER  # type: ignore[attr-defined]
OP_EOF = _b.ALOOP_WRITE_EOF << 32  # type: ignore[attr-defined]
OP_CLOSE = _b.ALOOP_WRITE_CLOSE << 32  # type: ignore[attr-defined]
OP_SENDTO = _b.ALOOP_WRITE_SENDTO << 32  # type: ignore[attr-defined]
_SENDTO = _b.ALOOP_WRITE_SENDTO  # type: ignore[attr-defined]
_NATIVE = sys.byteorder

_get = _t.objects.get
#: One event record (aloop_event_t): kind, error, transport, userdata,
#: offset, length.  iter_unpack reads a record in one step, where indexing
#: a memoryview costs a step per field.
_EVENT = struct.Struct("@IiPPQQ")
_iter_events = _EVENT.iter_unpack
assert _EVENT.size == ctypes.sizeof(_b.aloop_event_t)  # type: ignore[attr-defined]


class _Dispatch:
    """What the loop's ready queue holds for the events of one poll (an
    asyncio Handle look-alike: ``_cancelled``, ``_callback``, ``_run``)."""

    __slots__ = ("_cancelled", "_callback", "_args", "_seam", "_events")

    def __init__(self, seam: "Seam", events: Any = None) -> None:
        self._cancelled = False
        self._callback = None
        self._args = ()
        self._seam = seam
        self._events = events  # None: the records of the last poll

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled

    def __repr__(self) -> str:
        return "<Handle asyncloop I/O events>"

    def _run(self) -> None:
        if self._events is None:
            self._seam.dispatch()
        else:
            self._seam.dispatch_saved(self._events)


class Seam:
    """The event queue and the write queue of one loop."""

    __slots__ = (
        "_loop", "_lib", "_handle", "_ev_mem", "ev", "evb", "nev", "rarena", "rmv",
        "_ops_mem", "ops", "wn", "woff", "wtrs", "warena", "busy", "later",
        "_arena_refs", "handle", "wcap", "_args", "_args_addr", "_args_q", "_args_d",
        "wpend", "seq",
    )

    def __init__(self, loop: "EventLoop", lib: Any, handle: int) -> None:
        self._loop = loop
        self._lib = lib
        self._handle = handle
        self._ev_mem = (ctypes.c_uint64 * (5 * EVENTS))()
        self.evb = memoryview(self._ev_mem).cast("B")
        self.ev = self.evb.cast("Q")
        self.nev = 0
        self.rarena = mmap.mmap(-1, READ_ARENA)
        self.rmv = memoryview(self.rarena)
        self._ops_mem = (ctypes.c_uint64 * (2 * WRITE_OPS))()
        self.ops = memoryview(self._ops_mem).cast("B").cast("Q")
        self.wn = 0
        self.woff = 0
        #: room for operations: 0 while the loop is not running (a write
        #: is sent at once, as asyncio's) and in debug mode (every write is
        #: a library call, which checks the calling thread)
        self.wcap = 0
        self.wtrs: List[Any] = []  # transports with queued bytes
        self.warena = mmap.mmap(-1, WRITE_ARENA)
        self.busy = False  # inside a flush or a poll
        #: (transport, data) written during a flush or a poll, queue full
        #: (a datagram endpoint's: (data, addr), or None for its close())
        self.later: List[Any] = []
        #: fd watcher operations in the write queue: 2 * fd + writer -> the
        #: operation's index (at most one per fd and direction: re-adding
        #: or removing again rewrites it in place)
        self.wpend: Dict[int, int] = {}
        #: polls so far: a record of poll number seq runs only watchers
        #: added before that poll (asyncio's selector hands out the
        #: handles registered when it was polled)
        self.seq = 0
        # addresses for C (the ctypes views pin the mmaps)
        rref = ctypes.c_char.from_buffer(self.rarena)
        wref = ctypes.c_char.from_buffer(self.warena)
        self._arena_refs = (rref, wref)
        rc = lib.aloop_loop_set_event_queue(handle, ctypes.cast(self._ev_mem, ctypes.POINTER(_b.aloop_event_t)),
                                            EVENTS, ctypes.addressof(rref), READ_ARENA)
        if rc >= 0:
            rc = lib.aloop_loop_set_write_queue(handle, ctypes.cast(self._ops_mem, ctypes.POINTER(_b.aloop_write_op_t)),
                                                WRITE_OPS, ctypes.addressof(wref), WRITE_ARENA)
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))
        self.handle = _Dispatch(self)
        # aloop_loop_poll_args's block: one argument per call (a ctypes call
        # costs about 0.2 us more per argument it converts).
        args = _b.aloop_poll_args_t()  # type: ignore[attr-defined]
        args.size = ctypes.sizeof(args)
        args.loop = handle
        self._args = args
        self._args_addr = ctypes.addressof(args)
        mv = memoryview(args).cast("B")  # type: ignore[arg-type]
        self._args_q = mv.cast("Q")  # [3]: nwrites
        self._args_d = mv.cast("d")  # [2]: timeout

    # -- polling -------------------------------------------------------------

    def poll(self, timeout: float, nowait: bool) -> int:
        """One aloop_loop_poll: the queued writes, then one iteration.
        Returns the number of event records (or a negative error)."""
        nw, nb = self.wn, self.woff
        lib = self._lib
        if self.nev:
            # The records of the last poll were not dispatched (a callback
            # before them raised out of the loop): keep them, in place, before
            # this poll reuses the memory.
            self.handle._events = self._saved(0, self.nev)
            self.handle = _Dispatch(self)
            self.nev = 0
        self._args_q[3] = nw
        self._args_d[2] = timeout
        self.seq += 1
        self.busy = True
        try:
            if nowait:
                rc = lib.aloop_loop_poll_args_nowait(self._args_addr)
            else:
                rc = lib.aloop_loop_poll_args_wait(self._args_addr)
        finally:
            self.busy = False
        if nw and rc >= 0:
            self._consumed(nw, nb)
        if rc > 0:
            self.nev = rc
            self._loop._ready.append(self.handle)
        return rc

    def flush(self) -> None:
        """Performs the queued writes now (aloop_loop_flush)."""
        nw, nb = self.wn, self.woff
        if not nw or self.busy:
            return
        self.busy = True
        try:
            rc = self._lib.aloop_loop_flush(self._handle, nw)
        finally:
            self.busy = False
        if rc >= 0:
            self._consumed(nw, nb)
        loop = self._loop
        if loop._pending_exc is not None:  # pause_writing() ran inside
            loop._raise_pending()

    def _consumed(self, nw: int, nb: int) -> None:
        """The first nw operations (nb arena bytes) are done."""
        wn = self.wn
        trs = self.wtrs
        for tr in trs:
            tr._wq = 0
        trs.clear()
        wpend = self.wpend
        if wpend:
            self.wpend = {k: j - nw for k, j in wpend.items() if j >= nw} if wn != nw else {}
        if wn == nw:
            self.wn = 0
            self.woff = 0
        else:
            # Operations queued while the library ran (by a callback): move
            # them to the front, with their bytes.
            ops = self.ops
            rest = 2 * (wn - nw)
            ops[0:rest] = ops[2 * nw:2 * wn]
            woff = self.woff
            self.warena[0:woff - nb] = self.warena[nb:woff]
            self.wn = wn - nw
            self.woff = woff - nb
            transports = self._loop._transports
            warena = self.warena
            off = 0
            for i in range(0, rest, 2):
                v = ops[i + 1]
                kind = v >> 32
                if kind == 0 or kind == _SENDTO:
                    n = v & 0xFFFFFFFF
                    if kind:  # a queued datagram: its bytes, not the address
                        hdr = int.from_bytes(warena[off:off + 4], _NATIVE)
                        off, n = off + n, n - 4 - hdr + DGRAM_HEADER
                    else:
                        off += n
                    tr = transports.get(ops[i])
                    if tr is not None and n:
                        if not tr._wq:
                            trs.append(tr)
                        tr._wq += n
        later = self.later
        if later and not self.busy:
            self.later = []
            for tr, data in later:
                tr._write_later(data)

    def settle(self, handle: int) -> None:
        """Before an abort (or a fatal error) of a transport: its queued
        operations are performed first, since asyncio's write()/sendto()
        would have handed those bytes to the socket when they were written
        (an abort drops only what the socket did not take).  Inside a flush
        or a poll they cannot be, and are dropped."""
        if self.wn and not self.busy:
            self.flush()
        self.drop(handle)

    def drop(self, handle: int) -> None:
        """Forgets the queued operations of a transport."""
        ops = self.ops
        for i in range(0, 2 * self.wn, 2):
            if ops[i] == handle and ops[i + 1] >> 32 < _OP_WATCH:
                ops[i] = 0  # a write to no transport: its bytes are skipped
        self.later = [(tr, d) for tr, d in self.later if tr._handle != handle]

    def queue_op(self, tr: Any, op: int, call: Any) -> int:
        """Queues an operation without bytes (close / write_eof) behind the
        transport's queued writes or datagrams. When the queue has no room
        even after a flush (debug mode, or inside a flush) it is performed
        now, by call(handle): returns that call's result (0 when queued)."""
        j = self.wn
        if j >= self.wcap:
            self.flush()
            j = self.wn
            if j >= self.wcap:
                return call(tr._handle)
        ops = self.ops
        ops[2 * j] = tr._handle
        ops[2 * j + 1] = op
        self.wn = j + 1
        return 0

    def queue_watch(self, key: int, op: int) -> bool:
        """Queues an fd watcher operation (key: 2 * fd + writer); False
        when it must be a call (no room, or the loop does not queue)."""
        j = self.wpend.get(key)
        if j is None:
            j = self.wn
            if j >= self.wcap:
                return False
            self.ops[2 * j] = key >> 1
            self.wn = j + 1
            self.wpend[key] = j
        self.ops[2 * j + 1] = op
        return True

    def close(self) -> None:
        """Loop close: drop what is queued and give the memory back."""
        self.wpend = {}
        self.wn = self.woff = 0
        self.nev = 0
        for tr in self.wtrs:
            tr._wq = 0
        self.wtrs.clear()
        self.later = []

    # -- dispatching ---------------------------------------------------------

    def dispatch(self) -> None:
        """Runs the protocol callbacks of the last poll's records, in order.

        A record of data for a plain transport (an asyncio.Protocol, not
        closing, reading) is dispatched here, inline, as Transport._on_data
        would: this runs once per request on a busy server."""
        n = self.nev
        self.nev = 0
        arena = self.rarena
        i = 0
        try:
            for kind, err, th, ud, off, ln in _iter_events(self.evb[:40 * n]):
                i += 1
                tr = _get(ud)
                if tr is None:
                    if kind >= _READABLE:  # an fd watcher's (userdata 0)
                        self._watch_ready(kind, th, self.seq)
                    continue
                if kind == _DATA:
                    if tr._closing or tr._paused or tr._buffered:
                        # A buffered protocol copies from the arena into its
                        # own buffer (one copy); data_received gets bytes.
                        tr._on_data(self.rmv[off:off + ln] if tr._buffered else arena[off:off + ln])
                        continue
                    try:
                        tr._context.run(tr._protocol.data_received, arena[off:off + ln])
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:  # noqa: BLE001
                        tr._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
                        exc = None  # type: ignore[assignment]
                elif kind == _DATAGRAM:
                    end = off + ln
                    tr._on_datagram_raw(arena[off:end], arena[end:end + err] if err else b"")
                else:
                    _control(tr, kind, err, th)
        except BaseException:
            if i < n:
                self._save(i, n)
            raise

    def _save(self, i: int, n: int) -> None:
        """KeyboardInterrupt/SystemExit stopped a dispatch: the records not
        yet dispatched run first when the loop runs again."""
        self._loop._ready.appendleft(_Dispatch(self, self._saved(i, n)))

    def _saved(self, i: int, n: int) -> List[Any]:
        """Records i..n-1, copied out of the memory the next poll reuses."""
        ev = self.ev
        rest = []
        for k in range(i, n):
            b = 5 * k
            off = ev[b + 3]
            end = off + ev[b + 4]
            kind = ev[b] & 0xFFFFFFFF
            data: Any = None
            if kind == _DATA:
                data = self.rarena[off:end]
            elif kind == _DATAGRAM:
                data = (self.rarena[off:end], self.rarena[end:end + (ev[b] >> 32)])
            elif kind >= _READABLE:
                data = self.seq
            rest.append((ev[b], ev[b + 1], ev[b + 2], data))
        return rest

    def _watch_ready(self, kind: int, fd: int, seq: int) -> None:
        """A watcher's fd is ready (a record of poll number seq): its
        handle runs now, as asyncio runs the handles of one select() in
        order, unless it was removed, replaced or added since that poll.
        A record with an error (a queued re-add the library could not
        make) runs it too: its I/O on the fd sees the error."""
        loop = self._loop
        w = (loop._writers if kind == _WRITABLE else loop._readers).get(fd)
        if w is not None and w.seq < seq:
            h = w.handle
            if not h._cancelled:
                h._run()

    def dispatch_saved(self, rest: List[Any]) -> None:
        try:
            while rest:
                w, th, ud, data = rest.pop(0)
                if w & 0xFFFFFFFF >= _READABLE:
                    self._watch_ready(w & 0xFFFFFFFF, th, data)
                    continue
                tr = _get(ud)
                if tr is None:
                    continue
                kind = w & 0xFFFFFFFF
                if kind == _DATA:
                    tr._on_data(data)
                elif kind == _DATAGRAM:
                    tr._on_datagram_raw(*data)
                else:
                    err = w >> 32
                    _control(tr, kind, err - (1 << 32) if err >= 1 << 31 else err, th)
        except BaseException:
            if rest:
                self._loop._ready.appendleft(_Dispatch(self, rest))
            raise


def _control(tr: Any, kind: int, err: int, th: int) -> None:
    """Dispatches a record that carries no data (err: its error field; th:
    the transport handle)."""
    if kind == _MADE:
        tr._on_connection_made(th)
    elif kind == _LOST or kind == _ERROR:
        if kind == _LOST:
            tr._on_connection_lost(err)
        else:
            tr._on_error_received(err)
    elif kind == _EOF:
        tr._on_eof()
    elif kind == _PAUSE:
        tr._on_pause_writing()
    elif kind == _RESUME:
        tr._on_resume_writing()
