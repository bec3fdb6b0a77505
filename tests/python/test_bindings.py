"""The low-level layer against the header (the contract) and the library."""

import ctypes
import re
import subprocess
import sys
from pathlib import Path

import pytest

import asyncloop
from asyncloop import _bindings as b
from asyncloop._errors import err_name, make_error

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "asyncloop.h"


def _header_functions():
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    text = text.split("#ifndef ALOOP_NO_PROTOTYPES", 1)[1]
    return set(re.findall(r"\b(aloop_\w+)\s*\(", text))


def test_abi_is_generated_from_current_header():
    """_abi.py must be what tools/gen_abi.py makes of include/asyncloop.h."""
    gen = ROOT / "bindings" / "python" / "tools" / "gen_abi.py"
    r = subprocess.run([sys.executable, str(gen), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_abi_covers_every_function():
    names = _header_functions()
    assert len(names) > 60
    assert names == set(b.SIGNATURES)


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


def test_error_codes_match_header():
    text = HEADER.read_text()
    found = dict((n, int(v)) for n, v in re.findall(r"X\((E\w+), (-\d+),", text))
    assert found == b.ERRNO_CODES


def test_library_loads_and_version():
    lib = b.load()
    v = lib.aloop_version()
    assert (v >> 16) == b.ABI_MAJOR
    assert asyncloop.library_version().count(".") == 2
    assert asyncloop.library_path() == lib.path


def test_package_version_is_the_headers_and_the_librarys():
    text = HEADER.read_text()
    want = tuple(int(re.search(rf"^#define ALOOP_VERSION_{n} (\d+)", text, re.M).group(1))
                 for n in ("MAJOR", "MINOR", "PATCH"))
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
