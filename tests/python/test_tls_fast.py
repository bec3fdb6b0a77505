"""The steady state of TLS connections (asyncloop/_tls.py: records from the
read arena into the BIO, decrypted and delivered inline; writes encrypted and
queued at once), over real TLS on loopback, on both loops: asyncio's
behaviour is the reference for every semantic the fast paths take over
(delivery and order, the eof rules, errors in data_received, pause_reading,
write flow control, BufferedProtocol apps, write's argument checks,
get_extra_info)."""

import asyncio
import ssl

import pytest

import asyncloop
from asyncloop import _tls

MiB = 1024 * 1024


class Recorder(asyncio.Protocol):
    """Records its callbacks; echoes when echo is set."""

    def __init__(self, loop, echo=False):
        self.events = []
        self.data = bytearray()
        self.echo = echo
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.got = None  # (n, future): set when len(data) >= n

    def connection_made(self, tr):
        self.tr = tr
        self.made.set_result(tr)

    def data_received(self, data):
        assert type(data) is bytes
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        if self.echo:
            self.tr.write(data)
        if self.got and len(self.data) >= self.got[0] and not self.got[1].done():
            self.got[1].set_result(None)

    def wait_for(self, loop, n):
        fut = loop.create_future()
        self.got = (n, fut)
        if len(self.data) >= n:
            fut.set_result(None)
        return fut

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)


async def _pair(loop, server_ctx, client_ctx, server_proto, client_proto):
    """A TLS server (one connection) and a client: (server, server
    protocol, client transport, client protocol)."""
    made = []

    def factory():
        p = server_proto()
        made.append(p)
        return p

    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    ctr, cproto = await loop.create_connection(client_proto, "127.0.0.1", port,
                                               ssl=client_ctx, server_hostname="localhost")
    for _ in range(200):
        if made and made[0].__dict__.get("tr") is not None:
            break
        await asyncio.sleep(0.01)
    return server, made[0], ctr, cproto


