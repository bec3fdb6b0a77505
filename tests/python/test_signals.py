"""Ctrl-C during a wait inside the library, and add_signal_handler."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

import asyncloop

CHILD = r"""
import asyncio, asyncloop

async def main():
    print("READY", flush=True)
    await asyncio.sleep(30)

asyncloop.run(main())
"""

CHILD_NO_RUNNER = r"""
import asyncio, asyncloop

loop = asyncloop.new_event_loop()
fut = loop.create_future()   # never done: the loop waits in the library
loop.call_soon(lambda: print("READY", flush=True))
try:
    loop.run_until_complete(fut)
finally:
    loop.close()
"""


def _interrupt_child(code, child_env):
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=child_env, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", (line, proc.stderr.read())
        time.sleep(0.2)  # let the loop enter its wait
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        latency = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    return proc.returncode, err, latency


@pytest.mark.parametrize("code", [CHILD, CHILD_NO_RUNNER], ids=["asyncloop.run", "run_until_complete"])
def test_ctrl_c_interrupts_wait(code, child_env):
    rc, err, latency = _interrupt_child(code, child_env)
    print(f"SIGINT -> exit latency: {latency * 1000:.1f} ms")
    assert "KeyboardInterrupt" in err, err
    assert rc != 0
    # The target is < 100 ms; the bound is generous for loaded CI machines.
    assert latency < 3.0


def test_wakeup_fd_restored(aloop):
    import socket
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        old = signal.set_wakeup_fd(a.fileno())
        aloop.run_until_complete(asyncio.sleep(0))
        assert signal.set_wakeup_fd(old) == a.fileno()
    finally:
        a.close()
        b.close()


def test_add_signal_handler(loop):
    got = []

    async def main():
        loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        assert loop.remove_signal_handler(signal.SIGUSR1)
        assert not loop.remove_signal_handler(signal.SIGUSR1)

    loop.run_until_complete(main())
    assert got == ["usr1"]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_add_signal_handler_rejects_coroutines(loop):
    async def coro():
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR2, coro)
    with pytest.raises(ValueError):
        loop.add_signal_handler(100000, print)
