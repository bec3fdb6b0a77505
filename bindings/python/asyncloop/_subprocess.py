"""Subprocess transports driven by libasyncloop (asyncio.SubprocessTransport)."""

from __future__ import annotations

import asyncio
import logging
from asyncio import constants
import warnings
from ctypes import byref, c_int, c_void_p
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from . import _bindings as _b
from ._errors import make_error
from ._transports import Transport

if TYPE_CHECKING:  # pragma: no cover
    from ._loop import EventLoop

logger = logging.getLogger("asyncio")


class SubprocessPipe(Transport):
    """The transport of one of the child's pipes (stdin: write side;
    stdout/stderr: read side).  Its data goes to the subprocess protocol."""

    __slots__ = ("_fd", "_proc")

    def __init__(self, loop: "EventLoop", handle: int, fd: int,
                 proc: "SubprocessTransport") -> None:
        super().__init__(loop, None)
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

    def get_protocol(self) -> Any:
        return self._proc._protocol

    def set_protocol(self, protocol: Any) -> None:
        raise NotImplementedError("the protocol of a subprocess pipe cannot be replaced")


class SubprocessStdin(Transport):
    """The child's stdin with stdin=PIPE: a real pipe (as asyncio on Linux,
    so that a child can open /dev/stdin), written through the library's
    write-pipe transport; its events go to the subprocess protocol."""

    __slots__ = ("_proc_ref",)

    _sendfile_compatible = constants._SendfileMode.UNSUPPORTED  # type: ignore[assignment]
    _start_tls_compatible = False  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<SubprocessStdin{' closed' if self._closed else ''}>"

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

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


class SubprocessTransport(asyncio.SubprocessTransport):
    """A child process (asyncio.SubprocessTransport).

    The library spawns and reaps the child and runs its stdout/stderr pipes.
    With stdin=PIPE the binding gives the child a real pipe (the library's
    default is a socket pair, which a child cannot open as /dev/stdin) and
    writes it through a library write-pipe transport; connection_lost
    follows once the child exited and every pipe, stdin included, is closed
    (asyncio's order).
    """

    def __init__(self, loop: "EventLoop", protocol: asyncio.SubprocessProtocol) -> None:
        super().__init__(None)
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
        for fd in (0, 1, 2):
            if fd == 0 and self._stdin is not None:
                self._pipes[0] = self._stdin
                continue
            out = c_void_p()
            if lib.aloop_subprocess_get_pipe_transport(handle, fd, byref(out)) == 0 and out.value:
                self._pipes[fd] = SubprocessPipe(loop, out.value, fd, self)
        try:
            self._protocol.connection_made(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._report(exc, "protocol.connection_made()")

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
        self._closing = self._closed = True
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
