"""TLS with Python's ssl module over the library's transports (ssl=,
start_tls, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout),
on both loops: asyncio's behaviour is the reference."""

import asyncio
import socket
import ssl
import threading
import time

import pytest

import asyncloop
from asyncloop import _trampolines

MiB = 1024 * 1024


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Collect(asyncio.Protocol):
    def __init__(self, loop, expected):
        self.expected = expected
        self.buf = bytearray()
        self.done = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        if len(self.buf) >= self.expected and not self.done.done():
            self.done.set_result(bytes(self.buf))

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


def test_tls_echo_with_protocols(loop, server_ctx, client_ctx):
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(
            lambda: Collect(loop, len(payload)), "127.0.0.1", port, ssl=client_ctx,
            server_hostname="localhost")
        assert isinstance(tr, asyncio.Transport)
        sslobj = tr.get_extra_info("ssl_object")
        assert sslobj.version() in ("TLSv1.2", "TLSv1.3")
        assert (("commonName", "localhost"),) in tr.get_extra_info("peercert")["subject"]
        assert tr.get_extra_info("cipher")[0]
        assert tr.get_extra_info("peername")[1] == port
        assert tr.get_extra_info("socket") is not None
        tr.write(payload)
        got = await asyncio.wait_for(proto.done, 30)
        assert got == payload
        tr.close()
        assert await asyncio.wait_for(proto.lost, 10) is None
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_streams_and_default_server_hostname(loop, server_ctx, client_ctx):
    async def handle(reader, writer):
        line = await reader.readline()
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(line.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "localhost", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        # server_hostname defaults to host ("localhost"), as asyncio.
        reader, writer = await asyncio.open_connection("localhost", port, ssl=client_ctx)
        writer.write(b"hello tls\n")
        assert await reader.readline() == b"HELLO TLS\n"
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_verification_failures(loop, server_ctx, client_ctx):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ssl.SSLCertVerificationError, match="(?i)hostname"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx,
                                         server_hostname="wrong.example")
        untrusting = ssl.create_default_context()  # does not know our CA
        with pytest.raises(ssl.SSLCertVerificationError, match="(?i)certificate verify failed"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=untrusting,
                                         server_hostname="localhost")
        server.close()
        await server.wait_closed()

    loop.set_exception_handler(lambda loop, ctx: None)  # the server logs the failures
    loop.run_until_complete(main())


def test_ssl_argument_checks(loop, client_ctx):
    async def main():
        with pytest.raises(ValueError, match="server_hostname"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, server_hostname="x")
        with pytest.raises(ValueError, match="ssl_handshake_timeout"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                         ssl_handshake_timeout=1)
        with pytest.raises(ValueError, match="ssl_shutdown_timeout"):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl_shutdown_timeout=1)
        with socket.create_server(("127.0.0.1", 0)) as listener, \
                pytest.raises(ValueError, match="should be a positive number"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                         listener.getsockname()[1], ssl=client_ctx,
                                         server_hostname="localhost", ssl_handshake_timeout=0)
        with pytest.raises(TypeError):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=True)
        with pytest.raises(ValueError, match="server_hostname"):
            await loop.create_unix_connection(asyncio.Protocol, "/nonexistent", ssl=client_ctx)
        with socket.socket() as s, pytest.raises(ValueError, match="server_hostname"):
            await loop.create_connection(asyncio.Protocol, sock=s, ssl=client_ctx)

    loop.run_until_complete(main())


