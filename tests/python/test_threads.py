"""Thread safety: loops in several threads, thread-safe entry points, and
debug mode's detection of calls from the wrong thread."""

import asyncio
import concurrent.futures
import threading
import time

import pytest

import asyncloop


def _echo_roundtrips(n_clients, n_msgs):
    """A server and clients on one asyncloop loop in the calling thread."""

    async def handle(reader, writer):
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    async def client(port, cid):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        for i in range(n_msgs):
            msg = f"{threading.get_ident()}:{cid}:{i}\n".encode()
            w.write(msg)
            assert await r.readline() == msg
        w.close()
        await w.wait_closed()
        return n_msgs

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        done = await asyncio.gather(*[client(port, c) for c in range(n_clients)])
        server.close()
        await server.wait_closed()
        return sum(done)

    return asyncloop.run(main())


def test_loops_in_several_threads_at_once():
    """Four threads, each running its own loop with TCP traffic, at the same
    time: every loop sees only its own I/O."""
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _echo_roundtrips(5, 50), range(4)))
    assert results == [250] * 4


def _bulk_echo(nbytes, seed):
    """4 MiB through an echo protocol on one loop, checked byte for byte: the
    read and write arenas of the loop's event queue carry all of it."""
    payload = bytes((seed * 7 + i * 13) & 0xFF for i in range(65536)) * (nbytes // 65536)

    class Echo(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr

        def data_received(self, data):
            self.tr.write(data)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        got = bytearray()

        async def reader():
            while len(got) < len(payload):
                got.extend(await r.read(1 << 20))

        task = asyncio.ensure_future(reader())
        for i in range(0, len(payload), 100_000):
            w.write(payload[i:i + 100_000])
            await w.drain()
        await task
        w.close()
        server.close()
        await server.wait_closed()
        return bytes(got) == payload

    return asyncloop.run(main())


def test_two_loops_two_threads_bulk_data():
    """Per-loop state only: two loops in two threads stream 4 MiB each at
    the same time and each gets exactly its own bytes back."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda seed: _bulk_echo(4 << 20, seed), (1, 2)))
    assert results == [True, True]


def test_running_loop_is_per_thread():
    seen = {}

    def worker(name):
        async def main():
            seen[name] = asyncio.get_running_loop()
            await asyncio.sleep(0.05)
            assert asyncio.get_running_loop() is seen[name]

        asyncloop.run(main())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(lp) for lp in seen.values()}) == 3
    assert all(isinstance(lp, asyncloop.EventLoop) for lp in seen.values())


def test_debug_mode_rejects_calls_from_other_threads(loop):
    """In debug mode, non-thread-safe methods called from another thread
    raise RuntimeError (asyncio's check); the thread-safe ones work."""
    loop.set_debug(True)
    errors = []
    results = []

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)

        def other_thread():
            for fn in (lambda: loop.call_soon(print), lambda: loop.call_later(1, print)):
                try:
                    fn()
                except RuntimeError as exc:
                    errors.append(exc)
            loop.call_soon_threadsafe(results.append, "threadsafe ok")

        th = threading.Thread(target=other_thread)
        th.start()
        while th.is_alive() or not results:
            await asyncio.sleep(0.01)
        tr.close()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    assert len(errors) == 2
    assert all("thread" in str(e) for e in errors)
    assert results == ["threadsafe ok"]


def test_library_detects_wrong_thread_in_debug_mode(aloop):
    """The library's own debug check (ALOOP_ENOTLOOPTHREAD) surfaces as
    asyncloop.NotLoopThreadError, a RuntimeError, and changes nothing.  (The
    library knows the loop's thread only while it is inside
    aloop_loop_run_once, so the other thread calls while the loop waits.)"""
    aloop.set_debug(True)
    box = {}

    async def main():
        server = await aloop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await aloop.create_connection(asyncio.Protocol, "127.0.0.1", port)

        def other_thread():
            time.sleep(0.05)  # the loop thread now waits inside the library
            try:
                tr.write(b"from the wrong thread")
            except RuntimeError as exc:
                box["exc"] = exc

        th = threading.Thread(target=other_thread)
        th.start()
        await asyncio.sleep(0.3)
        th.join()
        assert not tr.is_closing()  # the transport is unaffected
        tr.write(b"from the loop thread")
        tr.close()
        server.close()
        await server.wait_closed()

    aloop.run_until_complete(main())
    assert isinstance(box["exc"], asyncloop.NotLoopThreadError)
    assert box["exc"].name == "ALOOP_ENOTLOOPTHREAD"


def test_stop_and_wakeup_from_other_threads(loop):
    """An idle loop (waiting inside the library) is woken by
    call_soon_threadsafe and stopped by a thread."""

    def stopper():
        loop.call_soon_threadsafe(loop.stop)

    loop.call_later(0.05, lambda: threading.Thread(target=stopper).start())
    loop.call_later(30, loop.stop)  # safety net
    t0 = loop.time()
    loop.run_forever()
    assert loop.time() - t0 < 20


def test_concurrent_future_from_thread(loop):
    async def main():
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            cf = pool.submit(lambda: sum(range(1000)))
            return await asyncio.wrap_future(cf)

    assert loop.run_until_complete(main()) == 499500


def test_call_soon_threadsafe_after_close_raises(loop):
    loop.close()
    box = {}

    def other():
        try:
            loop.call_soon_threadsafe(print)
        except RuntimeError as exc:
            box["exc"] = exc

    th = threading.Thread(target=other)
    th.start()
    th.join()
    assert "closed" in str(box["exc"])


def test_shutdown_default_executor(loop):
    async def main():
        r = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError):
            await loop.run_in_executor(None, lambda: None)
        return r

    assert loop.run_until_complete(main()) != threading.current_thread().name
