"""add_reader/add_writer and the sock_* functions (both loops)."""

import asyncio
import socket

import pytest


def test_add_reader_writer(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got = []

    def on_readable():
        data = a.recv(100)
        got.append(data)
        if b"".join(got) == b"hello world":
            loop.remove_reader(a)
            loop.stop()

    def on_writable():
        b.send(b"hello world")
        assert loop.remove_writer(b.fileno())

    loop.add_reader(a.fileno(), on_readable)
    loop.add_writer(b, on_writable)
    loop.call_later(10, loop.stop)
    loop.run_forever()
    assert b"".join(got) == b"hello world"
    assert not loop.remove_reader(a.fileno())
    a.close()
    b.close()


def test_add_reader_replaces(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    seen = []

    def first():
        seen.append("first")

    def second():
        seen.append("second")
        a.recv(10)
        loop.remove_reader(a)
        loop.stop()

    loop.add_reader(a, first)
    loop.add_reader(a, second)
    b.send(b"x")
    loop.run_forever()
    assert seen == ["second"]
    a.close()
    b.close()


def test_sock_functions(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        csock = socket.socket()
        csock.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(lsock))
        await loop.sock_connect(csock, lsock.getsockname())
        ssock, _ = await accept
        ssock.setblocking(False)
        payload = b"x" * 500000
        send = asyncio.ensure_future(loop.sock_sendall(csock, payload))
        got = bytearray()
        while len(got) < len(payload):
            got += await loop.sock_recv(ssock, 65536)
        await send
        buf = bytearray(10)
        await loop.sock_sendall(ssock, b"pong")
        n = await loop.sock_recv_into(csock, buf)
        for s in (lsock, csock, ssock):
            s.close()
        return bytes(got) == payload, bytes(buf[:n])

    assert loop.run_until_complete(main()) == (True, b"pong")


def test_getaddrinfo(loop):
    async def main():
        return await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)

    res = loop.run_until_complete(main())
    assert res[0][4] == ("127.0.0.1", 80)


def test_fd_of_a_transport_cannot_be_watched(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        fd = tr.get_extra_info("socket").fileno()
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(fd, print)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_writer(fd, print)
        tr.close()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_sock_sendfile_native_and_blocking_fallback(loop, tmp_path):
    data = bytes(range(256)) * 4000
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    async def main():
        for blocking in (False, True):
            a, b = socket.socketpair()
            a.setblocking(blocking)
            b.setblocking(False)
            with open(path, "rb") as f:
                task = loop.create_task(loop.sock_sendfile(a, f, 1000, 50000))
                got = bytearray()
                while len(got) < 50000:
                    got += await loop.sock_recv(b, 65536)
                assert await task == 50000
                assert f.tell() == 51000  # the file position follows, as asyncio
            assert bytes(got) == data[1000:51000]
            a.close()
            b.close()

    loop.run_until_complete(main())


_HUGE_FD_CHILD = r"""
import asyncio, errno, resource, sys, time
import asyncloop

loop = asyncloop.new_event_loop() if sys.argv[1] == "asyncloop" else asyncio.new_event_loop()
# Address space: what the process has now plus 1 GiB. The fd table that
# add_reader(2**31 - 1) grew before it failed needed 16 GiB: an abort.
with open("/proc/self/statm") as f:
    vm = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), vm + (1 << 30)))
t0 = time.monotonic()
for add in (loop.add_reader, loop.add_writer):
    try:
        add(2**31 - 1, lambda: None)
    except OSError as exc:
        assert exc.errno == errno.EBADF, exc
    else:
        raise AssertionError("add_* accepted fd 2**31 - 1")
assert not loop.remove_reader(2**31 - 1)
loop.close()
print("ok %.3f" % (time.monotonic() - t0))
"""


@pytest.mark.parametrize("kind", ["asyncio", "asyncloop"])
def test_huge_fd_is_refused_cheaply(kind, child_env):
    """Issue 9: add_reader/add_writer with fd 2**31 - 1 raise OSError(EBADF)
    without first growing the loop's fd table (16 GiB of address space, an
    out-of-memory abort under ulimit -v)."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _HUGE_FD_CHILD, kind], env=child_env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("ok "), r.stdout
    assert float(r.stdout.split()[1]) < 1.0, r.stdout
