"""A protocol library written once in C (examples/rpc, libaloop_rpc) on
asyncloop's Python loop: EventLoop.handle and EventLoop.wrap_future.

The same compiled library is used by tests/c/test-interop.c,
tests/node/interop.test.js and tests/go/interop_test.go. Here it runs on the
loop next to Python's own asyncio streams and timers: a Python client speaks
the wire format to the C server, the C client calls a Python server, and
Python answers requests the C server hands over; every byte is checked.
"""

import asyncio
import ctypes
import errno
import os
import struct
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_uint64, c_void_p
from pathlib import Path

import pytest

import asyncloop
from asyncloop import _bindings
from asyncloop._errors import make_error

ROOT = Path(__file__).resolve().parents[2]
RPC_ECHO, RPC_REVERSE, RPC_SLEEP, RPC_FAIL, RPC_HOST = 1, 2, 3, 4, 5
REPLY_OK, REPLY_ERROR = 0x80, 0x81


def _rpc_path():
    env = os.environ.get("ALOOP_RPC_LIBRARY")
    if env:
        return env
    lib = os.environ.get("ASYNCLOOP_LIBRARY")
    if lib:
        cand = Path(lib).resolve().parent / "examples" / "libaloop_rpc.so"
        if cand.exists():
            return str(cand)
    return str(ROOT / "build" / "examples" / "libaloop_rpc.so")


