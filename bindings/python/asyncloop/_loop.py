"""asyncloop.EventLoop: asyncio's BaseEventLoop over the libasyncloop core.

The ready queue, the timer heap, call_soon/call_later/call_at,
run_forever/run_until_complete/stop/close, tasks and futures (asyncio's C
implementations), the exception handler, executors and debug mode are
asyncio's own Python code (a Python call costs ~40 ns, a ctypes call
200-400 ns).  Where asyncio's selector loop polls its selector, this loop
calls ``aloop_loop_run_once(loop, timeout)`` once per iteration: the core
waits for I/O (with the GIL released) and runs every I/O callback of that
iteration (protocol callbacks, fd watchers, future done-callbacks) on this
thread, through ctypes trampolines, during that one call.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
import ctypes
import errno
import heapq
import inspect
import io
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from asyncio import (base_events, coroutines, events, format_helpers, selector_events, sslproto,
                     tasks, unix_events)
from ctypes import byref, c_char_p, c_size_t, c_void_p, sizeof
from typing import Any, Callable, Dict, List, Optional

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without ssl
    _ssl = None  # type: ignore[assignment]

from . import _bindings as _b
from . import _errors as asyncloop_errors
from . import _trampolines as _t
from ._errors import make_error
from . import _seam
from . import _tls
from ._seam import Seam
from ._subprocess import SubprocessStdin, SubprocessTransport, _StdinProtocol
from ._transports import (DatagramTransport, ReadPipeTransport, Server, Transport,
                          WritePipeTransport)
from ._transports import _unix_socket_file

__all__ = ["EventLoop", "new_event_loop", "run"]

logger = logging.getLogger("asyncio")


_monotonic = time.monotonic
_MIN_SCHEDULED_TIMER_HANDLES = base_events._MIN_SCHEDULED_TIMER_HANDLES
_MIN_CANCELLED_TIMER_HANDLES_FRACTION = base_events._MIN_CANCELLED_TIMER_HANDLES_FRACTION
_MAXIMUM_SELECT_TIMEOUT = base_events.MAXIMUM_SELECT_TIMEOUT
#: asyncio's own test (3.14 deprecates the public asyncio.iscoroutinefunction
#: and uses this private one; before, only the public one exists).
_iscoroutinefunction = getattr(coroutines, "_iscoroutinefunction", None) or coroutines.iscoroutinefunction
#: While Python callbacks are ready, poll the core at least every
#: _POLL_EVERY loop iterations and every _POLL_INTERVAL seconds.
_POLL_EVERY = 16
_POLL_INTERVAL = 0.001


def _sighandler_noop(signum: int, frame: Any) -> None:
    """Dummy handler: Python writes the signal number to the wakeup fd."""


_check_ssl_socket = base_events._check_ssl_socket
_sleep0 = asyncio.sleep  # (0): one turn of the loop
_copy_context = contextvars.copy_context


class Handle(events.Handle):
    """asyncio's Handle as the loop's call_soon makes it outside debug mode
    (_new_handle: without the debug-mode branch); _run_once runs it inline."""

    __slots__ = ()


_new_object = object.__new__
_callback_source = format_helpers._format_callback_source
_SOURCE_DEBUG = sys.version_info >= (3, 13)  # _format_callback_source(..., debug=)


def _new_handle(callback: Any, args: Any, loop: Any, context: Any) -> Handle:
    """Handle(callback, args, loop, context) without the call of __init__
    (a Python __init__ is not inlined by 3.11's interpreter: ~60 ns).
    EventLoop.call_soon has this body inline: keep the two in step."""
    handle = _new_object(Handle)
    handle._context = _copy_context() if context is None else context
    handle._loop = loop
    handle._callback = callback
    handle._args = args
    handle._cancelled = False
    handle._repr = None
    handle._source_traceback = None
    return handle


def _callback_error(handle: Any, exc: BaseException) -> None:
    """What asyncio's Handle._run does when its callback raises (the
    loop's _run_once runs its own Handles inline)."""
    if _SOURCE_DEBUG:
        cb = _callback_source(handle._callback, handle._args, debug=handle._loop.get_debug())
    else:
        cb = _callback_source(handle._callback, handle._args)
    context = {
        'message': f'Exception in callback {cb}',
        'exception': exc,
        'handle': handle,
    }
    if handle._source_traceback:
        context['source_traceback'] = handle._source_traceback
    handle._loop.call_exception_handler(context)


class TimerHandle(events.TimerHandle):
    """asyncio's TimerHandle, made without the debug-mode branch (the
    loop's call_at uses it only outside debug mode)."""

    __slots__ = ()

    def __init__(self, when: float, callback: Any, args: Any, loop: Any,
                 context: Any = None) -> None:
        if context is None:
            context = _copy_context()
        self._context = context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        self._scheduled = False

    def cancel(self) -> None:
        """asyncio's TimerHandle.cancel (the loop counts the cancelled timers
        it still holds), in one call."""
        if self._cancelled:
            return
        loop = self._loop
        if self._scheduled:
            loop._timer_cancelled_count += 1
        self._cancelled = True
        if loop._debug:
            self._repr = repr(self)
        self._callback = None
        self._args = None


class _Value:
    """A result read by a reader of _await_core_future."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _CoreSelector:
    """What BaseEventLoop._run_once sees as ``self._selector``."""

    __slots__ = ("select",)

    def __init__(self, poll: Callable[[Optional[float]], Any]) -> None:
        self.select = poll

    def close(self) -> None:  # pragma: no cover - never called by asyncio
        pass


class _FdWatch:
    """A user reader/writer: its asyncio Handle, run when a record of a poll
    after seq (Seam.seq when it was added) says the fd is ready."""

    __slots__ = ("handle", "seq")

    def __init__(self, handle: events.Handle, seq: int) -> None:
        self.handle = handle
        self.seq = seq


class _CoreCallback:
    """A one-shot Python callable run by a library callback."""

    __slots__ = ("_loop", "_fn")

    def __init__(self, loop: "EventLoop", fn: Callable[..., None]) -> None:
        self._loop = loop
        self._fn = fn

    def __call__(self, *args: Any) -> None:
        self._fn(*args)


class _SignalPipe:
    """Reader of the signal wakeup pipe (runs during aloop_loop_run_once)."""

    __slots__ = ("_loop",)

    def __init__(self, loop: "EventLoop") -> None:
        self._loop = loop

    def __call__(self) -> None:
        loop = self._loop
        fd = loop._sig_rfd
        if fd is None:
            return
        while True:
            try:
                data = os.read(fd, 4096)
            except InterruptedError:
                continue
            except OSError:
                break
            if not data:
                break
            handlers = loop._signal_handlers
            if handlers:
                for signum in data:
                    if signum:
                        loop._handle_signal(signum)


class _ExceptionHandlerRef:
    """Routes the core's exception handler to loop.call_exception_handler."""

    __slots__ = ("_ref",)

    def __init__(self, loop: "EventLoop") -> None:
        self._ref = weakref.ref(loop)

    @property
    def _loop(self) -> Optional["EventLoop"]:
        return self._ref()

    def __call__(self, ctx: _b.aloop_exception_context_t) -> None:
        loop = self._ref()
        if loop is None:
            return
        context: Dict[str, Any] = {
            "message": (ctx.message or b"").decode("utf-8", "replace"),
        }
        if ctx.error:
            detail = (ctx.error_detail or b"").decode("utf-8", "replace")
            context["exception"] = make_error(ctx.error, detail)
        if ctx.transport:
            tr = loop._transports.get(ctx.transport)
            if tr is not None:
                context["transport"] = tr
                context["protocol"] = tr._protocol
        if ctx.server:
            srv = loop._servers.get(ctx.server)
            if srv is not None:
                context["server"] = srv
        loop.call_exception_handler(context)


_base_call_at = asyncio.BaseEventLoop.call_at


class EventLoop(asyncio.BaseEventLoop):
    """An asyncio event loop whose I/O is done by libasyncloop.

    A complete :class:`asyncio.AbstractEventLoop`: scheduling, futures and
    tasks (asyncio's own), executors, DNS, TCP and Unix stream transports and
    servers (so asyncio streams), TLS (``ssl=`` and ``start_tls`` with a
    Python :class:`ssl.SSLContext`, done by asyncio's ``sslproto`` over the
    library's transports, as asyncio does; ``_tls`` makes its steady state lean), accepted sockets, pipes,
    datagram endpoints, subprocesses, sendfile, add_reader/add_writer, the
    sock_* coroutines and signal handlers.

    Create it with :func:`asyncloop.new_event_loop`, :func:`asyncloop.run`,
    ``asyncio.Runner(loop_factory=asyncloop.new_event_loop)`` or, after
    :func:`asyncloop.install`, with asyncio's own functions.
    """

    # Defaults that make __del__ safe when __init__ fails early.
    _closed = True
    _handle: Optional[int] = None

    def __init__(self) -> None:
        lib = _b.load()
        out = c_void_p()
        rc = lib.aloop_loop_new(byref(out))
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))
        self._lib = lib
        self._handle: Optional[int] = out.value
        self._polling = False
        self._wake_sent = False
        self._poll_skip = 0
        self._poll_deadline = 0.0
        self._pending_exc: Optional[BaseException] = None
        self._transports: Dict[int, Transport] = {}
        self._servers: Dict[int, Server] = {}
        self._readers: Dict[int, _FdWatch] = {}
        self._writers: Dict[int, _FdWatch] = {}
        self._signal_handlers: Dict[int, events.Handle] = {}
        self._core_futures: Dict[int, bool] = {}
        self._sig_rfd: Optional[int] = None
        self._sig_wfd: Optional[int] = None
        self._sig_installed = False
        self._saved_wakeup_fd = -1
        self._selector = _CoreSelector(self._poll)
        try:
            self._seam = Seam(self, lib, out.value)
        except BaseException:
            self._handle = None
            lib.aloop_loop_free(out.value)
            raise
        super().__init__()
        key = _t.register(_ExceptionHandlerRef(self))
        lib.aloop_loop_set_exception_handler(self._handle, _t.exception_cb, key, _t.free_cb)

    def __repr__(self) -> str:
        return (f"<{self.__class__.__name__} running={self.is_running()} "
                f"closed={self.is_closed()} debug={self.get_debug()}>")

    # -- timers -------------------------------------------------------------------

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,
                context: Any = None) -> asyncio.TimerHandle:
        """asyncio's call_at (call_later goes through it), but a NaN time
        raises ValueError, as uvloop does: in asyncio's timer heap a NaN
        breaks the ordering of every other timer. Infinity is a time that
        never comes (asyncio.sleep(math.inf) sleeps forever), as in uvloop.
        Outside debug mode it does asyncio's work in fewer operations."""
        if when != when:  # NaN
            raise ValueError("call_at()/call_later(): the time is NaN")
        if self._debug or when is None:
            timer = _base_call_at(self, when, callback, *args, context=context)
            if timer._source_traceback:
                del timer._source_traceback[-1]
            return timer
        if self._closed:
            raise RuntimeError("Event loop is closed")
        timer = TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._scheduled, timer)
        timer._scheduled = True
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any,
                   context: Any = None) -> asyncio.TimerHandle:
        """asyncio's call_later: call_at(time() + delay)."""
        if delay is None:
            raise TypeError("delay must not be None")
        timer = self.call_at(_monotonic() + delay, callback, *args, context=context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        return timer

    # -- the iteration --------------------------------------------------------

    def _poll(self, timeout: Optional[float]) -> tuple:
        """One aloop_loop_poll: the queued writes, one wait of the core, and
        the protocol events of the iteration appended to the ready queue
        (behind what was ready before, as asyncio's selector loop does).

        While Python callbacks are ready and no write is queued, the core is
        polled (without waiting) only every _POLL_EVERY iterations or every
        _POLL_INTERVAL seconds, whichever comes first: I/O is never starved,
        and a chain of ready callbacks does not pay a crossing per iteration.
        """
        if self._handle is None:
            raise RuntimeError("Event loop is closed")
        seam = self._seam
        if self._ready:
            skip = self._poll_skip
            if skip > 0 and seam.wn == len(seam.wpend):  # no write queued
                now = _monotonic()
                if now < self._poll_deadline:
                    self._poll_skip = skip - 1
                    return ()
            self._poll_skip = _POLL_EVERY
            self._poll_deadline = _monotonic() + _POLL_INTERVAL
            rc = seam.poll(0.0, True)
        else:
            self._wake_sent = False
            self._polling = True  # before looking at _ready: see _write_to_self
            try:
                if self._ready:
                    t = 0.0
                elif timeout is None:
                    t = -1.0
                else:
                    t = timeout
                rc = seam.poll(t, False)
            finally:
                self._polling = False
            self._poll_skip = _POLL_EVERY
            self._poll_deadline = _monotonic() + _POLL_INTERVAL
        if self._pending_exc is not None:
            self._raise_pending()
        if rc < 0:
            raise make_error(rc, _b.last_error(self._lib))
        return ()

    def _run_once(self) -> None:
        """asyncio's BaseEventLoop._run_once, with the same steps in the same
        order (purge cancelled timers, poll, expired timers, run what is
        ready), in fewer Python operations: this runs once per iteration,
        which is once per request on a busy server.  Debug mode runs
        asyncio's own (slow-callback reports)."""
        if self._debug:
            super()._run_once()
            return
        sched = self._scheduled
        if sched:
            sched_count = len(sched)
            if (sched_count > _MIN_SCHEDULED_TIMER_HANDLES and
                    self._timer_cancelled_count / sched_count >
                    _MIN_CANCELLED_TIMER_HANDLES_FRACTION):
                new_scheduled = []
                for handle in sched:
                    if handle._cancelled:
                        handle._scheduled = False
                    else:
                        new_scheduled.append(handle)
                heapq.heapify(new_scheduled)
                self._scheduled = sched = new_scheduled
                self._timer_cancelled_count = 0
            else:
                while sched and sched[0]._cancelled:
                    self._timer_cancelled_count -= 1
                    handle = heapq.heappop(sched)
                    handle._scheduled = False
        ready = self._ready
        if ready or self._stopping:
            timeout: Optional[float] = 0
        elif sched:
            timeout = min(max(0, sched[0]._when - _monotonic()), _MAXIMUM_SELECT_TIMEOUT)
        else:
            timeout = None
        self._poll(timeout)
        if sched:
            end_time = _monotonic() + self._clock_resolution
            while sched:
                handle = sched[0]
                if handle._when >= end_time:
                    break
                handle = heapq.heappop(sched)
                handle._scheduled = False
                ready.append(handle)
        popleft = ready.popleft
        for _ in range(len(ready)):
            handle = popleft()
            if handle._cancelled:
                continue
            if type(handle) is Handle:
                # Handle._run, inline (one Python call less per callback;
                # no argument unpacking for the common call without).
                try:
                    if handle._args:
                        handle._context.run(handle._callback, *handle._args)
                    else:
                        handle._context.run(handle._callback)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    _callback_error(handle, exc)
                    exc = None  # type: ignore[assignment]
            else:
                handle._run()
        handle = None  # Needed to break cycles when an exception occurs.

    def call_soon(self, callback: Callable[..., Any], *args: Any,
                  context: Any = None) -> events.Handle:
        """asyncio's call_soon (the same checks and Handle), in fewer Python
        operations outside debug mode."""
        if self._debug:
            return super().call_soon(callback, *args, context=context)
        if self._closed:
            raise RuntimeError("Event loop is closed")
        # _new_handle's body, inline (keep the two in step): a task pays
        # this at each step, and the call of _new_handle measured 4% of
        # sleep0_tasks (250k against 241k tasks/s, py_micro, 5 runs).
        handle = _new_object(Handle)
        handle._context = _copy_context() if context is None else context
        handle._loop = self
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = None
        self._ready.append(handle)
        return handle

    def create_task(self, coro: Any, *, name: Any = None, context: Any = None) -> "asyncio.Task[Any]":
        """asyncio's create_task. Without a task factory and outside debug
        mode (where a task has no _source_traceback to trim) in fewer Python
        operations: this runs once per task."""
        if self._task_factory is not None or self._debug:
            return super().create_task(coro, name=name, context=context)
        if self._closed:
            raise RuntimeError("Event loop is closed")
        return tasks.Task(coro, loop=self, name=name, context=context)

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any,
                             context: Any = None) -> events.Handle:
        """asyncio's call_soon_threadsafe; the wake-up is coalesced (one per
        wait of the loop, see _write_to_self)."""
        if self._debug:
            return super().call_soon_threadsafe(callback, *args, context=context)
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = _new_handle(callback, args, self, context)
        self._ready.append(handle)
        if self._polling and not self._wake_sent:
            self._write_to_self()
        return handle

    def _raise_pending(self) -> None:
        """Re-raises what a callback called from C stored (KeyboardInterrupt,
        SystemExit, an error of the binding)."""
        exc = self._pending_exc
        self._pending_exc = None
        if exc is not None:
            try:
                raise exc
            finally:
                exc = None

    def _process_events(self, event_list: Any) -> None:
        pass

    def _write_to_self(self) -> None:
        # THREAD-SAFE.  Only a loop inside (or entering) its wait needs a
        # wake-up: _poll sets _polling before it checks _ready, and callers
        # append to _ready before they get here.  One wake-up per wait.
        if self._polling and not self._wake_sent:
            self._wake_sent = True
            handle = self._handle
            if handle is not None:
                self._lib.aloop_loop_wakeup(handle)

    def run_forever(self) -> None:
        if self._lib.dead:  # created before os.fork(): see _bindings
            raise RuntimeError(_b.FORK_MESSAGE)
        self._check_closed()
        self._check_running()
        self._pending_exc = None
        installed = self._install_signal_wakeup()
        seam = self._seam
        try:
            # Writes are queued only while the loop runs (and not in debug
            # mode): outside it they are sent at once, as asyncio does.
            if not self._debug:
                seam.wcap = _seam.WRITE_OPS
            super().run_forever()
        finally:
            seam.wcap = 0
            if installed:
                self._uninstall_signal_wakeup()
            if self._handle is not None:
                seam.flush()  # a stopped loop holds no unsent byte

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._lib.aloop_loop_set_debug(handle, 1 if enabled else 0)
            seam = self._seam
            seam.flush()
            seam.wcap = _seam.WRITE_OPS if self.is_running() and not enabled else 0

    def close(self) -> None:
        """Closes the loop (asyncio semantics), then the core loop.

        Open transports are aborted and servers closed without calling their
        protocols, as asyncio leaves them; then the core loop is freed.
        """
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._signal_handlers and not sys.is_finalizing():
            for sig in list(self._signal_handlers):
                try:
                    self.remove_signal_handler(sig)
                except (RuntimeError, ValueError, OSError):
                    pass
        super().close()
        self._close_core()
        for fd in self.__dict__.pop("_child_pidfds", ()):  # children of _spawn_stdlib
            os.close(fd)

    def _close_core(self) -> None:
        handle = self._handle
        if handle is None:
            return
        lib = self._lib
        if lib.dead:  # never call into a library inherited through fork
            self._handle = None
            self._close_sig_pipe()
            return
        self._seam.close()
        objects = _t.objects
        # No user code runs from here on: forget every key of this loop.
        for key, obj in list(objects.items()):
            if getattr(obj, "_loop", None) is self:
                objects.pop(key, None)
        for fut_h in list(self._core_futures):
            lib.aloop_future_cancel(fut_h)
            lib.aloop_future_free(fut_h)
        self._core_futures.clear()
        for srv in list(self._servers.values()):
            srv._kill()
        self._servers.clear()
        for tr in list(self._transports.values()):
            tr._kill()
        self._transports.clear()
        for fd in list(self._readers):
            lib.aloop_remove_reader(handle, fd)
            self._readers.pop(fd).handle.cancel()
        for fd in list(self._writers):
            lib.aloop_remove_writer(handle, fd)
            self._writers.pop(fd).handle.cancel()
        if self._sig_rfd is not None:
            lib.aloop_remove_reader(handle, self._sig_rfd)
        # What is already closing on the core loop (a foreign library's
        # transports it closed itself) finishes for up to 200 ms, so its
        # connection_lost runs; whatever is still open then goes at once
        # (the core's force-close: no callback runs, every free_cb does).
        for _ in range(40):
            rc = lib.aloop_loop_close(handle)
            if rc != _b.ALOOP_EBUSY:  # type: ignore[attr-defined]
                break
            lib.aloop_loop_run_once(handle, 0.005)
        else:
            lib.aloop_loop_close_force(handle)
        self._pending_exc = None
        self._handle = None
        lib.aloop_loop_free(handle)
        self._close_sig_pipe()

    # -- signals ----------------------------------------------------------------

    def _ensure_sig_pipe(self) -> None:
        if self._sig_rfd is not None:
            return
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        key = _t.register(_SignalPipe(self))
        rc = self._lib.aloop_add_reader(self._handle, r, _t.fd_cb, key, _t.free_cb)
        if rc < 0:
            os.close(r)
            os.close(w)
            raise make_error(rc, _b.last_error(self._lib))
        self._sig_rfd, self._sig_wfd = r, w

    def _close_sig_pipe(self) -> None:
        for fd in (self._sig_rfd, self._sig_wfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._sig_rfd = self._sig_wfd = None

    def _install_signal_wakeup(self) -> bool:
        """On the main thread: make Python's C signal handler write to a pipe
        the core watches, so that a signal (Ctrl-C) ends a wait at once."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if self._sig_installed:  # add_signal_handler keeps it installed
            return False
        self._ensure_sig_pipe()
        try:
            self._saved_wakeup_fd = signal.set_wakeup_fd(self._sig_wfd, warn_on_full_buffer=False)
        except (ValueError, OSError):
            return False
        return True

    def _uninstall_signal_wakeup(self) -> None:
        try:
            signal.set_wakeup_fd(self._saved_wakeup_fd)
        except (ValueError, OSError):
            pass
        self._saved_wakeup_fd = -1

    def _check_signal(self, sig: int) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def _handle_signal(self, sig: int) -> None:
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return
        if handle._cancelled:
            self.remove_signal_handler(sig)
        else:
            self._add_callback(handle)

    def add_signal_handler(self, sig: int, callback: Callable[..., Any], *args: Any) -> None:
        """Runs callback(*args) on the loop when signal sig arrives (main thread only)."""
        if coroutines.iscoroutine(callback) or _iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        self._ensure_sig_pipe()
        try:
            old = signal.set_wakeup_fd(self._sig_wfd, warn_on_full_buffer=False)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        if not self._sig_installed:
            if not self.is_running() or old != self._sig_wfd:
                self._saved_wakeup_fd = old
            self._sig_installed = True
        handle = events.Handle(callback, args, self, None)
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, _sighandler_noop)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._drop_signal_wakeup()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise

    def remove_signal_handler(self, sig: int) -> bool:
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise
        if not self._signal_handlers:
            self._drop_signal_wakeup()
        return True

    def _drop_signal_wakeup(self) -> None:
        if not self._sig_installed:
            return
        self._sig_installed = False
        if self.is_running() and threading.current_thread() is threading.main_thread():
            return  # run_forever restores the saved fd when it returns
        try:
            signal.set_wakeup_fd(self._saved_wakeup_fd)
        except (ValueError, OSError):
            pass
        self._saved_wakeup_fd = -1

    # -- core futures -----------------------------------------------------------

    def _add_core_done_callback(self, fut_h: int, fn: Callable[[int], None]) -> None:
        key = _t.register(_CoreCallback(self, fn))
        rc = self._lib.aloop_future_add_done_callback(fut_h, _t.future_cb, key, _t.free_cb)
        if rc < 0:
            raise make_error(rc, _b.last_error(self._lib))

    async def _await_core_future(self, fut_h: int, kind: Any,
                                 on_orphan: Optional[Callable[[int], None]] = None) -> Any:
        """Awaits a future of the library.  kind: 'transport', 'server',
        'subprocess', 'datagram', 'size', None (no result), or a reader
        ``fn(future) -> (rc, value)`` that reads the result before the future
        is freed.  The core future is freed here.  If the awaiting task is
        cancelled, the core future is cancelled; a result that arrives anyway
        is handed to on_orphan (to close it)."""
        lib = self._lib
        waiter = self.create_future()
        state = {"freed": False}

        def done(fh: int) -> None:
            self._core_futures.pop(fh, None)
            out: Any = c_void_p()
            if callable(kind):
                rc, value = kind(fh)
                out = _Value(value)
            elif kind == "size":
                out = c_size_t()
                rc = lib.aloop_future_result_size(fh, byref(out))
            elif kind == "transport":
                rc = lib.aloop_future_result_transport(fh, byref(out))
            elif kind == "server":
                rc = lib.aloop_future_result_server(fh, byref(out))
            elif kind == "subprocess":
                rc = lib.aloop_future_result_subprocess(fh, byref(out))
            elif kind == "datagram":
                rc = lib.aloop_future_result_datagram(fh, byref(out))
            else:
                rc = lib.aloop_future_exception(fh)
            msg = _b.future_error_message(lib, fh) if rc < 0 else ""
            state["freed"] = True
            lib.aloop_future_free(fh)
            if waiter.done():
                if (rc == 0 and on_orphan is not None and isinstance(kind, str)
                        and kind != "size" and out.value):
                    on_orphan(out.value)
                return
            if rc == 0:
                waiter.set_result(out.value)
            elif rc == _b.ALOOP_ECANCELED:  # type: ignore[attr-defined]
                waiter.cancel()
            else:
                waiter.set_exception(make_error(rc, msg))

        try:
            self._add_core_done_callback(fut_h, done)
        except BaseException:
            lib.aloop_future_free(fut_h)
            raise
        self._core_futures[fut_h] = True
        try:
            return await waiter
        except asyncio.CancelledError:
            if not state["freed"]:
                lib.aloop_future_cancel(fut_h)
            raise

    # -- foreign libraries (docs/interop.md) -------------------------------------

    @property
    def handle(self) -> int:
        """The C handle of this loop (an ``aloop_loop_t *`` as an int), for a
        library written against ``include/asyncloop.h`` that creates its own
        transports, servers, timers and futures on this loop.

        Valid until :meth:`close` (``RuntimeError`` once closed). The library
        is called from this loop's thread (inside a callback or a coroutine
        of this loop); its callbacks then run on that thread, with the GIL,
        between this loop's own callbacks. Close what the library made on
        the loop before closing the loop. Load the library (``ctypes.CDLL``)
        after ``asyncloop`` loaded libasyncloop: it must resolve to the same
        ``libasyncloop.so.0`` (one Go runtime per process).
        """
        h = self._handle
        if h is None or self._closed:
            raise RuntimeError("Event loop is closed")
        return h

    def wrap_future(self, future: int, result: Optional[Callable[[int], Any]] = None,
                    release: Optional[Callable[[Any], None]] = None) -> "asyncio.Future[Any]":
        """Wraps a C future (an ``aloop_future_t *`` as an int) of this loop,
        returned by a foreign library, as an :class:`asyncio.Future`.

        Ownership: the wrapper takes over the caller's reference to the C
        future (see "References" in include/asyncloop.h) and frees it once
        the C future is done and its outcome copied, or when this loop
        closes; do not free it yourself. Whatever happens on either side,
        no handle dangles: the library keeps its own reference to resolve
        the future, and a handle freed by both sides is stale, never reused.

        The asyncio future gets the C future's outcome: its result is
        ``result(future)`` when ``result`` is given (called once, on the
        loop thread, while the handle is valid: read typed results there),
        else the pointer-sized result (``aloop_future_result``) as an int
        (0 for NULL); a failed C future becomes the matching ``OSError``
        (``asyncloop`` error classes) with the C future's message; a
        cancelled one cancels it. Cancelling the asyncio future cancels the C
        future (the library sees ``aloop_future_cancelled``). A result that
        arrives when the asyncio future was already cancelled is passed to
        ``release(value)`` (to free what it points to) instead of being
        dropped silently.
        """
        lib = self._lib
        if self._handle is None or self._closed:
            raise RuntimeError("Event loop is closed")
        if not isinstance(future, int) or future == 0:
            raise TypeError("future must be a non-NULL aloop_future_t * as an int")
        waiter = self.create_future()
        state = [False]  # the C future's done-callback ran (the handle is freed)

        def done(fh: int) -> None:
            state[0] = True
            self._core_futures.pop(fh, None)
            rc = lib.aloop_future_exception(fh)
            value: Any = None
            exc: Optional[BaseException] = None
            if rc == 0:
                if result is not None:
                    try:
                        value = result(fh)
                    except BaseException as e:  # noqa: BLE001 - handed to the awaiter
                        exc = e
                else:
                    out = c_void_p()
                    rc = lib.aloop_future_result(fh, byref(out))
                    value = out.value or 0
            msg = _b.future_error_message(lib, fh) if rc < 0 else ""
            lib.aloop_future_free(fh)
            if waiter.done():
                if rc == 0 and exc is None and release is not None:
                    release(value)
                return
            if exc is not None:
                waiter.set_exception(exc)
            elif rc == 0:
                waiter.set_result(value)
            elif rc == _b.ALOOP_ECANCELED:  # type: ignore[attr-defined]
                waiter.cancel()
            else:
                waiter.set_exception(make_error(rc, msg))

        try:
            self._add_core_done_callback(future, done)
        except BaseException:
            lib.aloop_future_free(future)
            raise
        self._core_futures[future] = True

        def py_done(w: "asyncio.Future[Any]") -> None:
            if w.cancelled() and not state[0] and self._handle is not None:
                lib.aloop_future_cancel(future)

        waiter.add_done_callback(py_done)
        return waiter

    # -- DNS ----------------------------------------------------------------------

    async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> List[tuple]:
        """socket.getaddrinfo() without blocking the loop, as asyncio: the C
        library's resolver (nsswitch, /etc/hosts, DNS) in the default
        executor, so results and errors are exactly the socket module's.
        Numeric hosts (and ports) are answered at once on the loop thread:
        they need no lookup (their results are cached)."""
        if not self._debug:
            cached = _numeric_addrinfo(host, port, family, type, proto, flags)
            if cached is not None:
                self._check_closed()
                return cached
        return await super().getaddrinfo(host, port, family=family, type=type, proto=proto,
                                         flags=flags)

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple:
        """socket.getnameinfo() without blocking the loop, as asyncio (the
        default executor); at once with NI_NUMERICHOST | NI_NUMERICSERV."""
        if (not self._debug and isinstance(flags, int)
                and flags & _NI_NUMERIC == _NI_NUMERIC):
            self._check_closed()
            return socket.getnameinfo(sockaddr, flags)
        return await super().getnameinfo(sockaddr, flags)

    # -- streams: TCP, Unix sockets, accepted sockets, pipes ------------------------

    async def _open_stream(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                           start: Callable[[int, Any, Any], int],
                           extra: Optional[Dict[str, Any]] = None,
                           pipe: Any = None, owned_sock: Any = None,
                           ssl: Any = None, server_side: bool = False,
                           server_hostname: Optional[str] = None,
                           ssl_handshake_timeout: Optional[float] = None,
                           ssl_shutdown_timeout: Optional[float] = None,
                           transport_class: Any = Transport) -> tuple:
        """Creates a Transport whose C side start(key, protocol_ref,
        byref(out_future)) creates; waits for its future; returns
        (transport, protocol).

        pipe / owned_sock: the Python object of an fd whose duplicate the
        library got; the transport keeps it and closes it when the
        connection is lost (asyncio's ownership).

        ssl (an ssl.SSLContext, or True for a default one): as asyncio's
        _make_ssl_transport, the transport's protocol is asyncio's
        sslproto.SSLProtocol (_tls's subclass) wrapping the user's protocol (TLS by Python's
        ssl module over the library's transport); this returns once the
        handshake is done, with the SSL transport."""
        self._check_closed()
        lib = self._lib
        waiter = None
        made: List[Any] = []
        if ssl:
            # As asyncio, the user's protocol and the SSLProtocol over it are
            # made once connected (a connect that fails leaves no TLS
            # transport behind, unclosed).
            waiter = self.create_future()
            sslcontext = None if isinstance(ssl, bool) else ssl

            def factory() -> Any:
                app_protocol = protocol_factory()
                made.append(app_protocol)
                ssl_protocol = _tls.Protocol(
                    self, app_protocol, sslcontext, waiter, server_side, server_hostname,
                    ssl_handshake_timeout=ssl_handshake_timeout,
                    ssl_shutdown_timeout=ssl_shutdown_timeout)
                made.append(ssl_protocol)
                return ssl_protocol

            tr = Transport(self, None, factory=factory)
        else:
            tr = transport_class(self, None, factory=protocol_factory)
        ref = _t.PROTOCOL_REF
        if extra:
            tr._extra.update(extra)
        tr._pipe = pipe
        if owned_sock is not None:
            tr._adopt_socket(owned_sock)
        key = _t.register(tr)
        tr._key = key
        out = c_void_p()
        rc = start(key, ref, byref(out))
        if rc < 0:
            _t.objects.pop(key, None)
            raise make_error(rc, _b.last_error(lib))
        try:
            await self._await_core_future(
                out.value, "transport", on_orphan=lambda h: lib.aloop_transport_abort(h))
        except asyncio.CancelledError:
            tr._force_close(None)
            if tr._handle is None:
                # Not connected yet (the library aborts what it still
                # makes): the socket or pipe given is closed now, as
                # asyncio's transport.close() does.
                tr._closing = tr._closed = True
                tr._release_socket()
                pipe, tr._pipe = tr._pipe, None
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
            raise
        if tr._factory_exc is not None:
            exc, tr._factory_exc = tr._factory_exc, None
            raise exc
        if waiter is None:
            return tr, tr._protocol
        app_protocol, ssl_protocol = made
        app_transport = ssl_protocol._app_transport
        try:
            await waiter
        except BaseException:
            app_transport.close()  # as asyncio: the TLS transport (then the socket)
            raise
        return app_transport, app_protocol

    async def create_connection(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            host: Optional[str] = None, port: Optional[int] = None, *,
            ssl: Any = None, family: int = 0, proto: int = 0, flags: int = 0,
            sock: Optional[socket.socket] = None, local_addr: Any = None,
            server_hostname: Any = None, ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = None, happy_eyeballs_delay: Optional[float] = None,
            interleave: Optional[int] = None, all_errors: bool = False) -> tuple:
        """Connects a TCP stream to host:port (or wraps a connected socket
        given as sock=); returns (transport, protocol).

        A numeric host (IPv4 or IPv6 address, int port) is connected by the
        library.  A name is resolved and connected as asyncio does (its
        create_connection: getaddrinfo in the executor, each address in
        turn or Happy Eyeballs with happy_eyeballs_delay / interleave,
        local_addr, all_errors), and the connected socket is then handed to
        the library.  ssl (an ssl.SSLContext or True) with server_hostname,
        ssl_handshake_timeout and ssl_shutdown_timeout: TLS by Python's ssl
        module through asyncio's SSLProtocol, as asyncio does.
        """
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            _check_ssl_socket(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            fam = _native_stream_family(host, port, family, proto, flags, local_addr)
            if fam is None:
                # A name, a service, a scoped address, a local name: asyncio's
                # own algorithm over this loop (getaddrinfo, sock_connect).
                kw: Dict[str, Any] = {}
                if all_errors and _HAS_ALL_ERRORS:
                    kw["all_errors"] = True
                try:
                    return await super().create_connection(
                        protocol_factory, host, port, ssl=ssl, family=family, proto=proto,
                        flags=flags, local_addr=local_addr, server_hostname=server_hostname,
                        ssl_handshake_timeout=ssl_handshake_timeout,
                        ssl_shutdown_timeout=ssl_shutdown_timeout,
                        happy_eyeballs_delay=happy_eyeballs_delay, interleave=interleave,
                        **kw)
                except OSError as exc:
                    # all_errors before Python 3.12 (whose asyncio lacks it).
                    if (not all_errors or _HAS_ALL_ERRORS or isinstance(exc, socket.gaierror)
                            or _is_ssl_error(exc)):
                        raise
                    raise ExceptionGroup("create_connection failed", [exc]) from None
            port = int(port)  # type: ignore[arg-type]
            address = (host, port, 0, 0) if fam == socket.AF_INET6 else (host, port)
        elif sock is None:
            raise ValueError("host and port was not specified and no sock specified")
        elif sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        if sock is not None:
            return await self._create_connection_transport(
                sock, protocol_factory, ssl, server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout)
        opts = _b.aloop_connect_options_t()
        opts.size = sizeof(_b.aloop_connect_options_t)
        opts.family = fam
        chost = _encode_host(host)
        if local_addr is not None:
            lhost, lport = local_addr[0], local_addr[1]
            opts.local_host = _encode_host(
                lhost or ("::" if fam == socket.AF_INET6 else "0.0.0.0"))
            opts.local_port = int(lport or 0)
        lib = self._lib
        handle = self._handle

        def start(key: int, ref: Any, out: Any) -> int:
            return lib.aloop_create_connection(handle, chost, port, ref, key,
                                               _t.free_cb, byref(opts), out)

        try:
            return await self._open_stream(
                protocol_factory, start, ssl=ssl,
                server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout)
        except OSError as exc:
            if _is_ssl_error(exc):
                raise
            err = _connect_error(exc, address, local_addr)
            if all_errors:
                raise ExceptionGroup("create_connection failed", [err]) from None
            raise err from None

    async def _create_connection_transport(
            self, sock: socket.socket, protocol_factory: Callable[[], asyncio.BaseProtocol],
            ssl: Any, server_hostname: Any, server_side: bool = False,
            ssl_handshake_timeout: Any = None, ssl_shutdown_timeout: Any = None) -> tuple:
        """A connected stream socket -> a library transport that owns it
        (asyncio's create_connection calls this with the socket it
        connected; sock= of create_connection)."""
        self._check_closed()
        sock.setblocking(False)
        opts = _b.aloop_connect_options_t()
        opts.size = sizeof(_b.aloop_connect_options_t)
        opts.has_sock = 1
        opts.sock = dup_fd = self._dup(sock.fileno())
        lib = self._lib
        handle = self._handle

        def start(key: int, ref: Any, out: Any) -> int:
            rc = lib.aloop_create_connection(handle, None, 0, ref, key,
                                             _t.free_cb, byref(opts), out)
            if rc < 0:
                os.close(dup_fd)
            return rc

        return await self._open_stream(
            protocol_factory, start, owned_sock=sock, ssl=ssl, server_side=server_side,
            server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def create_unix_connection(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            path: Any = None, *, ssl: Any = None, sock: Optional[socket.socket] = None,
            server_hostname: Any = None, ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = None) -> tuple:
        """Connects to the Unix stream socket at path (or wraps sock); with
        ssl (server_hostname required), TLS as create_connection."""
        assert server_hostname is None or isinstance(server_hostname, str)
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        ssl_args = dict(ssl=ssl, server_hostname=server_hostname,
                        ssl_handshake_timeout=ssl_handshake_timeout,
                        ssl_shutdown_timeout=ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            cpath = _unix_path(path)
            lib, handle = self._lib, self._handle
            return await self._open_stream(
                protocol_factory,
                lambda key, ref, out: lib.aloop_create_unix_connection(
                    handle, cpath, ref, key, _t.free_cb, out), **ssl_args)
        if sock is None:
            raise ValueError("no path and sock were specified")
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        return await self._adopt_socket(protocol_factory, sock, **ssl_args)

    async def start_tls(self, transport: Any, protocol: Any, sslcontext: Any, *,
                        server_side: bool = False, server_hostname: Any = None,
                        ssl_handshake_timeout: Any = None,
                        ssl_shutdown_timeout: Any = None) -> Any:
        """Upgrades transport to TLS (asyncio's start_tls): the same steps
        and errors, with the binding's TLS protocol (_tls: asyncio's
        SSLProtocol with a lean steady state); returns the TLS transport."""
        if _ssl is None:
            raise RuntimeError("Python ssl module is not available")
        return await _tls.start_tls(
            self, transport, protocol, sslcontext, server_side=server_side,
            server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def connect_accepted_socket(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            sock: socket.socket, *, ssl: Any = None, ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = None) -> tuple:
        """Wraps an accepted (connected) stream socket into a transport; the
        transport owns it from then on.  With ssl, the server side of TLS
        (as asyncio)."""
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        _check_ssl_socket(sock)
        return await self._adopt_socket(
            protocol_factory, sock, ssl=ssl, server_side=True, server_hostname="",
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def _adopt_socket(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                            sock: socket.socket, **ssl_args: Any) -> tuple:
        lib, handle = self._lib, self._handle
        self._check_closed()
        fd = self._dup(sock.fileno())

        def start(key: int, ref: Any, out: Any) -> int:
            rc = lib.aloop_connect_accepted_socket(handle, fd, ref, key, _t.free_cb, out)
            if rc < 0:
                os.close(fd)
            return rc

        return await self._open_stream(protocol_factory, start, owned_sock=sock, **ssl_args)

    async def connect_read_pipe(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                pipe: Any) -> tuple:
        """Reads a pipe (or FIFO, socket, pty, character device) file object;
        the transport closes it when the connection is lost."""
        return await self._open_pipe(protocol_factory, pipe, read=True)

    async def connect_write_pipe(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                 pipe: Any) -> tuple:
        """Writes to a pipe file object; the transport closes it when the
        connection is lost."""
        return await self._open_pipe(protocol_factory, pipe, read=False)

    async def _open_pipe(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                         pipe: Any, read: bool) -> tuple:
        lib, handle = self._lib, self._handle
        # The library owns (and closes) a duplicate; the file object is
        # closed when the connection is lost, as asyncio does.
        fd = self._dup(self._fileno(pipe))
        fn = lib.aloop_connect_read_pipe if read else lib.aloop_connect_write_pipe

        def start(key: int, ref: Any, out: Any) -> int:
            rc = fn(handle, fd, ref, key, _t.free_cb, out)
            if rc < 0:
                os.close(fd)
            return rc

        return await self._open_stream(protocol_factory, start, extra={"pipe": pipe}, pipe=pipe,
                                       transport_class=ReadPipeTransport if read
                                       else WritePipeTransport)

    async def create_server(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            host: Any = None, port: Optional[int] = None, *,
            family: int = socket.AF_UNSPEC, flags: int = socket.AI_PASSIVE,
            sock: Optional[socket.socket] = None, backlog: int = 100, ssl: Any = None,
            reuse_address: Optional[bool] = None, reuse_port: Optional[bool] = None,
            keep_alive: Optional[bool] = None,
            ssl_handshake_timeout: Any = None, ssl_shutdown_timeout: Any = None,
            start_serving: bool = True) -> Server:
        """Listens on host:port (host None or '' = all interfaces, a sequence
        of hosts = each of them; port 0 or None = any free port), or on a
        bound socket given as sock= (the server owns it from then on).  With
        ssl (an ssl.SSLContext), accepted connections do TLS with Python's
        ssl module through asyncio's SSLProtocol, as asyncio does.
        keep_alive (Python 3.13's argument, accepted on every version) sets
        SO_KEEPALIVE on the listening sockets made for host/port, which the
        accepted connections inherit."""
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and ssl is None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and ssl is None:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            _check_ssl_socket(sock)
        self._check_closed()
        opts = _b.aloop_server_options_t()
        opts.size = sizeof(_b.aloop_server_options_t)
        opts.backlog = int(backlog)
        opts.reuse_address = -1 if reuse_address is None else (1 if reuse_address else 0)
        opts.reuse_port = 1 if reuse_port else 0
        # keep_alive: set on the sockets before they accept (so serving
        # starts once that is done).
        keep_alive = bool(keep_alive) and sock is None
        opts.start_serving = 1 if start_serving and not keep_alive else 0
        opts.family = int(family)
        opts.flags = int(flags)
        chost: Optional[bytes] = None
        hosts_arr = None
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if host == "":
                hosts = [None]
            elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
                hosts = [host]
            else:
                hosts = list(host)
            if not (hosts == [None] or all(
                    h is not None and _is_numeric_host(h, exact=True) for h in hosts)) or not (
                    port is None or type(port) is int):  # noqa: E721
                # Names (or a service): resolved here as asyncio does
                # (getaddrinfo in the executor), the library binds the
                # addresses.
                infos = await asyncio.gather(*[
                    self._create_server_getaddrinfo(h, port, family, flags) for h in hosts])
                addrs = list(dict.fromkeys(
                    info[4][:2] for info in itertools.chain.from_iterable(infos)))
                hosts = [a[0] for a in addrs]
                port = addrs[0][1]
                opts.flags = socket.AI_NUMERICHOST | socket.AI_PASSIVE
            if hosts == [None]:
                pass
            elif len(hosts) == 1 and not isinstance(host, (list, tuple, set)):
                chost = _encode_host(hosts[0])
            else:
                enc = [_encode_host(h) for h in hosts if h is not None]
                hosts_arr = (c_char_p * (len(enc) + 1))(*enc, None)
                opts.hosts = hosts_arr
        elif sock is None:
            raise ValueError("Neither host/port nor sock were specified")
        else:
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            opts.has_sock = 1
            opts.sock = dup_fd = self._dup(sock.fileno())
        lib, handle = self._lib, self._handle

        def start(key: int, out: Any) -> int:
            rc = lib.aloop_create_server(handle, chost, int(port or 0), _t.connection_cb,
                                         key, _t.free_cb, byref(opts), out)
            if rc < 0 and sock is not None:
                os.close(dup_fd)
            return rc

        try:
            srv = await self._open_server(protocol_factory, start,
                                          start_serving and not keep_alive,
                                          owned_sock=sock, ssl=ssl,
                                          ssl_handshake_timeout=ssl_handshake_timeout,
                                          ssl_shutdown_timeout=ssl_shutdown_timeout)
        except OSError as exc:
            if sock is not None:
                raise
            raise _bind_error(exc, (host or "0.0.0.0", int(port or 0))) from None
        if keep_alive:
            try:
                for s in srv._sockets or ():
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if start_serving:
                    await srv.start_serving()
            except BaseException:
                srv.close()
                raise
        return srv

    async def create_unix_server(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            path: Any = None, *, sock: Optional[socket.socket] = None, backlog: int = 100,
            ssl: Any = None, ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = None, start_serving: bool = True,
            cleanup_socket: Optional[bool] = None) -> Server:
        """Listens on the Unix stream socket at path (a leftover socket file
        is replaced).  As the running Python's asyncio, the file is removed
        when the server closes from Python 3.13 on (cleanup_socket, True by
        default there), and left in place before."""
        if cleanup_socket is None:
            cleanup_socket = _UNIX_SERVER_CLEANUP
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        ssl_args = dict(ssl=ssl, ssl_handshake_timeout=ssl_handshake_timeout,
                        ssl_shutdown_timeout=ssl_shutdown_timeout)
        if sock is not None:
            if path is not None:
                raise ValueError("path and sock can not be specified at the same time")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            # A bound Unix socket: serve it through the generic sock= path.
            cleanup = _unix_socket_file(sock) if cleanup_socket else None
            srv = await self.create_server(protocol_factory, sock=sock, backlog=backlog,
                                           start_serving=start_serving, **ssl_args)
            srv._unix_cleanup = cleanup
            return srv
        if path is None:
            raise ValueError("path was not specified, and no sock specified")
        self._check_closed()
        opts = _b.aloop_unix_server_options_t()
        opts.size = sizeof(_b.aloop_unix_server_options_t)
        opts.backlog = int(backlog)
        opts.start_serving = 1 if start_serving else 0
        opts.cleanup_socket = 1 if cleanup_socket else 0
        cpath = _unix_path(path)
        lib, handle = self._lib, self._handle
        try:
            return await self._open_server(
                protocol_factory,
                lambda key, out: lib.aloop_create_unix_server(
                    handle, cpath, _t.connection_cb, key, _t.free_cb, byref(opts), out),
                start_serving, **ssl_args)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise _asyncio_style(exc, f"Address {path!r} is already in use.") from None
            raise

    async def _open_server(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                           start: Callable[[int, Any], int], start_serving: bool,
                           owned_sock: Any = None, ssl: Any = None,
                           ssl_handshake_timeout: Optional[float] = None,
                           ssl_shutdown_timeout: Optional[float] = None) -> Server:
        lib = self._lib
        srv = Server(self, protocol_factory, ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if owned_sock is not None:
            srv._sockets = [owned_sock]
        key = _t.register(srv)
        srv._key = key
        out = c_void_p()
        rc = start(key, byref(out))
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))
        handle = await self._await_core_future(
            out.value, "server", on_orphan=lambda h: lib.aloop_server_free(h))
        srv._attach_handle(handle)
        if start_serving:
            # Skip one loop iteration, as asyncio does.
            await asyncio.sleep(0)
        return srv

    async def _sock_sendfile_native(self, sock: socket.socket, file: Any, offset: int,
                                    count: Optional[int]) -> int:
        """loop.sock_sendfile(): aloop_sock_sendfile (zero-copy sendfile(2)
        for regular files; asyncio falls back to reading the file for the
        others)."""
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation) as err:
            raise asyncio.SendfileNotAvailableError("not a regular file") from err
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise asyncio.SendfileNotAvailableError("not a regular file") from None
        if sock.gettimeout() != 0:
            # The library wants a non-blocking socket; asyncio's fallback
            # (sock_sendall) takes this one, as asyncio does.
            raise asyncio.SendfileNotAvailableError("the socket is blocking")
        if not (count if count else fsize):
            return 0  # an empty file (asyncio sends nothing either)
        lib = self._lib
        out = c_void_p()
        self._seam.flush()  # queued watcher removals first: the fd number may be theirs
        rc = lib.aloop_sock_sendfile(self._handle, sock.fileno(), fileno, int(offset),
                                     int(count or 0), 0, byref(out))
        if rc == _b.ALOOP_ENOSYS:  # type: ignore[attr-defined]
            raise asyncio.SendfileNotAvailableError("not a regular file")
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))
        try:
            return await self._await_core_future(out.value, "size")
        except OSError as exc:
            if getattr(exc, "code", None) == _b.ALOOP_ENOSYS:  # type: ignore[attr-defined]
                raise asyncio.SendfileNotAvailableError("not a regular file") from None
            raise

    async def _sendfile_native(self, transp: Any, file: Any, offset: int,
                               count: Optional[int]) -> int:
        """loop.sendfile() on a stream transport: aloop_transport_sendfile
        (sendfile(2) for regular files)."""
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation) as err:
            raise asyncio.SendfileNotAvailableError("not a regular file") from err
        handle = transp._handle
        if handle is None:
            raise RuntimeError("Transport is closing")
        lib = self._lib
        out = c_void_p()
        self._seam.flush()  # what was written before goes first
        rc = lib.aloop_transport_sendfile(handle, fileno, int(offset), int(count or 0), 0,
                                          byref(out))
        if rc == _b.ALOOP_ENOSYS:  # type: ignore[attr-defined]
            raise asyncio.SendfileNotAvailableError("not a regular file")
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))
        try:
            return await self._await_core_future(out.value, "size")
        except OSError as exc:
            if getattr(exc, "code", None) == _b.ALOOP_ENOSYS:  # type: ignore[attr-defined]
                raise asyncio.SendfileNotAvailableError("not a regular file") from None
            raise

    # -- datagrams -----------------------------------------------------------------

    async def create_datagram_endpoint(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            local_addr: Any = None, remote_addr: Any = None, *,
            family: int = 0, proto: int = 0, flags: int = 0,
            reuse_port: Optional[bool] = None,
            allow_broadcast: Optional[bool] = None, sock: Any = None) -> tuple:
        """A UDP (or AF_UNIX datagram) endpoint; returns (transport, protocol).

        local_addr is bound, remote_addr connected (names are resolved
        without blocking the loop); or sock=, an existing datagram socket
        that the transport owns from then on."""
        self._check_closed()
        opts = _b.aloop_datagram_options_t()
        opts.size = sizeof(_b.aloop_datagram_options_t)
        lhost = rhost = None
        lport = rport = 0
        dup_fd = -1
        if sock is not None:
            if sys.version_info >= (3, 13):  # (3.13 names any non-stream socket)
                if sock.type == socket.SOCK_STREAM:
                    raise ValueError(f"A datagram socket was expected, got {sock!r}")
            elif sock.type != socket.SOCK_DGRAM:
                raise ValueError(f"A UDP Socket was expected, got {sock!r}")
            if (local_addr or remote_addr or family or proto or flags
                    or reuse_port or allow_broadcast):
                given = dict(local_addr=local_addr, remote_addr=remote_addr, family=family,
                             proto=proto, flags=flags, reuse_port=reuse_port,
                             allow_broadcast=allow_broadcast)
                problems = ", ".join(f"{k}={v}" for k, v in given.items() if v)
                raise ValueError(f"socket modifier keyword arguments can not be used "
                                 f"when sock is specified. ({problems})")
            sock.setblocking(False)
            family = sock.family
            opts.has_sock = 1
            opts.sock = dup_fd = self._dup(sock.fileno())
        elif family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, (str, bytes, os.PathLike)):
                    raise TypeError("string is expected")
            lhost = _unix_path(local_addr) if local_addr else None
            rhost = _unix_path(remote_addr) if remote_addr else None
            lport = rport = 0
        else:
            if not (local_addr or remote_addr) and family == 0:
                raise ValueError("unexpected address family")
            for addr in (local_addr, remote_addr):
                if addr is not None and not (isinstance(addr, tuple) and len(addr) == 2):
                    raise TypeError("2-tuple is expected")
            if any(addr is not None and not _is_numeric_addr(addr)
                   for addr in (local_addr, remote_addr)) or (
                    local_addr and remote_addr and local_addr[0] and remote_addr[0]
                    and (":" in local_addr[0]) != (":" in remote_addr[0])):
                # Names (or a service): resolved here as asyncio does; the
                # library gets the addresses of the first family both have.
                family, local_addr, remote_addr = await self._resolve_datagram_addrs(
                    local_addr, remote_addr, family, proto, flags)
            if local_addr is not None:
                lhost = _encode_host(local_addr[0]) if local_addr[0] else b""
                lport = int(local_addr[1] or 0)
            if remote_addr is not None:
                rhost = _encode_host(remote_addr[0])
                rport = int(remote_addr[1])
        if sock is None:
            opts.family = int(family)
            opts.reuse_port = 1 if reuse_port else 0
            opts.allow_broadcast = 1 if allow_broadcast else 0
        lib = self._lib
        tr = DatagramTransport(self, protocol_factory, family, address=remote_addr)
        key = _t.register(tr)
        tr._key = key
        if sock is not None:
            tr._owned_sock = sock
        out = c_void_p()
        rc = lib.aloop_create_datagram_endpoint(
            self._handle, lhost, lport, rhost, rport, _t.DATAGRAM_PROTOCOL_REF, key,
            _t.free_cb, byref(opts), byref(out))
        if rc < 0:
            if dup_fd >= 0:
                os.close(dup_fd)
            raise make_error(rc, _b.last_error(lib))
        try:
            await self._await_core_future(
                out.value, "datagram", on_orphan=lambda h: lib.aloop_datagram_abort(h))
        except asyncio.CancelledError:
            tr.abort()
            raise
        if tr._factory_exc is not None:
            exc, tr._factory_exc = tr._factory_exc, None
            raise exc
        if remote_addr is not None and tr._extra.get("peername"):
            tr._address = tr._extra["peername"] if family != socket.AF_UNIX else remote_addr
        return tr, tr._protocol

    async def _resolve_datagram_addrs(self, local_addr: Any, remote_addr: Any, family: int,
                                      proto: int, flags: int) -> tuple:
        """asyncio's pairing of create_datagram_endpoint's addresses: each is
        resolved (getaddrinfo, SOCK_DGRAM), and the first (family, proto)
        both have is used (the last address of each).  Returns (family,
        local_addr, remote_addr) with numeric hosts."""
        addr_infos: Dict[tuple, List[Any]] = {}
        for idx, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            infos = await self._ensure_resolved(addr, family=family, type=socket.SOCK_DGRAM,
                                                proto=proto, flags=flags, loop=self)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for fam, _, pro, _, address in infos:
                addr_infos.setdefault((fam, pro), [None, None])[idx] = address
        for (fam, _), (laddr, raddr) in addr_infos.items():
            if (local_addr and laddr is None) or (remote_addr and raddr is None):
                continue
            return (fam, None if laddr is None else laddr[:2],
                    None if raddr is None else raddr[:2])
        raise ValueError("can not get address information")

    # -- subprocesses ------------------------------------------------------------------

    async def subprocess_exec(self, protocol_factory: Callable[[], asyncio.SubprocessProtocol],
                              program: Any, *args: Any,
                              stdin: Any = subprocess.PIPE, stdout: Any = subprocess.PIPE,
                              stderr: Any = subprocess.PIPE, universal_newlines: bool = False,
                              shell: bool = False, bufsize: int = 0, encoding: Any = None,
                              errors: Any = None, text: Any = None, **kwargs: Any) -> tuple:
        """Starts program with args (asyncio's subprocess_exec)."""
        _check_subprocess_args(universal_newlines, bufsize, text, encoding, errors)
        if shell:
            raise ValueError("shell must be False")
        argv = [_fsencode_arg(a) for a in (program,) + args]
        return await self._spawn(protocol_factory, argv, None, stdin, stdout, stderr, kwargs,
                                 [program, *args])

    async def subprocess_shell(self, protocol_factory: Callable[[], asyncio.SubprocessProtocol],
                               cmd: Any, *, stdin: Any = subprocess.PIPE,
                               stdout: Any = subprocess.PIPE, stderr: Any = subprocess.PIPE,
                               universal_newlines: bool = False, shell: bool = True,
                               bufsize: int = 0, encoding: Any = None, errors: Any = None,
                               text: Any = None, **kwargs: Any) -> tuple:
        """Runs cmd with /bin/sh -c (asyncio's subprocess_shell)."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        _check_subprocess_args(universal_newlines, bufsize, text, encoding, errors)
        if not shell:
            raise ValueError("shell must be True")
        return await self._spawn(protocol_factory, None, os.fsencode(cmd),
                                 stdin, stdout, stderr, kwargs, cmd)

    async def _spawn(self, protocol_factory: Callable[[], asyncio.SubprocessProtocol],
                     argv: Optional[List[bytes]], cmd: Optional[bytes],
                     stdin: Any, stdout: Any, stderr: Any, kwargs: Dict[str, Any],
                     popen_args: Any = None) -> tuple:
        self._check_closed()
        if not _library_can_spawn(kwargs):
            # Python code in the child (preexec_fn) or options the library
            # lacks: the standard library's fork/exec and asyncio's own
            # subprocess transport, over this loop's pipes.
            return await self._spawn_stdlib(protocol_factory, popen_args, argv is None,
                                            stdin, stdout, stderr, kwargs)
        for name in _POPEN_DEFAULTS:
            kwargs.pop(name, None)
        env = kwargs.pop("env", None)
        cwd = kwargs.pop("cwd", None)
        start_new_session = bool(kwargs.pop("start_new_session", False))
        close_fds = kwargs.pop("close_fds", True)
        pass_fds = tuple(kwargs.pop("pass_fds", ()) or ())
        opts = _b.aloop_subprocess_options_t()
        opts.size = sizeof(_b.aloop_subprocess_options_t)
        opts.stdin_mode, opts.stdin_fd = _stdio(stdin, "stdin")
        opts.stdout_mode, opts.stdout_fd = _stdio(stdout, "stdout")
        opts.stderr_mode, opts.stderr_fd = _stdio(stderr, "stderr")
        opts.start_new_session = 1 if start_new_session else 0
        keep: List[Any] = []
        if env is not None:
            items = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
            env_arr = (c_char_p * (len(items) + 1))(*items, None)
            keep.append(env_arr)
            opts.env = ctypes.cast(env_arr, ctypes.POINTER(c_char_p))
        if cwd is not None:
            cwd_b = os.fsencode(cwd)
            keep.append(cwd_b)
            opts.cwd = cwd_b
        protocol = protocol_factory()
        if protocol is None:  # fails as asyncio's does (later, there)
            protocol.connection_made  # noqa: B018
        tr = SubprocessTransport(self, protocol, popen_args)
        lib = self._lib
        stdin_r = -1
        if opts.stdin_mode == _b.ALOOP_STDIO_PIPE:
            # A real pipe, as asyncio on Linux (the library's own stdin pipe
            # is a socket pair, which a child cannot open as /dev/stdin).
            stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
            try:
                stdin_tr = await self._connect_stdin(tr, stdin_w)
            except BaseException:
                os.close(stdin_r)
                raise
            tr._stdin = stdin_tr
            opts.stdin_mode, opts.stdin_fd = _b.ALOOP_STDIO_FD, stdin_r
        key = _t.register(tr)
        tr._key = key
        out = c_void_p()
        try:
            with _ChildSetup(pass_fds, close_fds, (stdin_r,)):
                if argv is not None:
                    argv_arr = (c_char_p * (len(argv) + 1))(*argv, None)
                    rc = lib.aloop_subprocess_exec(self._handle, argv_arr,
                                                   _t.SUBPROCESS_PROTOCOL_REF, key, _t.free_cb,
                                                   byref(opts), byref(out))
                else:
                    rc = lib.aloop_subprocess_shell(self._handle, cmd, _t.SUBPROCESS_PROTOCOL_REF,
                                                    key, _t.free_cb, byref(opts), byref(out))
        finally:
            if stdin_r >= 0:
                os.close(stdin_r)  # the child has its copy
        if rc < 0:
            if tr._stdin is not None:
                tr._stdin.abort()
            raise make_error(rc, _b.last_error(lib))
        try:
            await self._await_core_future(
                out.value, "subprocess", on_orphan=lambda h: lib.aloop_subprocess_close(h))
        except asyncio.CancelledError:
            tr.close()
            raise
        except BaseException as exc:
            if tr._stdin is not None:
                tr._stdin.abort()
            if (isinstance(exc, OSError) and argv is not None and exc.errno is not None
                    and not isinstance(exc, asyncloop_errors.Error)):
                raise _asyncio_style(
                    exc, f"{os.strerror(exc.errno)}: {os.fsdecode(argv[0])!r}") from None
            raise
        return tr, protocol

    async def _spawn_stdlib(self, protocol_factory: Callable[[], asyncio.SubprocessProtocol],
                            args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any,
                            kwargs: Dict[str, Any]) -> tuple:
        """asyncio's own subprocess transport (subprocess.Popen, then this
        loop's connect_read_pipe/connect_write_pipe), the child's exit seen
        through a pidfd this loop watches (a thread where pidfd_open is
        missing).  As asyncio's _make_subprocess_transport."""
        protocol = protocol_factory()
        waiter = self.create_future()
        transp = unix_events._UnixSubprocessTransport(
            self, protocol, args, shell, stdin, stdout, stderr, 0, waiter=waiter, **kwargs)
        self._watch_child(transp)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp, protocol

    def _watch_child(self, transp: Any) -> None:
        """transp._process_exited(returncode) once its child exits."""
        pid = transp.get_pid()
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            threading.Thread(target=self._wait_child_thread, args=(pid, transp),
                             name=f"asyncloop-waitpid-{pid}", daemon=True).start()
            return
        self.__dict__.setdefault("_child_pidfds", set()).add(pidfd)
        self._add_reader(pidfd, self._child_exited, pidfd, pid, transp)

    def _child_exited(self, pidfd: int, pid: int, transp: Any) -> None:
        self._remove_reader(pidfd)
        self._child_pidfds.discard(pidfd)
        os.close(pidfd)
        self.call_soon(transp._process_exited, _reap(pid, transp))

    def _wait_child_thread(self, pid: int, transp: Any) -> None:
        while True:
            try:
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
        try:
            self.call_soon_threadsafe(transp._process_exited, _reap(pid, transp))
        except RuntimeError:  # the loop is closed
            pass

    async def _connect_stdin(self, proc: SubprocessTransport, fd: int) -> SubprocessStdin:
        """The write end of the child's stdin pipe as a library write-pipe
        transport whose events go to proc (fd is closed on failure)."""
        lib, handle = self._lib, self._handle
        stdin = SubprocessStdin(self, _StdinProtocol(proc), context=proc._context)
        stdin._names_read = True
        key = _t.register(stdin)
        stdin._key = key
        out = c_void_p()
        rc = lib.aloop_connect_write_pipe(handle, fd, _t.INLINE_PROTOCOL_REF, key, _t.free_cb,
                                          byref(out))
        if rc < 0:
            _t.objects.pop(key, None)
            os.close(fd)
            raise make_error(rc, _b.last_error(lib))
        try:
            await self._await_core_future(
                out.value, "transport", on_orphan=lambda h: lib.aloop_transport_abort(h))
        except asyncio.CancelledError:
            stdin.abort()
            raise
        return stdin

    # -- fd watchers ------------------------------------------------------------------

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        if not isinstance(fd, int):
            try:
                int(fd.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None

    @staticmethod
    def _fileno(fd: Any) -> int:
        if isinstance(fd, int):
            return fd
        try:
            return int(fd.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fd!r}") from None

    def _dup(self, fileno: int) -> int:
        """A duplicate of fileno for the library to own. The queued watcher
        removals go first: the duplicate's number may be one of theirs."""
        self._seam.flush()
        return os.dup(fileno)

    # The library's watchers are queued ones (aloop_add_reader_queued):
    # readiness comes as records of the poll (Seam._watch_ready), not as
    # callbacks. While the loop runs (outside debug mode) a removal is a
    # queued operation (ALOOP_WRITE_REMOVE_*), and adding the fd back before
    # the next poll rewrites that operation into ALOOP_WRITE_ADD_*: a
    # sock_recv that waits once per request crosses into the library for
    # neither. Replacing a watcher is a queued re-add too (the library's
    # watcher carries no callback). The first add is a call, so that its
    # errors are raised here, as asyncio's.

    def _add_watch(self, fd: Any, callback: Callable[..., Any], args: tuple, writer: bool) -> events.Handle:
        self._check_closed()
        fileno = self._fileno(fd)
        if self._debug:  # (with its source traceback)
            handle = events.Handle(callback, args, self, None)
        else:
            handle = _new_handle(callback, args, self, None)
        table = self._writers if writer else self._readers
        seam = self._seam
        key = 2 * fileno + writer
        old = table.get(fileno)
        # Added back before the next poll, or replaced: a queued re-add,
        # which also has the library check that the fd still names the file
        # it registered (else the re-add's record carries the error).
        if not (seam.wcap and (old is not None or key in seam.wpend)
                and seam.queue_watch(key, _seam.OP_ADD_WATCH[writer])):
            lib = self._lib
            add = lib.aloop_add_writer_queued if writer else lib.aloop_add_reader_queued
            rc = add(self._handle, fileno, None)
            if rc < 0:
                if rc == _b.ALOOP_EBUSY:  # type: ignore[attr-defined]
                    # As asyncio: the fd belongs to a transport (or a server).
                    raise RuntimeError(f"File descriptor {fd!r} is used by transport "
                                       f"{self._transport_of_fd(fileno)!r}")
                raise make_error(rc, _b.last_error(lib))
            if key in seam.wpend:  # (not while the loop runs: flushed when it stops)
                seam.queue_watch(key, _seam.OP_ADD_WATCH[writer])
        table[fileno] = _FdWatch(handle, seam.seq)
        if old is not None:
            old.handle.cancel()
        return handle

    def _transport_of_fd(self, fileno: int) -> Any:
        lib = self._lib
        for h, tr in list(self._transports.items()):
            if isinstance(tr, Transport) and lib.aloop_transport_get_fd(h) == fileno:
                return tr
        for srv in self._servers.values():
            if any(s.fileno() == fileno for s in srv._sockets or ()):
                return srv
        return None

    def _remove_watch(self, fd: Any, writer: bool) -> bool:
        if self.is_closed():
            return False
        fileno = self._fileno(fd)
        table = self._writers if writer else self._readers
        watch = table.pop(fileno, None)
        if watch is None:
            return False
        watch.handle.cancel()
        if not self._seam.queue_watch(2 * fileno + writer, _seam.OP_REMOVE_WATCH[writer]):
            lib = self._lib
            (lib.aloop_remove_writer if writer else lib.aloop_remove_reader)(self._handle, fileno)
        return True

    def _add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> events.Handle:
        return self._add_watch(fd, callback, args, False)

    def _remove_reader(self, fd: Any) -> bool:
        return self._remove_watch(fd, False)

    def _add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any) -> events.Handle:
        return self._add_watch(fd, callback, args, True)

    def _remove_writer(self, fd: Any) -> bool:
        return self._remove_watch(fd, True)

    def add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        """Calls callback(*args) (level-triggered) while fd is readable."""
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd: Any) -> bool:
        return self._remove_reader(fd)

    def add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        """Calls callback(*args) (level-triggered) while fd is writable."""
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd: Any) -> bool:
        return self._remove_writer(fd)

    # asyncio's sock_recv, sock_recv_into and sock_sendall, with one change:
    # the watcher of a wait is removed by the coroutine itself when the wait
    # ends (result, error or cancellation), where asyncio adds a done
    # callback (a functools.partial, then one more scheduled Handle per
    # wait). The removal comes at the same point of the loop (right before
    # the coroutine resumes), and only if the watcher is still this wait's
    # (a later add_reader on the fd replaced it: asyncio's handle check).

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        """Receive up to n bytes from sock (asyncio's sock_recv)."""
        return await self._sock_read(sock, sock.recv, self._sock_recv, n)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receive into buf (asyncio's sock_recv_into)."""
        return await self._sock_read(sock, sock.recv_into, self._sock_recv_into, buf)

    async def _sock_read(self, sock: socket.socket, read: Callable[[Any], Any],
                         on_ready: Callable[..., Any], arg: Any) -> Any:
        """sock_recv / sock_recv_into: read(arg) now, else when sock is
        readable (on_ready(fut, sock, arg), asyncio's _sock_recv*)."""
        _check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        # Yield to the loop once, and make its next iteration poll, before
        # the read (as uvloop's sock_recv waits for the loop to report the
        # socket readable): every socket gets its turn (asyncio's never
        # yields while data is ready, so a task whose peer always has the
        # next request ready starves the others), and the peer's next
        # request has usually arrived by then, so the read finds it instead
        # of paying for a wait. Before the read: a cancellation there loses
        # no data.
        self._poll_skip = 0
        await _sleep0(0)
        try:
            return read(arg)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait(sock, False, on_ready, sock, arg)

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Send all of data (asyncio's sock_sendall)."""
        _check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n == len(data):
            return
        return await self._sock_wait(sock, True, self._sock_sendall, sock, memoryview(data), [n])

    async def _sock_wait(self, sock: socket.socket, writer: bool,
                         callback: Callable[..., Any], *args: Any) -> Any:
        """Waits for a future that callback(fut, *args), sock's reader (or
        writer), completes; the watcher is removed when the wait ends, if it
        is still this wait's."""
        fut = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        handle = (self._add_writer if writer else self._add_reader)(fd, callback, fut, *args)
        try:
            return await fut
        finally:
            if not handle._cancelled:
                (self.remove_writer if writer else self.remove_reader)(fd)


# The other sock_* coroutines of asyncio's selector loop (and the watcher
# callbacks of all) only need _add_reader / _remove_reader / _add_writer /
# _remove_writer with asyncio's semantics, which EventLoop provides over the
# core: reuse them.
for _name in (
    "_sock_read_done", "_sock_recv", "_sock_recv_into",
    "sock_recvfrom", "_sock_recvfrom", "sock_recvfrom_into", "_sock_recvfrom_into",
    "_sock_sendall", "sock_sendto", "_sock_sendto",
    "sock_connect", "_sock_connect", "_sock_write_done", "_sock_connect_cb",
    "sock_accept", "_sock_accept",
):
    _fn = getattr(selector_events.BaseSelectorEventLoop, _name, None)
    if _fn is not None:
        setattr(EventLoop, _name, _fn)
del _name, _fn


def _is_numeric_host(host: Any, exact: bool = False) -> bool:
    """An IPv4 or IPv6 address in text (with a %scope unless exact)."""
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    elif not isinstance(host, str):
        if exact:
            return False
        host = str(host)
    if exact:
        if "%" in host:
            return False
    else:
        host = host.split("%", 1)[0]
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
            return True
        except (OSError, ValueError):
            pass
    return False


def _is_numeric_addr(addr: Any) -> bool:
    """(host, port) with a numeric (or empty) host and an int port."""
    host, port = addr
    return (type(port) is int and (host in (None, "") or  # noqa: E721
            type(host) is str and _is_numeric_host(host, exact=True)))  # noqa: E721


def _native_stream_family(host: Any, port: Any, family: Any, proto: Any, flags: Any,
                          local_addr: Any) -> Optional[int]:
    """The family of a connect the library does as asyncio would: a numeric
    host (IPv4, or IPv6 without a scope) and an int port, family 0 or that
    family, no flags, a numeric local address or none.  None: anything
    else, which takes asyncio's own way (getaddrinfo, sock_connect)."""
    if type(host) is not str or flags or proto not in (0, socket.IPPROTO_TCP):  # noqa: E721
        return None
    if type(port) is not int and not (  # noqa: E721
            type(port) is str and port.isdigit() and port.isascii()):  # noqa: E721
        return None
    if "%" in host:
        return None
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
        except (OSError, ValueError):
            continue
        if family not in (0, fam) or not 0 <= int(port) <= 65535:
            return None
        if local_addr is not None:
            if not (isinstance(local_addr, tuple) and len(local_addr) == 2):
                return None
            lhost, lport = local_addr
            if type(lport) is not int or not (  # noqa: E721
                    lhost in (None, "") or type(lhost) is str and  # noqa: E721
                    _is_numeric_host(lhost, exact=True) and
                    (":" in lhost) == (fam == socket.AF_INET6)):
                return None
        return fam
    return None


#: asyncio's Unix servers remove their socket file when closed (3.13+).
_UNIX_SERVER_CLEANUP = sys.version_info >= (3, 13)

#: asyncio's create_connection has all_errors= (Python 3.12+).
_HAS_ALL_ERRORS = "all_errors" in inspect.signature(asyncio.BaseEventLoop.create_connection).parameters

_NI_NUMERIC = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
#: getaddrinfo flags whose results for a numeric host can change over time
#: (configured interfaces) or need a lookup (the canonical name).
_GAI_UNCACHED = socket.AI_ADDRCONFIG | socket.AI_CANONNAME
_gai_cache: Dict[tuple, List[tuple]] = {}


def _numeric_addrinfo(host: Any, port: Any, family: Any, socktype: Any, proto: Any,
                      flags: Any) -> Optional[List[tuple]]:
    """socket.getaddrinfo's list when host and port are numeric (no lookup,
    answered on the loop thread), else None (a lookup: the executor).

    The C library's answer for a numeric address depends on the arguments
    only, so it is cached (the key keeps the exact types: anything but an
    int port or int flags goes the socket module's way).  Errors are never
    cached: they are raised by socket.getaddrinfo itself, as asyncio's."""
    if not (port is None or type(port) is int or (  # noqa: E721
            type(port) in (str, bytes) and port.isdigit() and port.isascii())):
        return None
    for v in (family, socktype, proto, flags):
        if type(v) is not int and (not isinstance(v, int) or isinstance(v, bool)):  # noqa: E721
            return None
    key = (host, port, family, socktype, proto, flags)
    try:
        hit = _gai_cache.get(key)
    except TypeError:  # unhashable: let the socket module say what is wrong
        return None
    if hit is not None:
        return list(hit)
    if not (host is None or _is_numeric_host(host, exact=True)):
        return None
    result = socket.getaddrinfo(host, port, family, socktype, proto, flags)
    if not flags & _GAI_UNCACHED:
        if len(_gai_cache) >= 512:
            _gai_cache.clear()
        _gai_cache[key] = result
        return list(result)
    return result


def _intenum(value: int, enum_klass: Any) -> Any:
    try:
        return enum_klass(value)
    except ValueError:
        return value


def _check_ssl_socket(sock: Any) -> None:
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _is_ssl_error(exc: BaseException) -> bool:
    return _ssl is not None and isinstance(exc, (_ssl.SSLError, _ssl.CertificateError))


def _asyncio_style(exc: OSError, message: str) -> OSError:
    new = OSError(exc.errno, message)
    for attr in ("code", "name"):
        if hasattr(exc, attr):
            setattr(new, attr, getattr(exc, attr))
    return new


def _bind_error(exc: OSError, addr: Any) -> OSError:
    """asyncio's message for a failed bind."""
    if exc.errno is None or isinstance(exc, asyncloop_errors.Error):
        return exc
    return _asyncio_style(
        exc, f"error while attempting to bind on address {addr!r}: "
             f"{os.strerror(exc.errno).lower()}")


def _connect_error(exc: OSError, addr: Any, local_addr: Any) -> OSError:
    """asyncio's messages for a failed connect (or local bind)."""
    if exc.errno is None or isinstance(exc, asyncloop_errors.Error):
        return exc
    detail = exc.strerror or ""
    if local_addr is not None and (detail.startswith("bind") or exc.errno in (
            errno.EADDRINUSE, errno.EADDRNOTAVAIL)):
        return _bind_error(exc, tuple(local_addr))
    return _asyncio_style(exc, f"Connect call failed {addr}")


#: Popen options the library cannot do, with their default values (with
#: one of these set otherwise, a child is spawned by the standard library).
_POPEN_DEFAULTS: Dict[str, Any] = {
    "executable": None, "preexec_fn": None, "restore_signals": True, "user": None,
    "group": None, "extra_groups": None, "umask": -1, "process_group": None,
    "startupinfo": None, "creationflags": 0, "pipesize": -1,
}
#: ... and those it can.
_LIBRARY_SPAWN = frozenset(("env", "cwd", "start_new_session", "pass_fds", "close_fds"))


def _library_can_spawn(kwargs: Dict[str, Any]) -> bool:
    for name, value in kwargs.items():
        if name in _LIBRARY_SPAWN:
            continue
        default = _POPEN_DEFAULTS.get(name, _POPEN_DEFAULTS)
        if value is default or (type(value) is int and type(default) is int  # noqa: E721
                                and value == default):
            continue
        return False
    return True


def _reap(pid: int, transp: Any) -> int:
    """The return code of an exited child (asyncio's convention: minus the
    signal that killed it)."""
    try:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    except ChildProcessError:
        # Reaped by its Popen meanwhile (Popen.poll() in close()).
        proc = getattr(transp, "_proc", None)
        rc = getattr(proc, "returncode", None)
        if rc is not None:
            return rc
        logger.warning("child process pid %d exit status already read: will report "
                       "returncode 255", pid)
        return 255
    return os.waitstatus_to_exitcode(status)


#: Signals Python ignores that Popen's restore_signals gives back their
#: default action in the child (SIGPIPE too, but once the library is
#: loaded SIGPIPE has the Go runtime's handler, which exec resets; it is
#: not touched: a SIGPIPE in this process while it had its default action
#: would kill it).
_RESTORED_SIGNALS = tuple(getattr(signal, n) for n in ("SIGXFZ", "SIGXFSZ")
                          if hasattr(signal, n))
_child_setup_lock = threading.Lock()
_libc_signal: Any = None


def _set_signal_action(sig: int, action: int) -> int:
    """signal(2) from C (any thread, unlike signal.signal): sets SIG_DFL (0)
    or SIG_IGN (1), returns the previous action (a handler's address for a
    handler)."""
    global _libc_signal
    fn = _libc_signal
    if fn is None:
        fn = ctypes.CDLL(None).signal
        fn.restype = c_void_p
        fn.argtypes = [ctypes.c_int, c_void_p]
        _libc_signal = fn
    return fn(sig, action) or 0


class _ChildSetup:
    """Around a spawn by the library (the child is forked inside the call),
    what Popen does in its child that the library cannot:

    * close_fds: inheritable fds other than 0-2 and pass_fds are made
      non-inheritable for the call (asyncio's children get none of them);
      pass_fds are made inheritable for it;
    * restore_signals: SIGXFSZ, which Python ignores, gets its default
      action for the call, so that the child starts with it (an ignored
      action survives exec, a handler does not).

    One spawn at a time (a lock); flags and actions are put back after."""

    __slots__ = ("_pass", "_close_fds", "_keep", "_flipped", "_restored")

    def __init__(self, pass_fds: tuple, close_fds: bool, keep: tuple) -> None:
        self._pass = pass_fds
        self._close_fds = close_fds
        self._keep = keep

    def __enter__(self) -> None:
        _child_setup_lock.acquire()
        flipped: List[tuple] = []
        self._flipped = flipped
        self._restored: List[int] = []
        try:
            for fd in self._pass:
                if not os.get_inheritable(fd):
                    os.set_inheritable(fd, True)
                    flipped.append((fd, False))
            if self._close_fds:
                skip = set(self._pass) | set(self._keep)
                for fd in _inheritable_fds():
                    if fd > 2 and fd not in skip:
                        os.set_inheritable(fd, False)
                        flipped.append((fd, True))
            for sig in _RESTORED_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    continue
                old = _set_signal_action(sig, 0)
                if old == 1:
                    self._restored.append(sig)
                else:  # not ignored after all (a handler): put it back
                    _set_signal_action(sig, old)
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            for sig in self._restored:
                _set_signal_action(sig, 1)
            for fd, value in self._flipped:
                try:
                    os.set_inheritable(fd, value)
                except OSError:
                    pass
        finally:
            _child_setup_lock.release()


def _inheritable_fds() -> List[int]:
    """This process's fds without FD_CLOEXEC."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    fds = []
    for name in names:
        fd = int(name)
        try:
            if os.get_inheritable(fd):
                fds.append(fd)
        except OSError:  # the listing's own fd, closed meanwhile
            pass
    return fds


def _check_subprocess_args(universal_newlines: Any, bufsize: Any, text: Any,
                           encoding: Any, errors: Any) -> None:
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


def _fsencode_arg(arg: Any) -> bytes:
    if isinstance(arg, (str, bytes, os.PathLike)):
        return os.fsencode(arg)
    raise TypeError(f"program arguments must be a bytes or text string, not {type(arg).__name__}")


def _stdio(value: Any, which: str) -> tuple:
    """asyncio's stdin/stdout/stderr argument -> (aloop_stdio_t, fd)."""
    if value is None:
        return _b.ALOOP_STDIO_INHERIT, 0
    if value == subprocess.PIPE:
        return _b.ALOOP_STDIO_PIPE, 0
    if value == subprocess.DEVNULL:
        return _b.ALOOP_STDIO_DEVNULL, 0
    if value == subprocess.STDOUT:
        if which != "stderr":
            raise ValueError("STDOUT can only be used for stderr")
        return _b.ALOOP_STDIO_STDOUT, 0
    if isinstance(value, int):
        return _b.ALOOP_STDIO_FD, value
    return _b.ALOOP_STDIO_FD, value.fileno()


def _unix_path(path: Any) -> bytes:
    """A Python AF_UNIX path (str, bytes, PathLike; a leading NUL is the
    abstract namespace) in the library's spelling ('@' = abstract)."""
    p = os.fsencode(path)
    if p.startswith(b"\0"):
        return b"@" + p[1:]
    if p.startswith(b"@"):
        return b"./" + p
    return p


def _encode_host(host: Any) -> bytes:
    if isinstance(host, bytes):
        return host
    host = str(host)
    try:
        return host.encode("ascii")
    except UnicodeEncodeError:
        return host.encode("idna")


def new_event_loop() -> EventLoop:
    """Returns a new :class:`EventLoop`."""
    return EventLoop()


def run(main: Any, *, loop_factory: Callable[[], EventLoop] = new_event_loop,
        debug: Optional[bool] = None) -> Any:
    """Runs a coroutine on a new asyncloop loop, as asyncio.run does.

    It rests on ``asyncio.Runner(loop_factory=...)`` (no event-loop policy
    involved: the way Python 3.14 recommends).  loop_factory must make
    asyncloop loops (:class:`EventLoop` or a subclass), else TypeError, as
    ``uvloop.run``."""
    if events._get_running_loop() is not None:
        raise RuntimeError("asyncloop.run() cannot be called from a running event loop")

    refused: List[Any] = []

    def factory() -> EventLoop:
        loop = loop_factory()
        if not isinstance(loop, EventLoop):
            loop.close()
            refused.append(loop)
            raise TypeError(f"asyncloop.run() uses a non-asyncloop event loop: {loop!r}")
        return loop

    try:
        with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
            return runner.run(main)
    finally:
        if refused and asyncio.iscoroutine(main):
            main.close()  # never started: no "never awaited" warning
