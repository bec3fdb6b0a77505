"""getaddrinfo / getnameinfo without blocking the loop (asyncloop: the
library resolves; both loops must match the socket module)."""

import asyncio
import concurrent.futures
import socket

import pytest

CASES = [
    ("127.0.0.1", 80, {}),
    ("::1", 443, {"type": socket.SOCK_STREAM}),
    ("localhost", "http", {"type": socket.SOCK_STREAM}),
    ("localhost", None, {"family": socket.AF_INET, "flags": socket.AI_CANONNAME}),
    (None, 0, {"flags": socket.AI_PASSIVE, "type": socket.SOCK_STREAM}),
    (b"127.0.0.1", b"53", {"type": socket.SOCK_DGRAM}),
    ("127.0.0.1", 8080, {"family": socket.AF_INET, "proto": socket.IPPROTO_TCP}),
]


@pytest.mark.parametrize("host,port,kw", CASES)
def test_getaddrinfo_matches_socket_module(loop, host, port, kw):
    got = loop.run_until_complete(loop.getaddrinfo(host, port, **kw))
    want = socket.getaddrinfo(host, port, **kw)
    assert got == want
    assert all(isinstance(ai[0], socket.AddressFamily) for ai in got)
    assert all(isinstance(ai[1], socket.SocketKind) for ai in got)


@pytest.mark.parametrize("host,port,eai", [
    ("nonexistent.invalid", 80, socket.EAI_NONAME),
    ("localhost", "no-such-service", socket.EAI_SERVICE),
])
def test_getaddrinfo_errors_are_gaierror(loop, host, port, eai):
    with pytest.raises(socket.gaierror) as info:
        loop.run_until_complete(loop.getaddrinfo(host, port))
    with pytest.raises(socket.gaierror) as ref:
        socket.getaddrinfo(host, port)
    assert info.value.errno == ref.value.errno == eai
    assert info.value.strerror == ref.value.strerror


def test_getnameinfo_matches_socket_module(loop):
    for sa, flags in [(("127.0.0.1", 80), 0), (("127.0.0.1", 80), socket.NI_NUMERICHOST),
                      (("::1", 22, 0, 0), socket.NI_NUMERICSERV)]:
        got = loop.run_until_complete(loop.getnameinfo(sa, flags))
        assert got == socket.getnameinfo(sa, flags)


def test_getaddrinfo_many_concurrent(loop):
    async def main():
        return await asyncio.gather(*[loop.getaddrinfo("localhost", i) for i in range(1, 50)])

    res = loop.run_until_complete(main())
    assert [r[0][4][1] for r in res] == list(range(1, 50))


def test_create_connection_local_addr_name(loop):
    """local_addr may be a name (resolved before binding), as asyncio."""

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port,
                                             local_addr=("localhost", 0))
        assert tr.get_extra_info("sockname")[0] == "127.0.0.1"
        tr.close()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


# -- identical to the socket module, results and errors ----------------------
# (Names that need DNS are kept to one: the tests stay on loopback.)

_LONG_LABEL = "a" * 64 + ".example"  # idna: label too long (UnicodeError)

GAI_CASES = [
    ((None, 0), {}),
    ((None, None), {}),
    (("", 0), {}),
    ((b"", 0), {}),
    (("", ""), {}),
    (("localhost", 80), {}),
    (("localhost", 80), {"flags": socket.AI_CANONNAME}),
    (("localhost", 80), {"flags": socket.AI_ADDRCONFIG}),
    (("localhost", None), {"flags": socket.AI_ADDRCONFIG | socket.AI_PASSIVE}),
    ((None, 80), {"flags": socket.AI_ADDRCONFIG | socket.AI_PASSIVE}),
    (("127.0.0.1", 80), {"flags": socket.AI_ADDRCONFIG}),
    (("::1", 80), {"flags": socket.AI_ADDRCONFIG}),
    (("127.0.0.1", 80), {"flags": socket.AI_CANONNAME}),
    (("localhost", "80"), {}),
    ((b"localhost", b"80"), {}),
    (("localhost", "http"), {"type": socket.SOCK_STREAM}),
    (("127.0.0.1", "http"), {}),
    (("127.0.0.1", "0080"), {}),
    (("::ffff:127.0.0.1", 1), {}),
    (("127.0.0.1", 80), {"family": socket.AF_INET6}),
    (("::1", 80), {"family": socket.AF_INET}),
    (("127.0.0.1", 80), {"family": -1}),
    (("localhost", 80), {"family": socket.AF_UNIX}),
    (("127.0.0.1", 80), {"type": 12345}),
    (("127.0.0.1", 80), {"flags": 0x7FFF0000}),
    (("127.0.0.1", 80), {"family": socket.AF_INET, "type": socket.SOCK_DGRAM,
                          "proto": socket.IPPROTO_UDP}),
    (("127.1", 80), {}),
    (("0x7f.1", 80), {}),
    (("nonexistent.invalid", 80), {}),
    ((_LONG_LABEL, 80), {}),
    (("127.0.0.1", 70000), {}),
    (("127.0.0.1", -1), {}),
    (("127.0.0.1", 80.0), {}),
    (("127.0.0.1", []), {}),
    ((1234, 80), {}),
    (("127.0.0.1", 80), {"family": 2.0}),
    (("127.0.0.1", 80), {"flags": "x"}),
    (("127.0.0.1\x00", 80), {}),
    (("127.0.0.1", "no-such-service"), {}),
]


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001
        return ("raise", type(exc), exc.args, str(exc))