def load_rpc():
    """The example library, loaded after asyncloop's own (its
    libasyncloop.so.0 dependency resolves to the library already loaded)."""
    _bindings.load()
    path = _rpc_path()
    if not os.path.exists(path):
        pytest.skip(f"{path} is not built (make build)")
    lib = ctypes.PyDLL(path)  # called on the loop thread, never blocks
    sig = {
        "rpc_version": (c_int, []),
        "rpc_live_objects": (ctypes.c_long, []),
        "rpc_server_start": (c_int, [c_void_p, c_char_p, c_int, POINTER(c_void_p)]),
        "rpc_server_port": (c_int, [c_void_p]),
        "rpc_server_requests": (c_uint64, [c_void_p]),
        "rpc_server_close": (c_int, [c_void_p]),
        "rpc_server_recv": (c_int, [c_void_p, POINTER(c_void_p)]),
        "rpc_request_data": (c_void_p, [c_void_p, POINTER(c_size_t)]),
        "rpc_request_respond": (c_int, [c_void_p, c_int, c_char_p, c_size_t]),
        "rpc_connect": (c_int, [c_void_p, c_char_p, c_int, POINTER(c_void_p)]),
        "rpc_call": (c_int, [c_void_p, c_int, c_char_p, c_size_t, POINTER(c_void_p)]),
        "rpc_reply_data": (c_void_p, [c_void_p, POINTER(c_size_t)]),
        "rpc_reply_free": (None, [c_void_p]),
        "rpc_client_close": (c_int, [c_void_p]),
        "rpc_client_send_raw": (c_int, [c_void_p, c_char_p, c_size_t]),
        "rpc_client_bench": (c_int, [c_void_p, c_uint64, c_int, c_size_t, POINTER(c_void_p)]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    assert lib.rpc_version() == 1
    return lib


class Rpc:
    """The thin Python face a user would write over the C library."""

    def __init__(self, loop):
        self.lib = load_rpc()
        self.loop = loop

    def _check(self, rc):
        if rc < 0:
            raise make_error(rc, "aloop_rpc")

    async def start_server(self):
        f = c_void_p()
        self._check(self.lib.rpc_server_start(self.loop.handle, b"127.0.0.1", 0, byref(f)))
        srv = await self.loop.wrap_future(f.value)
        return srv, self.lib.rpc_server_port(srv)

    async def connect(self, port):
        f = c_void_p()
        self._check(self.lib.rpc_connect(self.loop.handle, b"127.0.0.1", port, byref(f)))
        return await self.loop.wrap_future(f.value)

    def call_future(self, client, method, data):
        """The asyncio future of one call, resolving to the reply's bytes
        (read and released on the loop thread by the result reader)."""
        f = c_void_p()
        self._check(self.lib.rpc_call(client, method, data, len(data), byref(f)))
        return self.loop.wrap_future(f.value, result=self._read_reply)

    def _read_reply(self, fut_h):
        out = c_void_p()
        rc = _bindings.load().aloop_future_result(fut_h, byref(out))
        assert rc == 0
        n = c_size_t()
        p = self.lib.rpc_reply_data(out.value, byref(n))
        data = ctypes.string_at(p, n.value)
        self.lib.rpc_reply_free(out.value)
        return data

    async def call(self, client, method, data):
        return await self.call_future(client, method, data)


@pytest.fixture(autouse=True)
def _library_released_everything():
    """After each test (its loop closed): the library released every object
    it allocated (clients, servers, connections, replies, requests)."""
    yield
    lib = load_rpc()
    assert lib.rpc_live_objects() == 0


def frame(req_id, kind, payload):
    return struct.pack(">IIB", len(payload) + 5, req_id, kind) + payload


async def read_frame(reader):
    n, req_id, kind = struct.unpack(">IIB", await reader.readexactly(9))
    return req_id, kind, await reader.readexactly(n - 5)


def live_handles():
    n = c_size_t()
    assert _bindings.load().aloop_live_handles(byref(n)) == 0
    return n.value


def test_loop_handle(aloop):
    h = aloop.handle
    assert isinstance(h, int) and h != 0
    core = _bindings.load()
    assert core.aloop_loop_is_closed(h) == 0
    assert core.aloop_loop_is_running(h) == 0

    async def main():
        return core.aloop_loop_is_running(h)

    # Python's loop drives the core loop (aloop_loop_poll), it does not sit
    # inside aloop_loop_run: foreign code gets the loop from the host.
    assert aloop.run_until_complete(main()) in (0, 1)
    aloop.close()
    with pytest.raises(RuntimeError):
        aloop.handle
    with pytest.raises(RuntimeError):
        aloop.wrap_future(1)


def test_every_method_next_to_python_streams_and_timers(aloop):
    rpc = Rpc(aloop)
    big = bytes((i * 131 + 7) & 0xFF for i in range(3 * 1024 * 1024 + 17))

    async def py_line_server(reader, writer):
        # Python's own server on the same loop: "HTTP-like" lines.
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(b"OK " + line.upper())
            await writer.drain()
        writer.close()

    async def main():
        base = live_handles()
        srv, port = await rpc.start_server()
        client = await rpc.connect(port)
        py_srv = await asyncio.start_server(py_line_server, "127.0.0.1", 0)
        py_port = py_srv.sockets[0].getsockname()[1]
        ticks = []

        async def ticker():
            for i in range(6):
                await asyncio.sleep(0.01)
                ticks.append(i)

        async def py_traffic():
            r, w = await asyncio.open_connection("127.0.0.1", py_port)
            for i in range(50):
                w.write(b"get /%d\n" % i)
                assert await r.readline() == b"OK GET /%d\n" % i
            w.close()
            await w.wait_closed()

        async def rpc_traffic():
            assert await rpc.call(client, RPC_ECHO, b"hello") == b"hello"
            assert await rpc.call(client, RPC_ECHO, b"") == b""
            assert await rpc.call(client, RPC_REVERSE, b"abcdef") == b"fedcba"
            assert await rpc.call(client, RPC_ECHO, big) == big
            assert await rpc.call(client, RPC_REVERSE, big) == big[::-1]
            t0 = aloop.time()
            assert await rpc.call(client, RPC_SLEEP, struct.pack(">I", 60) + b"zzz") == b"zzz"
            assert aloop.time() - t0 >= 0.055
            with pytest.raises(OSError) as ei:
                await rpc.call(client, RPC_FAIL, b"no such key")
            assert ei.value.errno == errno.EIO
            assert "no such key" in str(ei.value)
            # many in flight, replies out of order (decreasing sleeps)
            futs = [rpc.call_future(client, RPC_SLEEP, struct.pack(">I", 2 * (20 - i)) + b"k%d" % i)
                    for i in range(20)]
            done_order = []
            for f in futs:
                f.add_done_callback(lambda f: done_order.append(f.result()))
            assert await asyncio.gather(*futs) == [b"k%d" % i for i in range(20)]
            assert done_order[0] == b"k19"

        async def py_client_to_c_server():
            # Python speaks the wire format to the C library's server.
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(frame(7, RPC_ECHO, b"from python") + frame(8, RPC_REVERSE, b"xyz")
                    + frame(9, RPC_FAIL, b"bad"))
            assert await read_frame(r) == (7, REPLY_OK, b"from python")
            assert await read_frame(r) == (8, REPLY_OK, b"zyx")
            assert await read_frame(r) == (9, REPLY_ERROR, b"bad")
            w.close()
            await w.wait_closed()

        await asyncio.gather(ticker(), py_traffic(), rpc_traffic(), py_client_to_c_server())
        assert ticks == list(range(6))
        assert rpc.lib.rpc_server_requests(srv) == 5 + 1 + 1 + 20 + 3
        py_srv.close()
        await py_srv.wait_closed()
        assert rpc.lib.rpc_client_close(client) == 0
        assert rpc.lib.rpc_server_close(srv) == 0
        for _ in range(50):
            await asyncio.sleep(0.01)
            if live_handles() == base:
                break
        assert live_handles() == base

    aloop.run_until_complete(main())


def test_c_client_calls_python_server(aloop):
    """The C library's client calls an RPC server written in Python with
    asyncio streams, on the same loop."""
    rpc = Rpc(aloop)

    handlers = set()

    async def py_rpc_server(reader, writer):
        handlers.add(writer)
        try:
            while True:
                req_id, kind, payload = await read_frame(reader)
                if kind == RPC_ECHO:
                    writer.write(frame(req_id, REPLY_OK, b"py:" + payload))
                else:
                    writer.write(frame(req_id, REPLY_ERROR, b"python says no"))
        except asyncio.IncompleteReadError:
            writer.close()
        handlers.discard(writer)

    async def main():
        srv = await asyncio.start_server(py_rpc_server, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        client = await rpc.connect(port)
        got = await asyncio.gather(*[rpc.call(client, RPC_ECHO, b"%d" % i * 100) for i in range(30)])
        assert got == [b"py:" + b"%d" % i * 100 for i in range(30)]
        with pytest.raises(OSError, match="python says no"):
            await rpc.call(client, RPC_REVERSE, b"x")
        rpc.lib.rpc_client_close(client)
        for _ in range(100):  # the Python server sees the C client's EOF
            await asyncio.sleep(0.01)
            if not handlers:
                break
        srv.close()
        await srv.wait_closed()

    aloop.run_until_complete(main())


def test_python_answers_requests_the_c_server_hands_over(aloop):
    rpc = Rpc(aloop)
    lib = rpc.lib

    async def serve_host_requests(srv, n):
        for _ in range(n):
            f = c_void_p()
            assert lib.rpc_server_recv(srv, byref(f)) == 0
            req = await aloop.wrap_future(f.value)
            ln = c_size_t()
            data = ctypes.string_at(lib.rpc_request_data(req, byref(ln)), ln.value)
            await asyncio.sleep(0.001)  # a Python await between request and answer
            if data == b"fail":
                assert lib.rpc_request_respond(req, 0, b"python refused", 14) == 0
            else:
                out = data[::-1] + b"!"
                assert lib.rpc_request_respond(req, 1, out, len(out)) == 0

    async def main():
        srv, port = await rpc.start_server()
        client = await rpc.connect(port)
        server_task = asyncio.ensure_future(serve_host_requests(srv, 11))
        got = await asyncio.gather(*[rpc.call(client, RPC_HOST, b"q%02d" % i) for i in range(10)])
        assert got == [(b"q%02d" % i)[::-1] + b"!" for i in range(10)]
        with pytest.raises(OSError, match="python refused"):
            await rpc.call(client, RPC_HOST, b"fail")
        await server_task
        # a receive pending when the server closes fails with ECLOSED
        f = c_void_p()
        assert lib.rpc_server_recv(srv, byref(f)) == 0
        waiting = aloop.wrap_future(f.value)
        lib.rpc_client_close(client)
        lib.rpc_server_close(srv)
        with pytest.raises(asyncloop.Error, match="closed"):
            await waiting

    aloop.run_until_complete(main())


def test_library_error_reaches_python_exception_handler(aloop):
    """A malformed frame: the C library calls the loop's exception handler,
    which is Python's (loop.set_exception_handler); the pending call fails."""
    rpc = Rpc(aloop)
    seen = []
    aloop.set_exception_handler(lambda loop, ctx: seen.append(ctx))

    async def main():
        srv, port = await rpc.start_server()
        client = await rpc.connect(port)
        pending = rpc.call_future(client, RPC_SLEEP, struct.pack(">I", 500) + b"x")
        bad = b"\xff\xff\xff\xff\x00\x00\x00\x01\x01"
        assert rpc.lib.rpc_client_send_raw(client, bad, len(bad)) == 0
        with pytest.raises(ConnectionResetError):
            await pending
        # Python's own client: an unknown method
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(frame(1, 99, b""))
        assert await r.read() == b""
        w.close()
        rpc.lib.rpc_client_close(client)
        rpc.lib.rpc_server_close(srv)

    aloop.run_until_complete(main())
    assert len(seen) == 2
    assert "bad frame length (4294967295)" in seen[0]["message"]
    assert isinstance(seen[0]["exception"], OSError)
    assert seen[0]["exception"].errno == errno.EINVAL
    assert "unknown method (99)" in seen[1]["message"]


def test_python_errors_reach_python_handler_and_awaiter(aloop):
    """An exception in Python code run by the library's future (a done
    callback) goes to Python's exception handler; one in the result reader
    to the awaiter."""
    rpc = Rpc(aloop)
    seen = []
    aloop.set_exception_handler(lambda loop, ctx: seen.append(ctx))

    async def main():
        srv, port = await rpc.start_server()
        client = await rpc.connect(port)
        fut = rpc.call_future(client, RPC_ECHO, b"x")

        def boom(f):
            raise ValueError("python callback failed")

        fut.add_done_callback(boom)
        assert await fut == b"x"
        await asyncio.sleep(0)
        f = c_void_p()
        assert rpc.lib.rpc_call(client, RPC_ECHO, b"y", 1, byref(f)) == 0

        def bad_reader(fh):
            # a reader that fails releases what it took (nobody else can)
            out = c_void_p()
            assert _bindings.load().aloop_future_result(fh, byref(out)) == 0
            rpc.lib.rpc_reply_free(out.value)
            raise KeyError("reader")

        released = []
        with pytest.raises(KeyError):
            await aloop.wrap_future(f.value, result=bad_reader, release=released.append)
        assert released == []  # the reader failed: nothing was handed over
        rpc.lib.rpc_client_close(client)
        rpc.lib.rpc_server_close(srv)

    aloop.run_until_complete(main())
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], ValueError)


def test_cancel_and_ownership(aloop):
    """Cancelling the asyncio future cancels the C future (the library
    releases the reply that arrives); a result that was already delivered
    to a cancelled wrapper goes to release(); every handle is released."""
    rpc = Rpc(aloop)
    lib = rpc.lib

    async def main():
        base = live_handles()
        srv, port = await rpc.start_server()
        client = await rpc.connect(port)
        slow = rpc.call_future(client, RPC_SLEEP, struct.pack(">I", 30) + b"s")
        await asyncio.sleep(0)
        slow.cancel()
        # the C future is done (ECHO answered), then the wrapper is cancelled
        # before its done-callback ran: the value goes to release()
        f = c_void_p()
        assert lib.rpc_call(client, RPC_ECHO, b"r", 1, byref(f)) == 0
        released = []
        wrapped = aloop.wrap_future(f.value, release=released.append)
        core = _bindings.load()
        for _ in range(200):
            await asyncio.sleep(0)  # one iteration at a time
            if core.aloop_future_done(f.value) == 1:
                break
        if not wrapped.done():
            wrapped.cancel()
        await asyncio.sleep(0.05)
        if released:
            lib.rpc_reply_free(released[0])
        elif not wrapped.cancelled():
            lib.rpc_reply_free(wrapped.result())
        assert lib.rpc_server_requests(srv) == 2
        assert await rpc.call(client, RPC_ECHO, b"after") == b"after"
        lib.rpc_client_close(client)
        lib.rpc_server_close(srv)
        for _ in range(50):
            await asyncio.sleep(0.01)
            if live_handles() == base:
                break
        assert live_handles() == base
        with pytest.raises(asyncio.CancelledError):
            await slow

    aloop.run_until_complete(main())


def test_library_driven_bench(aloop):
    rpc = Rpc(aloop)

    async def main():
        srv, port = await rpc.start_server()
        client = await rpc.connect(port)
        f = c_void_p()
        assert rpc.lib.rpc_client_bench(client, 3000, 16, 200, byref(f)) == 0
        assert await aloop.wrap_future(f.value) == 0
        assert rpc.lib.rpc_server_requests(srv) == 3000
        rpc.lib.rpc_client_close(client)
        rpc.lib.rpc_server_close(srv)

    aloop.run_until_complete(main())
