"""Every key handed to the library is released; loops are collectable."""

import asyncio
import gc
import os
import subprocess
import sys
import weakref

import asyncloop
from asyncloop import _trampolines


def _workload(loop):
    class Echo(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr

        def data_received(self, data):
            self.tr.write(data)

    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for _ in range(20):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"x" * 100)
            await r.readexactly(100)
            w.close()
            await w.wait_closed()
        dg, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    local_addr=("127.0.0.1", 0))
        dg.close()
        proc = await asyncio.create_subprocess_exec("true", stdout=subprocess.PIPE)
        await proc.communicate()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)

    loop.run_until_complete(main())


def test_keys_released_after_clean_shutdown():
    before = len(_trampolines.objects)
    loop = asyncloop.new_event_loop()
    _workload(loop)
    loop.close()
    assert len(_trampolines.objects) == before, list(_trampolines.objects.values())[:5]


def test_keys_released_when_closing_with_live_objects():
    before = len(_trampolines.objects)
    loop = asyncloop.new_event_loop()

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(30)")
        loop.add_reader(rfd, lambda: None)

    rfd, wfd = os.pipe()
    try:
        loop.run_until_complete(main())
        loop.close()
    finally:
        os.close(rfd)
        os.close(wfd)
    assert len(_trampolines.objects) == before


def test_loop_is_collected():
    loop = asyncloop.new_event_loop()
    _workload(loop)
    loop.close()
    ref = weakref.ref(loop)
    del loop
    gc.collect()
    assert ref() is None
