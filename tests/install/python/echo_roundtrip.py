"""The install tests' Python consumer: an echo round trip over loopback on an
asyncloop loop, with the asyncloop package and library of the environment it
runs in (never the checkout's). Prints "echo ok VERSION LIBRARY_PATH"."""

import asyncio
import sys

import asyncloop

MESSAGE = b"hello through an installed asyncloop"


async def main() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(len(MESSAGE)))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(MESSAGE)
    got = await asyncio.wait_for(reader.readexactly(len(MESSAGE)), 20)
    writer.close()
    server.close()
    await server.wait_closed()
    assert got == MESSAGE, got
    assert isinstance(asyncio.get_running_loop(), asyncloop.EventLoop)


asyncloop.run(main())
assert asyncloop.library_version() == asyncloop.__version__, (
    asyncloop.library_version(), asyncloop.__version__)
print("echo ok", asyncloop.__version__, asyncloop.library_path())
sys.exit(0)
