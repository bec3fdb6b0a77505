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
