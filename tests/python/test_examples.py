"""examples/python/echo_client.py against a real echo server."""

import asyncio
import re
import subprocess
import sys
import threading
from pathlib import Path

import asyncloop

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python" / "echo_client.py"


class _Echo(asyncio.Protocol):
    def connection_made(self, tr):
        self.tr = tr

    def data_received(self, data):
        self.tr.write(data)


class _EchoServerThread(threading.Thread):
    """An asyncloop echo server on its own thread."""

    def __init__(self):
        super().__init__()
        self.ready = threading.Event()
        self.port = None

    def run(self):
        self.loop = asyncloop.new_event_loop()

        async def main():
            server = await self.loop.create_server(_Echo, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self.stop = self.loop.create_future()
            self.ready.set()
            await self.stop
            server.close()

        self.loop.run_until_complete(main())
        self.loop.close()

    def shutdown(self):
        self.loop.call_soon_threadsafe(self.stop.set_result, None)
        self.join(30)


def test_echo_client_example(child_env):
    server = _EchoServerThread()
    server.start()
    assert server.ready.wait(30)
    try:
        r = subprocess.run([sys.executable, str(EXAMPLE), "127.0.0.1", str(server.port)],
                           capture_output=True, text=True, env=child_env, timeout=120)
    finally:
        server.shutdown()
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"Python  1048576 bytes echoed, median round trip \d+\.\d us\n",
                        r.stdout), r.stdout
    print(r.stdout.strip())


def test_echo_client_example_refused(child_env):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = subprocess.run([sys.executable, str(EXAMPLE), "127.0.0.1", str(port)],
                       capture_output=True, text=True, env=child_env, timeout=60)
    assert r.returncode != 0
    assert "ConnectionRefusedError" in r.stderr
