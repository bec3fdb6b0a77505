"""getaddrinfo / getnameinfo without blocking the loop (asyncloop: the
library resolves; both loops must match the socket module)."""

import asyncio
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
