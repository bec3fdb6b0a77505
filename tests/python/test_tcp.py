"""TCP over real loopback sockets: protocols, streams, servers (both loops)."""

import asyncio
import os
import socket
import threading

import pytest

import asyncloop

MiB = 1024 * 1024


class EchoServerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False  # close


class CollectingClient(asyncio.Protocol):
    def __init__(self, expected, loop):
        self.expected = expected
        self.chunks = []
        self.received = 0
        self.done = loop.create_future()
        self.lost = loop.create_future()
        self.made = 0

    def connection_made(self, transport):
        self.made += 1
        self.transport = transport

    def data_received(self, data):
        assert isinstance(data, bytes)
        self.chunks.append(data)
        self.received += len(data)
        if self.received >= self.expected and not self.done.done():
            self.done.set_result(b"".join(self.chunks))

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


def _port(server):
    return server.sockets[0].getsockname()[1]


def test_protocol_echo_1mib(loop):
    payload = os.urandom(MiB)

    async def main():
        server = await loop.create_server(EchoServerProtocol, "127.0.0.1", 0)
        port = _port(server)
        tr, proto = await loop.create_connection(
            lambda: CollectingClient(len(payload), loop), "127.0.0.1", port)
        assert proto.made == 1
        assert tr.get_protocol() is proto
        for i in range(0, len(payload), 65536):
            tr.write(payload[i:i + 65536])
        data = await asyncio.wait_for(proto.done, 30)
        tr.close()
        assert tr.is_closing()
        exc = await asyncio.wait_for(proto.lost, 10)
        server.close()
        await server.wait_closed()
        return data, exc

    data, exc = loop.run_until_complete(main())
    assert exc is None
    assert len(data) == len(payload)
    assert data == payload


def test_streams_echo(loop):
    payload = os.urandom(256 * 1024)

    async def handle(reader, writer):
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = _port(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        got = bytearray()

        async def read_all():
            while len(got) < len(payload):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                got.extend(chunk)

        rtask = asyncio.ensure_future(read_all())
        for i in range(0, len(payload), 10000):
            writer.write(payload[i:i + 10000])
            await writer.drain()
        await asyncio.wait_for(rtask, 30)
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return bytes(got)

    assert loop.run_until_complete(main()) == payload


def test_streams_readline_and_readexactly(loop):
    async def handle(reader, writer):
        line = await reader.readline()
        writer.write(line.upper())
        n = int(await reader.readexactly(4))
        writer.write(b"x" * n)
        await writer.drain()
        writer.close()

    async def main():
        async with await asyncio.start_server(handle, "127.0.0.1", 0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
            writer.write(b"hello\n0100")
            assert await reader.readline() == b"HELLO\n"
            assert await reader.readexactly(100) == b"x" * 100
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()

    loop.run_until_complete(main())


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_refused(loop):
    port = _free_port()

    async def main():
        with pytest.raises(ConnectionRefusedError) as ei:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        return ei.value

    exc = loop.run_until_complete(main())
    assert exc.errno == 111
    assert isinstance(exc, OSError)


def test_open_connection_refused(loop):
    port = _free_port()

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)

    loop.run_until_complete(main())


def test_resolve_error(aloop):
    async def main():
        with pytest.raises(OSError) as ei:
            await aloop.create_connection(asyncio.Protocol, "no-such-host.invalid", 80)
        return ei.value

    exc = aloop.run_until_complete(main())
    assert isinstance(exc, socket.gaierror)


def test_extra_info(loop):
    async def main():
        made = loop.create_future()

        class P(asyncio.Protocol):
            def connection_made(self, tr):
                made.set_result(tr)

        server = await loop.create_server(P, "127.0.0.1", 0)
        port = _port(server)
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        str_ = await made
        info = {
            "peer": tr.get_extra_info("peername"),
            "sock": tr.get_extra_info("sockname"),
            "speer": str_.get_extra_info("peername"),
            "ssock": str_.get_extra_info("sockname"),
            "socket": tr.get_extra_info("socket"),
            "missing": tr.get_extra_info("nope", "dflt"),
        }
        assert info["socket"].family == socket.AF_INET
        assert info["socket"].type == socket.SOCK_STREAM
        assert info["socket"].fileno() >= 0
        tr.close()
        str_.close()
        server.close()
        await server.wait_closed()
        return port, info

    port, info = loop.run_until_complete(main())
    assert info["peer"] == ("127.0.0.1", port)
    assert info["ssock"] == ("127.0.0.1", port)
    assert info["sock"] == info["speer"]
    assert info["missing"] == "dflt"


def test_server_lifecycle(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, start_serving=False)
        assert server.get_loop() is loop
        assert not server.is_serving()
        await server.start_serving()
        assert server.is_serving()
        assert len(server.sockets) == 1
        port = _port(server)
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        tr.close()
        server.close()
        assert not server.is_serving()
        assert server.sockets == ()
        await asyncio.wait_for(server.wait_closed(), 10)
        # closed: refused now
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)

    loop.run_until_complete(main())


