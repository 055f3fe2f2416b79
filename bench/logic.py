"""`edge bench logic`: our expression cost beside simpleeval and cel-python, and the scan
time of a 1,000-rule program.

Each expression is written once per language by hand (ST for us, Python for simpleeval,
CEL for cel-python) and all three must agree on every sample before anything is timed.
simpleeval gets its pre-parsed tree and cel-python its compiled program, so only
evaluation is compared. Times are the median of several timed batches (ns per call).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError

SIGNALS = {"speed": "REAL", "force": "REAL", "estop": "BOOL", "door_closed": "BOOL",
           "mode": "INT", "temp": "REAL", "q1": "REAL", "q2": "REAL", "count": "INT"}

# (name, ST, Python for simpleeval, CEL)
CASES = [
    ("interlock6",
     "speed < 0.5 AND force < 40.0 AND NOT estop AND door_closed AND mode = 2 "
     "AND temp <= 60.0",
     "speed < 0.5 and force < 40.0 and not estop and door_closed and mode == 2 "
     "and temp <= 60.0",
     "speed < 0.5 && force < 40.0 && !estop && door_closed && mode == 2 && temp <= 60.0"),
    ("window",
     "temp < 10.0 OR temp > 55.0",
     "temp < 10.0 or temp > 55.0",
     "temp < 10.0 || temp > 55.0"),
    ("arith",
     "ABS(q1 - q2) * 2.0 + force / 4.0 > 30.0",
     "abs(q1 - q2) * 2.0 + force / 4.0 > 30.0",
     "(q1 - q2 >= 0.0 ? q1 - q2 : q2 - q1) * 2.0 + force / 4.0 > 30.0"),
    ("conditional",
     "IF mode = 2 THEN speed * 10.0 ELSE force - 1.0 END_IF > 3.0 AND count < 100",
     "(speed * 10.0 if mode == 2 else force - 1.0) > 3.0 and count < 100",
     "(mode == 2 ? speed * 10.0 : force - 1.0) > 3.0 && count < 100"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", type=int, default=1000, help="rules in the program (1000)")
    parser.add_argument("--scans", type=int, default=2000, help="timed scans (2000)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (for tests)")


def _samples(n: int, rnd: random.Random) -> list[dict[str, Any]]:
    return [{"speed": rnd.uniform(0, 1), "force": rnd.uniform(0, 80), "estop": rnd.random() < 0.1,
             "door_closed": rnd.random() < 0.9, "mode": rnd.choice([1, 2, 2, 3]),
             "temp": rnd.uniform(0, 70), "q1": rnd.uniform(-3, 3), "q2": rnd.uniform(-3, 3),
             "count": rnd.randrange(0, 200)} for _ in range(n)]


def _per_call_ns(fn, arg, number: int, repeat: int) -> float:
    """Median over `repeat` batches of the time per call, in ns (loop overhead included
    the same way for every contender)."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn(arg)
        out.append((time.perf_counter_ns() - t0) / number)
    return statistics.median(out)


