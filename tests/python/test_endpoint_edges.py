"""Sockets and servers at the edges, on both loops (asyncio's behaviour is
the reference): argument validation, a cancelled connect over sock=, an
exception in connection_made, a protocol factory that returns None, a
datagram endpoint on a socketpair, a Unix server's socket file."""

import asyncio
import logging
import os
import re
import socket
import sys

import pytest

P = asyncio.Protocol
D = asyncio.DatagramProtocol


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_cancelled_connect_with_sock_closes_it(loop, family, tmp_path):
    """sock= whose connect is cancelled: the socket is closed (as asyncio's
    transport.close() does), no fd is left behind."""

    async def main():
        if family == "tcp":
            ls = socket.socket()
            ls.bind(("127.0.0.1", 0))
        else:
            ls = socket.socket(socket.AF_UNIX)
            ls.bind(str(tmp_path / "s"))
        ls.listen(5)
        before = _open_fds()
        s = socket.socket(ls.family)
        s.connect(ls.getsockname())
        if family == "tcp":
            task = asyncio.ensure_future(loop.create_connection(P, sock=s))
        else:
            task = asyncio.ensure_future(loop.create_unix_connection(P, sock=s))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(20):
            await asyncio.sleep(0.005)
            if s.fileno() == -1 and _open_fds() <= before:
                break
        assert s.fileno() == -1
        assert _open_fds() <= before
        ls.close()

    loop.run_until_complete(main())


def _outcome(loop, make):
    async def main():
        try:
            r = await make(loop)
        except Exception as exc:  # noqa: BLE001
            return (type(exc), re.sub(r"fd=\d+", "fd=N", str(exc)))
        obj = r[0] if isinstance(r, tuple) else r
        obj.close()
        return ("ok", None)

    return loop.run_until_complete(main())


_made = []


def _sock(family=socket.AF_INET, type=socket.SOCK_STREAM):
    s = socket.socket(family, type)
    _made.append(s)
    return s


def _tcp_dgram():
    return _sock(socket.AF_INET, socket.SOCK_DGRAM)


