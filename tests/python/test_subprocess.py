"""Subprocesses through asyncio's high-level API (both loops)."""

import asyncio
import os
import signal
import subprocess
import sys

import pytest


def test_create_subprocess_exec_communicate(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            "import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d.upper()); "
            "sys.stderr.write('err'); sys.exit(3)",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.pid > 0
        out, err = await asyncio.wait_for(proc.communicate(b"hello" * 10000), 30)
        return out, err, proc.returncode

    out, err, rc = loop.run_until_complete(main())
    assert out == b"HELLO" * 10000
    assert err == b"err"
    assert rc == 3


def test_create_subprocess_shell_and_wait(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo $ALOOP_TEST_VAR; pwd", stdout=subprocess.PIPE,
            env={"ALOOP_TEST_VAR": "from-env", "PATH": os.environ.get("PATH", "/bin")}, cwd="/")
        lines = []
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        return lines, await proc.wait()

    lines, rc = loop.run_until_complete(main())
    assert lines == [b"from-env", b"/"]
    assert rc == 0


def test_subprocess_kill_and_stderr_to_stdout(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            "import sys, time; sys.stderr.write('ready\\n'); sys.stderr.flush(); time.sleep(30)",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(proc.wait(), 30)

    assert loop.run_until_complete(main()) == -signal.SIGTERM


def test_subprocess_devnull_and_missing_program(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            "true", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=None)
        rc = await proc.wait()
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec("/no/such/program-asyncloop")
        with pytest.raises(ValueError):
            await asyncio.create_subprocess_exec("true", text=True)
        return rc

    assert loop.run_until_complete(main()) == 0


def test_subprocess_protocol_order(loop):
    events = []

    class P(asyncio.SubprocessProtocol):
        def __init__(self):
            self.done = loop.create_future()

        def connection_made(self, tr):
            events.append("made")

        def pipe_data_received(self, fd, data):
            events.append(("data", fd, data))

        def pipe_connection_lost(self, fd, exc):
            events.append(("pipe_lost", fd, exc))

        def process_exited(self):
            events.append("exited")

        def connection_lost(self, exc):
            events.append(("lost", exc))
            self.done.set_result(None)

    async def main():
        tr, proto = await loop.subprocess_exec(P, "echo", "hi", stdin=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
        assert tr.get_pipe_transport(0) is None
        assert tr.get_pipe_transport(1) is not None
        await asyncio.wait_for(proto.done, 30)
        assert tr.get_returncode() == 0
        tr.close()

    loop.run_until_complete(main())
    assert events[0] == "made"
    assert ("data", 1, b"hi\n") in events
    assert ("pipe_lost", 1, None) in events
    assert "exited" in events
    assert events[-1] == ("lost", None)