def _same(loop, want_fn, coro_fn):
    want = _outcome(want_fn)

    def got_fn():
        return loop.run_until_complete(coro_fn())

    got = _outcome(got_fn)
    assert got == want
    # Twice: an answer kept for numeric hosts is the same again.
    assert _outcome(got_fn) == want


@pytest.mark.parametrize("args,kw", GAI_CASES, ids=[repr(c) for c in GAI_CASES])
def test_getaddrinfo_same_results_and_errors(loop, args, kw):
    _same(loop, lambda: socket.getaddrinfo(*args, **kw),
          lambda: loop.getaddrinfo(*args, **kw))


def test_getaddrinfo_result_is_a_fresh_list(loop):
    a = loop.run_until_complete(loop.getaddrinfo("127.0.0.1", 80))
    a.append("junk")
    assert loop.run_until_complete(loop.getaddrinfo("127.0.0.1", 80)) == \
        socket.getaddrinfo("127.0.0.1", 80)


GNI_CASES = [
    (("127.0.0.1", 80), 0),
    (("127.0.0.1", 80, 1231231231213), 0),
    (("127.0.0.1", 80, 0, 0), 0),
    (("::1", 80, 0, 0), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("::1", 80, 0, 1), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("::1", 80, 1 << 40, 0), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("localhost", 8080), 0),
    (("localhost", 8080), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("127.0.0.1", 22), socket.NI_NUMERICSERV),
    (("127.0.0.1", 22), socket.NI_NUMERICHOST),
    (("127.0.0.1", 22), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("127.0.0.1", 70000), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("127.0.0.1", "80"), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("127.0.0.1",), 0),
    ("127.0.0.1", 0),
    ((b"127.0.0.1", 80), 0),
    (("nonexistent.invalid", 80), 0),
    (("127.0.0.1", 80), "x"),
]


@pytest.mark.parametrize("sa,flags", GNI_CASES, ids=[repr(c) for c in GNI_CASES])
def test_getnameinfo_same_results_and_errors(loop, sa, flags):
    _same(loop, lambda: socket.getnameinfo(sa, flags), lambda: loop.getnameinfo(sa, flags))


def test_getaddrinfo_numeric_does_not_cross_or_wait(aloop):
    """A numeric host is answered without the executor (and a name is
    answered by it, as asyncio)."""
    used = []

    class Spy(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, *args):
            used.append(args[0])
            return super().submit(fn, *args)

    aloop.set_default_executor(Spy(1))
    aloop.run_until_complete(aloop.getaddrinfo("127.0.0.1", 80))
    aloop.run_until_complete(aloop.getnameinfo(("127.0.0.1", 80),
                                               socket.NI_NUMERICHOST | socket.NI_NUMERICSERV))
    assert used == []
    aloop.run_until_complete(aloop.getaddrinfo("localhost", 80))
    aloop.run_until_complete(aloop.getnameinfo(("127.0.0.1", 80)))
    assert used == ["localhost", ("127.0.0.1", 80)]


# -- names given to the endpoint constructors: resolved as asyncio does ------

