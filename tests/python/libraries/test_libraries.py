"""Popular asyncio libraries on asyncloop's loop, with asyncio's loop as the
reference: aiohttp (server and client, websockets, streaming, TLS, Unix
sockets), websockets, httpx, uvicorn (h11, lifespan, graceful shutdown),
anyio (task groups, TCP, processes, threads) and aiofiles.

The CTest entry `python-libraries` runs this directory in a venv with the
pinned versions of requirements.txt (tests/python/libraries/run.sh); the
python-3.X entries do not collect it. By hand:

    bash tests/python/libraries/run.sh build/libs-venv -q

Every case runs on both loops, asserts what came back over loopback and
is bounded by a timeout (asyncio.wait_for here, pytest-timeout around the
whole test for a loop that no longer runs at all).
"""

import asyncio
import os
import ssl
import sys

import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

import aiofiles  # noqa: E402
import aiofiles.os  # noqa: E402
import anyio  # noqa: E402
import anyio.abc  # noqa: E402
import httpx  # noqa: E402
import uvicorn  # noqa: E402
import websockets  # noqa: E402
import websockets.asyncio.client  # noqa: E402
import websockets.asyncio.server  # noqa: E402

CASE_TIMEOUT = 30  # seconds for one case's coroutine; most take well under 1


def run(loop, coro_fn, timeout=CASE_TIMEOUT):
    """asyncio.run() on the given loop: the coroutine under a timeout, then
    the remaining tasks cancelled, async generators and the default
    executor shut down, as asyncio.run does."""

    async def main():
        running = asyncio.get_running_loop()
        assert running is loop
        return await asyncio.wait_for(coro_fn(), timeout)

    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)


@pytest.fixture
def loop(loop, request):
    """The parent conftest's loop (asyncio's, then asyncloop's), checked to
    be what its parameter says, so a case can never pass on the reference
    loop twice."""
    if request.node.callspec.params["loop"] == "asyncloop":
        assert type(loop).__module__.startswith("asyncloop"), type(loop)
    else:
        assert not type(loop).__module__.startswith("asyncloop"), type(loop)
    return loop


async def start_site(app, **kw):
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, **kw)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


# ---------------------------------------------------------------- aiohttp

def test_aiohttp_server_and_client(loop):
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def hello(req):
        return web.Response(text="hi " + req.match_info["name"])

    async def big(req):
        return web.Response(body=b"z" * (5 << 20))

    async def reverse(req):
        return web.Response(body=(await req.read())[::-1])

    async def stream(req):
        r = web.StreamResponse()
        r.enable_chunked_encoding()
        await r.prepare(req)
        for i in range(100):
            await r.write(b"%d\n" % i)
        await r.write_eof()
        return r

    async def upload(req):  # streaming request body, counted chunk by chunk
        n = 0
        async for chunk in req.content.iter_chunked(65536):
            n += len(chunk)
        return web.json_response({"n": n})

    async def main():
        app = web.Application(client_max_size=8 << 20)
        app.add_routes([web.get("/h/{name}", hello), web.get("/big", big),
                        web.post("/reverse", reverse), web.get("/stream", stream),
                        web.post("/upload", upload)])
        runner, port = await start_site(app)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{base}/h/bob") as r:
                    assert r.status == 200
                    assert await r.text() == "hi bob"
                async with s.get(f"{base}/nope") as r:
                    assert r.status == 404
                async with s.get(f"{base}/big") as r:
                    body = await r.read()
                    assert len(body) == 5 << 20 and body == b"z" * (5 << 20)
                async with s.post(f"{base}/reverse", data=payload) as r:
                    assert await r.read() == payload[::-1]
                async with s.get(f"{base}/stream") as r:
                    lines = [line async for line in r.content]
                    assert lines == [b"%d\n" % i for i in range(100)]

                async def gen():
                    for _ in range(64):
                        yield b"u" * 32768
                async with s.post(f"{base}/upload", data=gen()) as r:
                    assert (await r.json()) == {"n": 64 * 32768}

                async def one(i):
                    async with s.get(f"{base}/h/{i}") as r:
                        return r.status, await r.text()
                got = await asyncio.gather(*[one(i) for i in range(200)])
                assert got == [(200, f"hi {i}") for i in range(200)]
        finally:
            await runner.cleanup()

    run(loop, main)