def bench_expressions(quick: bool) -> list[dict[str, Any]]:
    from edge.logic import compile_expression

    try:
        import celpy
        from simpleeval import SimpleEval
    except ImportError as exc:
        raise EdgeError(f"the logic benchmark needs the anchors simpleeval and cel-python "
                        f"(pip install 'edge[bench]'): {exc}") from None
    rnd = random.Random(5)
    samples = _samples(50, rnd)
    env = celpy.Environment()
    rows = []
    for name, st, py, cel in CASES:
        ours = compile_expression(st, SIGNALS)
        se = SimpleEval(functions={"abs": abs})
        tree = se.parse(py)
        cel_prog = env.program(env.compile(cel))
        for s in samples:
            se.names = s
            want = se.eval(py, previously_parsed=tree)
            got = ours(s)
            got_cel = bool(cel_prog.evaluate(celpy.json_to_cel(s)))
            if got != want or got_cel != want:
                raise EdgeError(f"bench case {name}: ours={got} simpleeval={want} "
                                f"cel={got_cel} disagree on {s}")
        sample = samples[0]
        se.names = sample
        cel_act = celpy.json_to_cel(sample)
        n_fast, n_slow, reps = (1000, 10, 3) if quick else (5000, 20, 25)
        n_se = max(100, n_fast // 10)
        # interleaved rounds: a burst of machine load hits all three contenders alike,
        # and each round gives its own ratio
        ours_t, se_t, cel_t = [], [], []
        for _ in range(reps):
            ours_t.append(_per_call_ns(ours, sample, n_fast, 1))
            se_t.append(_per_call_ns(lambda _s, se=se, py=py, tree=tree:
                                     se.eval(py, previously_parsed=tree), None, n_se, 1))
            cel_t.append(_per_call_ns(cel_prog.evaluate, cel_act, n_slow, 1))
        # best of the rounds (as timeit recommends: other processes only ever add time),
        # and the medians beside them
        rows.append({"case": name, "ours_ns": min(ours_t), "simpleeval_ns": min(se_t),
                     "cel_python_ns": min(cel_t),
                     "vs_simpleeval": min(se_t) / min(ours_t),
                     "vs_cel_python": min(cel_t) / min(ours_t),
                     "median_ns": {"ours": statistics.median(ours_t),
                                   "simpleeval": statistics.median(se_t),
                                   "cel_python": statistics.median(cel_t)}})
    return rows


def rule_program(n_rules: int, seed: int = 7) -> tuple[str, dict[str, str]]:
    """A program of n rules in the shapes interlocks take: thresholds with an enable,
    windows, three-term interlocks, a difference between two signals, FOR delays."""
    rnd = random.Random(seed)
    n_sig = max(8, n_rules)
    signals = {f"s{i}": "REAL" for i in range(n_sig)}
    signals.update({f"en{i}": "BOOL" for i in range(64)})
    signals.update({f"mode{i}": "INT" for i in range(8)})
    lines = []
    for i in range(n_rules):
        a, b = f"s{i}", f"s{(i * 7 + 3) % n_sig}"
        en = f"en{i % 64}"
        k = i % 10
        if k < 4:
            cond = f"{a} > {rnd.uniform(80, 99):.1f} AND {en}"
        elif k < 6:
            cond = f"{a} < {rnd.uniform(1, 5):.1f} OR {a} > {rnd.uniform(95, 99):.1f}"
        elif k < 8:
            cond = f"{a} > 90.0 AND NOT {en} AND mode{i % 8} = 2"
        elif k < 9:
            cond = f"ABS({a} - {b}) > 85.0"
        else:
            cond = f"{a} > 92.0 AND {en}"
        delay = " FOR 20ms" if k == 9 else ""
        action = f'STOP 2; EVENT "r{i}";' if k == 7 else f'EVENT "r{i}";'
        lines.append(f"WHEN {cond}{delay} THEN {action} END_WHEN")
    return "\n".join(lines), signals


def bench_scan(n_rules: int, n_scans: int, churn: bool, vectorize: bool = True
               ) -> dict[str, Any]:
    """Scan time of a program of n rules; inputs are random walks (churn=False, sensors
    that move a little each scan) or fresh random values every scan (churn=True)."""
    from edge.logic.program import Program

    text, signals = rule_program(n_rules)
    t0 = time.perf_counter()
    prog = Program(text, signals, period_ns=1_000_000, vectorize=vectorize)
    compile_s = time.perf_counter() - t0
    rnd = random.Random(11)
    inputs: dict[str, Any] = {}
    for k, t in signals.items():
        inputs[k] = {"REAL": 50.0, "BOOL": True, "INT": 2}[t]
    reals = [k for k, t in signals.items() if t == "REAL"]
    bools = [k for k, t in signals.items() if t == "BOOL"]
    times, cpu, fired = [], [], 0
    warm_up = 500
    for tick in range(n_scans + warm_up):
        if churn:
            for k in reals:
                inputs[k] = rnd.uniform(0, 100)
        else:
            for k in rnd.sample(reals, max(1, len(reals) // 10)):
                inputs[k] = min(100.0, max(0.0, inputs[k] + rnd.gauss(0, 8)))
        if tick % 50 == 0:
            k = rnd.choice(bools)
            inputs[k] = not inputs[k]
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        result = prog.scan(inputs, tick)
        dt, dc = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
        if tick >= warm_up:           # caches, branch predictors and allocators warm
            times.append(dt)
            cpu.append(dc)
            fired += len(result.events)
    times.sort()
    cpu.sort()
    return {"rules": n_rules, "scans": n_scans, "churn": churn, "vectorize": vectorize,
            "compile_ms": compile_s * 1e3,
            "median_us": times[len(times) // 2] / 1e3,
            "p99_us": times[int(len(times) * 0.99)] / 1e3, "max_us": times[-1] / 1e3,
            "cpu_median_us": cpu[len(cpu) // 2] / 1e3, "min_us": times[0] / 1e3,
            "events_per_scan": fired / n_scans}


def run(args: argparse.Namespace) -> BenchReport:
    if not 1 <= args.rules <= 20000:
        raise EdgeError(f"--rules must be between 1 and 20000, got {args.rules}")
    if not 10 <= args.scans <= 1_000_000:
        raise EdgeError(f"--scans must be between 10 and 1000000, got {args.scans}")
    rows = bench_expressions(args.quick)
    scans = [bench_scan(args.rules, args.scans, churn=False),
             bench_scan(args.rules, args.scans, churn=True),
             bench_scan(args.rules, args.scans, churn=False, vectorize=False)]
    lines = ["expression evaluation (ns per call, best of interleaved rounds; anchors "
             "pre-parsed/compiled)",
             f"{'case':<12} {'ours':>9} {'simpleeval':>11} {'cel-python':>11} "
             f"{'x simpleeval':>13} {'x cel':>8}"]
    for r in rows:
        lines.append(f"{r['case']:<12} {r['ours_ns']:9.0f} {r['simpleeval_ns']:11.0f} "
                     f"{r['cel_python_ns']:11.0f} {r['vs_simpleeval']:12.1f}x "
                     f"{r['vs_cel_python']:7.0f}x")
    lines.append("")
    load = os.getloadavg()[0]
    lines.append(f"program scan, {args.rules} rules (target: <= 200 us per scan); wall time, "
                 f"and thread CPU time; load average {load:.1f} on {os.cpu_count()} CPUs")
    for s in scans:
        label = ("random-walk inputs" if not s["churn"] else "all inputs random") + \
            ("" if s["vectorize"] else ", closures only")
        lines.append(f"  {label:<34} min {s['min_us']:6.1f}  median {s['median_us']:6.1f}  "
                     f"p99 {s['p99_us']:7.1f}  cpu median {s['cpu_median_us']:6.1f} us"
                     f"  ({s['events_per_scan']:.1f} events/scan)")
    data = {"machine": machine_facts(), "load_average": load, "expressions": rows,
            "scan": scans,
            "target": {"vs_simpleeval_min": 10.0, "scan_1000_rules_max_us": 200.0}}
    return BenchReport("\n".join(lines), data)
