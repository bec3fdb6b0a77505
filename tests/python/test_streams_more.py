"""Unix sockets, accepted sockets, sock=, pipes, several hosts (both loops)."""

import asyncio
import os
import socket
import tempfile

import pytest


class Echo(asyncio.Protocol):
    def connection_made(self, tr):
        self.tr = tr

    def data_received(self, data):
        self.tr.write(data)


async def _roundtrip(reader, writer, payload):
    writer.write(payload)
    got = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    writer.close()
    await writer.wait_closed()
    return got


def test_unix_server_and_connection(loop):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "sock")

        async def main():
            server = await loop.create_unix_server(Echo, path)
            assert os.path.exists(path)
            assert server.sockets[0].family == socket.AF_UNIX
            reader, writer = await asyncio.open_unix_connection(path)
            assert writer.get_extra_info("peername") == path
            got = await _roundtrip(reader, writer, b"over unix" * 1000)
            server.close()
            await server.wait_closed()
            return got

        assert loop.run_until_complete(main()) == b"over unix" * 1000


def test_unix_abstract_namespace(loop):
    name = f"\0asyncloop-test-{os.getpid()}-{id(loop)}"

    async def main():
        async def handle(r, w):
            w.write(b"hi from abstract")
            await w.drain()
            w.close()  # (3.12's wait_closed waits for the connections)

        server = await asyncio.start_unix_server(handle, name)
        reader, writer = await asyncio.open_unix_connection(name)
        got = await asyncio.wait_for(reader.readexactly(16), 10)
        writer.close()
        server.close()
        await server.wait_closed()
        return got

    assert loop.run_until_complete(main()) == b"hi from abstract"


def test_unix_connection_refused(loop):
    with tempfile.TemporaryDirectory() as d:
        async def main():
            with pytest.raises(FileNotFoundError):
                await loop.create_unix_connection(asyncio.Protocol, os.path.join(d, "none"))

        loop.run_until_complete(main())


def test_connect_accepted_socket(loop):
    a, b = socket.socketpair()

    async def main():
        tr, proto = await loop.connect_accepted_socket(Echo, a)
        b.setblocking(False)
        await loop.sock_sendall(b, b"accepted")
        got = b""
        while len(got) < 8:
            got += await loop.sock_recv(b, 100)
        tr.close()
        await asyncio.sleep(0.01)
        return got

    try:
        assert loop.run_until_complete(main()) == b"accepted"
    finally:
        b.close()
        a.close()


def test_create_connection_and_server_with_sock(loop):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    port = lsock.getsockname()[1]

    async def main():
        server = await loop.create_server(Echo, sock=lsock)
        assert server.sockets[0].getsockname() == ("127.0.0.1", port)
        csock = socket.create_connection(("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=csock)
        got = await _roundtrip(reader, writer, b"sock=" * 100)
        server.close()
        await server.wait_closed()
        return got

    assert loop.run_until_complete(main()) == b"sock=" * 100


def test_server_several_hosts(loop):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    async def main():
        server = await loop.create_server(Echo, ["127.0.0.1", "127.0.0.2"], port)
        names = sorted(s.getsockname() for s in server.sockets)
        assert names == [("127.0.0.1", port), ("127.0.0.2", port)]
        got = []
        for host in ("127.0.0.1", "127.0.0.2"):
            reader, writer = await asyncio.open_connection(host, port)
            got.append(await _roundtrip(reader, writer, host.encode()))
        server.close()
        await server.wait_closed()
        return got

    assert loop.run_until_complete(main()) == [b"127.0.0.1", b"127.0.0.2"]


def test_happy_eyeballs_connect(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "localhost", port, happy_eyeballs_delay=0.05, family=socket.AF_INET)
        got = await _roundtrip(reader, writer, b"he")
        server.close()
        await server.wait_closed()
        return got

    assert loop.run_until_complete(main()) == b"he"


def test_read_and_write_pipes(loop):
    rfd, wfd = os.pipe()
    rpipe = os.fdopen(rfd, "rb", 0)
    wpipe = os.fdopen(wfd, "wb", 0)

    class Reader(asyncio.Protocol):
        def __init__(self):
            self.data = b""
            self.done = loop.create_future()

        def data_received(self, data):
            self.data += data

        def eof_received(self):
            pass

        def connection_lost(self, exc):
            self.done.set_result((self.data, exc))

    async def main():
        rtr, rproto = await loop.connect_read_pipe(Reader, rpipe)
        wtr, wproto = await loop.connect_write_pipe(asyncio.BaseProtocol, wpipe)
        assert rtr.get_extra_info("pipe") is rpipe
        assert wtr.get_extra_info("pipe") is wpipe
        payload = os.urandom(300000)
        wtr.write(payload)
        wtr.close()
        data, exc = await asyncio.wait_for(rproto.done, 10)
        return data == payload, exc

    assert loop.run_until_complete(main()) == (True, None)
    assert rpipe.closed and wpipe.closed
