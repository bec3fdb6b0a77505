"""Build hook: compiles libasyncloop.so with Go and bundles it in the package.

`pip install ./bindings/python` (from a checkout of the repository) runs
``go build -buildmode=c-shared -o asyncloop/libasyncloop.so ./capi`` in the
repository root (found as ``../..`` from this file, or given by the
environment variable ``ASYNCLOOP_SOURCE_DIR``) and puts the library into the
wheel, which is then tagged for this platform (``py3-none-<platform>``: the
package is pure Python over ctypes, only the library is native).

Needs Go (``go`` on PATH, or the ``GO`` environment variable) and a C
compiler for cgo.  ``ASYNCLOOP_BUILD_LIBRARY=0`` skips the build (the
package then uses ``$ASYNCLOOP_LIBRARY`` at run time).  The metadata lives
in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
LIBRARY = "libasyncloop.so"


def _source_root() -> Path:
    candidates = []
    env = os.environ.get("ASYNCLOOP_SOURCE_DIR")
    if env:
        candidates.append(Path(env))
    candidates.append(HERE.parent.parent)
    for c in candidates:
        if (c / "go.mod").is_file() and (c / "capi").is_dir() and (c / "core").is_dir():
            return c
    raise SystemExit(
        "asyncloop: cannot find the Go sources of libasyncloop (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); install from a checkout of the repository (pip install ./bindings/python) "
        "or set ASYNCLOOP_SOURCE_DIR to it")


def _go() -> str:
    go = os.environ.get("GO") or shutil.which("go")
    if not go:
        for c in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
            if os.access(c, os.X_OK):
                return c
        raise SystemExit("asyncloop: building libasyncloop needs Go (https://go.dev/dl/): "
                         "put `go` on PATH or set GO")
    return go


def build_library(target: Path) -> None:
    """go build -buildmode=c-shared ./capi -> target."""
    root = _source_root()
    target = target.resolve()  # go runs in the repository root
    target.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="1")
    cmd = [_go(), "build", "-buildmode=c-shared", "-trimpath", "-o", str(target), "./capi"]
    print("asyncloop: building the library:", " ".join(cmd), f"(in {root})", flush=True)
    subprocess.run(cmd, cwd=root, env=env, check=True)
    header = target.with_suffix(".h")  # cgo's generated header: not shipped
    if header.exists():
        header.unlink()


class BuildPyWithLibrary(build_py):
    """build_py, then the shared library into the built package."""

    def run(self) -> None:
        super().run()
        if os.environ.get("ASYNCLOOP_BUILD_LIBRARY", "1") == "0":
            return
        build_library(Path(self.build_lib).resolve() / "asyncloop" / LIBRARY)

    def get_outputs(self, include_bytecode: bool = True) -> list:
        outputs = super().get_outputs(include_bytecode)
        lib = os.path.join(self.build_lib, "asyncloop", LIBRARY)
        return outputs + [lib] if lib not in outputs else outputs


class BinaryDistribution(Distribution):
    """The package carries a native library: install it as platform-specific."""

    def has_ext_modules(self) -> bool:
        return os.environ.get("ASYNCLOOP_BUILD_LIBRARY", "1") != "0"


class PlatformWheel(bdist_wheel):
    """A py3-none-<platform> wheel: Python code plus a native library."""

    def get_tag(self) -> tuple:
        python, abi, plat = super().get_tag()
        if plat == "any":
            return python, abi, plat  # ASYNCLOOP_BUILD_LIBRARY=0: a pure wheel
        return "py3", "none", plat


setup(distclass=BinaryDistribution,
      cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel})
