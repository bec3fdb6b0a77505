"""What differs between the Python versions asyncloop supports (3.11, 3.12,
3.13): the features newer asyncio versions added, on both loops where the
running asyncio has them (asyncio is the reference); the runner and policy
API along Python 3.14's direction; free-threaded builds."""

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import warnings

import pytest

import asyncloop

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)


def _needs(loop, version, what):
    """asyncio (the reference) has `what` only from `version` on; asyncloop
    has it on every supported version."""
    if not isinstance(loop, asyncloop.EventLoop) and sys.version_info < version:
        pytest.skip(f"asyncio {sys.version_info[0]}.{sys.version_info[1]} has no {what}")


# -- runner and policy (3.14 deprecates the policy system) ---------------------------


def test_run_uses_no_policy():
    """asyncloop.run() rests on asyncio.Runner(loop_factory=...): the policy
    is never asked for a loop."""

    class Refusing(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self):
            raise AssertionError("the policy was asked for a loop")

    async def main():
        return type(asyncio.get_running_loop())

    asyncio.set_event_loop_policy(Refusing())
    try:
        assert asyncloop.run(main()) is asyncloop.EventLoop
    finally:
        asyncio.set_event_loop_policy(None)


def test_run_loop_factory():
    class Sub(asyncloop.EventLoop):
        pass

    async def main():
        return type(asyncio.get_running_loop())

    assert asyncloop.run(main(), loop_factory=Sub) is Sub
    coro = main()
    with pytest.raises(TypeError, match="non-asyncloop event loop"):
        asyncloop.run(coro, loop_factory=asyncio.new_event_loop)
    assert coro.cr_frame is None  # closed: no "never awaited" warning


@pytest.mark.skipif(not PY312, reason="asyncio.run(loop_factory=) is Python 3.12's")
def test_asyncio_run_with_loop_factory():
    async def main():
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=asyncloop.new_event_loop) is asyncloop.EventLoop


def test_install_deprecated_from_312():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncloop.install()
    asyncio.set_event_loop_policy(None)
    got = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    if PY312:
        assert len(got) == 1, [str(w.message) for w in caught]
        assert "asyncloop.install() is deprecated in favor of asyncloop.run()" in str(got[0].message)
        assert got[0].filename == __file__  # points at the caller
    else:
        assert got == []


