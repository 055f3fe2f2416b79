"""One scenario run in virtual time from Python, with its verdict as plain objects: what
the `hil_scenario` pytest fixture returns, so a bench writes its own tests around
scenario files (docs/hil.md, "The pytest plugin")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hil.runner import RunResult, execute
from hil.temporal import Trace, Verdict


@dataclass
class ScenarioVerdict:
    """Every run of one scenario file. `passed`: all of them passed; `failures`: every
    failed assertion (a Verdict: `tick`, `values`, `assertion`, `where`, `message()`);
    `errors`: runs that could not be carried out (one line each); `trace`: the trace of
    a scenario of one run (`traces` for all)."""

    scenario: str
    file: str
    runs: list[RunResult]

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(r.passed for r in self.runs)

    @property
    def failures(self) -> list[Verdict]:
        return [v for r in self.runs for v in r.verdicts if not v.passed]

    @property
    def errors(self) -> list[str]:
        return [f"{r.id}: {r.error}" for r in self.runs if r.error is not None]

    @property
    def traces(self) -> list[Trace | None]:
        return [r.trace for r in self.runs]

    @property
    def trace(self) -> Trace | None:
        if len(self.runs) != 1:
            raise ValueError(f"scenario '{self.scenario}' has {len(self.runs)} runs: "
                             "take one of .traces")
        return self.runs[0].trace

    def report(self) -> str:
        """What failed, a line each (for an assertion message)."""
        return "\n".join([*self.errors, *(v.message() for v in self.failures)])


def run_scenario(path_or_name: str | Path, seed: int | None = None) -> ScenarioVerdict:
    """Run every run of a scenario file (a path, or the name of a shipped scenario) in
    virtual time. Raises ConfigError (file, line, field) for a bad scenario file."""
    from hil.cli import scenario_files
    from hil.scenario import load_scenario

    (path,) = scenario_files([str(path_or_name)])
    scenario = load_scenario(path, seed)
    runs = [execute(scenario.run(i), keep_trace=True) for i in range(len(scenario))]
    return ScenarioVerdict(scenario.name, str(path), runs)
