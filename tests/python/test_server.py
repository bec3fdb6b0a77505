"""Server objects behave as asyncio's (both loops)."""

import asyncio
import sys

import pytest


def test_wait_closed_waits_for_close_and_connections(loop):
    """wait_closed() called on an open server returns once the server is
    closed AND its last connection is gone."""
    events = []

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        await asyncio.sleep(0.05)  # the server accepted it

        async def waiter():
            await server.wait_closed()
            events.append("wait_closed")

        w = loop.create_task(waiter())
        await asyncio.sleep(0.05)
        server.close()
        events.append("closed")
        assert server.sockets == ()
        assert not server.is_serving()
        await asyncio.sleep(0.05)
        assert not w.done()  # a connection is still open
        tr.close()
        events.append("client closed")
        await asyncio.wait_for(w, 10)

    loop.run_until_complete(main())
    assert events == ["closed", "client closed", "wait_closed"]


def test_wait_closed_after_close(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        await asyncio.sleep(0.05)
        server.close()
        server.close()  # idempotent
        waiting = loop.create_task(server.wait_closed())
        await asyncio.sleep(0.05)
        # Python 3.11 returns at once on a closed server; 3.12 waits for the
        # connections.
        assert waiting.done() == (sys.version_info < (3, 12))
        tr.close()
        await asyncio.wait_for(waiting, 10)
        with pytest.raises(RuntimeError, match="is closed"):
            await server.serve_forever()

    loop.run_until_complete(main())


def test_start_serving_false_and_async_with(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, start_serving=False)
        async with server:
            assert not server.is_serving()
            await server.start_serving()
            assert server.is_serving()
            port = server.sockets[0].getsockname()[1]
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            await w.wait_closed()
        assert not server.is_serving()
        assert server.sockets == ()
        assert server.get_loop() is loop

    loop.run_until_complete(main())


def test_serve_forever_cancel_closes(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0.02)
        with pytest.raises(RuntimeError, match="already being awaited"):
            await server.serve_forever()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not server.is_serving()
        assert server.sockets == ()

    loop.run_until_complete(main())
