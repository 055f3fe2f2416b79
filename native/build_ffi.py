"""Builds edge._native (cffi API mode) from every C file in native/.

Each header declares what Python may call between the markers
`/* cffi:begin */` and `/* cffi:end */`; this script concatenates those sections
(core headers first, then the rest by name), so adding a block means adding its .c/.h
pair and nothing else.

Opt-in sanitizer build (the default build is untouched): `EDGE_NATIVE_SANITIZE=1 python
native/build_ffi.py OUT_DIR`, run from the repository root, writes OUT_DIR/edge/_native*.so
built with AddressSanitizer and UBSan; load it with libasan in LD_PRELOAD (tests/native).
"""

import os
import sys
from pathlib import Path

from cffi import FFI

NATIVE_DIR = Path(__file__).resolve().parent
BEGIN, END = "/* cffi:begin */", "/* cffi:end */"


def _cdef_sections(headers: list[Path]) -> str:
    parts = []
    for header in headers:
        text = header.read_text()
        while BEGIN in text:
            start = text.index(BEGIN) + len(BEGIN)
            stop = text.index(END, start)
            parts.append(text[start:stop])
            text = text[stop + len(END):]
    return "\n".join(parts)


# Headers whose types others use come first; the rest follow in name order.
CORE_HEADERS = ["block.h", "hist.h"]
headers = [NATIVE_DIR / name for name in CORE_HEADERS] + sorted(
    h for h in NATIVE_DIR.glob("*.h") if h.name not in CORE_HEADERS
)
sources = sorted(NATIVE_DIR.glob("*.c"))

COMPILE_ARGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
LINK_ARGS: list[str] = []
# Every UB report is fatal so a test run cannot pass over one; frame pointers give
# readable stacks. -O1 keeps the stacks close to the source. -fno-wrapv undoes the
# -fwrapv in Python's own CFLAGS, which makes signed overflow defined and so unchecked.
SANITIZE_ARGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                 "-fno-sanitize-recover=undefined", "-fno-wrapv", "-O1", "-g"]
if os.environ.get("EDGE_NATIVE_SANITIZE") == "1":
    COMPILE_ARGS += SANITIZE_ARGS
    LINK_ARGS += SANITIZE_ARGS

# setup.py (cffi_modules) needs paths relative to the repository root; run as a script,
# compile() changes into the output directory, so the paths must be absolute there.
def _path(p: Path) -> str:
    return str(p) if __name__ == "__main__" else str(p.relative_to(NATIVE_DIR.parent))


ffibuilder = FFI()
ffibuilder.cdef(_cdef_sections(headers))
ffibuilder.set_source(
    "edge._native",
    "\n".join(f'#include "{h.name}"' for h in headers),
    sources=[_path(s) for s in sources],
    include_dirs=[_path(NATIVE_DIR)],
    extra_compile_args=COMPILE_ARGS,
    extra_link_args=LINK_ARGS,
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    # Optional output directory: the extension lands in OUT_DIR/edge/.
    ffibuilder.compile(tmpdir=sys.argv[1] if len(sys.argv) > 1 else ".", verbose=True)
