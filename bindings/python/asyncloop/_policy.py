"""``asyncloop.EventLoopPolicy`` and ``asyncloop.install()``: asyncio's
event-loop policy system.

Python 3.14 deprecates the policy system (``asyncio.*EventLoopPolicy``,
``get/set_event_loop_policy``; removal planned for 3.16) in favour of
``asyncio.run(..., loop_factory=...)`` / ``asyncio.Runner(loop_factory=...)``,
which ``asyncloop.run()`` uses.  As in uvloop, these two names are made only
when first used (the package's module ``__getattr__``), so importing
asyncloop touches no deprecated asyncio name, ``install()`` is deprecated
(DeprecationWarning) from Python 3.12 on in favour of ``asyncloop.run()``,
and from 3.16 on both names are gone.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings

from ._loop import EventLoop

__all__ = ["EventLoopPolicy", "install"]


def _default_policy() -> type:
    if sys.version_info >= (3, 14):  # deprecated there: asyncloop warns itself
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return asyncio.DefaultEventLoopPolicy
    return asyncio.DefaultEventLoopPolicy


class EventLoopPolicy(_default_policy()):  # type: ignore[misc]
    """asyncio's default policy, creating :class:`EventLoop` loops
    (deprecated with asyncio's policy system in Python 3.14)."""

    def new_event_loop(self) -> EventLoop:  # type: ignore[override]
        return EventLoop()


def _forget_inherited_loop() -> None:
    """In a child of os.fork(): the policy forgets the parent's asyncloop
    loop, which cannot run there (asyncio does this itself from Python
    3.12, events.on_fork), so asyncio.get_event_loop() makes a new one."""
    policy = asyncio.events._event_loop_policy
    if isinstance(policy, EventLoopPolicy):
        local = getattr(policy, "_local", None)
        loop = getattr(local, "_loop", None)
        if isinstance(loop, EventLoop) and loop._lib.dead:
            policy._local = type(local)()


if hasattr(os, "register_at_fork") and sys.version_info < (3, 12):
    os.register_at_fork(after_in_child=_forget_inherited_loop)


def install() -> None:
    """Makes asyncio create asyncloop loops (asyncio.run, new_event_loop)
    by setting :class:`EventLoopPolicy`.

    Deprecated from Python 3.12 on (a DeprecationWarning, as
    ``uvloop.install()``): use ``asyncloop.run(main())`` or
    ``asyncio.Runner(loop_factory=asyncloop.new_event_loop)``.
    """
    if sys.version_info >= (3, 12):
        warnings.warn(
            "asyncloop.install() is deprecated in favor of asyncloop.run() "
            "(or asyncio.Runner(loop_factory=asyncloop.new_event_loop)) "
            "starting with Python 3.12.",
            DeprecationWarning, stacklevel=2)
    with warnings.catch_warnings():
        if sys.version_info >= (3, 14):  # said above
            warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(EventLoopPolicy())
