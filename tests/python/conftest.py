"""Shared fixtures.

Run: ASYNCLOOP_LIBRARY=<libasyncloop.so> PYTHONPATH=bindings/python \
     python3 -m pytest -q tests/python

Behaviour tests are parametrized over asyncio's own loop (the reference) and
asyncloop's loop, as uvloop's tests do.
"""

import asyncio
import os
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
