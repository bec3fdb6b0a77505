"""Shared fixtures.

Run: ASYNCLOOP_LIBRARY=<libasyncloop.so> PYTHONPATH=bindings/python \
     python3 -m pytest -q tests/python

Behaviour tests are parametrized over asyncio's own loop (the reference) and
asyncloop's loop, as uvloop's tests do.
"""

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINDING = ROOT / "bindings" / "python"
if str(BINDING) not in sys.path:
    sys.path.insert(0, str(BINDING))

import asyncloop  # noqa: E402


def _env_for_children():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(BINDING) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@pytest.fixture
def child_env():
    """Environment for a child Python that must import asyncloop."""
    return _env_for_children()


@pytest.fixture
def aloop():
    """An asyncloop loop, closed after the test."""
    loop = asyncloop.new_event_loop()
    try:
        yield loop
    finally:
        if not loop.is_closed():
            loop.close()


LOOP_KINDS = ["asyncio", "asyncloop"]


@pytest.fixture(params=LOOP_KINDS)
def loop(request):
    """Both loops: asyncio's (the reference behaviour) and asyncloop's."""
    if request.param == "asyncio":
        lp = asyncio.new_event_loop()
    else:
        lp = asyncloop.new_event_loop()
    try:
        yield lp
    finally:
        if not lp.is_closed():
            lp.close()


@pytest.fixture(autouse=True)
def _no_leaked_policy():
    yield
    asyncio.set_event_loop_policy(None)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A test CA and a certificate for localhost / 127.0.0.1 / ::1 signed by
    it, made with the openssl command: {"ca", "cert", "key"} paths."""
    openssl = shutil.which("openssl")
    if openssl is None:
        # CPython's test certificates (localhost, signed by its test CA).
        try:
            from test.test_asyncio import utils as cpython_test_utils
        except ImportError:
            pytest.skip("neither the openssl command nor CPython's test certificates")
        return {"ca": cpython_test_utils.SIGNING_CA,
                "cert": cpython_test_utils.SIGNED_CERTFILE,
                "key": cpython_test_utils.SIGNED_CERTFILE}
    d = tmp_path_factory.mktemp("certs")

    def run(*args):
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    # Python 3.13's default context verifies with VERIFY_X509_STRICT: the CA
    # needs keyUsage, the leaf an authority key identifier.
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=asyncloop test CA", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "key.pem", "-out", "req.csr")
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n")
    run("x509", "-req", "-in", "req.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "cert.pem")
    return {"ca": str(d / "ca.pem"), "cert": str(d / "cert.pem"), "key": str(d / "key.pem")}


@pytest.fixture
def server_ctx(certs):
    """A server SSLContext with the certificate of ``certs``."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["cert"], certs["key"])
    return ctx


@pytest.fixture
def client_ctx(certs):
    """A client SSLContext that trusts the CA of ``certs``."""
    import ssl

    return ssl.create_default_context(cafile=certs["ca"])