def test_server_async_with_and_serve_forever(loop):
    async def main():
        server = await loop.create_server(EchoServerProtocol, "127.0.0.1", 0)
        async with server:
            task = asyncio.ensure_future(server.serve_forever())
            await asyncio.sleep(0.01)
            reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            writer.close()
            await writer.wait_closed()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not server.is_serving()

    loop.run_until_complete(main())


def test_reuse_port_and_backlog(loop):
    async def main():
        s1 = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, reuse_port=True, backlog=5)
        port = _port(s1)
        s2 = await loop.create_server(asyncio.Protocol, "127.0.0.1", port, reuse_port=True)
        assert _port(s2) == port
        s1.close()
        s2.close()
        await s1.wait_closed()
        await s2.wait_closed()

    loop.run_until_complete(main())


def test_address_in_use(loop):
    async def main():
        s1 = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        try:
            with pytest.raises(OSError) as ei:
                await loop.create_server(asyncio.Protocol, "127.0.0.1", _port(s1))
            assert ei.value.errno == 98
        finally:
            s1.close()
            await s1.wait_closed()

    loop.run_until_complete(main())


def test_local_addr(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        lport = _free_port()
        tr, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", _port(server), local_addr=("127.0.0.1", lport))
        sockname = tr.get_extra_info("sockname")
        tr.close()
        server.close()
        await server.wait_closed()
        return lport, sockname

    lport, sockname = loop.run_until_complete(main())
    assert sockname == ("127.0.0.1", lport)


def test_half_close_eof_received(loop):
    events = []

    class KeepOpen(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr
            self.buf = b""

        def data_received(self, data):
            self.buf += data

        def eof_received(self):
            events.append("server-eof")
            self.tr.write(b"got:" + self.buf)  # still writable: half-open
            self.tr.close()
            return True

    async def main():
        server = await loop.create_server(KeepOpen, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
        assert writer.can_write_eof()
        writer.write(b"abc")
        writer.write_eof()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        server.close()
        await server.wait_closed()
        return data

    assert loop.run_until_complete(main()) == b"got:abc"
    assert events == ["server-eof"]


def test_write_after_write_eof_raises(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", _port(server))
        tr.write_eof()
        with pytest.raises(RuntimeError):
            tr.write(b"x")
        with pytest.raises(TypeError):
            tr.write("str")
        tr.close()
        tr2, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", _port(server))
        tr2.close()
        tr2.write(b"after close is dropped")  # no error, as asyncio
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_flow_control_pause_resume(loop):
    """A peer that does not read makes the write buffer grow past the high
    water mark (pause_writing); once it reads, the buffer drains below the
    low water mark (resume_writing)."""
    events = []
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    start_reading = threading.Event()
    total = []

    def peer():
        conn, _ = lsock.accept()
        start_reading.wait(30)
        n = 0
        while True:
            d = conn.recv(1 << 20)
            if not d:
                break
            n += len(d)
        total.append(n)
        conn.close()

    th = threading.Thread(target=peer)
    th.start()

    class Source(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr
            self.resumed = loop.create_future()

        def pause_writing(self):
            events.append("pause")

        def resume_writing(self):
            events.append("resume")
            if not self.resumed.done():
                self.resumed.set_result(None)

    async def main():
        tr, src = await loop.create_connection(Source, "127.0.0.1", port)
        tr.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        chunk = b"z" * 65536
        sent = 0
        for _ in range(400):  # up to 25 MiB: more than the socket buffers hold
            tr.write(chunk)
            sent += len(chunk)
            if events:
                break
            await asyncio.sleep(0)
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.01)
        assert events[:1] == ["pause"]
        assert tr.get_write_buffer_size() > 0
        start_reading.set()
        await asyncio.wait_for(src.resumed, 20)
        tr.close()
        return sent

    try:
        sent = loop.run_until_complete(main())
    finally:
        start_reading.set()
        th.join(30)
        lsock.close()
    assert events == ["pause", "resume"]
    assert total == [sent]


def test_buffered_protocol(loop):
    payload = os.urandom(300 * 1000)

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(4096)
            self.got = bytearray()
            self.done = loop.create_future()

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            self.got += self.buf[:nbytes]

        def eof_received(self):
            self.done.set_result(bytes(self.got))

    class Sender(asyncio.Protocol):
        def connection_made(self, tr):
            tr.write(payload)
            tr.write_eof()

    async def main():
        protos = []

        def factory():
            p = Buffered()
            protos.append(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(Sender, "127.0.0.1", _port(server))
        while not protos:
            await asyncio.sleep(0.005)
        data = await asyncio.wait_for(protos[0].done, 20)
        tr.close()
        server.close()
        await server.wait_closed()
        return data

    assert loop.run_until_complete(main()) == payload


def test_abort_and_connection_lost_on_peer_close(loop):
    async def main():
        lost = loop.create_future()

        class P(asyncio.Protocol):
            def connection_made(self, tr):
                tr.abort()

        class C(asyncio.Protocol):
            def connection_lost(self, exc):
                lost.set_result(exc)

        server = await loop.create_server(P, "127.0.0.1", 0)
        await loop.create_connection(C, "127.0.0.1", _port(server))
        exc = await asyncio.wait_for(lost, 10)
        server.close()
        await server.wait_closed()
        return exc

    exc = loop.run_until_complete(main())
    assert exc is None or isinstance(exc, ConnectionResetError)


def test_bytes_written_before_abort_are_sent(loop):
    """asyncio's write() hands the bytes to the socket at once, so an abort()
    right after it drops nothing the socket took: the peer gets them."""
    reply = b"r" * 50000

    async def main():
        got = bytearray()
        lost = loop.create_future()

        class S(asyncio.Protocol):
            def connection_made(self, tr):
                self.tr = tr

            def data_received(self, data):
                self.tr.write(reply[:20000])
                self.tr.writelines([reply[20000:]])
                self.tr.abort()

        class C(asyncio.Protocol):
            def connection_made(self, tr):
                tr.write(b"go")

            def data_received(self, data):
                got.extend(data)

            def connection_lost(self, exc):
                lost.set_result(exc)

        server = await loop.create_server(S, "127.0.0.1", 0)
        await loop.create_connection(C, "127.0.0.1", _port(server))
        await asyncio.wait_for(lost, 10)
        server.close()
        await server.wait_closed()
        return bytes(got)

    assert loop.run_until_complete(main()) == reply


def test_data_received_error_goes_to_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def main():
        lost = loop.create_future()

        class Bad(asyncio.Protocol):
            def data_received(self, data):
                raise ValueError("bad protocol")

            def connection_lost(self, exc):
                lost.set_result(exc)

        server = await loop.create_server(EchoServerProtocol, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(Bad, "127.0.0.1", _port(server))
        tr.write(b"hi")
        exc = await asyncio.wait_for(lost, 10)
        server.close()
        await server.wait_closed()
        return exc

    exc = loop.run_until_complete(main())
    assert isinstance(exc, ValueError)
    assert any(isinstance(c.get("exception"), ValueError) for c in contexts)


def test_keyboard_interrupt_in_protocol_propagates(aloop):
    """A BaseException raised in a callback called from C is not swallowed by
    ctypes: it comes out of run_until_complete."""

    class Raiser(asyncio.Protocol):
        def data_received(self, data):
            raise KeyboardInterrupt

    async def main():
        server = await aloop.create_server(EchoServerProtocol, "127.0.0.1", 0)
        tr, _ = await aloop.create_connection(Raiser, "127.0.0.1", _port(server))
        tr.write(b"x")
        await asyncio.sleep(10)

    with pytest.raises(KeyboardInterrupt):
        aloop.run_until_complete(main())


def test_bad_arguments(loop):
    async def main():
        with pytest.raises(TypeError):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=True)
        with pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                         server_hostname="x")
        with pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                         ssl_handshake_timeout=1.0)
        with socket.socket() as s, pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol, sock=s, ssl=True)
        with pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol)
        with socket.socket() as s, pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, sock=s)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol, sock=udp)

    loop.run_until_complete(main())