def test_aiohttp_websocket(loop):
    async def ws_handler(req):
        ws = web.WebSocketResponse()
        await ws.prepare(req)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "close":
                    await ws.close(code=4001, message=b"bye")
                else:
                    await ws.send_str(msg.data.upper())
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws

    async def main():
        app = web.Application(client_max_size=8 << 20)
        app.add_routes([web.get("/ws", ws_handler)])
        runner, port = await start_site(app)
        try:
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                    for i in range(50):
                        await ws.send_str(f"m{i}")
                        assert (await ws.receive()).data == f"M{i}"
                    blob = os.urandom(2 << 20)
                    await ws.send_bytes(blob)
                    msg = await ws.receive()
                    assert msg.type == aiohttp.WSMsgType.BINARY and msg.data == blob[::-1]
                    await ws.send_str("close")
                    msg = await ws.receive()
                    assert msg.type == aiohttp.WSMsgType.CLOSE
                    assert ws.close_code == 4001
        finally:
            await runner.cleanup()

    run(loop, main)


def test_aiohttp_and_httpx_tls(loop, server_ctx, client_ctx):
    async def echo(req):
        return web.Response(body=(await req.read()) or b"none")

    async def main():
        app = web.Application(client_max_size=8 << 20)
        app.add_routes([web.post("/", echo), web.get("/", echo)])
        runner, port = await start_site(app, ssl_context=server_ctx)
        try:
            conn = aiohttp.TCPConnector(ssl=client_ctx)
            async with aiohttp.ClientSession(connector=conn) as s:
                for size in (0, 1, 1000, 100_000, 900_000, 3 << 20):
                    data = os.urandom(size)
                    async with s.post(f"https://localhost:{port}/", data=data) as r:
                        assert r.status == 200
                        assert await r.read() == (data or b"none"), size
                # A client that does not trust the CA is refused.
                async with aiohttp.ClientSession() as bad:
                    with pytest.raises(aiohttp.ClientConnectorCertificateError):
                        await bad.get(f"https://localhost:{port}/")
            async with httpx.AsyncClient(verify=client_ctx) as c:
                r = await c.get(f"https://localhost:{port}/")
                assert r.status_code == 200 and r.content == b"none"
                data = os.urandom(500_000)
                r = await c.post(f"https://localhost:{port}/", content=data)
                assert r.content == data
        finally:
            await runner.cleanup()

    run(loop, main)


def test_aiohttp_unix_sockets(loop, tmp_path):
    """aiohttp's UnixSite (loop.create_unix_server) and a hand-made HTTP
    server on asyncio.start_unix_server, both reached with UnixConnector."""

    async def hello(req):
        return web.Response(text="unix " + req.path)

    async def raw_http(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1]
        body = b"raw " + path
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        app = web.Application(client_max_size=8 << 20)
        app.add_routes([web.get("/{tail:.*}", hello)])
        runner = web.AppRunner(app)
        await runner.setup()
        site_path = str(tmp_path / "aiohttp.sock")
        site = web.UnixSite(runner, site_path)
        await site.start()
        raw_path = str(tmp_path / "raw.sock")
        raw = await asyncio.start_unix_server(raw_http, raw_path)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(site_path)) as s:
                got = await asyncio.gather(*[s.get(f"http://x/p{i}") for i in range(20)])
                assert [await r.text() for r in got] == [f"unix /p{i}" for i in range(20)]
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(raw_path)) as s:
                for i in range(5):
                    async with s.get(f"http://x/q{i}") as r:
                        assert r.status == 200 and await r.text() == f"raw /q{i}"
        finally:
            raw.close()
            await raw.wait_closed()
            await runner.cleanup()

    run(loop, main)


