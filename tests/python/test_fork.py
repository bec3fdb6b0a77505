"""os.fork(): the Go runtime inside a loaded library does not survive fork,
so in a child a loop created before the fork raises RuntimeError (it does
not hang), and new loops work (a fresh copy of the library).  multiprocessing's
fork start method (Linux's default before Python 3.14) works, with
asyncloop.install() in force, as with asyncio.  A process that never loaded
the library forks without any of this."""

import asyncio
import os
import signal
import time
import subprocess
import sys
import textwrap

import pytest

import asyncloop
from asyncloop import _bindings

pytestmark = [
    # Python 3.12+ warns at fork() in a process with threads (the library's
    # Go runtime has some): said in bindings/python/README.md.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:asyncloop.install.. is deprecated:DeprecationWarning"),
]


def _run_in_child(fn):
    pid = os.fork()
    if pid == 0:  # child
        code = 99
        try:
            code = fn()
        except BaseException as exc:  # noqa: BLE001
            print("child failed:", type(exc).__name__, exc, file=sys.stderr, flush=True)
        os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:  # a hung child fails the test, not the run
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.01)


async def _echo_roundtrip():
    loop = asyncio.get_running_loop()

    async def handle(r, w):
        w.write(await r.readline())
        await w.drain()
        w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    r, w = await asyncio.open_connection(*srv.sockets[0].getsockname())
    w.write(b"ping\n")
    line = await r.readline()
    w.close()
    srv.close()
    await srv.wait_closed()
    return line, type(loop).__module__


def test_inherited_loop_raises_new_loops_work(aloop):
    aloop.run_until_complete(asyncio.sleep(0.001))  # the library is loaded and used

    def child():
        codes = 0
        try:
            aloop.run_until_complete(asyncio.sleep(0))
        except RuntimeError as exc:
            assert "fork" in str(exc)
            codes += 1
        aloop.close()  # closing an inherited loop is quiet and does not call Go
        loop = asyncloop.new_event_loop()
        assert loop.run_until_complete(_echo_roundtrip()) == (b"ping\n", "asyncloop._loop")
        loop.close()
        assert asyncloop.run(_echo_roundtrip())[0] == b"ping\n"
        assert asyncloop.library_path() == parent_path
        return 10 + codes

    parent_path = asyncloop.library_path()
    assert _run_in_child(child) == 11
    # The parent is unaffected.
    assert aloop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"


def test_inherited_transports_and_servers_fail_clearly(aloop):
    async def main():
        return await aloop.create_server(asyncio.Protocol, "127.0.0.1", 0)

    server = aloop.run_until_complete(main())

    def child():
        try:
            aloop.run_until_complete(asyncio.sleep(0))
        except RuntimeError as exc:
            return 20 if "fork" in str(exc) else 21
        return 22

    try:
        assert _run_in_child(child) == 20
    finally:
        server.close()
        aloop.run_until_complete(server.wait_closed())


def test_fork_in_a_forked_child(aloop):
    """A child that loaded its own copy forks again: the grandchild loads
    yet another."""
    aloop.run_until_complete(asyncio.sleep(0.001))

    def copies():
        """The distinct in-memory copies of the library mapped here."""
        with open("/proc/self/maps") as f:
            return len({line.split()[4] for line in f if "memfd:libasyncloop" in line})

    def grandchild():
        # Its own copy, not the one inherited from the child (whose Go
        # runtime has no threads here: a loop on it hangs once the runtime
        # needs another thread).
        return 3 if asyncloop.run(_echo_roundtrip())[0] and copies() == 2 else 4

    def child():
        asyncloop.run(asyncio.sleep(0))
        return 30 + (_run_in_child(grandchild) == 3)

    assert _run_in_child(child) == 31


def test_fork_then_exec_works(aloop):
    """A child that only execs (never calls the library) is fine."""
    aloop.run_until_complete(asyncio.sleep(0.001))
    pid = os.fork()
    if pid == 0:  # child: exec at once
        try:
            os.execv(sys.executable, [sys.executable, "-c", "import sys; sys.exit(7)"])
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7
    assert aloop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"


def test_only_imported_forks_freely(child_env):
    """A process that only imported asyncloop: nothing is inherited, the
    child loads the library from its file as the parent would."""
    code = textwrap.dedent("""
        import asyncio, os, sys
        import asyncloop
        from asyncloop import _bindings
        pid = os.fork()
        if pid == 0:
            ok = (not _bindings.forked and asyncloop.run(asyncio.sleep(0, 5)) == 5
                  and not _bindings.forked and asyncloop.library_path() == _bindings.find_library())
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """)
    r = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()


def _forked_worker(n):
    # With asyncloop.install() inherited from the parent when testing
    # asyncloop: asyncio.run makes an asyncloop loop in the child.
    line, module = asyncio.run(_echo_roundtrip())
    return n * 2, line, module


@pytest.mark.parametrize("kind", ["asyncio", "asyncloop"])
def test_multiprocessing_fork_pool(kind):
    import multiprocessing

    if kind == "asyncloop":
        asyncloop.install()
    # The parent used its loop before forking.
    assert asyncio.run(_echo_roundtrip())[0] == b"ping\n"
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        got = pool.map(_forked_worker, [1, 2, 3])
    module = "asyncloop._loop" if kind == "asyncloop" else "asyncio.unix_events"
    assert got == [(2, b"ping\n", module), (4, b"ping\n", module), (6, b"ping\n", module)]
    # And the parent goes on.
    assert asyncio.run(_echo_roundtrip()) == (b"ping\n", module)


def test_get_event_loop_in_child_after_install(aloop):
    """asyncio.get_event_loop() in a child does not return the parent's
    loop (which cannot run there)."""
    asyncloop.install()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(asyncio.sleep(0))

    def child():
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            lp = asyncio.get_event_loop()
        ok = lp is not loop and lp.run_until_complete(asyncio.sleep(0, 1)) == 1
        return 40 if ok else 41

    try:
        assert _run_in_child(child) == 40
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_multiprocessing_spawn_works(aloop, child_env, monkeypatch):
    import multiprocessing

    aloop.run_until_complete(asyncio.sleep(0.001))
    for k in ("PYTHONPATH", "ASYNCLOOP_LIBRARY"):
        if child_env.get(k):
            monkeypatch.setenv(k, child_env[k])
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        assert pool.map(_spawned_worker, [1, 2, 3]) == [2, 4, 6]


def _spawned_worker(n):
    # Runs in a fresh interpreter (spawn): the library loads anew there.
    async def main():
        await asyncio.sleep(0.001)
        return n * 2

    return asyncloop.run(main())
