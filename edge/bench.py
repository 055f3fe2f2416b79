"""`edge bench`: one registry of benchmarks, one report shape, one JSON writer.

Each benchmark module defines `add_arguments(parser)` and `run(args) -> BenchReport`,
measuring the anchor in the same run and putting it beside our figure.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHMARKS: dict[str, str] = {
    "jitter": "edge.rt.bench_jitter",
    "bus": "edge.rt.bench_bus",
    "motion": "edge.motion.bench",
    "logic": "edge.logic.bench",
    "acquisition": "edge.acquisition.bench",
    "faults": "bench.broker_faults",
    "soak": "bench.soak",
    "mutation": "bench.mutation",
    "crash": "bench.crash",          # kill -9 campaigns: journal and state files
    "fuzz": "bench.fuzz.bench",      # outside the product (bench/ may import edge, not back)
    "cfuzz": "bench.cfuzz",
    "callgrind": "bench.callgrind",
}


@dataclass
class BenchReport:
    text: str                              # the table a person reads
    data: dict[str, Any] = field(default_factory=dict)   # what --json writes

    def write_json(self, path: str | os.PathLike) -> None:
        """Write the data atomically (temp file + rename) so a reader never sees half."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, target)


def machine_facts() -> dict[str, Any]:
    """Which machine the figures came from, for every report."""
    import platform

    return {"host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "machine": platform.machine()}
