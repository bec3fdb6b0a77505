"""Every subprocess.Popen option through subprocess_exec / subprocess_shell,
and the pipe transports' methods, on both loops (asyncio's behaviour is the
reference).  asyncloop spawns through the library what it can do
(env, cwd, start_new_session, pass_fds, close_fds, restore_signals) and
through the standard library's fork/exec (asyncio's own subprocess
transport) what needs Python in the child (preexec_fn) or options the
library lacks (executable, user, group, extra_groups, umask,
process_group, pipesize)."""

import asyncio
import os
import signal
import subprocess
import sys

import pytest

import asyncloop

PY = sys.executable


def _run(loop, *args, shell=False, input=None, **kw):
    """(returncode, stdout) of a child."""

    async def main():
        if shell:
            proc = await asyncio.create_subprocess_shell(
                args[0], stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, **kw)
        else:
            proc = await asyncio.create_subprocess_exec(
                *args, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, **kw)
        out, _ = await proc.communicate(input)
        return proc.returncode, out.decode()

    return loop.run_until_complete(main())


def _py(code, **kw):
    return (PY, "-c", code), kw


def test_env_and_cwd(loop, tmp_path):
    rc, out = _run(loop, PY, "-c", "import os; print(os.getcwd(), os.environ.get('X'), "
                   "'PATH' in os.environ)", env={"X": "1"}, cwd=str(tmp_path))
    assert (rc, out.split()) == (0, [str(tmp_path), "1", "False"])


def test_executable(loop):
    rc, out = _run(loop, "my-name", "-c", 'echo "$0"', executable="/bin/sh")
    assert (rc, out) == (0, "my-name\n")
    rc, out = _run(loop, "echo $0", shell=True, executable="/bin/sh")
    assert (rc, out) == (0, "/bin/sh\n")


def test_preexec_fn(loop):
    r, w = os.pipe()
    try:
        def preexec():
            os.write(w, str(os.getpid()).encode())

        async def main():
            proc = await asyncio.create_subprocess_exec(PY, "-c", "pass", preexec_fn=preexec)
            await proc.wait()
            return proc.pid

        pid = loop.run_until_complete(main())
        assert os.read(r, 100) == str(pid).encode()
    finally:
        os.close(r)
        os.close(w)


def test_preexec_fn_error_is_raised(loop):
    def preexec():
        raise ValueError("boom")

    with pytest.raises(subprocess.SubprocessError, match="preexec_fn"):
        _run(loop, PY, "-c", "pass", preexec_fn=preexec)


def test_umask(loop):
    rc, out = _run(loop, "umask", shell=True, umask=0o027)
    assert (rc, out.strip()) == (0, "0027")


def test_process_group_and_session(loop):
    code = "import os; print(os.getpid() == os.getpgid(0), os.getpid() == os.getsid(0))"
    assert _run(loop, PY, "-c", code)[1].split() == ["False", "False"]
    assert _run(loop, PY, "-c", code, process_group=0)[1].split() == ["True", "False"]
    assert _run(loop, PY, "-c", code, start_new_session=True)[1].split() == ["True", "True"]


def test_user_group_extra_groups(loop):
    if os.geteuid() != 0:
        pytest.skip("needs root to set groups")
    # (sh: this interpreter may not be readable by another user)
    rc, out = _run(loop, "id -u; id -g; id -G", shell=True, user=65534, group=65534,
                   extra_groups=[65534, 1])
    uid, gid, groups = out.splitlines()
    assert (rc, uid, gid, sorted(map(int, groups.split()))) == (0, "65534", "65534", [1, 65534])


def test_pass_fds_and_close_fds(loop):
    r, w = os.pipe()
    os.set_inheritable(w, True)  # an inheritable fd: close_fds decides
    r2, w2 = os.pipe()  # not inheritable: pass_fds decides
    try:
        code = ("import os, sys\n"
                "for fd in map(int, sys.argv[1:]):\n"
                "    try:\n"
                "        os.fstat(fd); print(fd, 'open')\n"
                "    except OSError:\n"
                "        print(fd, 'closed')\n")
        args = (PY, "-c", code, str(w), str(w2))
        assert _run(loop, *args)[1].split() == [str(w), "closed", str(w2), "closed"]
        assert _run(loop, *args, close_fds=False)[1].split() == [str(w), "open", str(w2), "closed"]
        assert _run(loop, *args, pass_fds=(w2,))[1].split() == [str(w), "closed", str(w2), "open"]
        assert _run(loop, *args, pass_fds=(w, w2))[1].split() == [str(w), "open", str(w2), "open"]
        # The parent's flags are left as they were.
        assert os.get_inheritable(w) and not os.get_inheritable(w2)
    finally:
        for fd in (r, w, r2, w2):
            os.close(fd)