def test_many_connections(loop):
    n = 50

    async def client(port, i):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        msg = f"msg-{i}".encode() * 100
        writer.write(msg)
        got = await reader.readexactly(len(msg))
        writer.close()
        await writer.wait_closed()
        return got == msg

    async def main():
        server = await loop.create_server(EchoServerProtocol, "127.0.0.1", 0)
        res = await asyncio.gather(*(client(_port(server), i) for i in range(n)))
        server.close()
        await server.wait_closed()
        return res

    assert all(loop.run_until_complete(main()))


def test_close_loop_with_open_transports(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", _port(server))
        return server, tr

    server, tr = loop.run_until_complete(main())
    sock = tr.get_extra_info("socket")
    loop.close()  # must not hang nor crash
    assert loop.is_closed()
    # As asyncio: the transport is not marked closing; it just stops working.
    assert not tr.is_closing()
    assert "closed" not in repr(tr)
    if isinstance(loop, asyncloop.EventLoop):
        assert not server.is_serving()  # the library's server is gone
        assert sock.fileno() == -1  # and the connection's socket closed
    else:
        tr._sock.close()  # asyncio leaves it to the GC
        server.close()


def test_sync_client_thread_against_server(loop):
    """A plain blocking socket client in a thread (not a loop) as the peer."""
    payload = os.urandom(100000)
    result = []

    async def main():
        server = await loop.create_server(EchoServerProtocol, "127.0.0.1", 0)
        port = _port(server)

        def client():
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                buf = bytearray()
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    buf += d
                result.append(bytes(buf))

        th = threading.Thread(target=client)
        th.start()
        while th.is_alive():
            await asyncio.sleep(0.01)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    assert result == [payload]
