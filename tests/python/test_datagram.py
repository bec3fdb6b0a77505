"""UDP and AF_UNIX datagram endpoints (both loops)."""

import asyncio
import os
import shutil
import socket
import sys
import tempfile

import pytest

#: What CPython's asyncio counts in a datagram transport's write buffer
#: besides the bytes of each datagram it holds (3.13+: an 8-byte header).
_HEADER = 8 if sys.version_info >= (3, 13) else 0


class Collector(asyncio.DatagramProtocol):
    def __init__(self, loop, n=1):
        self.got = []
        self.errors = []
        self.n = n
        self.done = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, tr):
        self.tr = tr

    def datagram_received(self, data, addr):
        self.got.append((data, addr))
        if len(self.got) >= self.n and not self.done.done():
            self.done.set_result(None)

    def error_received(self, exc):
        self.errors.append(exc)

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


async def _receiver_and_sender(loop):
    """A receiving endpoint that never finishes collecting, its address,
    and a sending endpoint, both on 127.0.0.1."""
    rx, prx = await loop.create_datagram_endpoint(lambda: Collector(loop, 10**9),
                                                  local_addr=("127.0.0.1", 0))
    tx, ptx = await loop.create_datagram_endpoint(lambda: Collector(loop),
                                                  local_addr=("127.0.0.1", 0))
    return rx, prx, rx.get_extra_info("sockname"), tx, ptx


class EchoDatagram(asyncio.DatagramProtocol):
    def connection_made(self, tr):
        self.tr = tr

    def datagram_received(self, data, addr):
        self.tr.sendto(data.upper(), addr)


def test_udp_echo(loop):
    async def main():
        srv_tr, _ = await loop.create_datagram_endpoint(EchoDatagram, local_addr=("127.0.0.1", 0))
        port = srv_tr.get_extra_info("sockname")[1]
        tr, proto = await loop.create_datagram_endpoint(
            lambda: Collector(loop, 3), remote_addr=("127.0.0.1", port))
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        assert tr.get_extra_info("socket").type == socket.SOCK_DGRAM
        for m in (b"a", b"bb", b"ccc"):
            tr.sendto(m)
        await asyncio.wait_for(proto.done, 10)
        with pytest.raises(ValueError):
            tr.sendto(b"x", ("127.0.0.1", port + 1))
        tr.close()
        exc = await asyncio.wait_for(proto.lost, 10)
        srv_tr.close()
        return sorted(d for d, _ in proto.got), {a for _, a in proto.got}, port, exc

    got, addrs, port, exc = loop.run_until_complete(main())
    assert got == [b"A", b"BB", b"CCC"]
    assert addrs == {("127.0.0.1", port)}
    assert exc is None


def test_datagram_sent_before_abort_is_sent(loop):
    """asyncio's sendto() sends at once: an abort() right after it does not
    take the datagram back."""
    async def main():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        for i in range(3):
            tr.sendto(b"d%d" % i, rx.getsockname())
        tr.abort()
        await asyncio.sleep(0)
        try:
            return [await loop.run_in_executor(None, rx.recv, 100) for _ in range(3)]
        finally:
            rx.close()

    assert loop.run_until_complete(main()) == [b"d0", b"d1", b"d2"]


def test_udp_unconnected_sendto(loop):
    async def main():
        a, pa = await loop.create_datagram_endpoint(lambda: Collector(loop), local_addr=("127.0.0.1", 0))
        b, pb = await loop.create_datagram_endpoint(lambda: Collector(loop), local_addr=("127.0.0.1", 0))
        b_addr = b.get_extra_info("sockname")
        a.sendto(b"hello", b_addr)
        await asyncio.wait_for(pb.done, 10)
        a.close()
        b.close()
        return pb.got[0], a.get_extra_info("sockname")

    (data, addr), a_addr = loop.run_until_complete(main())
    assert data == b"hello" and addr == a_addr


