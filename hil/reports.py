"""What `edge hil run` writes: a line per run while it goes (with rich when it is
installed, plain text otherwise), a summary table, JUnit XML (one testcase per run, as
Jenkins' junit-10.xsd describes it) and one Parquet file per run's trace (pyarrow,
extra `hil`).
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import EdgeError

if TYPE_CHECKING:
    from hil.runner import RunResult
    from hil.temporal import Trace


def _rich_console():
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(highlight=False)


class Progress:
    """One line per finished run: verdict, id, ticks, trace SHA-256, then its failures.
    On a terminal with rich installed, bars above the lines: one per scenario file (its
    runs done) and one for the whole campaign; `with` shows and ends them."""

    def __init__(self, total: int, per_file: dict[str, int] | None = None,
                 console=None) -> None:
        self.total = total
        self.done = 0
        self.console = console or _rich_console()
        self._bars = None
        self._tasks: dict[str, int] = {}
        if self.console is not None and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as Bars

            self._bars = Bars(TextColumn("{task.description}"), BarColumn(),
                              MofNCompleteColumn(), console=self.console, transient=False)
            for name, runs in (per_file or {}).items():
                self._tasks[name] = self._bars.add_task(Path(name).name, total=runs)
            self._all = self._bars.add_task("all runs", total=total)

    def __enter__(self) -> Progress:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bars is not None:
            self._bars.stop()

    def show(self, result: RunResult, file: str | None = None) -> None:
        self.done += 1
        verdict = "PASS" if result.passed else "ERROR" if result.error else "FAIL"
        line = (f"[{self.done}/{self.total}] {verdict} {result.id}: {result.ticks} ticks, "
                f"{result.seconds:.2f} s, trace sha256 {result.sha256 or '-'}")
        extra = [f"    {text}" for text in (*result.failures(), *result.notes,
                                             *(m.line() for m in result.measures))]
        if self.console is None:
            print("\n".join([line, *extra]), flush=True)
            return
        style = "green" if result.passed else "red"
        self.console.print(line, style=style, markup=False, soft_wrap=True)
        for text in extra:
            self.console.print(text, markup=False, soft_wrap=True)
        if self._bars is not None:
            if file in self._tasks:
                self._bars.advance(self._tasks[file])
            self._bars.advance(self._all)


def summary_table(results: Sequence[RunResult]) -> str | None:
    """The summary as plain text; with rich installed it is printed as a table instead
    (and None is returned)."""
    rows = [(r.id, "pass" if r.passed else "error" if r.error else "fail", str(r.ticks),
             f"{sum(v.passed for v in r.verdicts)}/{len(r.verdicts)}", r.sha256[:16] or "-")
            for r in results]
    head = ("run", "verdict", "ticks", "assertions", "trace sha256")
    passed = sum(r.passed for r in results)
    total = f"{passed} of {len(results)} runs passed"
    console = _rich_console()
    if console is not None:
        from rich.table import Column, Table
        from rich.text import Text

        # a narrow terminal folds the run id (it names the parameters), never cuts it
        table = Table(Column(head[0], overflow="fold"),
                      *(Column(h, no_wrap=True) for h in head[1:]),
                      title="edge hil run", caption=total)
        for row in rows:                 # Text: a run id's [p=v] is not rich markup
            table.add_row(*map(Text, row), style=None if row[1] == "pass" else "red")
        console.print(table)
        return None
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(head)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in (head, *rows)]
    return "\n".join([*lines, total])


def write_junit(results: Sequence[RunResult], path: Path) -> None:
    """JUnit XML: one testsuite per scenario file, one testcase per run; a failed
    assertion is a <failure> whose message names the tick and the values, a run that
    could not be carried out an <error>."""
    suites = ET.Element("testsuites", name="edge hil run", tests=str(len(results)),
                        failures=str(sum(not r.passed and r.error is None for r in results)),
                        errors=str(sum(r.error is not None for r in results)),
                        time=f"{sum(r.seconds for r in results):.3f}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    by_file: dict[str, list[RunResult]] = {}
    for r in results:
        by_file.setdefault(r.file, []).append(r)
    for file, runs in by_file.items():
        suite = ET.SubElement(
            suites, "testsuite", name=runs[0].scenario, tests=str(len(runs)),
            failures=str(sum(not r.passed and r.error is None for r in runs)),
            errors=str(sum(r.error is not None for r in runs)), skipped="0",
            time=f"{sum(r.seconds for r in runs):.3f}", timestamp=stamp,
            hostname=socket.gethostname(), file=file)
        for r in runs:
            case = ET.SubElement(suite, "testcase", name=r.id, classname=f"hil.{r.scenario}",
                                 time=f"{r.seconds:.3f}")
            if r.error is not None:
                ET.SubElement(case, "error", type="EdgeError", message=r.error).text = r.error
            elif not r.passed:
                failures = r.failures()
                ET.SubElement(case, "failure", type="AssertionFailed",
                              message=failures[0]).text = "\n".join(failures)
            out = [f"seed {r.seed}", f"ticks {r.ticks}", f"trace sha256 {r.sha256}",
                   *(v.message() for v in r.verdicts), *r.notes,
                   *(m.line() for m in r.measures)]
            ET.SubElement(case, "system-out").text = "\n".join(out)
    tree = ET.ElementTree(suites)
    ET.indent(tree)
    try:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise EdgeError(f"cannot write {path}: {exc.strerror}") from None


def run_stem(run_id: str) -> str:
    """A run's id as a file name, without characters a shell would glob:
    `collision_link3[torque_nm=30]` -> `collision_link3-torque_nm=30`."""
    name = run_id.replace("[", "-").replace("]", "")
    return re.sub(r"[^A-Za-z0-9_.=,-]+", "_", name)


def trace_file_name(result: RunResult) -> str:
    """The file name of a run's trace: `collision_link3-torque_nm=30.parquet`."""
    return run_stem(result.id) + ".parquet"


def write_parquet(trace: Trace, directory: Path, result: RunResult) -> Path:
    """The trace as one Parquet file (a `tick` column, then one per signal), the run's
    scenario, seed, parameters and SHA-256 in the file's metadata."""
    import json

    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise EdgeError("--trace writes Parquet files with pyarrow, which is not installed: "
                        "pip install 'edge[hil]'") from None
    table = pa.table({"tick": trace.ticks, **trace.columns})
    meta = {"scenario": result.scenario, "run": result.id, "seed": str(result.seed),
            "params": json.dumps(result.params), "trace_sha256": result.sha256,
            "period_ns": str(trace.period_ns),
            "types": json.dumps(trace.types),
            "measures": json.dumps({m.name: m.value for m in result.measures})}
    table = table.replace_schema_metadata({f"edge.{k}": v for k, v in meta.items()})
    path = directory / trace_file_name(result)
    try:
        pq.write_table(table, path)
    except OSError as exc:
        raise EdgeError(f"cannot write {path}: {exc}") from None
    return path