def test_aiohttp_files_timeouts_and_errors(loop, tmp_path, server_ctx, client_ctx):
    """FileResponse (loop.sendfile; over TLS its fallback), Range, a client
    download dropped half-way, ClientTimeout, a host name, a server that
    aborts the connection, a refused port: on aiohttp's and httpx's
    clients."""
    import socket

    data = os.urandom(3 << 20)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    release = asyncio.Event()

    async def file(req):
        return web.FileResponse(path)

    async def hang(req):
        await release.wait()
        return web.Response(text="late")

    async def abort(req):
        req.transport.abort()
        await asyncio.sleep(0.1)
        return web.Response()

    async def main():
        app = web.Application()
        app.add_routes([web.get("/f", file),
                        web.get("/hang", hang), web.get("/abort", abort)])
        runner, port = await start_site(app)
        tls_runner, tls_port = await start_site(app, ssl_context=server_ctx)
        try:
            async with aiohttp.ClientSession() as s:
                base = f"http://localhost:{port}"
                async with s.get(f"{base}/f") as r:
                    assert await r.read() == data
                async with s.get(f"{base}/f", headers={"Range": "bytes=100-199"}) as r:
                    assert r.status == 206 and await r.read() == data[100:200]
                for _ in range(3):
                    r = await s.get(f"{base}/f")
                    assert len(await r.content.readexactly(1000)) == 1000
                    r.close()
                got = await asyncio.gather(*[s.get(f"{base}/f") for _ in range(5)])
                for r in got:
                    assert await r.read() == data
                with pytest.raises(asyncio.TimeoutError):
                    await s.get(f"{base}/hang", timeout=aiohttp.ClientTimeout(total=0.2))
                with pytest.raises(aiohttp.ServerDisconnectedError):
                    await s.get(f"{base}/abort")
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx)) as s:
                async with s.get(f"https://localhost:{tls_port}/f") as r:
                    assert await r.read() == data
            async with httpx.AsyncClient() as c:
                with pytest.raises(httpx.ReadTimeout):
                    await c.get(f"http://127.0.0.1:{port}/hang", timeout=0.2)
                with pytest.raises(httpx.RemoteProtocolError):
                    await c.get(f"http://127.0.0.1:{port}/abort")
            free = socket.socket()
            free.bind(("127.0.0.1", 0))
            closed_port = free.getsockname()[1]
            free.close()
            async with aiohttp.ClientSession() as s:
                with pytest.raises(aiohttp.ClientConnectorError):
                    await s.get(f"http://127.0.0.1:{closed_port}/")
            async with httpx.AsyncClient() as c:
                with pytest.raises(httpx.ConnectError):
                    await c.get(f"http://127.0.0.1:{closed_port}/")
        finally:
            release.set()
            await runner.cleanup()
            await tls_runner.cleanup()

    run(loop, main)


# ------------------------------------------------------------- websockets

def test_websockets(loop):
    async def echo(ws):
        async for m in ws:
            await ws.send(m)

    async def main():
        async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0,
                                                   max_size=4 << 20) as server:
            port = server.sockets[0].getsockname()[1]
            uri = f"ws://127.0.0.1:{port}"
            async with websockets.asyncio.client.connect(uri, max_size=4 << 20) as ws:
                for i in range(100):
                    await ws.send(f"m{i}")
                    assert await ws.recv() == f"m{i}"
                big = os.urandom(3 << 20)
                await ws.send(big)
                assert await ws.recv() == big

            async def client(i):
                async with websockets.asyncio.client.connect(uri) as ws:
                    out = []
                    for j in range(10):
                        await ws.send(f"{i}.{j}")
                        out.append(await ws.recv())
                    return out
            got = await asyncio.gather(*[client(i) for i in range(20)])
            assert got == [[f"{i}.{j}" for j in range(10)] for i in range(20)]

            # The client's close code and reason reach the closing handshake.
            async with websockets.asyncio.client.connect(uri) as ws:
                await ws.close(code=4002, reason="done")
                assert ws.close_code == 4002

    run(loop, main)


def test_websockets_tls_and_keepalive(loop, server_ctx, client_ctx):
    async def echo(ws):
        async for m in ws:
            await ws.send(m)

    async def main():
        async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0, ssl=server_ctx,
                                                   max_size=None, ping_interval=0.05,
                                                   ping_timeout=2) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.asyncio.client.connect(
                    f"wss://localhost:{port}", ssl=client_ctx, max_size=None,
                    ping_interval=0.05) as ws:
                for i in range(50):
                    await ws.send(f"{i}")
                    assert await ws.recv() == f"{i}"
                big = os.urandom(4 << 20)
                await ws.send(big)
                assert await ws.recv() == big
                await asyncio.sleep(0.3)  # keepalive pings answered meanwhile
                assert ws.latency > 0
                await ws.send("still")
                assert await ws.recv() == "still"

    run(loop, main)


# ------------------------------------------------------------------ httpx

