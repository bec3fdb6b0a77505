"""The version of this package, which is the library's version.

One place holds it: the ALOOP_VERSION_* macros of include/asyncloop.h,
generated into _abi.py by tools/gen_abi.py (the build backend reads it from
there too).
"""

from __future__ import annotations

from ._abi import VERSION

__version__ = "%d.%d.%d" % VERSION
