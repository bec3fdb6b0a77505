"""An fd number that a watcher (add_reader, a sock_* wait) used, closed and
at once reused by a new server's listening socket, before the loop polled
again: the server accepts (found with anyio, whose TCP listener waits in
loop.sock_accept: a server started after one was closed never accepted)."""

import asyncio
import socket

import pytest


async def _server_on_reused_fd(loop, fd):
    accepted = []

    async def handle(reader, writer):
        accepted.append(True)
        writer.write(b"hi")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        assert srv.sockets[0].fileno() == fd  # the case under test
        port = srv.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(r.read(), 5) == b"hi"
        w.close()
        assert accepted == [True]
    finally:
        srv.close()
        await srv.wait_closed()


def _listener():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    ls.setblocking(False)
    return ls


@pytest.mark.parametrize("how", ["accepted", "cancelled"])
def test_server_on_the_fd_of_a_finished_sock_accept(loop, how):
    async def main():
        ls = _listener()
        fd = ls.fileno()
        t = loop.create_task(loop.sock_accept(ls))
        await asyncio.sleep(0.01)  # waiting in the watcher
        if how == "accepted":
            c = socket.create_connection(ls.getsockname())
            s, _ = await t
            s.close()
            c.close()
        else:
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
        # No poll between the end of the wait, the close and the new server.
        ls.close()
        await _server_on_reused_fd(loop, fd)

    loop.run_until_complete(main())


def test_server_on_the_fd_of_a_removed_reader(loop):
    async def main():
        ls = _listener()
        fd = ls.fileno()
        loop.add_reader(fd, lambda: None)
        await asyncio.sleep(0.01)
        assert loop.remove_reader(fd)
        ls.close()
        await _server_on_reused_fd(loop, fd)

    loop.run_until_complete(main())