def test_httpx_against_aiohttp(loop):
    async def hello(req):
        return web.json_response({"q": req.query.get("q"), "m": req.method})

    async def chunks(req):
        r = web.StreamResponse()
        await r.prepare(req)
        for i in range(50):
            await r.write(bytes([i]) * 10000)
            await asyncio.sleep(0)
        await r.write_eof()
        return r

    async def main():
        app = web.Application(client_max_size=8 << 20)
        app.add_routes([web.get("/j", hello), web.put("/j", hello), web.get("/chunks", chunks)])
        runner, port = await start_site(app)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
                r = await c.get("/j", params={"q": "x y"})
                assert r.status_code == 200 and r.json() == {"q": "x y", "m": "GET"}
                r = await c.put("/j")
                assert r.json() == {"q": None, "m": "PUT"}
                async with c.stream("GET", "/chunks") as r:
                    body = b"".join([b async for b in r.aiter_bytes()])
                assert body == b"".join(bytes([i]) * 10000 for i in range(50))
                rs = await asyncio.gather(*[c.get("/j", params={"q": str(i)}) for i in range(100)])
                assert [r.json()["q"] for r in rs] == [str(i) for i in range(100)]
        finally:
            await runner.cleanup()

    run(loop, main)


# ---------------------------------------------------------------- uvicorn

def make_asgi_app(events):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                if m["type"] == "lifespan.startup":
                    events.append("startup")
                    await send({"type": "lifespan.startup.complete"})
                elif m["type"] == "lifespan.shutdown":
                    events.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        if scope["path"] == "/slow":
            events.append("slow-start")
            await asyncio.sleep(0.3)
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for i in range(20):
                await send({"type": "http.response.body", "body": b"%d," % i, "more_body": True})
            await send({"type": "http.response.body", "body": b"end"})
            return
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok:" + scope["path"].encode() + b":" + body})
    return app


async def start_uvicorn(app, **kw):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            loop="none", http="h11", lifespan="on", **kw)
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port


def test_uvicorn(loop):
    events = []

    async def main():
        server, task, port = await start_uvicorn(make_asgi_app(events))
        assert events == ["startup"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            rs = await asyncio.gather(*[c.post(f"/p{i}", content=b"x%d" % i) for i in range(200)])
            assert [(r.status_code, r.text) for r in rs] == [(201, f"ok:/p{i}:x{i}") for i in range(200)]
            r = await c.get("/stream")
            assert r.text == "".join(f"{i}," for i in range(20)) + "end"
            big = os.urandom(2 << 20)
            r = await c.post("/big", content=big)
            assert r.content == b"ok:/big:" + big

            # Graceful shutdown: a request in flight when the server is told
            # to exit still gets its whole response, then serve() returns.
            slow = asyncio.ensure_future(c.get("/slow"))
            while "slow-start" not in events:
                await asyncio.sleep(0.01)
            server.should_exit = True
            r = await slow
            assert r.status_code == 201 and r.text == "ok:/slow:"
            await asyncio.wait_for(task, 10)
        assert events == ["startup", "slow-start", "shutdown"]
        # The port is closed now.
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    run(loop, main)


def test_uvicorn_tls(loop, certs, client_ctx):
    events = []

    async def main():
        server, task, port = await start_uvicorn(make_asgi_app(events),
                                                 ssl_certfile=certs["cert"], ssl_keyfile=certs["key"])
        try:
            async with httpx.AsyncClient(verify=client_ctx) as c:
                rs = await asyncio.gather(*[c.post(f"https://localhost:{port}/t{i}", content=b"%d" % i)
                                            for i in range(20)])
                assert [r.text for r in rs] == [f"ok:/t{i}:{i}" for i in range(20)]
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
        assert events == ["startup", "shutdown"]

    run(loop, main)


def test_uvicorn_socket_keepalive_and_pipelining(loop):
    """uvicorn on a socket the caller bound (create_server(sock=)), its
    keep-alive timeout (call_later per connection) and pipelined requests,
    with a raw asyncio client."""
    import socket
    import time

    async def app(scope, receive, send):
        assert scope["type"] == "http"
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", loop="none", http="h11",
                                lifespan="off", timeout_keep_alive=0.2)
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            t0 = time.monotonic()
            data = await asyncio.wait_for(r.read(), 5)  # the server closes when idle
            assert 0.15 < time.monotonic() - t0 < 4
            assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\nok")
            w.close()

            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
            got = b""
            while got.count(b"\r\n\r\nok") < 10:
                chunk = await asyncio.wait_for(r.read(4096), 5)
                assert chunk
                got += chunk
            assert got.count(b"HTTP/1.1 200") == 10
            w.close()
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)

    run(loop, main)


