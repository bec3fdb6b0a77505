#!/usr/bin/env python3
"""Echo servers of the Python benchmark suite, one process per loop.

    py_echo_server.py IMPL MODE [--cert FILE --key FILE]

IMPL: asyncio | uvloop | rloop | asyncloop
MODE:
  protocol  asyncio.Protocol echo (tcp_echo_*, bulk_64k, idle_10k_rss)
  streams   asyncio.start_server echo: read(64 KiB), write, drain
  tls       the streams echo with ssl= (--cert/--key, signed by the local CA)
  sock      loop.sock_accept / sock_recv / sock_sendall, one task per client
  udp       DatagramProtocol echo
  http      a minimal HTTP/1.1 keep-alive server on asyncio.Protocol (the
            same handler code on every loop): "Hello, World!" to every
            request (http_hello_c50)

Listens on 127.0.0.1 on a free port, prints "PORT <n>" (one line) when
ready, and runs until its standard input reaches end of file. When the loop
does not implement what the mode needs, prints "MISSING <reason>" and exits
with status 0; any other failure exits non-zero. bench/run.py drives it.
"""

import asyncio
import os
import resource
import socket
import sys
import threading
from pathlib import Path

IMPLS = ("asyncio", "uvloop", "rloop", "asyncloop")
MODES = ("protocol", "streams", "tls", "sock", "udp", "http")
FEATURES = {
    "protocol": "create_server",
    "streams": "asyncio.start_server",
    "tls": "TLS (create_server(ssl=...))",
    "sock": "sock_accept/sock_recv/sock_sendall",
    "udp": "UDP (create_datagram_endpoint)",
    "http": "create_server",
}


def loop_factory(impl):
    """A new event loop of the given implementation (imports it)."""
    if impl == "asyncio":
        return asyncio.new_event_loop
    if impl == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if impl == "rloop":
        import rloop

        return rloop.new_event_loop
    if impl == "asyncloop":
        # The binding of this source tree (not an installed copy).
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
        import asyncloop

        return asyncloop.new_event_loop
    raise SystemExit(f"unknown implementation {impl!r} (one of {', '.join(IMPLS)})")


class EchoProtocol(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False


HTTP_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                 b"Hello, World!")


class HttpHello(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive server: parses the request head (method,
    target, headers), answers every request, closes on Connection: close."""

    __slots__ = ("transport", "buf")

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].split(b"\r\n")
            buf = buf[end + 4:]
            method, target, version = head[0].split(b" ", 2)
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            self.transport.write(HTTP_RESPONSE)
            if headers.get(b"connection", b"").lower() == b"close":
                self.transport.close()
                break
        self.buf = buf

    def eof_received(self):
        return False


class EchoDatagram(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def streams_handler(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def sock_serve(loop, lsock):
    tasks = set()
    while True:
        conn, _ = await loop.sock_accept(lsock)
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = loop.create_task(sock_handler(loop, conn))
        tasks.add(t)
        t.add_done_callback(tasks.discard)


async def sock_handler(loop, conn):
    try:
        while True:
            data = await loop.sock_recv(conn, 65536)
            if not data:
                break
            await loop.sock_sendall(conn, data)
    except (ConnectionError, OSError):
        pass
    finally:
        conn.close()


def stdin_eof_event(loop):
    """An asyncio.Event set (thread-safely) when stdin reaches end of file."""
    ev = asyncio.Event()

    def watch():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        try:
            loop.call_soon_threadsafe(ev.set)
        except RuntimeError:  # loop already closed
            pass

    threading.Thread(target=watch, daemon=True).start()
    return ev


async def serve(mode, cert, key):
    loop = asyncio.get_running_loop()
    closer = None
    accept_task = None
    if mode in ("protocol", "http"):
        factory = EchoProtocol if mode == "protocol" else HttpHello
        server = await loop.create_server(factory, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        closer = server
    elif mode in ("streams", "tls"):
        ssl_ctx = None
        if mode == "tls":
            import ssl

            ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_ctx.load_cert_chain(cert, key)
        server = await asyncio.start_server(streams_handler, "127.0.0.1", 0, ssl=ssl_ctx,
                                            backlog=1024)
        port = server.sockets[0].getsockname()[1]
        closer = server
    elif mode == "sock":
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1024)
        lsock.setblocking(False)
        port = lsock.getsockname()[1]
        accept_task = loop.create_task(sock_serve(loop, lsock))
        # Fail now (MISSING) rather than on the first client.
        await asyncio.sleep(0)
        if accept_task.done():
            accept_task.result()
    elif mode == "udp":
        transport, _ = await loop.create_datagram_endpoint(EchoDatagram,
                                                           local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        closer = transport
    else:
        raise SystemExit(f"unknown mode {mode!r} (one of {', '.join(MODES)})")

    stop = stdin_eof_event(loop)
    print(f"PORT {port}", flush=True)
    await stop.wait()
    if closer is not None:
        closer.close()
    if accept_task is not None:
        accept_task.cancel()
        try:
            await accept_task
        except BaseException:
            pass
        lsock.close()


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        raise SystemExit(__doc__)
    impl, mode = args[0], args[1]
    cert = key = None
    if "--cert" in args:
        cert = args[args.index("--cert") + 1]
    if "--key" in args:
        key = args[args.index("--key") + 1]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        factory = loop_factory(impl)
    except ImportError as e:
        print(f"MISSING {impl} is not installed ({e})", flush=True)
        return 0
    loop = factory()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serve(mode, cert, key))
    except NotImplementedError as e:
        print(f"MISSING {impl} does not implement {FEATURES.get(mode, mode)} yet "
              f"(NotImplementedError{': ' + str(e) if str(e) else ''})", flush=True)
        return 0
    finally:
        try:
            loop.close()
        except Exception:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
