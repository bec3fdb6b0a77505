#!/usr/bin/env python3
"""The cost of the Python <-> libasyncloop seam (ctypes).

Prints one JSON line:
  {"host":"python","call_ns":..,"callback_ns":..,"wakeup_us":..}

- call_ns: one ctypes call into the library (aloop_loop_time, through the
  PyDLL binding the asyncloop package uses for loop-thread calls).
- callback_ns: one callback out of the library into Python: N callbacks
  scheduled with aloop_call_soon, run by one aloop_loop_run(NOWAIT); the run
  time divided by N.
- wakeup_us: a thread calls aloop_call_soon_threadsafe while the loop thread
  waits in aloop_loop_run(ONCE); the time from the call to the callback
  running (median).

Environment: ASYNCLOOP_LIBRARY (else the package's own lookup).
Details go to stderr.  Never part of a pass/fail test.
"""

import ctypes
import json
import statistics
import sys
import threading
import time
from pathlib import Path

try:
    from asyncloop import _bindings as b
except ImportError:  # run from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bindings" / "python"))
    from asyncloop import _bindings as b

# A NULL free_cb (ctypes does not accept None for a CFUNCTYPE argument).
NULL_FREE_CB = b.aloop_free_cb()


def best_of(fn, repeat=5):
    return min(fn() for _ in range(repeat))


def main():
    lib = b.load()
    out = ctypes.c_void_p()
    assert lib.aloop_loop_new(ctypes.byref(out)) == 0
    loop = out.value

    # -- call_ns ------------------------------------------------------------
    d = ctypes.c_double()
    ref = ctypes.byref(d)
    fn = lib.aloop_loop_time
    n_calls = 200_000

    def calls():
        t0 = time.perf_counter_ns()
        for _ in range(n_calls):
            fn(loop, ref)
        return (time.perf_counter_ns() - t0) / n_calls

    def empty_loop():
        t0 = time.perf_counter_ns()
        for _ in range(n_calls):
            pass
        return (time.perf_counter_ns() - t0) / n_calls

    call_ns = best_of(calls) - best_of(empty_loop)

    # -- callback_ns --------------------------------------------------------
    counter = [0]

    @b.aloop_callback_cb
    def on_cb(loop_h, ud):
        counter[0] += 1

    n_cbs = 100_000

    def callbacks():
        counter[0] = 0
        for _ in range(n_cbs):
            lib.aloop_call_soon(loop, on_cb, None, NULL_FREE_CB, None)
        t0 = time.perf_counter_ns()
        rc = lib.aloop_loop_run(loop, b.ALOOP_RUN_NOWAIT)
        dt = time.perf_counter_ns() - t0
        assert rc == 0 and counter[0] == n_cbs, (rc, counter[0])
        return dt / n_cbs

    callback_ns = best_of(callbacks)

    # -- wakeup_us ----------------------------------------------------------
    ran_at = [0]

    @b.aloop_callback_cb
    def on_wake(loop_h, ud):
        ran_at[0] = time.perf_counter_ns()

    samples = []
    posted_at = [0]
    go = threading.Event()
    stop = [False]

    def poster():
        while True:
            go.wait()
            go.clear()
            if stop[0]:
                return
            time.sleep(0.002)  # let the loop thread enter its wait
            posted_at[0] = time.perf_counter_ns()
            lib.aloop_call_soon_threadsafe(loop, on_wake, None, NULL_FREE_CB, None)

    th = threading.Thread(target=poster, daemon=True)
    th.start()
    for _ in range(300):
        ran_at[0] = 0
        go.set()
        while ran_at[0] == 0:
            rc = lib.aloop_loop_run(loop, b.ALOOP_RUN_ONCE)
            assert rc == 0, rc
        samples.append((ran_at[0] - posted_at[0]) / 1000)
    stop[0] = True
    go.set()
    th.join()
    wakeup_us = statistics.median(samples)

    lib.aloop_loop_close(loop)
    lib.aloop_loop_free(loop)

    print(f"library: {lib.path}; wakeup p10/p90: "
          f"{statistics.quantiles(samples, n=10)[0]:.1f}/"
          f"{statistics.quantiles(samples, n=10)[-1]:.1f} us", file=sys.stderr)
    print(json.dumps({
        "host": "python",
        "call_ns": round(call_ns, 1),
        "callback_ns": round(callback_ns, 1),
        "wakeup_us": round(wakeup_us, 1),
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