def test_websockets_server_close_with_clients(loop):
    async def hold(ws):
        await ws.wait_closed()

    async def main():
        async with websockets.asyncio.server.serve(hold, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            clients = [await websockets.asyncio.client.connect(f"ws://127.0.0.1:{port}")
                       for _ in range(5)]
            server.close()
            await asyncio.wait_for(server.wait_closed(), 5)
            for ws in clients:
                await asyncio.wait_for(ws.wait_closed(), 5)
                assert ws.close_code == 1001  # going away

    run(loop, main)


# ------------------------------------------------------------------ anyio

def test_anyio_task_groups(loop):
    async def main():
        results = []

        async def worker(i):
            await anyio.sleep(0.01 * (i % 5))
            results.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(worker, i)
        assert sorted(results) == list(range(100))

        # An error in one task cancels its siblings and reaches the caller.
        cancelled = []

        async def sleeper():
            try:
                await anyio.sleep(10)
            except anyio.get_cancelled_exc_class():
                cancelled.append(True)
                raise

        async def boom():
            await anyio.sleep(0.01)
            raise ValueError("boom")

        with pytest.raises(BaseExceptionGroup) as ei:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sleeper)
                tg.start_soon(sleeper)
                tg.start_soon(boom)
        assert [type(e) for e in ei.value.exceptions] == [ValueError]
        assert cancelled == [True, True]

        with anyio.move_on_after(0.05) as scope:
            await anyio.sleep(5)
        assert scope.cancelled_caught

        send, recv = anyio.create_memory_object_stream(10)
        async with anyio.create_task_group() as tg:
            async def produce():
                async with send:
                    for i in range(1000):
                        await send.send(i)
            tg.start_soon(produce)
            async with recv:
                got = [i async for i in recv]
        assert got == list(range(1000))

    run(loop, main)


async def _anyio_echo(stream):
    """An anyio stream echo handler."""
    async with stream:
        async for chunk in stream:
            await stream.send(chunk)


def test_anyio_tcp(loop):
    handle = _anyio_echo

    async def main():
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)

            async def client(i):
                payload = bytes([i]) * (100_000 + i)
                async with await anyio.connect_tcp("127.0.0.1", port) as c:
                    await c.send(payload)
                    got = b""
                    while len(got) < len(payload):
                        got += await c.receive()
                    await c.send_eof()
                    with pytest.raises(anyio.EndOfStream):
                        await c.receive()
                    return got == payload
            results = []
            async with anyio.create_task_group() as clients:
                async def one(i):
                    results.append(await client(i))
                for i in range(10):
                    clients.start_soon(one, i)
            assert results == [True] * 10
            tg.cancel_scope.cancel()

    run(loop, main)


def test_anyio_more_sockets(loop, tmp_path):
    """Unix listener and stream, TCP to "localhost" (getaddrinfo, happy
    eyeballs), UDP, wait_readable (add_reader), a signal receiver
    (add_signal_handler); then a server started right after a closed anyio
    listener, on the same fd number (test_fd_reuse.py: it never accepted)."""
    import signal
    import socket

    async def reverse(stream):
        async with stream:
            async for chunk in stream:
                await stream.send(chunk[::-1])

    async def main():
        path = str(tmp_path / "a.sock")
        async with await anyio.create_unix_listener(path) as ul, \
                await anyio.create_tcp_listener(local_host="localhost") as tl, \
                anyio.create_task_group() as tg:
            tg.start_soon(ul.serve, reverse)
            tg.start_soon(tl.serve, reverse)
            async with await anyio.connect_unix(path) as c:
                await c.send(b"abc")
                assert await c.receive() == b"cba"
            port = tl.extra(anyio.abc.SocketAttribute.local_port)
            async with await anyio.connect_tcp("localhost", port) as c:
                await c.send(b"xyz")
                assert await c.receive() == b"zyx"

            async with await anyio.create_udp_socket(local_host="127.0.0.1") as u1, \
                    await anyio.create_udp_socket(local_host="127.0.0.1") as u2:
                p1 = u1.extra(anyio.abc.SocketAttribute.local_port)
                await u2.sendto(b"dgram", "127.0.0.1", p1)
                data, addr = await u1.receive()
                assert data == b"dgram"
                assert addr[1] == u2.extra(anyio.abc.SocketAttribute.local_port)

            a, b = socket.socketpair()
            with a, b:
                async def later():
                    await anyio.sleep(0.05)
                    b.send(b"!")
                tg.start_soon(later)
                with anyio.fail_after(5):
                    await anyio.wait_readable(a)
                assert a.recv(1) == b"!"

            with anyio.open_signal_receiver(signal.SIGUSR1) as sigs:
                os.kill(os.getpid(), signal.SIGUSR1)
                with anyio.fail_after(5):
                    async for signum in sigs:
                        assert signum == signal.SIGUSR1
                        break
            tg.cancel_scope.cancel()

        # A listener's serve() cancelled (its sock_accept with it), then a
        # server at once: on the listener's fd number, it must accept.
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as tl, \
                anyio.create_task_group() as tg:
            fd = tl.extra(anyio.abc.SocketAttribute.raw_socket).fileno()
            tg.start_soon(tl.serve, reverse)
            await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        srv = await asyncio.start_server(
            lambda r, w: w.close(), "127.0.0.1", 0)
        try:
            assert srv.sockets[0].fileno() == fd
            r, w = await asyncio.open_connection(
                "127.0.0.1", srv.sockets[0].getsockname()[1])
            assert await asyncio.wait_for(r.read(), 5) == b""
            w.close()
        finally:
            srv.close()
            await srv.wait_closed()

    run(loop, main)