BAD_CALLS = {
    "server-nothing": lambda lp: lp.create_server(P),
    "server-host-and-sock": lambda lp: lp.create_server(P, "127.0.0.1", 0, sock=_sock()),
    "server-port-and-sock": lambda lp: lp.create_server(P, port=0, sock=_sock()),
    "server-dgram-sock": lambda lp: lp.create_server(P, sock=_tcp_dgram()),
    "server-ssl-true": lambda lp: lp.create_server(P, "127.0.0.1", 0, ssl=True),
    "server-handshake-no-ssl": lambda lp: lp.create_server(P, "127.0.0.1", 0,
                                                           ssl_handshake_timeout=1),
    "conn-nothing": lambda lp: lp.create_connection(P),
    "conn-host-only": lambda lp: lp.create_connection(P, "127.0.0.1"),
    "conn-host-and-sock": lambda lp: lp.create_connection(P, "127.0.0.1", 1, sock=_sock()),
    "conn-dgram-sock": lambda lp: lp.create_connection(P, sock=_tcp_dgram()),
    "conn-hostname-no-ssl": lambda lp: lp.create_connection(P, "127.0.0.1", 1,
                                                            server_hostname="x"),
    "conn-ssl-no-host": lambda lp: lp.create_connection(P, sock=_sock(), ssl=True),
    "unix-conn-nothing": lambda lp: lp.create_unix_connection(P),
    "unix-conn-path-and-sock": lambda lp: lp.create_unix_connection(
        P, "/tmp/x", sock=_sock(socket.AF_UNIX)),
    "unix-conn-tcp-sock": lambda lp: lp.create_unix_connection(P, sock=_sock()),
    "unix-server-nothing": lambda lp: lp.create_unix_server(P),
    "unix-server-path-and-sock": lambda lp: lp.create_unix_server(
        P, "/tmp/x", sock=_sock(socket.AF_UNIX)),
    "unix-server-tcp-sock": lambda lp: lp.create_unix_server(P, sock=_sock()),
    "accepted-dgram": lambda lp: lp.connect_accepted_socket(P, _tcp_dgram()),
    "dgram-nothing": lambda lp: lp.create_datagram_endpoint(D),
    "dgram-stream-sock": lambda lp: lp.create_datagram_endpoint(D, sock=_sock()),
    "dgram-sock-and-addr": lambda lp: lp.create_datagram_endpoint(
        D, local_addr=("127.0.0.1", 0), sock=_tcp_dgram()),
    "dgram-not-a-tuple": lambda lp: lp.create_datagram_endpoint(D, local_addr="127.0.0.1"),
    "dgram-unix-tuple": lambda lp: lp.create_datagram_endpoint(
        D, local_addr=("127.0.0.1", 0), family=socket.AF_UNIX),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_argument_validation_as_asyncio(loop, case):
    ref = asyncio.new_event_loop()
    try:
        want = _outcome(ref, BAD_CALLS[case])
        assert want[0] != "ok"
        assert _outcome(loop, BAD_CALLS[case]) == want
    finally:
        ref.close()
        while _made:
            _made.pop().close()


class BadMade(asyncio.Protocol):
    def __init__(self, loop):
        self.data = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        raise ZeroDivisionError("in connection_made")

    def data_received(self, data):
        if not self.data.done():
            self.data.set_result(data)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


@pytest.mark.parametrize("side", ["server", "client"])
def test_exception_in_connection_made(loop, side):
    """As asyncio (connection_made is a loop callback there): the loop's
    exception handler reports it, the connection goes on, connection_lost
    gets None when it ends."""
    reports = []
    proto = BadMade(loop)

    async def main():
        loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
        if side == "server":
            srv = await loop.create_server(lambda: proto, "127.0.0.1", 0)
            r, w = await asyncio.open_connection(*srv.sockets[0].getsockname())
        else:
            async def echo(r, w):
                w.write(await r.read(5))
                await w.drain()
                w.close()

            srv = await asyncio.start_server(echo, "127.0.0.1", 0)
            await loop.create_connection(lambda: proto, *srv.sockets[0].getsockname())
            assert not proto.transport.is_closing()
        await asyncio.sleep(0.01)
        if side == "server":
            w.write(b"hello")
        else:
            proto.transport.write(b"hello")
        assert await asyncio.wait_for(proto.data, 5) == b"hello"
        if side == "server":
            w.close()
        assert await asyncio.wait_for(proto.lost, 5) is None
        srv.close()
        await srv.wait_closed()

    loop.run_until_complete(main())
    [ctx] = [c for c in reports if isinstance(c.get("exception"), ZeroDivisionError)]
    assert ctx["message"].startswith("Exception in callback ")
    assert "connection_made" in ctx["message"]
    assert isinstance(ctx["handle"], asyncio.Handle)


def test_factory_returning_none_client_side(loop):
    async def main():
        ls = socket.socket()  # (not a server: from 3.12 its wait_closed would
        ls.bind(("127.0.0.1", 0))  # wait for the connection asyncio leaves open)
        ls.listen(5)
        addr = ls.getsockname()
        outcomes = []
        for make in (lambda: loop.create_connection(lambda: None, *addr),
                     lambda: loop.create_datagram_endpoint(lambda: None,
                                                           local_addr=("127.0.0.1", 0))):
            # (not subprocess_exec: asyncio 3.11 then never returns)
            try:
                await make()
                outcomes.append("ok")
            except Exception as exc:  # noqa: BLE001
                outcomes.append((type(exc), str(exc)))
        ls.close()
        await asyncio.sleep(0.05)
        return outcomes

    err = (AttributeError, "'NoneType' object has no attribute 'connection_made'")
    assert loop.run_until_complete(main()) == [err, err]


@pytest.mark.parametrize("debug", [False, True])
def test_factory_returning_none_server_side(loop, debug, caplog):
    """asyncio's accept reports a failed protocol factory in debug mode only."""
    reports = []

    async def main():
        loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
        srv = await loop.create_server(lambda: None, "127.0.0.1", 0)
        r, w = await asyncio.open_connection(*srv.sockets[0].getsockname())
        await asyncio.sleep(0.05)
        w.close()
        srv.close()  # (no wait_closed: asyncio 3.12+ counts that connection forever)
        await asyncio.sleep(0.05)

    loop.set_debug(debug)
    with caplog.at_level(logging.CRITICAL, logger="asyncio"):
        loop.run_until_complete(main())
    if not debug:
        assert reports == []
    else:
        [ctx] = reports
        assert ctx["message"] == "Error on transport creation for incoming connection"
        assert isinstance(ctx["exception"], AttributeError)


def test_datagram_on_a_socketpair(loop):
    """The peer of an unnamed AF_UNIX socket has no address: None."""

    async def main():
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        got = loop.create_future()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.set_result((data, addr))

        tr, _ = await loop.create_datagram_endpoint(Proto, sock=a)
        b.send(b"hi")
        result = await asyncio.wait_for(got, 5)
        names = tr.get_extra_info("peername"), tr.get_extra_info("sockname")
        tr.close()
        b.close()
        await asyncio.sleep(0.01)
        return result, names

    assert loop.run_until_complete(main()) == ((b"hi", None), ("", ""))


def test_unix_server_socket_file(loop, tmp_path):
    """Removed when the server closes from Python 3.13 on, left before (the
    running Python's asyncio)."""
    path = str(tmp_path / "srv.sock")

    async def main():
        srv = await loop.create_unix_server(P, path)
        assert os.path.exists(path)
        srv.close()
        await srv.wait_closed()

    loop.run_until_complete(main())
    assert os.path.exists(path) == (sys.version_info < (3, 13))

