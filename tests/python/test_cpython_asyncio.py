"""CPython's own loop-generic asyncio tests, run against asyncloop.EventLoop.

The installed ``test.test_asyncio`` package (absent on distributions that
split the test suite out: then this module is skipped) has test classes that
any event loop must pass.  They are applied here to asyncloop's loop without
copying them: each generated class below subclasses CPython's mixin (or
concrete class) and only replaces the loop factory.

- Loop-generic mixins, with an asyncloop loop made explicitly:
  test_events (EventLoopTestsMixin via UnixEventLoopTestsMixin, and
  SubprocessTestsMixin: CPython's SelectEventLoopTests with our loop),
  test_sock_lowlevel, test_sendfile, test_buffered_proto.
- With ``asyncloop.EventLoopPolicy()`` set, so that every loop asyncio
  creates (``asyncio.new_event_loop()``, ``asyncio.run()``) is asyncloop's:
  test_streams, test_ssl (TestSSL: TLS over the loop, sslproto's tests
  from uvloop), test_subprocess (SubprocessMixin), test_server, and every
  test class of test_tasks, test_futures, test_futures2, test_locks,
  test_queues, test_context, test_pep492, test_threads, test_waitfor,
  test_timeouts, test_taskgroups and, where the running Python has them,
  test_eager_task_factory (3.12) and test_staggered (3.13).
  ``unittest.IsolatedAsyncioTestCase`` classes (among them test_server's
  TestServer2 and UnixServerCleanupTests of 3.12/3.13) get asyncloop's loop
  through their ``loop_factory`` (3.13) or the policy set around each test.

Each interpreter runs its own installed tests: ``make test`` runs this file
on CPython 3.11, 3.12 and 3.13 (CTest entries python-3.X).

A test is skipped only where it reads or mocks private internals of the
stdlib's loop (selector) class; each skip carries its reason in ``SKIPS``.
"""

import asyncio
import importlib
import inspect
import unittest

import pytest

import asyncloop

try:
    from test.test_asyncio import functional as func_tests
    from test.test_asyncio import test_buffered_proto, test_events, test_futures, test_sendfile
    from test.test_asyncio import test_server, test_sock_lowlevel, test_streams, test_subprocess
    from test.test_asyncio import test_tasks
    from test.test_asyncio import utils as test_utils
except ImportError:  # pragma: no cover - depends on the Python installation
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)

INTERNALS = "reads or mocks private internals of the stdlib's loop implementation: "

#: test name (or "Class.test") -> the written reason it is skipped.
SKIPS = {
    # test_events
    "test_prompt_cancellation": INTERNALS + "calls loop._stop_serving(sock), a private "
                                "method of BaseSelectorEventLoop",
    "test_create_server_multiple_hosts_ipv4": INTERNALS + "mocks asyncio.base_events.socket "
                                              "and replaces loop._start_serving (asyncloop's "
                                              "core creates, binds and accepts the sockets)",
    "test_create_server_multiple_hosts_ipv6": INTERNALS + "mocks asyncio.base_events.socket "
                                              "and replaces loop._start_serving",
    "test_internal_fds": INTERNALS + "reads loop._internal_fds, _csock and _ssock (the self-pipe "
                         "of BaseSelectorEventLoop; CPython skips it itself for other loops)",
    # test_subprocess
    "test_popen_error": INTERNALS + "mocks subprocess.Popen, which asyncio's "
                        "_UnixSubprocessTransport uses to spawn (asyncloop's core spawns the "
                        "child without it)",
    "test_popen_error_with_stdin_pipe": INTERNALS + "mocks subprocess.Popen (as above)",
    "test_pause_reading": INTERNALS + "replaces loop.connect_read_pipe, which asyncio's "
                          "BaseSubprocessTransport calls internally to make the child's pipes "
                          "(asyncloop's core makes them), to mock their pause_reading",
}

def _skip_reason(cls, attr):
    for key in (f"{cls.__name__}.{attr}", attr):
        if key in SKIPS:
            return SKIPS[key]
    return None


def _finish(cls):
    for attr in dir(cls):
        if attr.startswith("test"):
            reason = _skip_reason(cls, attr)
            if reason is not None:
                setattr(cls, attr, unittest.skip(reason)(getattr(cls, attr)))
    return cls


def _new_loop(self):
    return asyncloop.new_event_loop()


def _apply(name, bases, **attrs):
    """A test class: CPython's bases, with asyncloop's loop as the loop."""
    attrs.setdefault("create_event_loop", _new_loop)
    attrs.setdefault("new_loop", _new_loop)
    attrs["__module__"] = __name__
    return _finish(type(name, bases, attrs))


def _with_policy(cls, name):
    """A subclass of a CPython test class that runs with asyncloop's policy."""
    base_setup = cls.setUp

    def setUp(self):  # noqa: N802
        asyncio.set_event_loop_policy(asyncloop.EventLoopPolicy())
        self.addCleanup(asyncio.set_event_loop_policy, None)
        base_setup(self)

    return _finish(type(name, (cls,), {"setUp": setUp, "__module__": __name__}))


