"""Scheduling, coroutines, tasks, threads, runners (both loops)."""

import asyncio
import concurrent.futures
import sys
import threading
import time

import pytest

import asyncloop


def test_is_asyncloop(aloop):
    assert isinstance(aloop, asyncloop.EventLoop)
    assert isinstance(aloop, asyncio.AbstractEventLoop)

    async def main():
        return asyncio.get_running_loop()

    assert aloop.run_until_complete(main()) is aloop


def test_coroutine_result_and_exception(loop):
    async def ok():
        await asyncio.sleep(0)
        return 42

    async def bad():
        await asyncio.sleep(0)
        raise ValueError("boom")

    assert loop.run_until_complete(ok()) == 42
    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(bad())


def test_tasks_gather_and_sleep(loop):
    order = []

    async def worker(name, delay):
        await asyncio.sleep(delay)
        order.append(name)
        return name

    async def main():
        t0 = loop.time()
        res = await asyncio.gather(worker("c", 0.06), worker("a", 0.02), worker("b", 0.04))
        return res, loop.time() - t0

    res, elapsed = loop.run_until_complete(main())
    assert res == ["c", "a", "b"]
    assert order == ["a", "b", "c"]
    assert elapsed >= 0.06 - 0.002


def test_sleep_really_waits(loop):
    t0 = time.monotonic()
    loop.run_until_complete(asyncio.sleep(0.1))
    assert time.monotonic() - t0 >= 0.099


def test_call_soon_fifo(loop):
    seen = []
    for i in range(100):
        loop.call_soon(seen.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == list(range(100))


def test_call_later_order_and_cancel(loop):
    seen = []
    loop.call_later(0.03, seen.append, 3)
    loop.call_later(0.01, seen.append, 1)
    h = loop.call_later(0.02, seen.append, 2)
    loop.call_at(loop.time() + 0.015, seen.append, 1.5)
    loop.call_soon(seen.append, 0)
    h.cancel()
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert seen == [0, 1, 1.5, 3]
    assert h.cancelled()


def test_timer_handle_when(loop):
    when = loop.time() + 10
    h = loop.call_at(when, lambda: None)
    assert h.when() == when
    h.cancel()


def test_stop_semantics(loop):
    # Callbacks scheduled by callbacks of the stopping iteration run next time.
    seen = []

    def first():
        seen.append("first")
        loop.call_soon(seen.append, "second")
        loop.stop()

    loop.call_soon(first)
    loop.run_forever()
    assert seen == ["first"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["first", "second"]


def test_call_soon_threadsafe_many_threads(loop):
    n_threads, per_thread = 4, 500
    got = []
    done = threading.Event()

    def on_loop(item):
        got.append(item)
        if len(got) == n_threads * per_thread:
            loop.stop()

    def producer(tid):
        done.wait()
        for i in range(per_thread):
            loop.call_soon_threadsafe(on_loop, (tid, i))

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    loop.call_soon(done.set)
    loop.call_later(10, loop.stop)  # safety net
    loop.run_forever()
    for t in threads:
        t.join()
    assert len(got) == n_threads * per_thread
    for tid in range(n_threads):
        mine = [i for (t, i) in got if t == tid]
        assert mine == list(range(per_thread))  # per-thread order kept


# epoll system calls by architecture: number -> whether its 4th argument is a
# timeout in ms (epoll_wait, epoll_pwait) or a timespec pointer (epoll_pwait2).
_EPOLL_WAITS = {
    "x86_64": {232: "ms", 281: "ms", 441: "timespec"},
    "aarch64": {22: "ms", 441: "timespec"},
}


def _waits_forever(tid):
    """Whether thread `tid` of this process is blocked in an epoll wait
    without a timeout, read from /proc/self/task/<tid>/syscall (the system
    call it is blocked in and its arguments); None if /proc cannot tell."""
    import platform

    calls = _EPOLL_WAITS.get(platform.machine())
    try:
        fields = open(f"/proc/self/task/{tid}/syscall").read().split()
    except OSError:
        return None
    if calls is None or not fields or not fields[0].isdigit():
        return None if calls is None else False  # "running": not in a syscall
    kind = calls.get(int(fields[0]))
    if kind is None or len(fields) < 5:
        return False
    arg = int(fields[4], 16)
    return arg == 0 if kind == "timespec" else arg & 0xFFFFFFFF == 0xFFFFFFFF


def test_call_soon_threadsafe_wakes_idle_loop(loop):
    # Nothing scheduled: the loop waits without a timeout (seen from /proc:
    # its thread blocked in epoll with an infinite timeout) until the thread
    # posts a callback, which wakes it.
    loop_tid = threading.get_native_id()
    t_posted = []
    seen_waiting = []

    def thread():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            state = _waits_forever(loop_tid)
            if state is not False:
                seen_waiting.append(state)
                break
            time.sleep(0.001)
        t_posted.append(time.monotonic())
        loop.call_soon_threadsafe(loop.stop)

    th = threading.Thread(target=thread)
    th.start()
    loop.run_forever()
    woke = time.monotonic()
    th.join()
    if seen_waiting == [None]:
        pytest.skip("/proc/self/task/<tid>/syscall is not available here")
    assert seen_waiting == [True], "the loop never waited without a timeout"
    print(f"wake-up latency: {(woke - t_posted[0]) * 1e6:.0f} us")
    assert woke - t_posted[0] < 5.0


def test_run_in_executor(loop):
    def blocking(x):
        time.sleep(0.02)
        return threading.get_ident(), x * 2

    async def main():
        return await asyncio.gather(*(loop.run_in_executor(None, blocking, i) for i in range(4)))

    res = loop.run_until_complete(main())
    assert [r[1] for r in res] == [0, 2, 4, 6]
    assert all(r[0] != threading.get_ident() for r in res)
    loop.run_until_complete(loop.shutdown_default_executor())


def test_run_coroutine_threadsafe(loop):
    async def add(a, b):
        await asyncio.sleep(0.01)
        return a + b

    result = []

    def thread():
        fut = asyncio.run_coroutine_threadsafe(add(2, 3), loop)
        result.append(fut.result(timeout=5))
        loop.call_soon_threadsafe(loop.stop)

    th = threading.Thread(target=thread)
    th.start()
    loop.run_forever()
    th.join()
    assert result == [5]


def test_wait_for_timeout_and_cancel(loop):
    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), 0.02)
        task = asyncio.ensure_future(asyncio.sleep(10))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        done, pending = await asyncio.wait(
            [asyncio.ensure_future(asyncio.sleep(0.01, "x")), asyncio.ensure_future(asyncio.sleep(5))],
            return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        return [d.result() for d in done]

    assert loop.run_until_complete(main()) == ["x"]


def test_exception_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        raise ZeroDivisionError

    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)


