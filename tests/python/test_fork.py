"""Use after os.fork() raises RuntimeError in the child instead of calling
into the Go runtime (which does not survive fork)."""

import asyncio
import os
import sys

import asyncloop


def _run_in_child(fn):
    pid = os.fork()
    if pid == 0:  # child
        code = 99
        try:
            code = fn()
        except BaseException as exc:  # noqa: BLE001
            print("child failed:", type(exc).__name__, exc, file=sys.stderr, flush=True)
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_fork_child_raises_runtime_error(aloop):
    aloop.run_until_complete(asyncio.sleep(0.001))  # the library is loaded and used

    def child():
        codes = 0
        try:
            asyncloop.new_event_loop()
        except RuntimeError as exc:
            assert "fork" in str(exc)
            codes += 1
        try:
            aloop.run_until_complete(asyncio.sleep(0))
        except RuntimeError as exc:
            assert "fork" in str(exc)
            codes += 1
        try:
            asyncloop.run(asyncio.sleep(0))
        except RuntimeError as exc:
            assert "fork" in str(exc)
            codes += 1
        aloop.close()  # closing an inherited loop is quiet and does not call Go
        return 10 + codes

    assert _run_in_child(child) == 13
    # The parent is unaffected.
    assert aloop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"


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


def test_fork_child_gets_error_from_running_loop_apis(aloop):
    """In the child, the asyncio-level API of an inherited loop fails with
    the fork error too (not a hang), including transports."""

    async def main():
        server = await aloop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        return server

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


def _spawned_worker(n):
    # Runs in a fresh interpreter (spawn): the library loads anew there.
    import asyncio

    import asyncloop

    async def main():
        await asyncio.sleep(0.001)
        return n * 2

    return asyncloop.run(main())


def test_multiprocessing_spawn_works(aloop, child_env, monkeypatch):
    import multiprocessing

    aloop.run_until_complete(asyncio.sleep(0.001))
    for k in ("PYTHONPATH", "ASYNCLOOP_LIBRARY"):
        if child_env.get(k):
            monkeypatch.setenv(k, child_env[k])
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        assert pool.map(_spawned_worker, [1, 2, 3]) == [2, 4, 6]