def _isolated(cls, name):
    """A subclass of a CPython IsolatedAsyncioTestCase whose asyncio.Runner
    makes asyncloop loops: through loop_factory (3.13), else through the
    policy, set around the whole test (the runner is made before setUp)."""
    attrs = {"__module__": __name__}
    if hasattr(unittest.IsolatedAsyncioTestCase, "loop_factory"):
        attrs["loop_factory"] = staticmethod(asyncloop.new_event_loop)
    else:
        base_run = cls.run

        def run(self, result=None):
            asyncio.set_event_loop_policy(asyncloop.EventLoopPolicy())
            try:
                return base_run(self, result)
            finally:
                asyncio.set_event_loop_policy(None)

        attrs["run"] = run
    return _finish(type(name, (cls,), attrs))


def _policy_loop_setup(self):
    """SubprocessMixin's fixture as CPython's SubprocessWatcherMixin builds it,
    with the policy's (asyncloop's) loop."""
    asyncio.set_event_loop_policy(asyncloop.EventLoopPolicy())
    self.addCleanup(asyncio.set_event_loop_policy, None)
    test_utils.TestCase.setUp(self)
    self.loop = asyncio.get_event_loop_policy().new_event_loop()
    self.set_event_loop(self.loop)


def _policy_functional_setup(self):
    asyncio.set_event_loop_policy(asyncloop.EventLoopPolicy())
    self.addCleanup(asyncio.set_event_loop_policy, None)
    func_tests.FunctionalTestCaseMixin.setUp(self)


# -- loop-generic mixins --------------------------------------------------------

# CPython's SelectEventLoopTests (EventLoopTestsMixin + UnixEventLoopTestsMixin +
# SubprocessTestsMixin) with asyncloop's loop.
TestCPythonEvents = _apply(
    "TestCPythonEvents",
    (test_events.UnixEventLoopTestsMixin, test_events.SubprocessTestsMixin, test_utils.TestCase))
TestCPythonSockLowlevel = _apply(
    "TestCPythonSockLowlevel", (test_sock_lowlevel.BaseSockTestsMixin, test_utils.TestCase))
TestCPythonSendfile = _apply(
    "TestCPythonSendfile", (test_sendfile.SendfileTestsBase, test_utils.TestCase))
TestCPythonBufferedProto = _apply(
    "TestCPythonBufferedProto", (test_buffered_proto.BaseTestBufferedProtocol, unittest.TestCase))

# -- with asyncloop's policy set -------------------------------------------------------

TestCPythonStreams = _with_policy(test_streams.StreamTests, "TestCPythonStreams")
try:  # TLS over the loop (sslproto's algorithm, from uvloop): absent without ssl
    from test.test_asyncio import test_ssl
except (ImportError, unittest.SkipTest):  # pragma: no cover - Python built without ssl
    test_ssl = None
if test_ssl is not None:
    TestCPythonSSL = _with_policy(test_ssl.TestSSL, "TestCPythonSSL")
del test_ssl
TestCPythonSubprocess = _apply(
    "TestCPythonSubprocess", (test_subprocess.SubprocessMixin, test_utils.TestCase),
    setUp=_policy_loop_setup)
# SelectorStartServerTests = BaseStartServer + the Unix-socket test.
TestCPythonServer = _apply(
    "TestCPythonServer", (test_server.SelectorStartServerTests,),
    new_loop=lambda self: asyncio.new_event_loop(), setUp=_policy_functional_setup)


def _module_test_classes(module):
    for name, obj in sorted(vars(module).items()):
        if (inspect.isclass(obj) and issubclass(obj, unittest.TestCase)
                and obj.__module__ == module.__name__):
            yield name, obj


def _apply_module(module, prefix, only=None):
    for name, cls in _module_test_classes(module):
        if only is not None and name not in only:
            continue
        if issubclass(cls, unittest.IsolatedAsyncioTestCase):
            globals()[prefix + name] = _isolated(cls, prefix + name)
        else:
            globals()[prefix + name] = _with_policy(cls, prefix + name)


def _optional_module(name):
    """A module of test.test_asyncio that only newer Pythons have."""
    try:
        return importlib.import_module("test.test_asyncio." + name)
    except ImportError:
        return None


# test_server's IsolatedAsyncioTestCase classes: Server.wait_closed (3.12),
# close_clients/abort_clients and the Unix socket file clean-up (3.13).
_apply_module(test_server, "TestCPythonServer_", only=("TestServer2", "UnixServerCleanupTests"))

for _modname in ("test_tasks", "test_futures", "test_futures2", "test_locks", "test_queues",
                 "test_context", "test_pep492", "test_threads", "test_waitfor",
                 "test_timeouts", "test_taskgroups", "test_eager_task_factory",
                 "test_staggered"):
    _mod = _optional_module(_modname)
    if _mod is not None:
        _prefix = "TestCPython" + "".join(p.title() for p in _modname.split("_")[1:]) + "_"
        _apply_module(_mod, _prefix)
del _modname, _mod, _prefix


def test_skips_have_reasons():
    """Every skip names why; only private internals of the stdlib's loop are
    an acceptable reason."""
    for name, reason in SKIPS.items():
        assert reason.startswith(INTERNALS), name


# These modules must not be collected on their own.
del test_events, test_subprocess, test_sock_lowlevel, test_sendfile, test_buffered_proto
del test_server, test_streams, test_tasks, test_futures