P = asyncio.Protocol
D = asyncio.DatagramProtocol
ENDPOINT_CASES = {
    "conn-unknown-name": lambda lp: lp.create_connection(P, "nonexistent.invalid", 80),
    "conn-long-label": lambda lp: lp.create_connection(P, _LONG_LABEL, 80),
    "conn-bad-service": lambda lp: lp.create_connection(P, "127.0.0.1", "no-such-service"),
    "conn-refused-name": lambda lp: lp.create_connection(P, "localhost", 1, family=socket.AF_INET),
    "conn-refused-digits": lambda lp: lp.create_connection(P, "127.0.0.1", "1"),
    "conn-refused-v6": lambda lp: lp.create_connection(P, "::1", 1),
    "conn-family-mismatch": lambda lp: lp.create_connection(P, "127.0.0.1", 1,
                                                            family=socket.AF_INET6),
    "conn-local-bad-name": lambda lp: lp.create_connection(
        P, "127.0.0.1", 1, local_addr=(_LONG_LABEL, 0)),
    "conn-local-family": lambda lp: lp.create_connection(
        P, "127.0.0.1", 1, local_addr=("::1", 0)),
    "server-bad-name": lambda lp: lp.create_server(P, _LONG_LABEL, 0),
    "server-bad-name-in-list": lambda lp: lp.create_server(P, ["127.0.0.1", _LONG_LABEL], 0),
    "server-bad-service": lambda lp: lp.create_server(P, "127.0.0.1", "no-such-service"),
    "dgram-remote-bad-name": lambda lp: lp.create_datagram_endpoint(
        D, remote_addr=(_LONG_LABEL, 80)),
    "dgram-local-bad-name": lambda lp: lp.create_datagram_endpoint(
        D, local_addr=(_LONG_LABEL, 80)),
    "dgram-no-common-family": lambda lp: lp.create_datagram_endpoint(
        D, local_addr=("127.0.0.1", 0), remote_addr=("::1", 9), family=0),
    "dgram-3-tuple": lambda lp: lp.create_datagram_endpoint(D, remote_addr=("127.0.0.1", 9, 0)),
}


def _endpoint_outcome(loop, make):
    async def main():
        try:
            r = await make(loop)
        except Exception as exc:  # noqa: BLE001
            return ("raise", type(exc), exc.args)
        obj = r[0] if isinstance(r, tuple) else r
        obj.close()
        if hasattr(obj, "wait_closed"):
            await obj.wait_closed()
        await asyncio.sleep(0)
        return ("ok", type(obj).__mro__[-3])

    return loop.run_until_complete(main())


@pytest.mark.parametrize("case", list(ENDPOINT_CASES))
def test_endpoint_names_resolved_as_asyncio(loop, case):
    ref = asyncio.new_event_loop()
    try:
        want = _endpoint_outcome(ref, ENDPOINT_CASES[case])
    finally:
        ref.close()
    assert _endpoint_outcome(loop, ENDPOINT_CASES[case]) == want


@pytest.mark.parametrize("delay", [None, 0.25])
def test_create_connection_to_a_name(loop, delay):
    """localhost (the socket module's addresses for it, in its order),
    with and without Happy Eyeballs; a server on one family only."""

    async def main():
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "localhost", port,
                                             happy_eyeballs_delay=delay)
        peer = tr.get_extra_info("peername")
        tr.close()
        srv.close()
        await srv.wait_closed()
        return peer, port

    peer, port = loop.run_until_complete(main())
    assert peer == ("127.0.0.1", port)


def test_create_server_on_a_name(loop):
    async def main():
        srv = await loop.create_server(asyncio.Protocol, "localhost", 0, family=socket.AF_INET)
        names = [s.getsockname()[0] for s in srv.sockets]
        srv.close()
        await srv.wait_closed()
        return names

    want = sorted({ai[4][0] for ai in socket.getaddrinfo(
        "localhost", 0, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)})
    assert sorted(loop.run_until_complete(main())) == want


def test_datagram_to_a_name(loop):
    async def main():
        recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        recv.bind(("127.0.0.1", 0))
        port = recv.getsockname()[1]
        tr, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("localhost", port), family=socket.AF_INET)
        tr.sendto(b"hi")
        recv.settimeout(5)
        data = recv.recv(10)
        peer = tr.get_extra_info("peername")
        tr.close()
        recv.close()
        return data, peer

    data, peer = loop.run_until_complete(main())
    assert data == b"hi" and peer[0] == "127.0.0.1"
