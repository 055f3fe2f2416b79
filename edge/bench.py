"""`edge bench`: the report shape every benchmark returns (the command writes its data
with --json), and how the command finds them.

The benchmarks live outside the product (the top-level `bench` package, which may import
edge and hil, never the reverse). Each is an entry point of the group `edge.benchmarks`
naming a module that defines `add_arguments(parser)` and `run(args) -> BenchReport`, and
measures its anchor in the same run, putting it beside our figure. Any installed
distribution can add one the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "edge.benchmarks"


def benchmarks() -> dict[str, str]:
    """Benchmark name -> the module that implements it, from the installed entry points
    (in the order the installed metadata lists them)."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


@dataclass
class BenchReport:
    text: str                              # the table a person reads
    data: dict[str, Any] = field(default_factory=dict)   # what --json writes


def machine_facts() -> dict[str, Any]:
    """Which machine the figures came from, for every report."""
    import platform

    return {"host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "machine": platform.machine()}