def test_policy_names_made_on_first_use(child_env):
    """Importing asyncloop touches none of asyncio's policy names (deprecated
    by 3.14): EventLoopPolicy and install are made on first use."""
    code = (
        "import sys, asyncloop\n"
        "assert 'asyncloop._policy' not in sys.modules\n"
        "assert 'EventLoopPolicy' in asyncloop.__all__ and 'install' in asyncloop.__all__\n"
        "p = asyncloop.EventLoopPolicy()\n"
        "assert isinstance(p.new_event_loop(), asyncloop.EventLoop)\n"
        "assert 'asyncloop._policy' in sys.modules\n"
        "try:\n"
        "    asyncloop.nothing\n"
        "except AttributeError as e:\n"
        "    assert 'nothing' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], env=child_env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_binding_uses_no_api_that_314_removes_or_deprecates():
    """Python 3.14 removes the child watchers (asyncio.*ChildWatcher,
    get/set_child_watcher) and deprecates asyncio.iscoroutinefunction and the
    policy functions; asyncloop's code uses none of them (the policy ones only
    in _policy.py, made on first use)."""
    root = os.path.dirname(asyncloop.__file__)
    for name in sorted(os.listdir(root)):
        if name.endswith(".py"):
            with open(os.path.join(root, name), encoding="utf-8") as f:
                code = "\n".join(line for line in f if not line.lstrip().startswith("#"))
            for gone in ("ChildWatcher", "get_child_watcher", "set_child_watcher",
                         "asyncio.iscoroutinefunction(", "coroutines.iscoroutinefunction(",
                         "get_event_loop_policy("):
                assert gone not in code, (name, gone)
            if name != "_policy.py":
                for policy in ("set_event_loop_policy(", "asyncio.DefaultEventLoopPolicy",
                               "asyncio.AbstractEventLoopPolicy"):
                    assert policy not in code, (name, policy)


def test_free_threaded_without_gil_is_refused(child_env):
    """A free-threaded interpreter running without the GIL is refused at
    import with a clear message.  (This machine has no python3.13t: the
    child reports its GIL as disabled, which is what asyncloop reads.)"""
    code = ("import sys\n"
            "sys._is_gil_enabled = lambda: False\n"
            "try:\n"
            "    import asyncloop\n"
            "except ImportError as e:\n"
            "    print(e)\n"
            "else:\n"
            "    print('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], env=child_env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "does not support free-threaded Python running without the GIL" in out.stdout
    assert "PYTHON_GIL=1" in out.stdout


def test_gil_enabled_imports(child_env):
    code = ("import sys\n"
            "sys._is_gil_enabled = lambda: True\n"
            "import asyncloop\n"
            "print('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], env=child_env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "imported"


# -- 3.12: eager tasks ----------------------------------------------------------------


@pytest.mark.skipif(not PY312, reason="asyncio.eager_task_factory is Python 3.12's")
def test_eager_task_factory(loop):
    """With asyncio.eager_task_factory a task's first step runs inside
    create_task; one that finishes there never reaches the ready queue."""
    order = []

    async def quick():
        order.append("quick ran")
        return 1

    async def slow():
        order.append("slow first step")
        await asyncio.sleep(0)
        order.append("slow resumed")
        return 2

    async def main():
        loop.set_task_factory(asyncio.eager_task_factory)
        t1 = loop.create_task(quick())
        order.append("after create_task(quick)")
        assert t1.done() and t1.result() == 1
        t2 = asyncio.create_task(slow())
        order.append("after create_task(slow)")
        assert not t2.done()
        async with asyncio.TaskGroup() as tg:
            t3 = tg.create_task(quick())
            assert t3.done()
        return await t2

    assert loop.run_until_complete(main()) == 2
    assert order == ["quick ran", "after create_task(quick)", "slow first step",
                     "after create_task(slow)", "quick ran", "slow resumed"]


def test_timeout_and_taskgroup(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await asyncio.sleep(10)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(10) as cm:
                cm.reschedule(loop.time() + 0.02)
                await asyncio.sleep(10)
        assert cm.expired()
        async with asyncio.timeout(0.5):
            await asyncio.sleep(0)

    loop.run_until_complete(main())

    async def group():
        async def boom():
            await asyncio.sleep(0.01)
            raise ValueError("boom")

        async with asyncio.TaskGroup() as tg:
            tg.create_task(boom())
            tg.create_task(asyncio.sleep(10))

    with pytest.raises(ExceptionGroup) as info:
        loop.run_until_complete(group())
    assert [type(e) for e in info.value.exceptions] == [ValueError]


@pytest.mark.skipif(not PY312, reason="shutdown_default_executor(timeout) is Python 3.12's")
def test_shutdown_default_executor_timeout(loop):
    """(asyncio.Runner.close passes a timeout from 3.12 on.)"""
    import time

    async def main():
        fut = loop.run_in_executor(None, time.sleep, 0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "did not finish joining" on some versions
            await loop.shutdown_default_executor(timeout=0.01)
        await fut
        with pytest.raises(RuntimeError, match="shutdown"):
            await loop.run_in_executor(None, time.sleep, 0)

    loop.run_until_complete(main())


# -- 3.13: servers ---------------------------------------------------------------------


class _Hold(asyncio.Protocol):
    def __init__(self, lost):
        self.lost = lost

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


def test_create_server_keep_alive(loop):
    _needs(loop, (3, 13), "create_server(keep_alive=)")
    accepted = []

    class P(asyncio.Protocol):
        def connection_made(self, transport):
            accepted.append(transport.get_extra_info("socket"))

    async def main():
        results = {}
        for keep_alive in (True, None):
            srv = await loop.create_server(P, "127.0.0.1", 0, keep_alive=keep_alive)
            port = srv.sockets[0].getsockname()[1]
            assert srv.is_serving()
            tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            for _ in range(200):
                if accepted:
                    break
                await asyncio.sleep(0.005)
            sock = accepted.pop()
            results[keep_alive] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            tr.close()
            srv.close()
            await srv.wait_closed()
        return results

    got = loop.run_until_complete(main())
    assert got[True] != 0 and got[None] == 0


def test_keep_alive_with_start_serving_false(loop):
    _needs(loop, (3, 13), "create_server(keep_alive=)")

    async def main():
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, keep_alive=True,
                                       start_serving=False)
        assert not srv.is_serving()
        sock = srv.sockets[0]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        await srv.start_serving()
        assert srv.is_serving()
        srv.close()
        await srv.wait_closed()

    loop.run_until_complete(main())


@pytest.mark.parametrize("how", ["close_clients", "abort_clients"])
def test_server_close_or_abort_clients(loop, how):
    _needs(loop, (3, 13), "Server.close_clients/abort_clients")

    async def main():
        losts = []

        def factory():
            lost = loop.create_future()
            losts.append(lost)
            return _Hold(lost)

        srv = await loop.create_server(factory, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        clients = []
        for _ in range(3):
            clients.append(await loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
        for _ in range(200):
            if len(losts) == 3:
                break
            await asyncio.sleep(0.005)
        assert len(losts) == 3
        waiter = asyncio.ensure_future(srv.wait_closed())
        srv.close()
        await asyncio.sleep(0.02)
        # 3.12+: wait_closed waits for the connections (3.11 returns at once)
        assert waiter.done() == (not PY312)
        assert not any(f.done() for f in losts)
        getattr(srv, how)()
        assert await asyncio.wait_for(asyncio.gather(*losts), 10) == [None, None, None]
        await asyncio.wait_for(waiter, 10)
        getattr(srv, how)()  # nothing left: a no-op
        for tr, _ in clients:
            tr.close()

    loop.run_until_complete(main())


def test_unix_server_from_sock_removes_its_file(loop):
    """create_unix_server(sock=) removes the socket file at close (Python
    3.13; asyncloop does it on every version, as for path=), unless
    cleanup_socket=False or the file was replaced."""
    _needs(loop, (3, 13), "Unix socket file clean-up")

    async def main(d):
        results = []
        for cleanup, replace in ((True, False), (False, False), (True, True)):
            path = os.path.join(d, f"s-{cleanup}-{replace}")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            srv = await loop.create_unix_server(asyncio.Protocol, sock=sock,
                                                cleanup_socket=cleanup)
            other = None
            if replace:
                os.unlink(path)
                other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                other.bind(path)
            srv.close()
            await srv.wait_closed()
            results.append(os.path.exists(path))
            if other is not None:
                other.close()
        return results

    with tempfile.TemporaryDirectory() as d:
        assert loop.run_until_complete(main(d)) == [False, True, True]


def test_datagram_endpoint_rejects_stream_socket(loop):
    """The message names what the running asyncio names (3.13: 'A datagram
    socket was expected')."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(ValueError) as info:
            loop.run_until_complete(loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=s))
        want = "A datagram socket was expected" if PY313 else "A UDP Socket was expected"
        assert str(info.value).startswith(want)
    finally:
        s.close()