def test_asyncloop_uses_the_lean_tls_protocol(server_ctx, client_ctx):
    """ssl= on asyncloop runs _tls's SSLProtocol (its fast paths) on both
    sides, and its transport still answers as asyncio's."""
    loop = asyncloop.new_event_loop()

    async def main():
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          lambda: Recorder(loop, echo=True),
                                          lambda: Recorder(loop))
        assert _tls.SUPPORTED
        for tr in (ctr, sp.tr):
            assert type(tr) is _tls.SSLTransport
            assert type(tr._ssl_protocol) is _tls.SSLProtocol
            assert isinstance(tr._ssl_protocol._transport, asyncloop._transports.Transport)
            assert tr._ssl_protocol._transport._tls_feed is not None
        ctr.write(b"ping")
        await asyncio.wait_for(cp.wait_for(loop, 4), 10)
        assert bytes(cp.data) == b"ping"
        ctr.close()
        await asyncio.wait_for(cp.lost, 10)
        server.close()
        await server.wait_closed()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_tls_echo_sizes_order_and_write_types(loop, server_ctx, client_ctx):
    """Writes of every size around the record size (16 KiB), bytes,
    bytearray, memoryview and writelines, arrive whole and in order."""
    sizes = [1, 100, 1024, 16383, 16384, 16385, 65536, 65537, 300000]
    chunks = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    total = sum(sizes) * 2

    async def main():
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          lambda: Recorder(loop, echo=True),
                                          lambda: Recorder(loop))
        for i, c in enumerate(chunks):
            ctr.write((bytes, bytearray, memoryview)[i % 3](c))
        ctr.writelines(chunks)
        ctr.write(b"")
        await asyncio.wait_for(cp.wait_for(loop, total), 30)
        assert bytes(cp.data) == b"".join(chunks) * 2
        assert bytes(sp.data) == b"".join(chunks) * 2
        ctr.close()
        assert await asyncio.wait_for(cp.lost, 10) is None
        await asyncio.wait_for(sp.lost, 10)
        # The server saw the client's close_notify: eof, then lost.
        assert sp.events == ["data", "eof", "lost"]
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_write_checks_its_argument(loop, server_ctx, client_ctx):
    async def main():
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          lambda: Recorder(loop), lambda: Recorder(loop))
        with pytest.raises(TypeError, match="data: expecting a bytes-like instance, got str"):
            ctr.write("text")
        with pytest.raises(TypeError):
            ctr.write(None)
        ctr.close()
        await asyncio.wait_for(cp.lost, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_data_then_close_notify_in_one_read(loop, server_ctx, client_ctx):
    """Data and the peer's close_notify that arrive together: the data is
    delivered, then eof_received, then connection_lost (None), as asyncio."""

    async def main():
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          lambda: Recorder(loop), lambda: Recorder(loop))
        ctr.write(b"last words" * 100)
        ctr.close()  # close_notify right behind the data
        assert await asyncio.wait_for(sp.lost, 10) is None
        assert bytes(sp.data) == b"last words" * 100
        assert sp.events == ["data", "eof", "lost"]
        await asyncio.wait_for(cp.lost, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_error_in_data_received(loop, server_ctx, client_ctx):
    """An exception in the app's data_received is a fatal error of the TLS
    protocol: the exception handler gets it ("Fatal error on SSL protocol"),
    the connection is closed and the app gets connection_lost."""
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))

    class Boom(Recorder):
        def data_received(self, data):
            super().data_received(data)
            raise ZeroDivisionError("boom")

    async def main():
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          lambda: Boom(loop), lambda: Recorder(loop))
        ctr.write(b"x")
        await asyncio.wait_for(sp.lost, 10)
        await asyncio.wait_for(cp.lost, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    fatal = [c for c in seen if isinstance(c.get("exception"), ZeroDivisionError)]
    assert len(fatal) == 1, seen
    assert fatal[0]["message"] == "Fatal error on SSL protocol"


def test_tls_pause_reading_holds_the_data(loop, server_ctx, client_ctx):
    """pause_reading() on the TLS transport: nothing is delivered until
    resume_reading(), then everything, in order."""
    payload = bytes(range(256)) * 400

    class Paused(Recorder):
        def connection_made(self, tr):
            super().connection_made(tr)
            tr.pause_reading()

    async def main():
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          lambda: Paused(loop), lambda: Recorder(loop))
        ctr.write(payload)
        await asyncio.sleep(0.3)
        assert sp.data == b"" and not sp.tr.is_reading()
        sp.tr.resume_reading()
        await asyncio.wait_for(sp.wait_for(loop, len(payload)), 10)
        assert bytes(sp.data) == payload
        ctr.close()
        await asyncio.wait_for(sp.lost, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_write_flow_control(loop, server_ctx, client_ctx):
    """A peer that does not read: the writer's protocol gets pause_writing,
    and resume_writing once the peer reads again; every byte arrives, in
    order; get_write_buffer_size counts what the TLS layer holds."""

    class Writer(Recorder):
        def __init__(self, loop):
            super().__init__(loop)
            self.paused = False
            self.pauses = 0
            self.resumes = 0
            self.sent = 0
            self.max_buffered = 0

        def fill(self):
            while not self.paused and self.sent < 16 * MiB:
                self.tr.write(bytes([self.sent // 65536 % 256]) * 65536)
                self.sent += 65536
                self.max_buffered = max(self.max_buffered, self.tr.get_write_buffer_size())

        def pause_writing(self):
            self.paused = True
            self.pauses += 1

        def resume_writing(self):
            self.paused = False
            self.resumes += 1

    async def main():
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          lambda: Writer(loop), lambda: Recorder(loop))
        ctr.pause_reading()
        sp.fill()
        assert sp.paused and sp.pauses == 1 and sp.sent < 16 * MiB
        assert sp.max_buffered > 0
        ctr.resume_reading()
        while sp.sent < 16 * MiB:
            await asyncio.sleep(0.01)
            sp.fill()
        await asyncio.wait_for(cp.wait_for(loop, 16 * MiB), 60)
        expect = b"".join(bytes([i % 256]) * 65536 for i in range(256))
        assert bytes(cp.data) == expect
        assert sp.resumes >= 1
        ctr.close()
        await asyncio.wait_for(sp.lost, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_buffered_protocol_app(loop, server_ctx, client_ctx):
    """A BufferedProtocol app over TLS (get_buffer / buffer_updated, small
    buffers): every byte, in order."""
    payload = bytes(range(256)) * 1000

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(1000)
            self.data = bytearray()
            self.lost = loop.create_future()
            self.tr = None

        def connection_made(self, tr):
            self.tr = tr

        def get_buffer(self, sizehint):
            # (a view: asyncio's sslproto reads into buf[offset:] after the
            # first record, which for a bytearray is a copy -- the bytes are
            # lost, on asyncio's own loop too)
            return memoryview(self.buf)

        def buffer_updated(self, nbytes):
            self.data += self.buf[:nbytes]

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main():
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          Buffered, lambda: Recorder(loop))
        ctr.write(payload)
        for _ in range(1000):
            if len(sp.data) >= len(payload):
                break
            await asyncio.sleep(0.01)
        assert len(sp.data) == len(payload)
        assert bytes(sp.data) == payload
        ctr.close()
        await asyncio.wait_for(sp.lost, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_server_side_extra_info(loop, server_ctx, client_ctx):
    """get_extra_info on both ends answers as asyncio's sslproto does."""

    async def main():
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          lambda: Recorder(loop, echo=True),
                                          lambda: Recorder(loop))
        for tr, ctx in ((sp.tr, server_ctx), (ctr, client_ctx)):
            obj = tr.get_extra_info("ssl_object")
            assert isinstance(obj, ssl.SSLObject)
            assert tr.get_extra_info("sslcontext") is ctx
            assert tr.get_extra_info("cipher") == obj.cipher()
            assert tr.get_extra_info("compression") == obj.compression()
            assert tr.get_extra_info("peercert") == obj.getpeercert()
            assert tr.get_extra_info("peername") is not None
            assert not tr.can_write_eof()
            with pytest.raises(NotImplementedError):
                tr.write_eof()
        assert sp.tr.get_extra_info("peercert") is None  # the client sent none
        assert ctr.get_extra_info("peercert")["subjectAltName"]
        ctr.close()
        await asyncio.wait_for(cp.lost, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_start_tls_uses_the_same_protocol_and_checks(loop, server_ctx, client_ctx):
    """loop.start_tls: asyncio's argument checks; on asyncloop the TLS
    transport is _tls's, and data flows both ways after the upgrade."""

    class Upgrader(Recorder):
        def data_received(self, data):
            if data == b"STARTTLS":
                self.tr.write(b"GO")
                loop.create_task(self.upgrade())
            else:
                super().data_received(data)

        async def upgrade(self):
            self.tls = loop.create_task(
                loop.start_tls(self.tr, self, server_ctx, server_side=True))
            self.tr = await self.tls

    async def main():
        made = []
        server = await loop.create_server(lambda: made.append(Upgrader(loop)) or made[-1],
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, cp = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        with pytest.raises(TypeError, match="sslcontext is expected to be an instance"):
            await loop.start_tls(tr, cp, object())
        assert tr.is_closing() is False
        tr.write(b"STARTTLS")
        await asyncio.wait_for(cp.wait_for(loop, 2), 10)
        cp.data.clear()
        tls = await loop.start_tls(tr, cp, client_ctx, server_hostname="localhost")
        if isinstance(loop, asyncloop.EventLoop):
            assert type(tls) is _tls.SSLTransport
        assert isinstance(tls.get_extra_info("ssl_object"), ssl.SSLObject)
        with pytest.raises(TypeError, match="is not supported by start_tls"):
            await loop.start_tls(_NoTLS(), cp, client_ctx)
        tls.write(b"x" * 100000)
        sp = made[0]
        await asyncio.wait_for(sp.wait_for(loop, 100000), 10)
        assert bytes(sp.data) == b"x" * 100000
        stls = await sp.tls
        if isinstance(loop, asyncloop.EventLoop):
            assert type(stls) is _tls.SSLTransport
        stls.write(b"y" * 100000)
        await asyncio.wait_for(cp.wait_for(loop, 100000), 10)
        assert bytes(cp.data) == b"y" * 100000
        tls.close()
        await asyncio.wait_for(cp.lost, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


class _NoTLS:
    """A transport without _start_tls_compatible."""


def test_tls_write_buffer_limits_zero(server_ctx, client_ctx):
    """A high-water mark of 0: sslproto checks the marks after every write
    and every read, and with 0/0 each check flips pause/resume -- the lean
    paths make the same checks: the same calls, in the same order, as on
    asyncio's loop."""

    class Zero(Recorder):
        def connection_made(self, tr):
            super().connection_made(tr)
            tr.set_write_buffer_limits(high=0)

        def pause_writing(self):
            self.events.append("pause")

        def resume_writing(self):
            self.events.append("resume")

    async def main(loop):
        server, sp, ctr, cp = await _pair(loop, server_ctx, client_ctx,
                                          lambda: Zero(loop, echo=True), lambda: Recorder(loop))
        for msg in (b"a", b"bc" * 500):
            ctr.write(msg)
            await asyncio.wait_for(cp.wait_for(loop, len(msg)), 10)
            cp.data.clear()
            await asyncio.sleep(0.05)
            sp.events.append("|")
        events = list(sp.events)
        ctr.close()
        await asyncio.wait_for(sp.lost, 10)
        server.close()
        await server.wait_closed()
        return events

    got = {}
    for kind, new in (("asyncio", asyncio.new_event_loop), ("asyncloop", asyncloop.new_event_loop)):
        loop = new()
        try:
            got[kind] = loop.run_until_complete(main(loop))
        finally:
            loop.close()
    assert got["asyncloop"] == got["asyncio"]
    assert got["asyncio"].count("pause") >= 2, got
