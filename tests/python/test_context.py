"""contextvars: protocol factories and protocol callbacks run in the context
that was current when the endpoint was created (create_server and each of
its connections, create_connection, create_unix_*, connect_accepted_socket,
create_datagram_endpoint, subprocess_exec, TLS), on both loops: asyncio's
behaviour is the reference.  What a callback sets stays in the endpoint's
context: it never leaks into the task that created it, nor outside the loop.
"""

import asyncio
import contextvars
import os
import socket
import sys

import pytest

import asyncloop

cvar = contextvars.ContextVar("cvar", default="outer")
#: set by every callback: must never be seen by the task or outside the loop
leak = contextvars.ContextVar("leak", default=None)

STREAM_EVENTS = ("factory", "connection_made", "eof_received", "connection_lost")


def data_events(proto_cls):
    if proto_cls is BufferedStreamProto:
        return ("get_buffer", "buffer_updated")
    return ("data_received",)


def is_asyncloop(loop):
    return isinstance(loop, asyncloop.EventLoop)


class Seen:
    """Records cvar's value in every callback, and sets leak in each (but
    in a factory and pause_writing: asyncio runs a client's factory in the
    creating task itself, and pause_writing inside write())."""

    def __init__(self, loop):
        self.seen = {}
        self.done = loop.create_future()
        self.made = loop.create_future()
        self.got_data = loop.create_future()

    def saw(self, name, mark=True):
        self.seen.setdefault(name, cvar.get())
        if mark:
            leak.set(name)


class StreamProto(asyncio.Protocol):
    def __init__(self, seen):
        self.s = seen

    def connection_made(self, transport):
        self.s.saw("connection_made")
        self.transport = transport
        self.s.made.set_result(transport)

    def data_received(self, data):
        self.s.saw("data_received")
        if not self.s.got_data.done():
            self.s.got_data.set_result(data)

    def eof_received(self):
        self.s.saw("eof_received")

    def connection_lost(self, exc):
        self.s.saw("connection_lost")
        if not self.s.done.done():
            self.s.done.set_result(exc)


class BufferedStreamProto(StreamProto, asyncio.BufferedProtocol):
    def get_buffer(self, sizehint):
        self.s.saw("get_buffer")
        self.buf = bytearray(1024)
        return self.buf

    def buffer_updated(self, nbytes):
        self.s.saw("buffer_updated")
        if not self.s.got_data.done():
            self.s.got_data.set_result(bytes(self.buf[:nbytes]))


def factory_for(seen, proto_cls):
    def factory():
        seen.saw("factory", mark=False)
        return proto_cls(seen)
    return factory


def check(seen, names, value="inner"):
    for name in names:
        assert seen.seen.get(name) == value, (name, seen.seen)


def run(loop, coro):
    """Runs coro in a task with cvar set to 'inner'; checks that nothing
    leaked into the task or the outer context."""

    async def main():
        cvar.set("inner")
        result = await coro()
        assert cvar.get() == "inner"
        assert leak.get() is None
        return result

    assert cvar.get() == "outer"
    result = loop.run_until_complete(main())
    assert cvar.get() == "outer"
    assert leak.get() is None
    return result


@pytest.fixture(params=[StreamProto, BufferedStreamProto], ids=["Protocol", "BufferedProtocol"])
def proto_cls(request):
    return request.param


async def _exercise_peer(loop, s, seen):
    """The peer sends data, half-closes, then closes."""
    await seen.made
    await loop.sock_sendall(s, b"hello")
    assert await seen.got_data == b"hello"
    s.shutdown(socket.SHUT_WR)
    await asyncio.wait_for(seen.done, 5)
    s.close()


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_server_connection_callbacks(loop, proto_cls, family, tmp_path):
    seen = Seen(loop)

    async def main():
        if family == "tcp":
            srv = await loop.create_server(factory_for(seen, proto_cls), "127.0.0.1", 0)
            addr, fam = srv.sockets[0].getsockname(), socket.AF_INET
        else:
            addr, fam = str(tmp_path / "s.sock"), socket.AF_UNIX
            srv = await loop.create_unix_server(factory_for(seen, proto_cls), addr)
        s = socket.socket(fam)
        s.setblocking(False)
        await loop.sock_connect(s, addr)
        await _exercise_peer(loop, s, seen)
        srv.close()
        await srv.wait_closed()

    run(loop, main)
    check(seen, STREAM_EVENTS + data_events(proto_cls))