def test_udp_error_received_on_refused(loop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    async def main():
        tr, proto = await loop.create_datagram_endpoint(
            lambda: Collector(loop), remote_addr=("127.0.0.1", port))
        for _ in range(50):
            tr.sendto(b"ping")
            await asyncio.sleep(0.01)
            if proto.errors:
                break
        tr.close()
        return proto.errors

    errors = loop.run_until_complete(main())
    assert errors and isinstance(errors[0], ConnectionRefusedError)


def test_unix_datagram(loop):
    with tempfile.TemporaryDirectory() as d:
        spath = os.path.join(d, "srv")
        cpath = os.path.join(d, "cli")

        async def main():
            srv, _ = await loop.create_datagram_endpoint(
                EchoDatagram, local_addr=spath, family=socket.AF_UNIX)
            cli, proto = await loop.create_datagram_endpoint(
                lambda: Collector(loop), local_addr=cpath, remote_addr=spath, family=socket.AF_UNIX)
            cli.sendto(b"unix dgram")
            await asyncio.wait_for(proto.done, 10)
            cli.close()
            srv.close()
            return proto.got

        assert loop.run_until_complete(main()) == [(b"UNIX DGRAM", spath)]


def test_datagram_argument_errors(loop):
    async def main():
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol)
        with pytest.raises(TypeError):
            await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), reuse_address=True)

    loop.run_until_complete(main())


def test_datagram_endpoint_with_sock(loop):
    """sock=: an existing (bound, or connected) UDP socket; the transport
    owns it from then on."""

    async def main():
        srv_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        srv_sock.bind(("127.0.0.1", 0))
        port = srv_sock.getsockname()[1]
        srv_tr, _ = await loop.create_datagram_endpoint(EchoDatagram, sock=srv_sock)
        assert srv_tr.get_extra_info("sockname") == ("127.0.0.1", port)
        assert srv_tr.get_extra_info("socket").fileno() == srv_sock.fileno()
        assert srv_sock.gettimeout() == 0  # made non-blocking

        cli_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cli_sock.connect(("127.0.0.1", port))
        tr, proto = await loop.create_datagram_endpoint(lambda: Collector(loop, 2), sock=cli_sock)
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        tr.sendto(b"one")
        tr.sendto(b"two", ("127.0.0.1", port))  # a connected socket sends to its peer
        await asyncio.wait_for(proto.done, 10)
        assert [d for d, _ in proto.got] == [b"ONE", b"TWO"]
        tr.close()
        srv_tr.close()
        assert await proto.lost is None
        await asyncio.sleep(0.01)
        assert cli_sock.fileno() == -1 and srv_sock.fileno() == -1  # closed with them

        with socket.socket() as tcp:
            with pytest.raises(ValueError, match="A UDP Socket was expected|A datagram socket was expected"):
                await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=tcp)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            with pytest.raises(ValueError, match="socket modifier keyword arguments"):
                await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=udp,
                                                    local_addr=("127.0.0.1", 0))

    loop.run_until_complete(main())


