"""Builds edge._native (cffi API mode) from every C file in native/.

Each header declares what Python may call between the markers
`/* cffi:begin */` and `/* cffi:end */`; this script concatenates those sections
(core headers first, then the rest by name), so adding a block means adding its .c/.h
pair and nothing else.
"""

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

ffibuilder = FFI()
ffibuilder.cdef(_cdef_sections(headers))
ffibuilder.set_source(
    "edge._native",
    "\n".join(f'#include "{h.name}"' for h in headers),
    sources=[str(s.relative_to(NATIVE_DIR.parent)) for s in sources],
    include_dirs=[str(NATIVE_DIR.relative_to(NATIVE_DIR.parent))],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
