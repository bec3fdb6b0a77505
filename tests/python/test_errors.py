"""Library errors surface as the Python exceptions asyncio raises for the
same failure (both loops; asyncio is the reference)."""

import asyncio
import errno
import os
import socket
import sys

import pytest

import asyncloop


def _raises(loop, coro):
    try:
        loop.run_until_complete(coro)
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("no exception")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused(loop):
    exc = _raises(loop, loop.create_connection(asyncio.Protocol, "127.0.0.1", _free_port()))
    assert type(exc) is ConnectionRefusedError and exc.errno == errno.ECONNREFUSED


def test_unix_connection_to_missing_path(loop, tmp_path):
    exc = _raises(loop, loop.create_unix_connection(asyncio.Protocol, str(tmp_path / "nope")))
    assert type(exc) is FileNotFoundError and exc.errno == errno.ENOENT


def test_address_in_use(loop):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        exc = _raises(loop, loop.create_server(asyncio.Protocol, "127.0.0.1", port,
                                               reuse_address=False))
    assert type(exc) is OSError and exc.errno == errno.EADDRINUSE
    assert "address already in use" in str(exc)


def test_unresolvable_host(loop):
    exc = _raises(loop, loop.create_connection(asyncio.Protocol, "nonexistent.invalid", 80))
    assert isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_NONAME


def test_subprocess_missing_program_and_bad_cwd(loop, tmp_path):
    exc = _raises(loop, asyncio.create_subprocess_exec(str(tmp_path / "no-such-program")))
    assert type(exc) is FileNotFoundError and exc.errno == errno.ENOENT
    exc = _raises(loop, asyncio.create_subprocess_exec(sys.executable, "-c", "pass",
                                                       cwd=str(tmp_path / "no-such-dir")))
    assert type(exc) is FileNotFoundError
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    exc = _raises(loop, asyncio.create_subprocess_exec(str(script)))
    assert type(exc) is PermissionError and exc.errno == errno.EACCES


def test_peer_reset_reaches_protocol(loop):
    """A reset by the peer: connection_lost gets ConnectionResetError (or
    the reader sees EOF/reset), never a library-specific error."""

    async def main():
        lost = loop.create_future()

        class P(asyncio.Protocol):
            def connection_made(self, tr):
                self.tr = tr

            def connection_lost(self, exc):
                lost.set_result(exc)

        with socket.create_server(("127.0.0.1", 0)) as ls:
            port = ls.getsockname()[1]
            tr, _ = await loop.create_connection(P, "127.0.0.1", port)
            conn, _ = ls.accept()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()  # RST
            await asyncio.sleep(0.05)
            tr.write(b"x" * 100000)
            exc = await asyncio.wait_for(lost, 10)
        return exc

    exc = loop.run_until_complete(main())
    assert exc is None or isinstance(exc, (ConnectionResetError, BrokenPipeError))


def test_write_pipe_reader_gone(loop):
    """The reader of a pipe goes away with data buffered: BrokenPipeError."""

    async def main():
        r, w = os.pipe()
        lost = loop.create_future()

        class P(asyncio.BaseProtocol):
            def connection_lost(self, exc):
                lost.set_result(exc)

        tr, _ = await loop.connect_write_pipe(P, os.fdopen(w, "wb", 0))
        tr.write(b"x" * (1024 * 1024))  # more than the pipe holds
        os.close(r)
        return await asyncio.wait_for(lost, 10)

    exc = loop.run_until_complete(main())
    assert isinstance(exc, BrokenPipeError)


def test_library_errors_are_oserrors_with_codes():
    e = asyncloop._errors.make_error(-111, "connect 127.0.0.1:1")
    assert isinstance(e, ConnectionRefusedError) and e.name == "ALOOP_ECONNREFUSED"
    e = asyncloop._errors.make_error(-3001)
    assert isinstance(e, asyncloop.Error) and isinstance(e, OSError)
    assert e.code == -3001 and asyncloop.err_name(-3001) == "ALOOP_ECLOSED"
    e = asyncloop._errors.make_error(-3004, "getaddrinfo x: Name or service not known")
    assert isinstance(e, socket.gaierror) and e.errno == socket.EAI_NONAME
    e = asyncloop._errors.make_error(-3003)
    assert isinstance(e, RuntimeError) and isinstance(e, asyncloop.NotLoopThreadError)


def test_closed_loop_raises_runtime_error(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_until_complete(coro)
    coro.close()
    if not isinstance(loop, asyncloop.EventLoop):
        return  # asyncio fails some of these later, from deeper calls
    for coro_fn in (lambda: loop.create_connection(asyncio.Protocol, "127.0.0.1", 1),
                    lambda: loop.create_server(asyncio.Protocol, "127.0.0.1", 0),
                    lambda: loop.getaddrinfo("localhost", 80)):
        coro = coro_fn()
        with pytest.raises(RuntimeError, match="closed"):
            coro.send(None)
        coro.close()
