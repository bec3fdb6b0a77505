"""add_reader/add_writer semantics that the loop's queued fd watchers must
keep (readiness as poll records, add/remove as queued operations): checked
on both loops, asyncio's being the reference."""

import asyncio
import os
import socket
import threading
import time

import pytest


def _pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def _ready_both(loop, pairs):
    """Runs one loop iteration in which every pair's reader end is ready."""
    for _, b in pairs:
        b.send(b"x")
    time.sleep(0.01)


@pytest.mark.parametrize("how", ["remove", "replace"])
def test_watcher_removed_after_the_poll_does_not_run(loop, how):
    # Both fds are ready in the same poll; the first callback to run removes
    # (or replaces) the other's reader: asyncio cancels that Handle, so it
    # does not run in this iteration, and a replacement runs only after the
    # next poll.
    (a1, b1), (a2, b2) = _pair(), _pair()
    calls = []

    def make(me, other_a):
        def cb():
            calls.append(me)
            me_sock = a1 if me == 1 else a2
            me_sock.recv(10)
            if len(calls) == 1:
                if how == "remove":
                    assert loop.remove_reader(other_a) is True
                else:
                    loop.add_reader(other_a, lambda: calls.append("new") or other_a.recv(10))
                loop.call_soon(calls.append, "next")
        return cb

    loop.add_reader(a1, make(1, a2))
    loop.add_reader(a2, make(2, a1))
    _ready_both(loop, [(a1, b1), (a2, b2)])
    loop.call_later(0.2, loop.stop)
    loop.run_forever()
    assert len(calls) >= 2 and calls[0] in (1, 2) and calls[1] == "next", calls
    if how == "remove":
        assert calls == [calls[0], "next"]
    else:
        assert calls == [calls[0], "next", "new"]
    for s in (a1, b1, a2, b2):
        loop.remove_reader(s)
        s.close()


def test_remove_and_add_back_in_one_iteration(loop):
    # sock_recv's pattern: the callback's done-callback removes the reader,
    # the task adds it back before the loop polls again; repeated.
    a, b = _pair()
    got = []

    def on_readable():
        got.append(a.recv(100))
        assert loop.remove_reader(a) is True
        assert loop.remove_reader(a) is False
        if len(got) < 50:
            loop.add_reader(a, on_readable)
            b.send(b"%d" % len(got))
        else:
            loop.stop()

    loop.add_reader(a, on_readable)
    b.send(b"go")
    loop.call_later(10, loop.stop)
    loop.run_forever()
    assert len(got) == 50
    assert loop.remove_reader(a) is False
    a.close()
    b.close()


def test_fd_number_reused_between_remove_and_add(loop):
    # The reader is removed, its socket closed, and a new socket gets the
    # same fd number before the loop polls again: the new reader must fire
    # (the kernel forgot the closed file's registration).
    a, b = _pair()
    fired = []

    def first():
        a.recv(10)
        fd = a.fileno()
        loop.remove_reader(fd)
        a.close()
        c, d = _pair()
        keep.extend([c, d])
        if c.fileno() != fd:  # make the number come back
            os.dup2(c.fileno(), fd)
            c.close()
            c = socket.socket(fileno=fd)
            keep[-2] = c
        loop.add_reader(fd, second, c)
        d.send(b"y")

    def second(c):
        fired.append(c.recv(10))
        loop.remove_reader(c)
        loop.stop()

    keep = []
    loop.add_reader(a, first)
    b.send(b"x")
    loop.call_later(5, loop.stop)
    loop.run_forever()
    assert fired == [b"y"]
    for s in keep + [b]:
        s.close()


def test_remove_queued_then_loop_stops_and_closes(loop):
    # A removal made while the loop runs is done by the time it stops: the
    # loop closes at once (no live watcher), and the fd is not watched.
    a, b = _pair()

    def cb():
        a.recv(10)
        loop.remove_reader(a)
        loop.stop()

    loop.add_reader(a, cb)
    b.send(b"x")
    loop.run_forever()
    b.send(b"x")
    loop.call_later(0.05, loop.stop)
    loop.run_forever()  # cb must not run again (a is readable)
    t0 = time.monotonic()
    loop.close()
    assert time.monotonic() - t0 < 0.15
    a.close()
    b.close()


def test_reader_and_writer_on_one_fd(loop):
    a, b = _pair()
    seen = []

    def on_read():
        seen.append("r")
        a.recv(10)
        loop.remove_reader(a)
        if "w" in seen:
            loop.stop()

    def on_write():
        seen.append("w")
        loop.remove_writer(a)
        if "r" in seen:
            loop.stop()

    loop.add_reader(a, on_read)
    loop.add_writer(a, on_write)
    b.send(b"x")
    time.sleep(0.01)
    loop.call_later(5, loop.stop)
    loop.run_forever()
    assert seen == ["r", "w"]
    a.close()
    b.close()


