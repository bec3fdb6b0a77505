"""A Python host with a Go plugin (examples/go-plugin: a Go library built
with -buildmode=c-shared over the Go binding). asyncloop's EventLoop has the
library; ctypes loads the plugin beside it and hands it the loop's handle;
the plugin serves TCP echo on that loop while Python's own asyncio streams
talk to it on the same loop, and the plugin's garbage collector runs on
another thread. Three runtimes in one process: CPython, the library's Go and
the plugin's Go (bindings/go/README.md, "Go plugins").

    python3 tests/python/goplugin_host.py [PLUGIN]   (or $ASYNCLOOP_GOPLUGIN)

Exits 0 when every check passed (CTest entry goplugin-python).
"""

import asyncio
import ctypes
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
import asyncloop  # noqa: E402

CHUNK = 16 << 10
CHUNKS = 16
CONNS = 4


def load_plugin(path):
    p = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
    p.plugin_start.argtypes = [ctypes.c_void_p]
    p.plugin_start.restype = ctypes.c_int
    p.plugin_stop.restype = ctypes.c_int
    p.plugin_ticks.restype = ctypes.c_int
    p.plugin_gc.argtypes = [ctypes.c_int]
    p.plugin_gc.restype = ctypes.c_int
    p.plugin_panic_soon.restype = ctypes.c_int
    p.plugin_error.restype = ctypes.c_char_p
    return p


def loop_handle(loop):
    h = getattr(loop, "handle", None)  # the public name, when the binding has one
    if callable(h):
        h = h()
    return h if isinstance(h, int) else loop._handle


async def echo_client(port, conn):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    verified = 0
    for k in range(CHUNKS):
        out = bytes((i * 7 + k * 13 + conn) & 0xFF for i in range(CHUNK))
        writer.write(out)
        got = await reader.readexactly(CHUNK)
        assert got == out, f"connection {conn} chunk {k} differs"
        verified += CHUNK
    writer.close()
    await writer.wait_closed()
    return verified


async def main(plugin):
    loop = asyncio.get_running_loop()
    assert isinstance(loop, asyncloop.EventLoop)
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx.get("message", "")))
    port = plugin.plugin_start(loop_handle(loop))
    assert port > 0, f"plugin_start: {port} {plugin.plugin_error()}"

    ticks = 0

    async def python_timer():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    timer = asyncio.ensure_future(python_timer())
    gcs = asyncio.ensure_future(asyncio.to_thread(plugin.plugin_gc, 300))
    verified = await asyncio.gather(*(echo_client(port, c) for c in range(CONNS)))
    assert sum(verified) == CHUNK * CHUNKS * CONNS, verified
    assert await gcs > 0
    assert plugin.plugin_ticks() > 0
    assert ticks > 0
    timer.cancel()

    # A panic in a plugin callback reaches this loop's exception handler;
    # the loop goes on.
    assert plugin.plugin_panic_soon() == 0
    await asyncio.sleep(0.02)
    assert len(errors) == 1, errors
    assert "panic in a Go callback" in errors[0] and "a panic on purpose" in errors[0], errors[0]

    await asyncio.sleep(0.02)  # the last connection's close reaches the server
    echoed = plugin.plugin_stop()
    assert echoed == CHUNK * CHUNKS * CONNS, echoed
    await asyncio.sleep(0.01)
    return sum(verified)


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ASYNCLOOP_GOPLUGIN", "")
    if not path:
        sys.exit("usage: goplugin_host.py PLUGIN (or set ASYNCLOOP_GOPLUGIN)")
    loop = asyncloop.new_event_loop()  # the library is loaded before the plugin
    plugin = load_plugin(path)
    try:
        n = loop.run_until_complete(main(plugin))
    finally:
        loop.close()
    print(f"ok: {n} bytes echoed by the Go plugin on asyncloop's EventLoop")
