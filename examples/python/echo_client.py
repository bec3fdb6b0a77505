#!/usr/bin/env python3
"""Echo client on asyncloop.

Usage: echo_client.py HOST PORT

Connects to an echo server, sends 1 MiB in 64 chunks of 16 KiB, each chunk
only after the previous one came back complete, checks every byte and prints
``Python  1048576 bytes echoed, median round trip <x> us``.  Exit status 0
only if every byte matched.
"""

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

try:
    import asyncloop
except ImportError:  # run from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
    import asyncloop

CHUNK = 16 * 1024
COUNT = 64


class EchoClient(asyncio.Protocol):
    def __init__(self, loop):
        self.loop = loop
        self.buf = bytearray()
        self.want = 0
        self.waiter = None
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        if self.waiter is not None and len(self.buf) >= self.want and not self.waiter.done():
            self.waiter.set_result(None)

    def eof_received(self):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("server closed the connection early"))
        return False

    def connection_lost(self, exc):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("connection lost"))
        if not self.lost.done():
            self.lost.set_result(None)

    async def round_trip(self, chunk):
        self.want = len(chunk)
        self.waiter = self.loop.create_future()
        if len(self.buf) >= self.want:
            self.waiter.set_result(None)
        self.transport.write(chunk)
        await self.waiter
        got = bytes(self.buf[:self.want])
        del self.buf[:self.want]
        return got


async def main(host, port):
    loop = asyncio.get_running_loop()
    payload = os.urandom(CHUNK * COUNT)
    transport, proto = await loop.create_connection(lambda: EchoClient(loop), host, port)
    ok = True
    total = 0
    rtts = []
    try:
        for i in range(COUNT):
            chunk = payload[i * CHUNK:(i + 1) * CHUNK]
            t0 = time.perf_counter()
            got = await asyncio.wait_for(proto.round_trip(chunk), 30)
            rtts.append(time.perf_counter() - t0)
            if got != chunk:
                ok = False
                print(f"mismatch in chunk {i}", file=sys.stderr)
                break
            total += len(got)
    finally:
        transport.close()
        await asyncio.wait_for(proto.lost, 5)
    median_us = statistics.median(rtts) * 1e6 if rtts else 0.0
    print(f"{'Python':<8}{total} bytes echoed, median round trip {median_us:.1f} us")
    return ok and total == CHUNK * COUNT


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    try:
        good = asyncloop.run(main(sys.argv[1], int(sys.argv[2])))
    except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
        print(f"echo_client: {exc!r}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0 if good else 1)
