"""Every key handed to the library is released; loops are collectable."""

import asyncio
import gc
import os
import subprocess
import sys
import time
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


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


def _full_workload(loop, certs):
    import socket
    import ssl

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs["cert"], certs["key"])
    client_ctx = ssl.create_default_context(cafile=certs["ca"])

    async def handle(reader, writer):
        data = await reader.readline()
        if data == b"STARTTLS\n":
            writer.write(b"GO\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            data = await reader.readline()
        writer.write(data)
        await writer.drain()
        writer.close()

    async def main():
        plain = await asyncio.start_server(handle, "127.0.0.1", 0)
        tls = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        pport = plain.sockets[0].getsockname()[1]
        tport = tls.sockets[0].getsockname()[1]
        for _ in range(3):
            r, w = await asyncio.open_connection("127.0.0.1", tport, ssl=client_ctx,
                                                 server_hostname="localhost")
            w.write(b"tls\n")
            assert await r.readline() == b"tls\n"
            w.close()
            await w.wait_closed()
            r, w = await asyncio.open_connection("127.0.0.1", pport)
            w.write(b"STARTTLS\n")
            assert await r.readline() == b"GO\n"
            await w.start_tls(client_ctx, server_hostname="localhost")
            w.write(b"up\n")
            assert await r.readline() == b"up\n"
            w.close()
            await w.wait_closed()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        dg, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=s)
        dg.close()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read())",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out, _ = await proc.communicate(b"piped")
        assert out == b"piped"
        await loop.getaddrinfo("localhost", 80)
        plain.close()
        tls.close()
        await plain.wait_closed()
        await tls.wait_closed()
        await asyncio.sleep(0.05)

    loop.run_until_complete(main())


def test_no_fd_or_key_leaks_across_loops(certs):
    """Loops that ran TLS, start_tls, datagram sock=, subprocesses with a
    stdin pipe and DNS leave no file descriptor and no key behind once
    closed (counted; one warm-up run loads everything lazily loaded)."""
    warm = asyncloop.new_event_loop()
    _full_workload(warm, certs)
    warm.close()
    gc.collect()
    fds_before = _open_fds()
    keys_before = len(_trampolines.objects)
    for _ in range(3):
        loop = asyncloop.new_event_loop()
        _full_workload(loop, certs)
        loop.close()
    gc.collect()
    assert len(_trampolines.objects) == keys_before
    assert _open_fds() == fds_before


def test_closing_with_live_stdin_pipe_and_tls_releases_everything(certs):
    """Closing a loop while a subprocess (with its stdin pipe) and a TLS
    connection are still open releases their keys and fds too."""
    import ssl

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs["cert"], certs["key"])
    client_ctx = ssl.create_default_context(cafile=certs["ca"])
    # The first call into the library starts the Go runtime, which keeps
    # files open for good (its cgroup CPU limit files): make it before the
    # baseline, so that the count does not depend on an earlier test.
    asyncloop.live_handles()
    gc.collect()
    fds_before = _open_fds()
    keys_before = len(_trampolines.objects)
    loop = asyncloop.new_event_loop()

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx,
                                     server_hostname="localhost")
        await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(30)",
                                             stdin=subprocess.PIPE)
        await asyncio.sleep(0.05)

    loop.run_until_complete(main())
    loop.close()
    del loop
    gc.collect()
    assert len(_trampolines.objects) == keys_before
    # The child is killed by the close and reaped in the background: its
    # pidfd is closed once it has exited (core closeSubprocesses), which a
    # loaded machine may take a moment to get to.
    deadline = time.monotonic() + 10
    while _open_fds() != fds_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _open_fds() == fds_before


def test_close_with_busy_core_objects_is_immediate_and_releases_everything():
    """close() uses the core's force-close (aloop_loop_close_force): an fd
    watcher, a pending sock_recv, a transport with unsent data and a running
    child go at once, and every core handle is released (it used to run the
    core loop until aloop_loop_close stopped answering EBUSY, up to 1 s)."""
    import socket
    import time

    base = asyncloop.live_handles()
    before = len(_trampolines.objects)
    loop = asyncloop.new_event_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    rfd, wfd = os.pipe()

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        tr.write(b"x" * (8 << 20))  # more than the socket takes
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(30)")
        loop.add_reader(rfd, lambda: None)
        loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0.05)
        return proc.pid

    try:
        pid = loop.run_until_complete(main())
        t0 = time.monotonic()
        loop.close()
        took = time.monotonic() - t0
    finally:
        for fd in (rfd, wfd):
            os.close(fd)
        a.close()
        b.close()
    assert took < 0.5, took
    assert asyncloop.live_handles() == base
    assert len(_trampolines.objects) == before
    for _ in range(200):  # the child was killed (the core reaps it)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the child still runs")
