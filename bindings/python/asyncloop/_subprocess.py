"""Subprocess transports driven by libasyncloop (asyncio.SubprocessTransport)."""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import os
import signal
import subprocess
import threading
import time
import warnings
from asyncio import constants, events
from ctypes import byref, c_int, c_void_p
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from . import _bindings as _b
from ._errors import make_error
from ._transports import ReadPipeTransport, Transport, WritePipeTransport

if TYPE_CHECKING:  # pragma: no cover
    from ._loop import EventLoop

logger = logging.getLogger("asyncio")


def _pipe_extra(tr: Transport, name: str, default: Any, mode: str) -> Any:
    """get_extra_info of a child's pipe: 'pipe' is a file object over its
    fd, as asyncio's (which are the Popen's stdin/stdout/stderr)."""
    extra = tr._extra
    if name == "pipe" and "pipe" not in extra and tr._handle is not None:
        fd = tr._loop._lib.aloop_transport_get_fd(tr._handle)
        if fd >= 0:
            extra["pipe"] = io.FileIO(fd, mode, closefd=False)
    return extra.get(name, default)


class SubprocessPipe(ReadPipeTransport):
    """The transport of the child's stdout or stderr pipe (asyncio's read
    pipe transport).  Its data goes to the subprocess protocol."""

    __slots__ = ("_fd", "_proc")

    def __init__(self, loop: "EventLoop", handle: int, fd: int,
                 proc: "SubprocessTransport") -> None:
        super().__init__(loop, None, context=proc._context)
        self._handle = handle
        self._fd = fd
        self._proc = proc
        self._names_read = True

    def __repr__(self) -> str:
        return f"<SubprocessPipe fd={self._fd}{' closed' if self._closed else ''}>"

    def _lost(self) -> None:
        self._closing = self._closed = True
        self._handle = None

    _sendfile_compatible = constants._SendfileMode.UNSUPPORTED  # type: ignore[assignment]
    _start_tls_compatible = False  # type: ignore[assignment]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return _pipe_extra(self, name, default, "rb")

    def get_protocol(self) -> Any:
        return self._proc._protocol

    def set_protocol(self, protocol: Any) -> None:
        raise NotImplementedError("the protocol of a subprocess pipe cannot be replaced")


class SubprocessStdin(WritePipeTransport):
    """The child's stdin with stdin=PIPE: a real pipe (as asyncio on Linux,
    so that a child can open /dev/stdin), written through the library's
    write-pipe transport; its events go to the subprocess protocol."""

    __slots__ = ()

    _sendfile_compatible = constants._SendfileMode.UNSUPPORTED  # type: ignore[assignment]
    _start_tls_compatible = False  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<SubprocessStdin{' closed' if self._closed else ''}>"

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return _pipe_extra(self, name, default, "wb")

    def set_protocol(self, protocol: Any) -> None:
        raise NotImplementedError("the protocol of a subprocess pipe cannot be replaced")


class _StdinProtocol(asyncio.Protocol):
    """Forwards the events of the stdin pipe to the subprocess transport."""

    def __init__(self, proc: "SubprocessTransport") -> None:
        self._proc = proc

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._proc._on_stdin_lost(exc)

    def pause_writing(self) -> None:
        self._proc._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._proc._protocol.resume_writing()


