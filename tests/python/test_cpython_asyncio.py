"""CPython's own loop-generic asyncio tests, run against asyncloop.EventLoop.

The installed ``test.test_asyncio`` package (absent on distributions that
split the test suite out: then this module is skipped) has mixins that any
event loop must pass; each is applied here to asyncloop's loop.  Tests that
cannot apply are skipped by name with the reason: SSL (not implemented yet),
tests that mock or read internals of asyncio's selector loop, and documented
differences.
"""

import asyncio
import unittest

import pytest

import asyncloop

try:
    from test.test_asyncio import test_buffered_proto, test_events, test_sendfile, test_server
    from test.test_asyncio import test_sock_lowlevel, test_streams, test_subprocess
    from test.test_asyncio import utils as test_utils
except ImportError:  # pragma: no cover - depends on the Python installation
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)

SSL = "SSL is not implemented yet"
INTERNALS = "uses internals of asyncio's selector loop or mocks"

SKIPS = {
    # test_events
    "test_create_ssl_connection": SSL,
    "test_create_ssl_unix_connection": SSL,
    "test_create_server_ssl": SSL,
    "test_create_server_ssl_match_failed": SSL,
    "test_create_server_ssl_verified": SSL,
    "test_create_server_ssl_verify_failed": SSL,
    "test_create_unix_server_ssl": SSL,
    "test_create_unix_server_ssl_verified": SSL,
    "test_create_unix_server_ssl_verify_failed": SSL,
    "test_ssl_connect_accepted_socket": SSL,
    "test_sendfile_ssl": SSL,
    "test_sendfile_ssl_close_peer_after_receiving": SSL,
    "test_sendfile_ssl_partial": SSL,
    "test_sendfile_ssl_pre_and_post_data": SSL,
    "test_open_connection_no_loop_ssl": SSL,
    "test_open_unix_connection_no_loop_ssl": SSL,
    "test_start_tls": SSL,
    "test_prompt_cancellation": INTERNALS,
    "test_create_server_multiple_hosts_ipv4": INTERNALS + " (mocked getaddrinfo)",
    "test_create_server_multiple_hosts_ipv6": INTERNALS + " (mocked getaddrinfo)",
    "test_create_datagram_endpoint_sock": "create_datagram_endpoint(sock=) is not supported yet",
    "test_unclosed_pipe_transport": "closing the loop aborts its transports (the library's "
                                    "loop cannot close with live transports)",
    # test_subprocess
    "test_popen_error": INTERNALS + " (mocked subprocess.Popen)",
    "test_popen_error_with_stdin_pipe": INTERNALS + " (mocked subprocess.Popen)",
    "test_close_kill_running": INTERNALS + " (transport._proc)",
    "test_close_dont_kill_finished": INTERNALS + " (transport._proc)",
    "test_pause_reading": INTERNALS + " (mocked transport methods)",
    "test_devstdin_input": "the child's stdin is a socket pair (as libuv/uvloop/Node): "
                           "/dev/stdin cannot be opened",
    "test_stdin_broken_pipe": "library: pipe_connection_lost(0) gets error 0, not EPIPE, "
                              "when the child exits with stdin data buffered",
    # test_server
    "test_start_server_1": INTERNALS + " (Server._sockets)",
    # test_streams (policy-based)
    "test_streamreader_constructor_use_global_loop": "deprecated global-loop behaviour",
    "test_streamreaderprotocol_constructor_use_global_loop": "deprecated global-loop behaviour",
}


def _apply(mixin, base, name, setup=None):
    attrs = {"create_event_loop": lambda self: asyncloop.new_event_loop(),
             "new_loop": lambda self: asyncloop.new_event_loop()}
    if setup is not None:
        attrs["setUp"] = setup
    cls = type(name, (mixin, base), attrs)
    for attr in dir(cls):
        if attr.startswith("test") and attr in SKIPS:
            reason = SKIPS[attr]
            setattr(cls, attr, unittest.skip(reason)(getattr(cls, attr)))
    return cls


def _subprocess_setup(self):
    test_utils.TestCase.setUp(self)
    self.loop = asyncloop.new_event_loop()
    self.set_event_loop(self.loop)


def _policy_setup(self):
    asyncio.set_event_loop_policy(asyncloop.EventLoopPolicy())
    self.addCleanup(asyncio.set_event_loop_policy, None)
    type(self).__mro__[2].setUp(self)


TestCPythonEvents = _apply(test_events.UnixEventLoopTestsMixin, test_utils.TestCase,
                           "TestCPythonEvents")
TestCPythonSubprocess = _apply(test_subprocess.SubprocessMixin, test_utils.TestCase,
                               "TestCPythonSubprocess", _subprocess_setup)
TestCPythonSockLowlevel = _apply(test_sock_lowlevel.BaseSockTestsMixin, test_utils.TestCase,
                                 "TestCPythonSockLowlevel")
TestCPythonSendfile = _apply(test_sendfile.SendfileTestsBase, test_utils.TestCase,
                             "TestCPythonSendfile")
TestCPythonBufferedProto = _apply(test_buffered_proto.BaseTestBufferedProtocol,
                                  unittest.TestCase, "TestCPythonBufferedProto")
TestCPythonStartServer = _apply(test_server.BaseStartServer, unittest.TestCase,
                                "TestCPythonStartServer")
TestCPythonStreams = _apply(type("_S", (), {}), test_streams.StreamTests,
                            "TestCPythonStreams", _policy_setup)

# These mixins must not be collected on their own.
del test_events, test_subprocess, test_sock_lowlevel, test_sendfile, test_buffered_proto
del test_server, test_streams