def test_anyio_tls(loop, server_ctx, client_ctx):
    from anyio.streams.tls import TLSListener

    echo = _anyio_echo

    async def main():
        tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = tcp.extra(anyio.abc.SocketAttribute.local_port)
        async with TLSListener(tcp, server_ctx) as tl, anyio.create_task_group() as tg:
            tg.start_soon(tl.serve, echo)
            async with await anyio.connect_tcp("127.0.0.1", port, ssl_context=client_ctx,
                                               tls_hostname="localhost") as c:
                payload = os.urandom(1 << 20)
                await c.send(payload)
                got = b""
                while len(got) < len(payload):
                    got += await c.receive()
                assert got == payload
            tg.cancel_scope.cancel()

    run(loop, main)


def test_anyio_processes_and_threads(loop):
    async def main():
        r = await anyio.run_process(["echo", "hi"])
        assert r.returncode == 0 and r.stdout == b"hi\n"
        data = os.urandom(1 << 20)
        r = await anyio.run_process(["cat"], input=data)
        assert r.stdout == data
        r = await anyio.run_process([sys.executable, "-c", "import sys; sys.exit(3)"], check=False)
        assert r.returncode == 3
        async with await anyio.open_process([sys.executable, "-u", "-c",
                                             "import sys\nfor l in sys.stdin: print(l.strip()[::-1])"]) as p:
            await p.stdin.send(b"abc\nxyz\n")
            await p.stdin.aclose()
            out = b""
            async for chunk in p.stdout:
                out += chunk
            assert out == b"cba\nzyx\n"
        assert p.returncode == 0

        assert await anyio.to_thread.run_sync(lambda: 42) == 42
        import threading
        main_thread = threading.get_ident()

        def in_thread(i):
            assert threading.get_ident() != main_thread
            # Back onto the loop from the worker thread.
            return anyio.from_thread.run(anyio.sleep, 0) is None and i * 2
        got = await asyncio.gather(*[anyio.to_thread.run_sync(in_thread, i) for i in range(20)])
        assert got == [i * 2 for i in range(20)]

    run(loop, main)


# --------------------------------------------------------------- aiofiles

def test_aiofiles(loop, tmp_path):
    async def main():
        path = tmp_path / "f.bin"
        data = os.urandom(3 << 20)
        async with aiofiles.open(path, "wb") as f:
            for i in range(0, len(data), 1 << 20):
                await f.write(data[i:i + (1 << 20)])
        async with aiofiles.open(path, "rb") as f:
            assert await f.read() == data
        text = tmp_path / "t.txt"
        async with aiofiles.open(text, "w") as f:
            await f.write("".join(f"line {i}\n" for i in range(1000)))
        async with aiofiles.open(text) as f:
            lines = [line async for line in f]
        assert lines == [f"line {i}\n" for i in range(1000)]
        await aiofiles.os.rename(text, tmp_path / "u.txt")
        assert await aiofiles.os.path.exists(tmp_path / "u.txt")
        assert not await aiofiles.os.path.exists(text)
        assert (await aiofiles.os.stat(path)).st_size == len(data)
        # Many at once (each on the default executor).
        async def rw(i):
            p = tmp_path / f"n{i}"
            async with aiofiles.open(p, "w") as f:
                await f.write(str(i))
            async with aiofiles.open(p) as f:
                return await f.read()
        assert await asyncio.gather(*[rw(i) for i in range(50)]) == [str(i) for i in range(50)]

    run(loop, main)