def test_unix_datagram_endpoint_with_sock(loop, tmp_path):
    async def main():
        path = str(tmp_path / "dg.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        tr, proto = await loop.create_datagram_endpoint(lambda: Collector(loop), sock=s)
        assert tr.get_extra_info("sockname") == path
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as c:
            c.sendto(b"ping", path)
            await asyncio.wait_for(proto.done, 10)
        assert proto.got[0][0] == b"ping"
        tr.close()
        await proto.lost

    loop.run_until_complete(main())


def test_udp_sendto_order_close_flushes(loop):
    """Datagrams go out in the order of sendto() whatever the destination
    (an address seen before is queued, a new one is sent at once behind
    what is queued), an empty datagram is sent on 3.13+ only (as asyncio),
    and close() sends what was given before it."""
    import sys

    async def main():
        rx, prx, dst, tx, ptx = await _receiver_and_sender(loop)
        dst_v6mapped = ("::ffff:127.0.0.1", dst[1])  # another key, same peer
        want = []
        for i in range(200):
            m = b"%d" % i
            if i % 50 == 7:
                tx.sendto(b"", dst)
                if sys.version_info >= (3, 13):
                    want.append(b"")
            tx.sendto(bytearray(m) if i % 3 else memoryview(m), dst_v6mapped if i % 40 == 0 else dst)
            want.append(m)
        with pytest.raises(TypeError):
            tx.sendto("text", dst)
        tx.close()
        exc = await asyncio.wait_for(ptx.lost, 10)
        deadline = loop.time() + 10
        while len(prx.got) < len(want) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        rx.close()
        return [d for d, _ in prx.got], {a for _, a in prx.got}, want, exc, ptx.errors, \
            tx.get_extra_info("sockname")

    got, senders, want, exc, errors, src = loop.run_until_complete(main())
    assert got == want
    assert senders == {src}
    assert exc is None and errors == []


def test_udp_sendto_error_after_queue(loop):
    """A send the kernel refuses (a broadcast address without SO_BROADCAST:
    EACCES, nothing leaves the machine) goes to error_received every time,
    also once the address is known and the datagram is queued."""
    async def main():
        tr, proto = await loop.create_datagram_endpoint(lambda: Collector(loop),
                                                        local_addr=("127.0.0.1", 0))
        for _ in range(3):
            tr.sendto(b"x", ("255.255.255.255", 9))
            await asyncio.sleep(0.01)
        for _ in range(3):
            tr.sendto(b"y", ("255.255.255.255", 9))
        await asyncio.sleep(0.05)
        tr.close()
        await asyncio.wait_for(proto.lost, 10)
        return proto.errors

    errors = loop.run_until_complete(main())
    assert len(errors) == 6
    assert all(isinstance(e, OSError) and e.errno in (13, 101) for e in errors), errors


def test_udp_connected_sendto_queued(loop):
    """A connected endpoint: sendto(data) and sendto(data, its address) are
    sent (queued) in order; another address is a ValueError at once."""
    async def main():
        rx, prx = await loop.create_datagram_endpoint(lambda: Collector(loop, 4),
                                                      local_addr=("127.0.0.1", 0))
        dst = rx.get_extra_info("sockname")
        tx, ptx = await loop.create_datagram_endpoint(lambda: Collector(loop), remote_addr=dst)
        tx.sendto(b"1")
        tx.sendto(b"2", dst)
        with pytest.raises(ValueError):
            tx.sendto(b"x", ("127.0.0.1", dst[1] + 1))
        tx.sendto(b"3")
        tx.sendto(b"4", dst)
        await asyncio.wait_for(prx.done, 10)
        tx.close()
        rx.close()
        return [d for d, _ in prx.got]

    assert loop.run_until_complete(main()) == [b"1", b"2", b"3", b"4"]


def test_udp_queued_write_buffer_size_and_abort(aloop):
    """asyncloop: a queued datagram counts in get_write_buffer_size until
    the next poll sends it; abort() sends what is still queued first (asyncio's
    sendto would have sent it at once)."""
    loop = aloop

    async def main():
        rx, prx, dst, tx, ptx = await _receiver_and_sender(loop)
        tx.sendto(b"first", dst)  # a new address: sent at once
        assert tx.get_write_buffer_size() == 0
        tx.sendto(b"12345", dst)  # known: queued
        tx.sendto(b"678", dst)
        # what asyncio counts per datagram it holds: its bytes, and on
        # CPython >= 3.13 an 8-byte header
        assert tx.get_write_buffer_size() == 8 + 2 * _HEADER
        await asyncio.sleep(0.01)
        assert tx.get_write_buffer_size() == 0
        tx.sendto(b"queued", dst)
        assert tx.get_write_buffer_size() == 6 + _HEADER
        if _HEADER:  # an empty datagram (sent on 3.13+) counts its header
            tx.sendto(b"", dst)
            assert tx.get_write_buffer_size() == 6 + 2 * _HEADER
        tx.abort()
        assert await asyncio.wait_for(ptx.lost, 10) is None
        await asyncio.sleep(0.05)
        rx.close()
        return [d for d, _ in prx.got]

    assert loop.run_until_complete(main()) == [b"first", b"12345", b"678", b"queued"] + [b""] * bool(_HEADER)


@pytest.mark.parametrize("close_in_callback", [False, True])
def test_sendto_from_callback_inside_flush_keeps_order(loop, close_in_callback):
    """Datagrams go out in the order of the sendto() calls, also when the
    sendto() is made by a callback that runs while queued writes are being
    performed and the write queue has no room for it (asyncloop: a stream's
    pause_writing(), which runs inside the flush that performs its queued
    write, the flush started by datagrams filling the queue); a close()
    made there after them sends them first."""
    async def main():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        dst = rx.getsockname()
        order = []  # what was given to sendto(), in call order
        tx, ptx = await loop.create_datagram_endpoint(lambda: Collector(loop),
                                                      local_addr=("127.0.0.1", 0))

        def send(m):
            order.append(m)
            tx.sendto(m, dst)

        class Sink(asyncio.Protocol):
            def connection_made(self, tr):
                tr.pause_reading()  # the client's writes pile up

        class Client(asyncio.Protocol):
            paused = 0

            def pause_writing(self):
                self.paused += 1
                send(b"p1")
                send(b"p2" * 600)
                if close_in_callback:
                    tx.close()

        server = await loop.create_server(Sink, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, client = await loop.create_connection(Client, "127.0.0.1", port)
        tr.set_write_buffer_limits(high=1 << 30)
        tr.write(b"x" * (32 << 20))  # more than the sockets take
        await asyncio.sleep(0.1)
        tr.set_write_buffer_limits(high=tr.get_write_buffer_size() + 10)
        send(b"warm")
        tr.write(b"y" * 100)  # above the high water mark: pause_writing()
        for i in range(80):
            if tx.is_closing():
                break
            send(b"%d-" % i + b"d" * 1200)
        await asyncio.sleep(0.05)
        tx.close()
        await asyncio.wait_for(ptx.lost, 10)
        tr.abort()
        server.close()
        got = []
        deadline = loop.time() + 5
        while len(got) < len(order) and loop.time() < deadline:
            try:
                got.append(rx.recv(65536))
            except BlockingIOError:
                await asyncio.sleep(0.01)
        rx.close()
        return order, got, client.paused, ptx.errors

    order, got, paused, errors = loop.run_until_complete(main())
    assert paused == 1 and errors == []
    assert [m[:6] for m in got] == [m[:6] for m in order]


def test_write_buffer_size_counts_what_asyncio_counts(loop, request):
    """get_write_buffer_size() of a datagram endpoint whose peer does not
    read (the socket refuses sends: datagrams wait in the transport) is
    what the running Python's asyncio reports: per datagram not yet sent,
    its bytes plus _HEADER; and the protocol is paused above the high water
    mark by that figure."""
    class P(Collector):
        paused_at = None

        def pause_writing(self):
            if self.paused_at is None:
                self.paused_at = self.tr.get_write_buffer_size()

    async def main():
        d = tempfile.mkdtemp()
        b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        b.bind(os.path.join(d, "rx"))
        b.setblocking(False)
        tr, p = await loop.create_datagram_endpoint(
            lambda: P(loop), remote_addr=os.path.join(d, "rx"), family=socket.AF_UNIX)
        tr.set_write_buffer_limits(high=3000)
        n, size = 60, 100
        for i in range(n):
            tr.sendto(b"%03d" % i + b"x" * (size - 3))
        await asyncio.sleep(0)  # (asyncloop: the queued sends are made)
        buffered = tr.get_write_buffer_size()
        await asyncio.sleep(0)  # (asyncloop: the poll's records are dispatched)
        got = 0
        while True:  # what the socket took
            try:
                b.recv(4096)
                got += 1
            except BlockingIOError:
                break
        tr.abort()
        b.close()
        shutil.rmtree(d)
        return n, size, got, buffered, p.paused_at

    n, size, got, buffered, paused_at = loop.run_until_complete(main())
    assert 0 < got < n
    assert buffered == (n - got) * (size + _HEADER)
    assert paused_at is not None and paused_at > 3000


@pytest.mark.parametrize("connected", [False, True])
def test_sendto_after_close_before_the_socket_closes_is_sent(loop, connected):
    """close() closes the socket later (with connection_lost, a callback it
    schedules). As asyncio's, an endpoint without a remote address still
    sends until then, in order behind what it sent before; a connected one
    counts a send after close() as lost (asyncio's _conn_lost)."""

    async def main():
        rx, prx = await loop.create_datagram_endpoint(lambda: Collector(loop, 1 if connected else 2),
                                                      local_addr=("127.0.0.1", 0))
        addr = rx.get_extra_info("sockname")
        if connected:
            tx, ptx = await loop.create_datagram_endpoint(lambda: Collector(loop),
                                                          remote_addr=addr)
            dest = None
        else:
            tx, ptx = await loop.create_datagram_endpoint(lambda: Collector(loop),
                                                          local_addr=("127.0.0.1", 0))
            dest = addr
        sender = tx.get_extra_info("sockname")
        tx.sendto(b"before", dest)
        tx.close()
        assert tx.is_closing()
        tx.sendto(b"after close", dest)
        assert await asyncio.wait_for(ptx.lost, 10) is None
        await asyncio.wait_for(prx.done, 10)
        await asyncio.sleep(0.05)
        if connected:
            assert prx.got == [(b"before", sender)]
        else:
            assert prx.got == [(b"before", sender), (b"after close", sender)]
        assert ptx.errors == []
        rx.close()

    loop.run_until_complete(main())
