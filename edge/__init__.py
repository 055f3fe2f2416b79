"""edge: a deterministic runtime for medical device controllers."""

import os as _os
import signal as _signal
import sys as _sys

__version__ = "0.1.0"


def get_include() -> str:
    """The include directory for compiling an integrator's native block against edge's C
    headers (block.h), like numpy.get_include(): `cc -shared -fPIC -I$(edge native
    --include) block.c`. Raises edge.errors.NativeError when the headers are missing."""
    from edge.rt.native import include_dir

    return include_dir()


def _started_as_the_edge_command() -> bool:
    """True for `edge ...` and `python -m edge.cli ...`, false when edge is a library."""
    if _os.path.basename(_sys.argv[0]) == "edge":
        return True
    argv = getattr(_sys, "orig_argv", [])
    return any(a == "-m" and b == "edge.cli" for a, b in zip(argv, argv[1:], strict=False))


def _stopped_while_loading(signum, frame) -> None:   # noqa: ANN001 - signal handler
    if signum == _signal.SIGTERM:
        _os.write(2, b"edge: terminated\n")
        _os._exit(143)
    _os.write(2, b"edge: interrupted\n")
    _os._exit(130)


if _started_as_the_edge_command():
    # a Ctrl-C or SIGTERM while the command's modules load is one line, not a traceback
    # or a silent death: installed by the package, the first of edge's code to run;
    # edge.cli.main installs its own handlers (the summary needs them) once loaded
    _signal.signal(_signal.SIGINT, _stopped_while_loading)
    _signal.signal(_signal.SIGTERM, _stopped_while_loading)