@pytest.mark.parametrize("restore", [True, False])
def test_restore_signals(loop, restore):
    """Python ignores SIGPIPE and SIGXFSZ; Popen restores their default in
    the child unless restore_signals=False.  (Once a Go runtime is loaded in
    the process -- asyncloop's library -- SIGPIPE has its handler, which exec
    resets: a child never inherits an ignored SIGPIPE then, whichever loop.)"""
    # A child that does not reset them at startup: sh, reading its status.
    rc, out = _run(loop, "grep SigIgn /proc/self/status", shell=True, restore_signals=restore)
    ign = int(out.split()[1], 16)
    assert signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN  # this interpreter's
    assert bool(ign & (1 << (signal.SIGXFSZ - 1))) == (not restore)
    if restore:
        assert not ign & (1 << (signal.SIGPIPE - 1))


def test_unknown_option_raises_popen_error(loop):
    with pytest.raises(TypeError, match="bogus"):
        _run(loop, PY, "-c", "pass", bogus=1)


def test_startupinfo_is_windows_only(loop):
    with pytest.raises(ValueError, match="startupinfo"):
        _run(loop, PY, "-c", "pass", startupinfo=object())
    with pytest.raises(ValueError, match="creationflags"):
        _run(loop, PY, "-c", "pass", creationflags=1)


def test_fallback_transport_protocol_and_context(loop):
    """The standard library's path: the protocol gets the same events."""
    events = []

    class P(asyncio.SubprocessProtocol):
        def __init__(self):
            self.done = loop.create_future()

        def connection_made(self, tr):
            events.append("made")

        def pipe_data_received(self, fd, data):
            events.append(("data", fd, data))

        def pipe_connection_lost(self, fd, exc):
            events.append(("pipe_lost", fd))

        def process_exited(self):
            events.append("exited")

        def connection_lost(self, exc):
            events.append("lost")
            self.done.set_result(None)

    async def main():
        tr, proto = await loop.subprocess_exec(
            P, PY, "-c", "import sys; sys.stdout.write(sys.stdin.read())",
            umask=0o022)
        tr.get_pipe_transport(0).write(b"hi")
        tr.get_pipe_transport(0).write_eof()
        await proto.done
        rc = tr.get_returncode()
        tr.close()
        return rc

    assert loop.run_until_complete(main()) == 0
    assert events[0] == "made" and events[-1] == "lost"
    assert ("data", 1, b"hi") in events and "exited" in events
    assert {e[1] for e in events if isinstance(e, tuple) and e[0] == "pipe_lost"} == {0, 1, 2}


def test_fallback_kill_and_wait(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(30)",
                                                    umask=0o022)
        proc.kill()
        return await asyncio.wait_for(proc.wait(), 10)

    assert loop.run_until_complete(main()) == -signal.SIGKILL


def test_fallback_missing_program(loop):
    with pytest.raises(FileNotFoundError):
        _run(loop, "/nonexistent/program", umask=0o022)


# -- pipe transports: the methods asyncio's have, and what they raise --------

_METHODS = ["pause_reading", "resume_reading", "is_reading", "write", "writelines",
            "write_eof", "can_write_eof", "abort", "get_write_buffer_size",
            "get_write_buffer_limits", "set_write_buffer_limits", "is_closing",
            "get_protocol", "close"]


def _probe(tr):
    out = {}
    for m in _METHODS:
        if not hasattr(tr, m):
            out[m] = "missing"
            continue
        if m in ("abort", "close", "write_eof"):
            out[m] = "present"
            continue
        args = {"write": (b"",), "writelines": ([b""],)}.get(m, ())
        try:
            getattr(tr, m)(*args)
            out[m] = "ok"
        except Exception as exc:  # noqa: BLE001
            out[m] = type(exc).__name__
    out["pipe"] = type(tr.get_extra_info("pipe")).__name__
    return out


def _pipe_probes(loop, extra):
    async def main():
        tr, _ = await loop.subprocess_exec(asyncio.SubprocessProtocol, "cat", **extra)
        res = {fd: _probe(tr.get_pipe_transport(fd)) for fd in (0, 1, 2)}
        tr.close()
        r, w = os.pipe()
        rt, _ = await loop.connect_read_pipe(asyncio.Protocol, os.fdopen(r, "rb"))
        wt, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(w, "wb"))
        res["read_pipe"], res["write_pipe"] = _probe(rt), _probe(wt)
        rt.close()
        wt.close()
        await asyncio.sleep(0.05)
        return res

    return loop.run_until_complete(main())


@pytest.mark.parametrize("extra", [{}, {"umask": 0o022}], ids=["library", "stdlib"])
def test_pipe_transport_methods_as_asyncio(loop, extra):
    ref = asyncio.new_event_loop()
    try:
        want = _pipe_probes(ref, {})
    finally:
        ref.close()
    assert _pipe_probes(loop, extra) == want
