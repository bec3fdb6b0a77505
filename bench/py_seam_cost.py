#!/usr/bin/env python3
"""The Python side of the batched seam, per request and per poll, with no
I/O in the timed parts (docs/architecture.md, "The batched seam").

    python3 bench/py_seam_cost.py [--reps 25]

* dispatch: the records of 8 DATA events (1 KiB each, 10 connections of a
  real loop over loopback) dispatched by ``Seam.dispatch`` to an echo
  ``asyncio.Protocol`` whose ``data_received`` does nothing;
* dispatch+write: the same, with ``data_received`` calling
  ``transport.write(data)`` (queued in the write arena; the queue is
  forgotten after each round instead of being sent);
* poll: one empty ``aloop_loop_poll`` without waiting, through ctypes, with
  its three arguments, and through ``aloop_loop_poll_args`` (one pointer).

Prints the minimum and the median over the repetitions, in ns per request
(per poll for the last two). The minimum is the figure to compare on a busy
machine; run two trees one after the other to A/B them.
"""

import argparse
import asyncio
import ctypes
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bindings" / "python"))
import asyncloop  # noqa: E402
from asyncloop import _seam  # noqa: E402
from asyncloop import _trampolines as _t  # noqa: E402

EVENTS = 8
ROUNDS = 2000


class Echo(asyncio.Protocol):
    write = True

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.write:
            self.transport.write(data)


def report(name, samples):
    print(f"{name:16s} min {min(samples):6.0f} ns   median {statistics.median(samples):6.0f} ns")


async def main(reps):
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Echo, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    trs = []
    for _ in range(10):
        tr, _pr = await loop.create_connection(Echo, "127.0.0.1", port)
        trs.append(tr)
    await asyncio.sleep(0.05)
    seam = loop._seam
    keys = {id(v): k for k, v in _t.objects.items()}
    ev = seam.ev
    seam.rarena[0:1024] = b"x" * 1024
    for i in range(EVENTS):
        tr = trs[i % len(trs)]
        b = 5 * i
        ev[b], ev[b + 1], ev[b + 2], ev[b + 3], ev[b + 4] = _seam._DATA, tr._handle, keys[id(tr)], 0, 1024

    def rounds():
        t0 = time.perf_counter_ns()
        for _ in range(ROUNDS):
            seam.nev = EVENTS
            seam.dispatch()
            for tr in seam.wtrs:
                tr._wq = 0
            seam.wtrs.clear()
            seam.wn = seam.woff = 0
        return (time.perf_counter_ns() - t0) / (ROUNDS * EVENTS)

    for write, name in ((False, "dispatch"), (True, "dispatch+write")):
        Echo.write = write
        report(name, [rounds() for _ in range(reps)])
    Echo.write = True

    lib = loop._lib
    handle = loop._handle
    three = ctypes.PyDLL(lib.path).aloop_loop_poll
    three.restype, three.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_double, ctypes.c_size_t]
    one = lib.aloop_loop_poll_args_nowait
    seam._args_q[3] = 0
    seam._args_d[2] = 0.0
    addr = seam._args_addr

    def polls(fn, *args):
        n = ROUNDS
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn(*args)
        return (time.perf_counter_ns() - t0) / n

    a3, a1 = [], []
    for _ in range(reps):
        a3.append(polls(three, handle, 0.0, 0))
        a1.append(polls(one, addr))
    report("poll (3 args)", a3)
    report("poll_args", a1)
    for tr in trs:
        tr.close()
    srv.close()
    await srv.wait_closed()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=25)
    a = ap.parse_args()
    asyncloop.run(main(a.reps))
