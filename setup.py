# The native extension is declared here because cffi_modules has no pyproject form; so is
# the copy of the integrators' C headers into the package (edge/include/), which
# edge.get_include() points a compiler at.
import re
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NATIVE = Path(__file__).resolve().parent / "native"
# What an integrator's native block includes; the files these include come along.
PUBLIC_HEADERS = ["block.h"]
_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def public_header_files() -> list[Path]:
    """PUBLIC_HEADERS and every file they include with #include "...", recursively."""
    todo, found = list(PUBLIC_HEADERS), {}
    while todo:
        name = todo.pop()
        if name not in found:
            found[name] = NATIVE / name
            todo += _LOCAL_INCLUDE.findall(found[name].read_text())
    return sorted(found.values())


class BuildPyWithHeaders(build_py):
    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "edge" / "include"
        dest.mkdir(parents=True, exist_ok=True)
        for header in public_header_files():
            self.copy_file(str(header), str(dest / header.name))


setup(cffi_modules=["native/build_ffi.py:ffibuilder"], cmdclass={"build_py": BuildPyWithHeaders})