def test_server_connections_have_their_own_context(loop):
    """Each accepted connection runs in its own copy of the server's
    context (asyncio: a task per connection): what its factory or callbacks
    set is not seen by the next connection."""
    values = []

    class P(asyncio.Protocol):
        def connection_made(self, transport):
            values.append(cvar.get())
            cvar.set("changed")
            transport.close()

    def factory():
        values.append(cvar.get())
        return P()

    async def main():
        srv = await loop.create_server(factory, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()
        for _ in range(3):
            r, w = await asyncio.open_connection(*addr)
            await r.read()
            w.close()
        srv.close()
        await srv.wait_closed()

    run(loop, main)
    assert values == ["inner"] * 6


@pytest.mark.parametrize("how", ["host", "sock", "unix", "unix-sock", "accepted"])
def test_client_connection_callbacks(loop, proto_cls, how, tmp_path):
    seen = Seen(loop)

    async def main():
        if how.startswith("unix"):
            addr, fam = str(tmp_path / "c.sock"), socket.AF_UNIX
        else:
            addr, fam = ("127.0.0.1", 0), socket.AF_INET
        ls = socket.socket(fam)
        ls.bind(addr)
        ls.listen(1)
        ls.setblocking(False)
        addr = ls.getsockname()
        factory = factory_for(seen, proto_cls)
        if how == "accepted":
            c = socket.socket(fam)
            c.setblocking(False)
            await loop.sock_connect(c, addr)
            peer, _ = await loop.sock_accept(ls)
            await loop.connect_accepted_socket(factory, peer)
        else:
            accept = asyncio.ensure_future(loop.sock_accept(ls))
            if how == "host":
                await loop.create_connection(factory, *addr)
            elif how == "unix":
                await loop.create_unix_connection(factory, addr)
            else:
                cs = socket.socket(fam)
                cs.connect(addr)
                if how == "sock":
                    await loop.create_connection(factory, sock=cs)
                else:
                    await loop.create_unix_connection(factory, sock=cs)
            c, _ = await accept
        try:
            await _exercise_peer(loop, c, seen)
        finally:
            ls.close()
            c.close()

    run(loop, main)
    check(seen, STREAM_EVENTS + data_events(proto_cls))


def test_exception_handler_runs_in_connection_context(loop):
    """A protocol callback that raises: the loop's exception handler sees the
    connection's context (asyncio calls it from the reader's callback)."""
    reported = []

    class Bad(asyncio.Protocol):
        def data_received(self, data):
            raise ZeroDivisionError

        def connection_lost(self, exc):
            reported.append(("lost", cvar.get()))

    async def main():
        loop.set_exception_handler(lambda lp, ctx: reported.append(("handler", cvar.get())))
        srv = await loop.create_server(Bad, "127.0.0.1", 0)
        r, w = await asyncio.open_connection(*srv.sockets[0].getsockname())
        w.write(b"x")
        await r.read()
        w.close()
        srv.close()
        await srv.wait_closed()
        for _ in range(5):
            await asyncio.sleep(0)

    run(loop, main)
    assert reported == [("handler", "inner"), ("lost", "inner")]


def test_flow_control_callbacks(loop):
    """pause_writing / resume_writing of a transport written from its own
    context."""
    seen = Seen(loop)

    class P(StreamProto):
        def pause_writing(self):
            self.s.saw("pause_writing", mark=False)

        def resume_writing(self):
            self.s.saw("resume_writing")

    async def main():
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(ls))
        tr, _ = await loop.create_connection(lambda: P(seen), *ls.getsockname())
        c, _ = await accept
        tr.set_write_buffer_limits(high=1024, low=256)
        total = 4 << 20
        tr.write(b"x" * total)
        assert "pause_writing" in seen.seen
        got = 0
        while got < total:
            got += len(await loop.sock_recv(c, 1 << 20))
        for _ in range(100):
            if "resume_writing" in seen.seen:
                break
            await asyncio.sleep(0.01)
        tr.close()
        c.close()
        ls.close()
        await seen.done

    run(loop, main)
    check(seen, ("connection_made", "pause_writing", "resume_writing"))


