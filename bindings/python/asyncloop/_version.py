"""The version of this package, which is the library's version.

One place holds it: the ALOOP_VERSION_* macros of include/asyncloop.h. The
build backend (tools/asyncloop_build.py) writes them into every wheel as
_build_version.py; a source checkout reads the header itself.
"""

from __future__ import annotations

import re
from pathlib import Path


def _from_header() -> tuple[int, int, int]:
    header = Path(__file__).resolve().parent.parent.parent.parent / "include" / "asyncloop.h"
    try:
        text = header.read_text()
    except OSError as e:
        raise ImportError(f"asyncloop: no version: not a built package, and no {header}") from e
    parts = [re.search(rf"^#define ALOOP_VERSION_{n} (\d+)", text, re.M) for n in ("MAJOR", "MINOR", "PATCH")]
    if not all(parts):
        raise ImportError(f"asyncloop: no ALOOP_VERSION_* macros in {header}")
    return int(parts[0].group(1)), int(parts[1].group(1)), int(parts[2].group(1))  # type: ignore[union-attr]


try:
    from ._build_version import VERSION
except ImportError:
    VERSION = _from_header()

__version__ = "%d.%d.%d" % VERSION