def test_transport_fd_still_refused(loop):
    async def main():
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                             srv.sockets[0].getsockname()[1])
        fd = tr.get_extra_info("socket").fileno()
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(fd, lambda: None)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_writer(fd, lambda: None)
        tr.close()
        srv.close()
        await srv.wait_closed()

    loop.run_until_complete(main())


def test_many_sock_recv_waiters_and_reconnects(loop):
    # The sock_* echo pattern over many short connections: fd numbers come
    # back all the time while removals are queued.
    async def handler(conn):
        while True:
            data = await loop.sock_recv(conn, 1024)
            if not data:
                break
            await loop.sock_sendall(conn, data)
        conn.close()

    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(100)
        lsock.setblocking(False)
        port = lsock.getsockname()[1]

        async def accept():
            while True:
                conn, _ = await loop.sock_accept(lsock)
                conn.setblocking(False)
                handlers.append(loop.create_task(handler(conn)))

        acc = loop.create_task(accept())
        handlers = []

        async def client(i):
            for k in range(5):
                s = socket.socket()
                s.setblocking(False)
                await loop.sock_connect(s, ("127.0.0.1", port))
                for j in range(5):
                    msg = b"%d-%d-%d" % (i, k, j)
                    await loop.sock_sendall(s, msg)
                    got = b""
                    while len(got) < len(msg):
                        got += await loop.sock_recv(s, 1024)
                    assert got == msg
                s.close()

        await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(8))), 30)
        # every handler sees its client's EOF (no wake-up is lost)
        await asyncio.wait_for(asyncio.gather(*handlers), 10)
        assert len(handlers) == 40
        acc.cancel()
        lsock.close()

    loop.run_until_complete(main())


def test_sock_recv_cancelled_removes_its_reader(loop):
    a, b = _pair()

    async def main():
        t = loop.create_task(loop.sock_recv(a, 10))
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        # the wait's reader is gone, so the fd can be watched afresh
        assert loop.remove_reader(a) is False
        b.send(b"x")
        assert await asyncio.wait_for(loop.sock_recv(a, 10), 5) == b"x"
        assert loop.remove_reader(a) is False

    loop.run_until_complete(main())
    a.close()
    b.close()


def test_sock_recv_into_and_replaced_waiter(loop):
    # A second waiter on one socket replaces the first one's reader (as
    # asyncio): when the second ends, it removes its own reader only once.
    a, b = _pair()

    async def main():
        buf = bytearray(10)
        t1 = loop.create_task(loop.sock_recv(a, 10))
        await asyncio.sleep(0.01)
        t2 = loop.create_task(loop.sock_recv_into(a, buf))
        await asyncio.sleep(0.01)
        b.send(b"abc")
        assert await asyncio.wait_for(t2, 5) == 3
        assert bytes(buf[:3]) == b"abc"
        assert not t1.done()
        t1.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t1
        assert loop.remove_reader(a) is False

    loop.run_until_complete(main())
    a.close()
    b.close()


def test_sock_sendall_waits_then_finishes_and_errors(loop):
    a, b = _pair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = bytes(range(256)) * 4096  # 1 MiB: sendall has to wait

    async def main():
        t = loop.create_task(loop.sock_sendall(a, data))
        got = bytearray()
        while len(got) < len(data):
            got += await loop.sock_recv(b, 65536)
        await asyncio.wait_for(t, 5)
        assert got == data
        assert loop.remove_writer(a) is False
        # an error of the socket reaches the waiter
        b.close()
        with pytest.raises(OSError):
            for _ in range(100):
                await loop.sock_sendall(a, data)

    loop.run_until_complete(main())
    a.close()


@pytest.mark.parametrize("fn", ["sock_recv", "sock_recv_into", "sock_sendall"])
def test_sock_blocking_socket_refused_in_debug(loop, fn):
    a, b = socket.socketpair()
    loop.set_debug(True)
    arg = {"sock_recv": 10, "sock_recv_into": bytearray(10), "sock_sendall": b"x"}[fn]
    with pytest.raises(ValueError, match="the socket must be non-blocking"):
        loop.run_until_complete(getattr(loop, fn)(a, arg))
    a.close()
    b.close()


def test_sock_recv_does_not_starve_other_sockets():
    # asyncloop only (asyncio's sock_recv never yields while data is ready,
    # so asyncio starves here): a task whose socket always has data ready
    # yields to the loop every few sock_recv calls, so another socket's
    # waiter runs long before the flood ends.
    import asyncloop

    loop = asyncloop.new_event_loop()
    (a, a2), (b, b2) = _pair(), _pair()
    a2.sendall(b"x" * 20000)
    order = []

    async def other():
        assert await loop.sock_recv(b, 10) == b"y"
        order.append("other")

    async def main():
        t = loop.create_task(other())
        await asyncio.sleep(0)  # other waits on b
        b2.send(b"y")
        n = 0
        while n < 20000:
            n += len(await loop.sock_recv(a, 10))
            if n == 1000:
                order.append("flood 1000")
        order.append("flood done")
        await t

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert order.index("other") < order.index("flood 1000"), order
    for s in (a, a2, b, b2):
        s.close()
