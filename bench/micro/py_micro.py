#!/usr/bin/env python3
"""Micro-benchmarks of the Python suite: one workload, one loop, one process.

    py_micro.py IMPL WORKLOAD

IMPL: asyncio | uvloop | rloop | asyncloop
WORKLOAD (the count is part of the workload's definition):
  call_soon             a chain of 200,000 call_soon callbacks (each
                        schedules the next)
  call_soon_threadsafe  200,000 call_soon_threadsafe calls from another
                        thread, until the loop ran them all
  call_later_cancel     200,000 call_later(10 s) handles, each cancelled,
                        then one loop iteration
  sleep0_tasks          50,000 tasks doing `await asyncio.sleep(0)`, in
                        batches of 5,000 (gather)
  getaddrinfo_numeric   10,000 sequential loop.getaddrinfo("127.0.0.1", 8080,
                        AF_INET, SOCK_STREAM)
  spawn_true            200 sequential asyncio.create_subprocess_exec
                        ("/bin/true") + wait()

Prints one JSON line: {"value": <operations per second>, "unit": ...,
"n": ..., "seconds": ...}, or {"missing": "<reason>"} when the loop does not
implement what the workload needs (NotImplementedError, or the package is
not installed). A short warm-up pass (a tenth of the count, not timed) runs
first for the in-loop workloads.
"""

import asyncio
import gc
import json
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "servers"))
from py_echo_server import loop_factory  # noqa: E402

perf = time.perf_counter


def call_soon(loop, n):
    fut = loop.create_future()
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count < n:
            loop.call_soon(cb)
        else:
            fut.set_result(None)

    t0 = perf()
    loop.call_soon(cb)
    loop.run_until_complete(fut)
    return perf() - t0


def call_soon_threadsafe(loop, n):
    fut = loop.create_future()
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count == n:
            fut.set_result(None)

    def producer():
        cst = loop.call_soon_threadsafe
        for _ in range(n):
            cst(cb)

    th = threading.Thread(target=producer)
    t0 = perf()
    th.start()
    loop.run_until_complete(fut)
    dt = perf() - t0
    th.join()
    return dt


def call_later_cancel(loop, n):
    def cb():
        raise AssertionError("a cancelled timer ran")

    async def main():
        cl = loop.call_later
        t0 = perf()
        handles = [cl(10.0, cb) for _ in range(n)]
        for h in handles:
            h.cancel()
        await asyncio.sleep(0)
        return perf() - t0

    return loop.run_until_complete(main())


def sleep0_tasks(loop, n, batch=5000):
    async def worker():
        await asyncio.sleep(0)

    async def main():
        t0 = perf()
        done = 0
        while done < n:
            k = min(batch, n - done)
            await asyncio.gather(*[loop.create_task(worker()) for _ in range(k)])
            done += k
        return perf() - t0

    return loop.run_until_complete(main())


def getaddrinfo_numeric(loop, n):
    async def main():
        gai = loop.getaddrinfo
        t0 = perf()
        for _ in range(n):
            r = await gai("127.0.0.1", 8080, family=socket.AF_INET, type=socket.SOCK_STREAM)
        dt = perf() - t0
        if not r or r[0][4] != ("127.0.0.1", 8080):
            raise AssertionError(f"getaddrinfo returned {r!r}")
        return dt

    return loop.run_until_complete(main())


def spawn_true(loop, n):
    async def main():
        t0 = perf()
        for _ in range(n):
            p = await asyncio.create_subprocess_exec("/bin/true")
            rc = await p.wait()
            if rc != 0:
                raise AssertionError(f"/bin/true exited with {rc}")
        return perf() - t0

    return loop.run_until_complete(main())


WORKLOADS = {
    # name: (function, count, unit, warm up, the feature it needs)
    "call_soon": (call_soon, 200_000, "calls/s", True, "call_soon"),
    "call_soon_threadsafe": (call_soon_threadsafe, 200_000, "calls/s", True,
                             "call_soon_threadsafe"),
    "call_later_cancel": (call_later_cancel, 200_000, "timers/s", True, "call_later"),
    "sleep0_tasks": (sleep0_tasks, 50_000, "tasks/s", True, "tasks"),
    "getaddrinfo_numeric": (getaddrinfo_numeric, 10_000, "calls/s", True, "getaddrinfo"),
    "spawn_true": (spawn_true, 200, "spawns/s", False, "subprocesses (subprocess_exec)"),
}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in WORKLOADS:
        raise SystemExit(__doc__)
    impl, name = sys.argv[1], sys.argv[2]
    fn, n, unit, warm, feature = WORKLOADS[name]
    try:
        factory = loop_factory(impl)
    except ImportError as e:
        print(json.dumps({"missing": f"{impl} is not installed ({e})"}))
        return 0
    loop = factory()
    asyncio.set_event_loop(loop)
    try:
        if warm:
            fn(loop, max(1, n // 10))
        gc.collect()
        dt = fn(loop, n)
    except NotImplementedError as e:
        print(json.dumps({"missing": f"{impl} does not implement {feature} yet "
                                     f"(NotImplementedError{': ' + str(e) if str(e) else ''})"}))
        return 0
    finally:
        try:
            loop.run_until_complete(loop.shutdown_default_executor())
        except Exception:
            pass
        loop.close()
    print(json.dumps({"value": n / dt, "unit": unit, "n": n, "seconds": dt}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