def test_tls_server_and_client(loop, server_ctx, client_ctx):
    sseen, cseen = Seen(loop), Seen(loop)

    async def main():
        srv = await loop.create_server(factory_for(sseen, StreamProto), "127.0.0.1", 0,
                                       ssl=server_ctx)
        host, port = srv.sockets[0].getsockname()
        tr, proto = await loop.create_connection(factory_for(cseen, StreamProto), host, port,
                                                 ssl=client_ctx, server_hostname="localhost")
        await sseen.made
        tr.write(b"ping")
        assert await sseen.got_data == b"ping"
        sseen.s_tr = (await sseen.made)
        sseen.s_tr.write(b"pong")
        assert await cseen.got_data == b"pong"
        tr.close()
        await asyncio.wait_for(sseen.done, 5)
        await asyncio.wait_for(cseen.done, 5)
        srv.close()
        await srv.wait_closed()

    run(loop, main)
    check(sseen, ("factory", "connection_made", "data_received", "connection_lost"))
    check(cseen, ("factory", "connection_made", "data_received"))


class DgramProto(asyncio.DatagramProtocol):
    def __init__(self, seen):
        self.s = seen

    def connection_made(self, transport):
        self.s.saw("connection_made")
        self.transport = transport
        self.s.made.set_result(transport)

    def datagram_received(self, data, addr):
        self.s.saw("datagram_received")
        if not self.s.got_data.done():
            self.s.got_data.set_result(data)

    def error_received(self, exc):
        self.s.saw("error_received")

    def connection_lost(self, exc):
        self.s.saw("connection_lost")
        self.s.done.set_result(exc)


def test_datagram_callbacks(loop):
    seen = Seen(loop)

    async def main():
        tr, _ = await loop.create_datagram_endpoint(factory_for(seen, DgramProto),
                                                    local_addr=("127.0.0.1", 0))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"hello", tr.get_extra_info("sockname"))
        assert await seen.got_data == b"hello"
        s.close()
        tr.close()
        await seen.done

    run(loop, main)
    check(seen, ("factory", "connection_made", "datagram_received", "connection_lost"))


def test_datagram_error_received(loop):
    seen = Seen(loop)

    async def main():
        # A port nobody listens on: the connected socket gets ECONNREFUSED.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        addr = s.getsockname()
        s.close()
        tr, _ = await loop.create_datagram_endpoint(factory_for(seen, DgramProto),
                                                    remote_addr=addr)
        for _ in range(50):
            tr.sendto(b"x")
            await asyncio.sleep(0.01)
            if "error_received" in seen.seen:
                break
        tr.close()
        await seen.done

    run(loop, main)
    check(seen, ("factory", "connection_made", "error_received", "connection_lost"))


class SubProto(asyncio.SubprocessProtocol):
    def __init__(self, seen):
        self.s = seen
        self.exited = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.s.saw("connection_made")
        self.s.made.set_result(transport)

    def pipe_data_received(self, fd, data):
        self.s.saw("pipe_data_received")
        if not self.s.got_data.done():
            self.s.got_data.set_result(data)

    def pipe_connection_lost(self, fd, exc):
        self.s.saw(f"pipe_connection_lost_{fd}")

    def process_exited(self):
        self.s.saw("process_exited")
        self.exited.set_result(None)

    def connection_lost(self, exc):
        self.s.saw("connection_lost")
        self.s.done.set_result(exc)


def test_subprocess_callbacks(loop):
    seen = Seen(loop)

    async def main():
        tr, proto = await loop.subprocess_exec(
            factory_for(seen, SubProto), sys.executable, "-c",
            "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())")
        stdin = tr.get_pipe_transport(0)
        stdin.write(b"data")
        stdin.write_eof()
        assert await seen.got_data == b"data"
        await proto.exited
        await seen.done
        tr.close()

    run(loop, main)
    check(seen, ("factory", "connection_made", "pipe_data_received",
                 "pipe_connection_lost_0", "pipe_connection_lost_1",
                 "pipe_connection_lost_2"))
    if is_asyncloop(loop):
        # asyncio runs these in the context of its child watcher's callback
        # (a watcher thread's on 3.11): asyncloop, in the endpoint's.
        check(seen, ("process_exited", "connection_lost"))