class ChildPopen(subprocess.Popen):
    """``get_extra_info('subprocess')``: a :class:`subprocess.Popen` view of a
    child that the library started and reaps.

    ``pid``, ``args``, ``returncode``, ``poll()``, ``wait()``,
    ``send_signal()``, ``terminate()`` and ``kill()`` work as for a Popen;
    the pipes are the transport's (``stdin``/``stdout``/``stderr`` are None
    here).  ``poll()``/``wait()`` observe the exit without reaping the child
    (the library reaps it and then tells the transport).
    """

    def __init__(self, transport: "SubprocessTransport", args: Any) -> None:  # noqa: D107
        # No Popen.__init__: the child already runs.
        self._transport = transport
        self.args = args
        self.pid = transport._pid
        self.returncode = None
        self.stdin = self.stdout = self.stderr = None
        self.text_mode = False
        self.universal_newlines = False
        self.encoding = self.errors = None
        self.pipesize = -1
        self._child_created = False  # nothing for Popen.__del__ to do
        self._waitpid_lock = threading.Lock()
        self._sigint_wait_secs = 0.25
        self._closed_child_pipe_fds = False
        self._communication_started = False
        self._input = None
        self._fileobj2output: Any = None

    def __repr__(self) -> str:
        return f"<ChildPopen: returncode: {self.returncode} args: {self.args!r}>"

    def _known_returncode(self) -> Optional[int]:
        tr = self._transport
        rc = tr._returncode
        if rc is None and tr._handle is not None:
            out = c_int()
            if tr._loop._lib.aloop_subprocess_get_returncode(tr._handle, byref(out)) == 1:
                rc = out.value
        return rc

    def _waitid(self, block: bool) -> Optional[int]:
        """The exit status without reaping the child (WNOWAIT)."""
        rc = self._known_returncode()
        if rc is not None or self.pid is None:
            return rc
        flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
        try:
            info = os.waitid(os.P_PID, self.pid, flags)
        except ChildProcessError:  # reaped by the library meanwhile
            return self._known_returncode()
        except InterruptedError:
            return None
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return info.si_status
        return -info.si_status  # killed by a signal (asyncio's convention)

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            self.returncode = self._waitid(block=False)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            while self.returncode is None:
                self.returncode = self._waitid(block=True)
                if self.returncode is None:
                    time.sleep(0.001)  # the library is reaping it
            return self.returncode
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        if self.poll() is not None:
            return  # as Popen: no signal to a child that has exited
        self._transport.send_signal(sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class SubprocessTransport(asyncio.SubprocessTransport):
    """A child process (asyncio.SubprocessTransport).

    The library spawns and reaps the child and runs its stdout/stderr pipes.
    With stdin=PIPE the binding gives the child a real pipe (the library's
    default is a socket pair, which a child cannot open as /dev/stdin) and
    writes it through a library write-pipe transport; connection_lost
    follows once the child exited and every pipe, stdin included, is closed
    (asyncio's order).
    """

    def __init__(self, loop: "EventLoop", protocol: asyncio.SubprocessProtocol,
                 args: Any = None) -> None:
        super().__init__(None)
        self._args = args
        self._loop = loop
        self._protocol = protocol
        self._handle: Optional[int] = None
        self._key: Optional[int] = None
        self._pid: Optional[int] = None
        self._returncode: Optional[int] = None
        self._closing = False
        self._closed = False
        self._exit_waiters: List[asyncio.Future] = []
        self._pipes: Dict[int, Optional[Transport]] = {0: None, 1: None, 2: None}
        #: The binding's stdin pipe transport (stdin=PIPE), while open.
        self._stdin: Optional[SubprocessStdin] = None
        #: The library's connection_lost arrived (child exited, its pipes
        #: closed); the protocol's waits for the stdin pipe too.
        self._core_lost = False
        self._finished = False
        self._made = False  # connection_made ran (the protocol may be called)
        #: The protocol's callbacks run in this context (the spawner's).
        self._context = contextvars.copy_context()

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._closed:
            info.append("closed")
        if self._pid is not None:
            info.append(f"pid={self._pid}")
        if self._returncode is not None:
            info.append(f"returncode={self._returncode}")
        elif self._pid is not None:
            info.append("running")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed and not self._closing and self._handle is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)

    # -- library callbacks ---------------------------------------------------------

    def _on_connection_made(self, handle: int) -> None:
        self._handle = handle
        loop = self._loop
        lib = loop._lib
        loop._transports[handle] = self  # type: ignore[assignment]
        pid = lib.aloop_subprocess_get_pid(handle)
        self._pid = pid if pid > 0 else None
        self._extra["subprocess"] = ChildPopen(self, self._args)
        self._made = True
        for fd in (0, 1, 2):
            if fd == 0 and self._stdin is not None:
                self._pipes[0] = self._stdin
                continue
            out = c_void_p()
            if lib.aloop_subprocess_get_pipe_transport(handle, fd, byref(out)) == 0 and out.value:
                self._pipes[fd] = SubprocessPipe(loop, out.value, fd, self)
        # As asyncio's call_soon(protocol.connection_made, transport): an
        # exception goes to the exception handler ("Exception in callback").
        events.Handle(self._protocol.connection_made, (self,), loop, None)._run()

    def _report(self, exc: BaseException, what: str) -> None:
        self._loop.call_exception_handler({
            "message": f"Exception in callback {what}",
            "exception": exc, "transport": self, "protocol": self._protocol,
        })

    def _on_pipe_data(self, fd: int, data: bytes) -> None:
        try:
            self._protocol.pipe_data_received(fd, data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._report(exc, "protocol.pipe_data_received()")

    def _on_pipe_lost(self, fd: int, error: int) -> None:
        pipe = self._pipes.get(fd)
        if isinstance(pipe, SubprocessPipe):
            pipe._lost()
        self._pipe_lost(fd, make_error(error) if error else None)

    def _pipe_lost(self, fd: int, exc: Optional[BaseException]) -> None:
        try:
            self._protocol.pipe_connection_lost(fd, exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as e:  # noqa: BLE001
            self._report(e, "protocol.pipe_connection_lost()")

    def _on_stdin_lost(self, exc: Optional[BaseException]) -> None:
        self._stdin = None
        if not self._made:  # the spawn failed: the protocol never started
            return
        self._pipe_lost(0, exc)
        if self._core_lost:
            self._finish()

    def _on_process_exited(self) -> None:
        if self._handle is not None:
            rc = c_int()
            if self._loop._lib.aloop_subprocess_get_returncode(self._handle, byref(rc)) == 1:
                self._returncode = rc.value
        if self._loop.get_debug():
            logger.info("%r exited with return code %r", self, self._returncode)
        try:
            self._protocol.process_exited()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._report(exc, "protocol.process_exited()")
        waiters, self._exit_waiters = self._exit_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(self._returncode)

    def _on_connection_lost(self, error: int) -> None:
        if self._handle is not None:
            self._loop._transports.pop(self._handle, None)
        self._handle = None
        for pipe in self._pipes.values():
            if isinstance(pipe, SubprocessPipe):
                pipe._lost()
        self._core_lost = True
        if self._stdin is None:
            self._finish(error)

    def _finish(self, error: int = 0) -> None:
        if self._finished:
            return
        self._finished = True
        self._closed = True  # (is_closing() stays False until close(), as asyncio)
        try:
            self._protocol.connection_lost(make_error(error) if error else None)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._report(exc, "protocol.connection_lost()")

    def _on_pause_writing(self) -> None:
        Transport._on_pause_writing(self)  # type: ignore[arg-type]

    def _on_resume_writing(self) -> None:
        Transport._on_resume_writing(self)  # type: ignore[arg-type]

    _call_pause_writing = Transport._call_pause_writing
    _call_resume_writing = Transport._call_resume_writing

    def _kill(self) -> None:
        """Loop close: close without calling the protocol (the library kills
        and reaps the child)."""
        self._closing = self._closed = self._finished = True
        for pipe in self._pipes.values():
            if isinstance(pipe, SubprocessPipe):
                pipe._lost()
        stdin, self._stdin = self._stdin, None
        if stdin is not None:
            stdin._kill()
        if self._handle is not None:
            self._loop._lib.aloop_subprocess_close(self._handle)
            self._handle = None
        for w in self._exit_waiters:
            if not w.done():
                w.cancel()

    # -- asyncio.SubprocessTransport --------------------------------------------

    def get_pid(self) -> Optional[int]:
        return self._pid

    def get_returncode(self) -> Optional[int]:
        if self._returncode is None and self._handle is not None:
            rc = c_int()
            if self._loop._lib.aloop_subprocess_get_returncode(self._handle, byref(rc)) == 1:
                return rc.value
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Optional[SubprocessPipe]:
        return self._pipes.get(fd)

    def _check_proc(self) -> int:
        if self._handle is None:
            raise ProcessLookupError()
        return self._handle

    def send_signal(self, signal: int) -> None:
        lib = self._loop._lib
        rc = lib.aloop_subprocess_send_signal(self._check_proc(), int(signal))
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))

    def terminate(self) -> None:
        lib = self._loop._lib
        rc = lib.aloop_subprocess_terminate(self._check_proc())
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))

    def kill(self) -> None:
        lib = self._loop._lib
        rc = lib.aloop_subprocess_kill(self._check_proc())
        if rc < 0:
            raise make_error(rc, _b.last_error(lib))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Closes the pipes and kills the child if it still runs."""
        if self._closing:
            return
        self._closing = True
        popen = self._extra.get("subprocess")
        if (popen is not None and self._handle is not None and self._returncode is None
                and popen.poll() is None):
            # As asyncio: kill a child that still runs (through the Popen
            # view, which callers may wrap); the library kills it too.
            if self._loop.get_debug():
                logger.warning("Close running child process: kill %r", self)
            try:
                popen.kill()
            except ProcessLookupError:
                pass
        if self._stdin is not None:
            self._stdin.close()
        if self._handle is not None:
            self._loop._lib.aloop_subprocess_close(self._handle)
            self._loop._poll_skip = 0

    async def _wait(self) -> Optional[int]:
        """Waits for the child to exit; returns its return code (used by
        asyncio.subprocess.Process.wait)."""
        if self._returncode is not None or self._handle is None:
            return self.get_returncode()
        waiter = self._loop.create_future()
        self._exit_waiters.append(waiter)
        return await waiter