def test_start_tls_upgrade(loop, server_ctx, client_ctx):
    """A plaintext exchange, then both sides upgrade (STARTTLS)."""

    async def handle(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO\n")
        await writer.drain()
        await writer.start_tls(server_ctx)
        assert writer.get_extra_info("ssl_object") is not None
        data = await reader.readline()
        writer.write(b"secret:" + data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        plain = writer.transport
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        assert writer.transport is not plain
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        writer.write(b"hello\n")
        assert await reader.readline() == b"secret:hello\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_start_tls_with_protocols_and_buffered_protocol(loop, server_ctx, client_ctx):
    """loop.start_tls() on a transport with a BufferedProtocol on the server
    side (the transport switches to the SSL protocol and back)."""

    class ServerProto(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(65536)
            self.upgraded = loop.create_future()

        def connection_made(self, transport):
            self.transport = transport

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            data = bytes(self.buf[:nbytes])
            if data == b"UPGRADE":
                self.transport.write(b"OK")
                loop.create_task(self.upgrade())
            else:
                self.tls.write(data[::-1])

        async def upgrade(self):
            self.tls = await loop.start_tls(self.transport, self, server_ctx, server_side=True)
            self.upgraded.set_result(True)

    sp = ServerProto()

    class Client(asyncio.Protocol):
        def __init__(self):
            self.queue = asyncio.Queue()

        def data_received(self, data):
            self.queue.put_nowait(data)

    async def main():
        server = await loop.create_server(lambda: sp, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, cp = await loop.create_connection(Client, "127.0.0.1", port)
        tr.write(b"UPGRADE")
        assert await cp.queue.get() == b"OK"
        tls = await loop.start_tls(tr, cp, client_ctx, server_hostname="localhost")
        await sp.upgraded
        tls.write(b"abcdef")
        assert await asyncio.wait_for(cp.queue.get(), 10) == b"fedcba"
        tls.close()
        server.close()
        await asyncio.sleep(0.05)

    loop.run_until_complete(main())


def test_ssl_handshake_timeout(loop, client_ctx):
    """A server that accepts but never answers the handshake."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main():
        t0 = time.monotonic()
        with pytest.raises(ConnectionAbortedError, match="SSL handshake is taking longer"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx,
                                         server_hostname="localhost", ssl_handshake_timeout=0.3)
        return time.monotonic() - t0

    try:
        elapsed = loop.run_until_complete(main())
        assert elapsed < 10  # the default timeout is 60 s
    finally:
        listener.close()


def test_ssl_shutdown_timeout(loop, certs, client_ctx):
    """A TLS peer that never answers close_notify: the transport is closed
    anyway after ssl_shutdown_timeout (default 30 s)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(certs["cert"], certs["key"])

    def serve():
        conn, _ = listener.accept()
        with sctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(5)  # the handshake is done; now ignore everything
            stop.wait(20)

    th = threading.Thread(target=serve, daemon=True)
    th.start()

    async def main():
        tr, proto = await loop.create_connection(
            lambda: Collect(loop, 1), "127.0.0.1", port, ssl=client_ctx,
            server_hostname="localhost", ssl_shutdown_timeout=0.3)
        tr.write(b"hello")
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        tr.close()
        exc = await asyncio.wait_for(proto.lost, 10)
        return time.monotonic() - t0, exc

    try:
        elapsed, exc = loop.run_until_complete(main())
        assert elapsed < 10
        assert isinstance(exc, TimeoutError)  # asyncio's report of the shutdown timeout
    finally:
        stop.set()
        th.join(5)
        listener.close()


def test_ssl_server_handshake_failure_reported_in_debug(server_ctx):
    """A client that is not TLS: the server drops it and, in debug mode,
    reports it to the exception handler (asyncio's behaviour)."""
    loop = asyncloop.new_event_loop()
    errors = []
    loop.set_debug(True)
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        made = []

        class P(asyncio.Protocol):
            def connection_made(self, tr):
                made.append(tr)

        server = await loop.create_server(P, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.0\r\n\r\n")
        await asyncio.wait_for(r.read(), 10)  # the server drops us
        w.close()
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.02)
        server.close()
        await server.wait_closed()
        return made

    try:
        made = loop.run_until_complete(main())
    finally:
        loop.close()
    assert made == []  # the application protocol never saw the connection
    assert any("incoming connection" in ctx["message"] for ctx in errors), errors
    assert any(isinstance(ctx.get("exception"), ssl.SSLError) for ctx in errors), errors


def test_ssl_keys_released(server_ctx, client_ctx):
    """Every key the binding hands to the library for TLS connections is
    released once the loop is closed."""
    before = len(_trampolines.objects)
    loop = asyncloop.new_event_loop()

    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        for _ in range(5):
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                 server_hostname="localhost")
            w.write(b"x" * 1000)
            await r.readexactly(1000)
            w.close()
            await w.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    loop.close()
    assert len(_trampolines.objects) == before


def _close_notify_then_read_peer(lsock, server_ctx, result):
    """A TLS server (OpenSSL over memory BIOs on a blocking socket) that sends
    close_notify right after the handshake and then keeps reading, slowly,
    until the client's close_notify or EOF; result gets the bytes it read."""
    conn, _ = lsock.accept()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = server_ctx.wrap_bio(inc, out, server_side=True)
    total = 0
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                conn.sendall(out.read())
                data = conn.recv(65536)
                if not data:
                    return
                inc.write(data)
        conn.sendall(out.read())
        time.sleep(0.2)  # the client fills its buffers meanwhile

        def read_all():
            nonlocal total
            while True:
                try:
                    chunk = obj.read(65536)
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                    return
                if not chunk:
                    return
                total += len(chunk)

        read_all()  # no application data may be pending at unwrap()
        try:
            obj.unwrap()  # sends close_notify; reading stays possible
        except ssl.SSLWantReadError:
            pass
        conn.sendall(out.read())
        while True:
            time.sleep(0.0005)
            data = conn.recv(65536)
            if not data:
                break
            inc.write(data)
            read_all()
    except OSError as exc:
        result.append(exc)
    finally:
        result.append(total)
        conn.close()


def test_tls_peer_close_notify_with_full_write_buffer(loop, server_ctx, client_ctx):
    """Issue 9: a client that filled its write buffer (flow control on) gets
    the peer's close_notify while the peer keeps reading; every byte the
    client's write() took reaches the peer (it lost the last 512 KiB — the
    records sslproto held — when the transport refused writes after close)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    result = []
    th = threading.Thread(target=_close_notify_then_read_peer,
                          args=(lsock, server_ctx, result), daemon=True)
    th.start()

    class Filler(asyncio.Protocol):
        def __init__(self):
            self.written = 0
            self.paused = False
            self.lost = loop.create_future()

        def connection_made(self, tr):
            self.tr = tr
            self.fill()

        def fill(self):
            while not self.paused and not self.tr.is_closing() and self.written < 8 * MiB:
                self.tr.write(b"x" * 16384)
                self.written += 16384

        def pause_writing(self):
            self.paused = True

        def resume_writing(self):
            self.paused = False
            self.fill()

        def connection_lost(self, exc):
            if not self.lost.done():
                self.lost.set_result(exc)

    async def main():
        tr, proto = await loop.create_connection(
            Filler, "127.0.0.1", lsock.getsockname()[1], ssl=client_ctx,
            server_hostname="localhost")
        await asyncio.wait_for(proto.lost, 30)
        await loop.run_in_executor(None, th.join, 30)
        return proto.written

    try:
        written = loop.run_until_complete(main())
    finally:
        lsock.close()
    assert result and result[-1] == written, (result, written)


@pytest.mark.parametrize("how", ["refused", "handshake_timeout", "wait_for"])
def test_failed_tls_connect_leaves_no_unclosed_transport(loop, client_ctx, how):
    """No ResourceWarning ('unclosed transport <asyncio._SSLProtocolTransport
    object>') for a TLS connect that fails: asyncio makes the TLS transport
    only once connected, and closes it when the handshake fails."""
    import gc
    import warnings

    async def main():
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(5)  # accepts, never answers the handshake
        addr = ls.getsockname()
        try:
            if how == "refused":
                ls.close()
                with pytest.raises(ConnectionRefusedError):
                    await loop.create_connection(asyncio.Protocol, *addr, ssl=client_ctx,
                                                 server_hostname="localhost")
            elif how == "handshake_timeout":
                with pytest.raises(ConnectionAbortedError):
                    await loop.create_connection(asyncio.Protocol, *addr, ssl=client_ctx,
                                                 server_hostname="localhost",
                                                 ssl_handshake_timeout=0.1)
            else:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(loop.create_connection(
                        asyncio.Protocol, *addr, ssl=client_ctx, server_hostname="localhost"),
                        0.1)
        finally:
            ls.close()
        await asyncio.sleep(0.05)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()  # what earlier tests left
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.run_until_complete(main())
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