def test_close_semantics(loop):
    assert not loop.is_closed()
    loop.close()
    loop.close()  # idempotent
    assert loop.is_closed()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError):
        loop.call_soon(lambda: None)


def test_close_while_running_fails(loop):
    async def main():
        with pytest.raises(RuntimeError):
            loop.close()

    loop.run_until_complete(main())


def test_debug_mode(loop):
    loop.set_debug(True)
    assert loop.get_debug()

    async def main():
        await asyncio.sleep(0)
        return 1

    assert loop.run_until_complete(main()) == 1
    loop.set_debug(False)
    assert not loop.get_debug()


def test_asyncgen_shutdown(loop):
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append(True)

    async def main():
        async for x in agen():
            return x

    assert loop.run_until_complete(main()) == 1
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert finalized == [True]


def test_runner_with_loop_factory():
    async def main():
        await asyncio.sleep(0.001)
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=asyncloop.new_event_loop) as runner:
        assert runner.run(main()) is asyncloop.EventLoop
        assert runner.run(main()) is asyncloop.EventLoop


def test_asyncloop_run():
    async def main():
        await asyncio.sleep(0.001)
        return type(asyncio.get_running_loop())

    assert asyncloop.run(main()) is asyncloop.EventLoop
    assert asyncloop.run(main(), debug=True) is asyncloop.EventLoop


def test_install_then_asyncio_run():
    async def main():
        return type(asyncio.get_running_loop())

    if sys.version_info >= (3, 12):  # deprecated there, as uvloop.install()
        with pytest.warns(DeprecationWarning, match=r"asyncloop.install\(\) is deprecated"):
            asyncloop.install()
    else:
        asyncloop.install()
    try:
        assert isinstance(asyncio.get_event_loop_policy(), asyncloop.EventLoopPolicy)
        assert asyncio.run(main()) is asyncloop.EventLoop
        lp = asyncio.new_event_loop()
        assert isinstance(lp, asyncloop.EventLoop)
        lp.close()
    finally:
        asyncio.set_event_loop_policy(None)


def test_run_from_running_loop_fails(aloop):
    async def main():
        coro = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError):
                asyncloop.run(coro)
        finally:
            coro.close()

    aloop.run_until_complete(main())


def test_many_loops_in_threads():
    def in_thread(res, i):
        async def main():
            await asyncio.sleep(0.01)
            return i

        res[i] = asyncloop.run(main())

    res = {}
    threads = [threading.Thread(target=in_thread, args=(res, i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert res == {0: 0, 1: 1, 2: 2, 3: 3}


def test_executor_future_wrap(loop):
    ex = concurrent.futures.ThreadPoolExecutor(1)
    try:
        async def main():
            return await asyncio.wrap_future(ex.submit(lambda: 7))

        assert loop.run_until_complete(main()) == 7
    finally:
        ex.shutdown()


def test_call_later_and_call_at_reject_nan(aloop):
    """Issue 9: a NaN time raises ValueError, as uvloop does (asyncio takes
    it, and a NaN in its timer heap breaks the order of the other timers)."""
    import math
    fired = []
    for call in (lambda: aloop.call_later(math.nan, fired.append, 1),
                 lambda: aloop.call_at(math.nan, fired.append, 1),
                 lambda: aloop.call_later(float("nan"), fired.append, 1)):
        with pytest.raises(ValueError):
            call()
    aloop.call_later(0.01, fired.append, 2)
    aloop.call_later(0.05, aloop.stop)
    aloop.run_forever()
    assert fired == [2]


def test_infinite_times_are_never_and_now(loop):
    """Infinity is a time that never comes (asyncio.sleep(math.inf) and
    wait_for(..., math.inf) sleep forever; uvloop too), minus infinity is
    now. Both loops."""
    import math
    fired = []
    h = loop.call_later(math.inf, fired.append, "never")
    assert h.when() == math.inf
    h2 = loop.call_at(math.inf, fired.append, "never")
    loop.call_at(-math.inf, fired.append, "now")
    loop.call_later(-math.inf, fired.append, "now too")

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(math.inf), 0.05)

    loop.run_until_complete(main())
    assert fired == ["now", "now too"]
    h.cancel()
    h2.cancel()
