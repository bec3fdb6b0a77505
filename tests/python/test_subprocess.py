"""Subprocesses through asyncio's high-level API (both loops)."""

import asyncio
import os
import signal
import subprocess
import sys

import pytest

import asyncloop


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


def test_child_can_open_dev_stdin(loop):
    """stdin=PIPE is a real pipe (as asyncio on Linux): the child can open
    /dev/stdin by name."""

    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            "data = open('/dev/stdin', 'rb').read(); print(len(data))",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(b"x" * 100000), 30)
        return out, proc.returncode

    out, rc = loop.run_until_complete(main())
    assert (out.strip(), rc) == (b"100000", 0)


class _Recorder(asyncio.SubprocessProtocol):
    def __init__(self, loop):
        self.events = []
        self.out = bytearray()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.events.append("made")

    def pipe_data_received(self, fd, data):
        self.out += data

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append("exited")

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(None)


def test_stdin_flow_control(loop):
    """A child that reads late: writing to its stdin pauses the protocol
    above the high water mark and resumes it once the child has read."""
    code = ("import sys, time; time.sleep(0.3); "
            "print(len(sys.stdin.buffer.read()), flush=True)")

    async def main():
        tr, proto = await loop.subprocess_exec(lambda: _Recorder(loop), sys.executable, "-c", code)
        stdin = tr.get_pipe_transport(0)
        stdin.write(b"y" * (1024 * 1024))
        assert stdin.get_write_buffer_size() > 0
        assert "pause" in proto.events
        while "resume" not in proto.events:
            await asyncio.sleep(0.01)
        stdin.close()
        await asyncio.wait_for(proto.lost, 30)
        return tr.get_returncode(), proto

    rc, proto = loop.run_until_complete(main())
    assert rc == 0
    assert proto.out.strip() == b"1048576"
    assert proto.events[0] == "made" and proto.events[-1] == ("lost", None)
    assert ("pipe_lost", 0, None) in proto.events
    assert proto.events.index("pause") < proto.events.index("resume")


def test_stdin_closed_by_child_then_exit(loop):
    """The child closes its stdin and exits: every pipe is reported lost,
    then connection_lost comes last (asyncio's order)."""

    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: _Recorder(loop), sys.executable, "-c",
            "import os, time; os.close(0); time.sleep(0.1); print('bye')")
        await asyncio.wait_for(proto.lost, 30)
        return tr, proto

    tr, proto = loop.run_until_complete(main())
    assert tr.get_returncode() == 0
    assert proto.out == b"bye\n"
    lost = sorted(e[1] for e in proto.events if isinstance(e, tuple) and e[0] == "pipe_lost")
    assert lost == [0, 1, 2]
    assert "exited" in proto.events
    assert proto.events[-1] == ("lost", None)
    assert not tr.is_closing()  # only close() makes it closing (asyncio)
    tr.close()
    assert tr.is_closing()


def test_extra_info_subprocess_is_a_popen(loop):
    """get_extra_info('subprocess') is a subprocess.Popen (asyncio's
    documented extra info): pid, poll(), wait() and kill() work."""

    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: _Recorder(loop), sys.executable, "-c", "import time; time.sleep(30)")
        popen = tr.get_extra_info("subprocess")
        assert isinstance(popen, subprocess.Popen)
        assert popen.pid == tr.get_pid()
        assert popen.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            popen.wait(timeout=0.05)
        popen.kill()
        rc = popen.wait(timeout=10)
        if isinstance(loop, asyncloop.EventLoop):
            # (asyncio's child watcher may reap the child first: its Popen
            # then reports 0.)
            assert rc == popen.poll() == -signal.SIGKILL
        await asyncio.wait_for(proto.lost, 10)
        if isinstance(loop, asyncloop.EventLoop):
            assert tr.get_returncode() == -signal.SIGKILL
        else:
            # asyncio: when the Popen above reaped the child first, its
            # watcher reports "unknown child process" as 255.
            assert tr.get_returncode() in (-signal.SIGKILL, 255)
        tr.close()

    loop.run_until_complete(main())


def test_failed_spawn_with_stdin_pipe_calls_no_protocol_method(loop, tmp_path):
    calls = []

    class P(asyncio.SubprocessProtocol):
        def __getattribute__(self, name):
            if not name.startswith("__"):
                calls.append(name)
            return object.__getattribute__(self, name)

    async def main():
        with pytest.raises(FileNotFoundError):
            await loop.subprocess_exec(P, str(tmp_path / "missing"), stdin=subprocess.PIPE)
        await asyncio.sleep(0.05)

    loop.run_until_complete(main())
    assert calls == []
