"""`edge bench cfuzz`: the libFuzzer harnesses of native/fuzz/ for a bounded campaign.

Each harness is built with clang (`-fsanitize=fuzzer,address,undefined`) against the C
core, started from its seed corpus in the repository (copied, so the seeds stay small),
and run for `--runs` inputs or `--max-time` seconds, whichever ends first. The report
gives per harness: inputs executed, crashes (inputs that made a sanitizer or an
invariant of the harness abort; saved under the artifact directory), and coverage
(libFuzzer's edge and feature counts).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError

NATIVE = Path(__file__).resolve().parents[1] / "native"
FUZZ = NATIVE / "fuzz"
# harness -> the C sources it needs besides itself (None: every file of the core)
HARNESSES: dict[str, list[str] | None] = {
    "traj": ["traj.c", "traj_mid.c", "traj_profile.c", "traj_roots.c", "traj_block.c",
             "block.c"],
    "setup": None,
}
CFLAGS = ["-g", "-O1", "-fsanitize=fuzzer,address,undefined",
          "-fno-sanitize-recover=undefined", "-std=gnu11"]
_DONE = re.compile(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)")
_STATUS = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)")


@dataclass
class FuzzResult:
    harness: str
    execs: int            # inputs run
    crashes: int          # inputs saved as crash/timeout/oom artifacts
    coverage: int         # edges (libFuzzer "cov")
    features: int         # libFuzzer "ft"
    corpus: int           # inputs in the corpus at the end
    seconds: float
    artifacts: list[str]
    tail: str             # the last lines of libFuzzer's output, for a crash report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=-1,
                        help="inputs per harness (-1: until --max-time)")
    parser.add_argument("--max-time", type=int, default=60, help="seconds per harness (60)")
    parser.add_argument("--harness", action="append", choices=sorted(HARNESSES),
                        help="harness to run (repeatable; default all)")
    parser.add_argument("--corpus-dir", help="keep the grown corpora here (default: a temp dir)")
    parser.add_argument("--artifact-dir", default=".",
                        help="where crashing inputs are written (.)")


def clang() -> str:
    """The clang to build with; EdgeError when there is none."""
    path = shutil.which("clang")
    if path is None:
        raise EdgeError("clang is needed for the fuzz harnesses (apt-get install clang)")
    return path


def build(harness: str, out_dir: Path) -> Path:
    """Build one harness into out_dir; EdgeError with the compiler's message on failure."""
    sources = HARNESSES[harness]
    files = sorted(NATIVE.glob("*.c")) if sources is None else [NATIVE / s for s in sources]
    binary = out_dir / f"fuzz_{harness}"
    cmd = [clang(), *CFLAGS, f"-I{NATIVE}", str(FUZZ / f"fuzz_{harness}.c"),
           *map(str, files), "-lm", "-lpthread", "-o", str(binary)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        hint = (" (the libFuzzer runtime is in libclang-rt-dev)"
                if "libclang_rt.fuzzer" in done.stderr else "")
        raise EdgeError(f"building fuzz_{harness} failed{hint}: {done.stderr.strip()[-2000:]}")
    return binary


def run_harness(harness: str, binary: Path, corpus: Path, artifacts: Path, runs: int,
                max_time: int) -> FuzzResult:
    """Run one harness from `corpus` (seeded from native/fuzz/corpus/<harness>)."""
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    seeds = FUZZ / "corpus" / harness
    if seeds.is_dir():
        for seed in seeds.iterdir():
            shutil.copy(seed, corpus / seed.name)
    before = set(artifacts.iterdir())
    cmd = [str(binary), f"-runs={runs}", f"-max_total_time={max_time}",
           f"-artifact_prefix={artifacts}/{harness}-", "-print_final_stats=1",
           "-rss_limit_mb=1024", "-timeout=10", str(corpus)]
    start = time.monotonic()
    # libFuzzer stops at its limits; the timeout only guards against a wedged run
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=max_time * 3 + 120)
    seconds = time.monotonic() - start
    log = done.stderr
    status = _DONE.findall(log) or _STATUS.findall(log)
    execs, cov, ft, corp = (int(x) for x in status[-1]) if status else (0, 0, 0, 0)
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    if m:
        execs = int(m.group(1))
    new = sorted(str(p) for p in set(artifacts.iterdir()) - before)
    crashes = len(new) or (1 if done.returncode != 0 else 0)
    return FuzzResult(harness, execs, crashes, cov, ft, corp, seconds, new,
                      "\n".join(log.splitlines()[-40:]))


def campaign(harnesses: list[str], runs: int, max_time: int, corpus_dir: Path | None,
             artifact_dir: Path) -> list[FuzzResult]:
    """Build and run each harness; the builds live in a temp dir."""
    results = []
    with tempfile.TemporaryDirectory(prefix="edge-cfuzz-") as tmp:
        base = Path(tmp)
        corpora = corpus_dir or base / "corpus"
        for name in harnesses:
            binary = build(name, base)
            results.append(run_harness(name, binary, corpora / name, artifact_dir, runs,
                                       max_time))
    return results


def run(args: argparse.Namespace) -> BenchReport:
    if not FUZZ.is_dir():           # an installed wheel carries no C sources
        raise EdgeError(f"{FUZZ}: no C fuzz harnesses here; `edge bench cfuzz` builds "
                        "native/ with libFuzzer and runs from a source checkout only")
    harnesses = args.harness or list(HARNESSES)
    results = campaign(harnesses, args.runs, args.max_time,
                       Path(args.corpus_dir) if args.corpus_dir else None,
                       Path(args.artifact_dir))
    lines = [f"{'harness':<8} {'execs':>10} {'exec/s':>8} {'crashes':>8} {'cov':>6} "
             f"{'ft':>7} {'corpus':>7}"]
    for r in results:
        rate = r.execs / r.seconds if r.seconds > 0 else 0.0
        lines.append(f"{r.harness:<8} {r.execs:>10} {rate:>8.0f} {r.crashes:>8} "
                     f"{r.coverage:>6} {r.features:>7} {r.corpus:>7}")
        for path in r.artifacts:
            lines.append(f"  crash input: {path}")
    return BenchReport("\n".join(lines), {
        "machine": machine_facts(),
        "runs": args.runs, "max_time_s": args.max_time,
        "harnesses": {r.harness: {k: v for k, v in asdict(r).items() if k != "tail"}
                      for r in results},
    })
