"""The low-level layer against the header (the contract) and the library."""

import ctypes
import importlib.util
import sys
from pathlib import Path

import pytest

import asyncloop
from asyncloop import _bindings as b
from asyncloop._errors import err_name, make_error

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    """tools/gen_abi.py, the one reader of include/asyncloop.h."""
    spec = importlib.util.spec_from_file_location("gen_abi", ROOT / "tools" / "gen_abi.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_abi"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_abi_covers_every_function():
    gen = _generator()
    header = gen.Header.parse(gen.HEADER.read_text())
    names = [f.name for f in header.functions]
    assert len(names) > 60
    assert set(names) == set(b.SIGNATURES)


def test_abi_spot_checks():
    P = ctypes.POINTER
    assert b.SIGNATURES["aloop_transport_write"] == (
        ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t], False)
    assert b.SIGNATURES["aloop_loop_new"] == (ctypes.c_int, [P(ctypes.c_void_p)], False)
    assert b.SIGNATURES["aloop_version"] == (ctypes.c_uint, [], False)
    assert b.SIGNATURES["aloop_strerror"][0] is ctypes.c_char_p
    assert b.SIGNATURES["aloop_loop_time"][1] == [ctypes.c_void_p, P(ctypes.c_double)]
    # The GIL is released around waits and thread-safe calls only.
    released = {n for n, v in b.SIGNATURES.items() if v[2]}
    assert {"aloop_loop_run", "aloop_loop_run_once", "aloop_call_soon_threadsafe",
            "aloop_loop_wakeup", "aloop_loop_stop"} <= released
    assert "aloop_transport_write" not in released
    # Binary data reaches callbacks as an address, never as a c_char_p.
    assert b.aloop_protocol_data_received_cb._argtypes_[1] is ctypes.c_void_p
    fields = dict(b.aloop_protocol_t._fields_)
    assert fields["data_received"] is b.aloop_protocol_data_received_cb
    assert ctypes.sizeof(b.aloop_protocol_t) == 10 * 8  # size, 8 callbacks, flags (padded)
    assert ctypes.sizeof(b.aloop_event_t) == 40
    assert ctypes.sizeof(b.aloop_write_op_t) == 16
    assert b.aloop_server_options_t._fields_[0] == ("size", ctypes.c_size_t)


def test_library_exports_every_header_function():
    assert b.load().missing == []


def test_library_loads_and_version():
    lib = b.load()
    v = lib.aloop_version()
    assert (v >> 16) == b.ABI_MAJOR
    assert asyncloop.library_version().count(".") == 2
    assert asyncloop.library_path() == lib.path


def test_package_version_is_the_headers_and_the_librarys():
    gen = _generator()
    want = gen.Header.parse(gen.HEADER.read_text()).version
    assert asyncloop.VERSION == want
    assert asyncloop.__version__ == "%d.%d.%d" % want
    assert asyncloop.library_version() == asyncloop.__version__


def test_version_check_at_load():
    major, minor, patch = asyncloop.VERSION
    hexv = lambda a, b_, c: (a << 16) | (b_ << 8) | c  # noqa: E731
    b.check_version("same", hexv(major, minor, patch))
    b.check_version("newer minor", hexv(major, minor + 1, 0))
    b.check_version("other patch", hexv(major, minor, patch + 7))
    with pytest.raises(ImportError, match=r"other major is libasyncloop %d\.%d\.%d, but this asyncloop "
                       r"package is .* needs libasyncloop %d\.x" % (major + 1, minor, patch, major)):
        b.check_version("other major", hexv(major + 1, minor, patch))
    if minor > 0:
        with pytest.raises(ImportError, match="older minor"):
            b.check_version("older minor", hexv(major, minor - 1, 0))


def test_error_names_agree_with_library():
    lib = b.load()
    for name, code in b.ERRNO_CODES.items():
        assert lib.aloop_err_name(code).decode() == "ALOOP_" + name
        assert err_name(code) == "ALOOP_" + name
        assert lib.aloop_strerror(code)
    assert lib.aloop_err_name(0).decode() == "ALOOP_OK"


def test_error_messages_are_the_library_s():
    """Without a detail, an Error's text is the library's aloop_strerror."""
    lib = b.load()
    for code in b.ERRNO_CODES.values():
        if code > -3000:
            continue  # raised as OSError(errno, os.strerror(errno))
        text = lib.aloop_strerror(code).decode()
        assert text != "unknown error" or code == b.ALOOP_EUNKNOWN
        e = make_error(code)
        if code == b.ALOOP_ENOTLOOPTHREAD:
            continue  # asyncio's own wording
        assert e.args[0].endswith(text), (code, e.args[0], text)


def test_error_mapping():
    e = make_error(-111)
    assert isinstance(e, ConnectionRefusedError) and e.errno == 111
    assert e.code == -111 and e.name == "ALOOP_ECONNREFUSED"
    assert isinstance(make_error(-104), ConnectionResetError)
    assert isinstance(make_error(-98), OSError) and make_error(-98).errno == 98
    c = make_error(-3001, "details")
    assert isinstance(c, asyncloop.Error) and isinstance(c, OSError)
    assert c.code == -3001 and c.name == "ALOOP_ECLOSED" and "details" in str(c)
    import socket
    assert isinstance(make_error(-3004), socket.gaierror)


def test_bad_handles_do_not_crash():
    lib = b.load()
    assert lib.aloop_loop_run_once(None, 0) == b.ALOOP_EBADF
    assert lib.aloop_transport_write(12345, b"x", 1) == b.ALOOP_EBADF
    assert lib.aloop_server_close(None) == b.ALOOP_EBADF
    assert lib.aloop_future_free(0xDEADBEEF) == b.ALOOP_EBADF


def test_live_handles_counts_and_returns_to_start():
    import asyncio

    base = asyncloop.live_handles()
    loop = asyncloop.new_event_loop()
    try:
        assert asyncloop.live_handles() >= base + 1  # the loop

        async def echo_once():
            async def handle(reader, writer):
                writer.write(await reader.read(4))
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            assert await reader.read(4) == b"ping"
            assert asyncloop.live_handles() >= base + 3  # and the 2 transports
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()

        loop.run_until_complete(echo_once())
    finally:
        loop.close()
    assert asyncloop.live_handles() == base
