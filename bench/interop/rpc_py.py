"""The interop workloads driven from Python (bench/run.py, suite interop):
libaloop_rpc's server and client on asyncloop's Python loop.

    rpc_py.py call|lib SECONDS WARMUP INFLIGHT SIZE

call: INFLIGHT coroutines, each awaiting one call at a time
(EventLoop.wrap_future, the reply read by the result reader, checked);
lib: rpc_client_bench batches awaited as one future. Prints
{"value": requests per second, "requests": n}.
"""
import asyncio
import ctypes
import json
import os
import sys
import time
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_uint64, c_void_p
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
import asyncloop  # noqa: E402
from asyncloop import _bindings  # noqa: E402


def load():
    core = _bindings.load()
    lib = ctypes.PyDLL(os.environ.get("ALOOP_RPC_LIBRARY")
                       or str(ROOT / "build" / "examples" / "libaloop_rpc.so"))
    for name, res, args in (
            ("rpc_server_start", c_int, [c_void_p, c_char_p, c_int, POINTER(c_void_p)]),
            ("rpc_server_port", c_int, [c_void_p]),
            ("rpc_server_close", c_int, [c_void_p]),
            ("rpc_connect", c_int, [c_void_p, c_char_p, c_int, POINTER(c_void_p)]),
            ("rpc_call", c_int, [c_void_p, c_int, c_char_p, c_size_t, POINTER(c_void_p)]),
            ("rpc_reply_data", c_void_p, [c_void_p, POINTER(c_size_t)]),
            ("rpc_reply_free", None, [c_void_p]),
            ("rpc_client_close", c_int, [c_void_p]),
            ("rpc_client_bench", c_int, [c_void_p, c_uint64, c_int, c_size_t, POINTER(c_void_p)])):
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return core, lib


async def main(mode, secs, warm, inflight, size):
    loop = asyncio.get_running_loop()
    core, lib = load()
    payload = bytes((i * 131 + 7) & 0xFF for i in range(size))
    f = c_void_p()
    assert lib.rpc_server_start(loop.handle, b"127.0.0.1", 0, byref(f)) == 0
    srv = await loop.wrap_future(f.value)
    assert lib.rpc_connect(loop.handle, b"127.0.0.1", lib.rpc_server_port(srv), byref(f)) == 0
    client = await loop.wrap_future(f.value)
    out = c_void_p()
    n = c_size_t()
    rpc_call, reply_data, reply_free = lib.rpc_call, lib.rpc_reply_data, lib.rpc_reply_free
    future_result = core.aloop_future_result
    string_at = ctypes.string_at
    wrap = loop.wrap_future

    def read(fh):
        future_result(fh, byref(out))
        r = out.value
        data = string_at(reply_data(r, byref(n)), n.value)
        reply_free(r)
        return data

    async def worker(end, counts):
        fut = c_void_p()
        k = 0
        while time.monotonic() < end:
            rpc_call(client, 1, payload, size, byref(fut))
            if await wrap(fut.value, read) != payload:
                raise SystemExit('{"error": "a reply did not match"}')
            k += 1
        counts.append(k)

    async def run(seconds):
        end = time.monotonic() + seconds
        if mode == "lib":
            k = 0
            fut = c_void_p()
            while time.monotonic() < end:
                assert lib.rpc_client_bench(client, 1000, inflight, size, byref(fut)) == 0
                await wrap(fut.value)
                k += 1000
            return k
        counts = []
        await asyncio.gather(*[worker(end, counts) for _ in range(inflight)])
        return sum(counts)

    await run(warm)
    t0 = time.monotonic()
    k = await run(secs)
    el = time.monotonic() - t0
    lib.rpc_client_close(client)
    lib.rpc_server_close(srv)
    await asyncio.sleep(0.01)
    print(json.dumps({"value": round(k / el, 1), "requests": k}))


if __name__ == "__main__":
    mode, secs, warm, inflight, size = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), \
        int(sys.argv[4]), int(sys.argv[5])
    asyncloop.run(main(mode, secs, warm, inflight, size))
