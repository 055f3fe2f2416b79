"""The `edge` command: run a board, check a board file, run benchmarks, and the commands
other packages add (entry-point group `edge.commands`: `edge hil`).

Every EdgeError becomes one line on stderr and a non-zero exit code (the table is
edge.errors.EXIT_CODES); a traceback means a bug in edge, never a user error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from edge import __version__
from edge.errors import EXIT_FAULTED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EdgeError
from edge.logs import configure as configure_logging

log = logging.getLogger("edge")

MAX_DURATION_S = 1e9            # about 31 years: past that, leave --duration out
VIRTUAL_DEFAULT_S = 10.0        # --virtual-time without --duration
PLUGIN_GROUP = "edge.commands"  # entry points adding subcommands (edge hil: the hil package)


class Terminated(KeyboardInterrupt):
    """SIGTERM before the run took it over: handled like Ctrl-C, with its own exit code."""


_terminated: list[Terminated] = []


def _terminate(signum, frame) -> None:   # noqa: ANN001 - signal handler
    # Python may run this inside a callback that swallows exceptions ("Exception ignored
    # in ..."): the record lets the next start-up checkpoint raise it again
    _terminated.append(Terminated())
    raise _terminated[-1]


def _checkpoint() -> None:
    """Raise a SIGTERM received during start-up that Python swallowed."""
    if _terminated:
        raise _terminated[0]


def _stopped(exc: KeyboardInterrupt) -> int:
    """Say how start-up was stopped (one line) and give the exit code."""
    if isinstance(exc, Terminated):
        print("edge: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    print("edge: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    if not math.isfinite(value) or value > MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_DURATION_S:g} s, got {text} "
                                         "(leave --duration out to run until stopped)")
    return value


def _output_path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edge", description="Deterministic runtime for medical device "
                                              "controllers.")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a board (default: the simulated arm)")
    run.add_argument("--board", metavar="NAME|PATH", help="shipped board name or board file")
    run.add_argument("--duration", type=_duration, metavar="S",
                     help="stop after S seconds (default: until Ctrl-C or SIGTERM; "
                          f"with --virtual-time, {VIRTUAL_DEFAULT_S:g} s of virtual time)")
    run.add_argument("--virtual-time", action="store_true",
                     help="step the controller in virtual time, as fast as it goes "
                          "(no services: not with --mqtt)")
    run.add_argument("--stats-json", type=_output_path, metavar="PATH",
                     help="write the run summary as JSON")
    run.add_argument("--stats-every", type=_duration, metavar="S",
                     help="with --stats-json: also rewrite it every S seconds while running")
    run.add_argument("--mqtt", metavar="URL",
                     help="bridge the bus to an MQTT broker (mqtt:// or mqtts://)")
    run.add_argument("--record", type=_output_path, metavar="DIR",
                     help="flight recorder: write every input with its tick and a digest of "
                          "the outputs to DIR, for `edge hil replay DIR`")
    run.add_argument("--explain", action="store_true",
                     help="print the blocks in tick order, the tasks, services and bus "
                          "topics, and exit without running")

    check = sub.add_parser("check", help="validate a board file: build everything "
                                         "`edge run` would, start nothing")
    check.add_argument("path", metavar="PATH|NAME")
    check.add_argument("--mqtt", metavar="URL", help="check it as `edge run --mqtt URL` would")

    native = sub.add_parser("native", help="what compiling an integrator's native block needs")
    native.add_argument("--include", action="store_true",
                        help="print the directory of edge's C headers (for cc -I)")

    from edge.bench import benchmarks

    bench = sub.add_parser("bench", help="measure a hot path beside its anchor")
    bench_sub = bench.add_subparsers(dest="bench", metavar="NAME", parser_class=_Parser)
    for name, module in benchmarks().items():
        p = bench_sub.add_parser(name, help=f"benchmark: {name}")
        p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
        p.set_defaults(bench_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
            p.set_defaults(bench_missing=True)
    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub) -> None:   # noqa: ANN001 - argparse's private action type
    """The subcommands other packages add (entry-point group `edge.commands`): each entry
    names a module with add_arguments(parser) and run(args) -> exit code. One whose module
    needs an optional dependency that is missing stays listed, and says what to install
    when it is used."""
    for ep in plugin_commands():
        if ep.name in sub.choices:          # a built-in keeps its name
            continue
        try:
            module = importlib.import_module(ep.value)
        except ModuleNotFoundError as exc:
            if exc.name is None:
                raise
            p = sub.add_parser(ep.name, help=f"(needs {exc.name}, which is not installed)")
            p.set_defaults(plugin_missing=(ep, exc.name))
            continue
        doc = (module.__doc__ or ep.name).strip().splitlines()[0]
        p = sub.add_parser(ep.name, help=doc.rstrip("."))
        p.set_defaults(plugin_module=ep.value, plugin_missing=None)
        module.add_arguments(p)


def plugin_commands() -> list:
    """The installed entry points of the group `edge.commands` (in metadata order)."""
    from importlib.metadata import entry_points

    return list(entry_points(group=PLUGIN_GROUP))


def _extra_for(ep, module: str) -> str | None:   # noqa: ANN001 - an EntryPoint
    """The extra of the entry point's distribution that installs `module`, if one does
    (`pyarrow>=14; extra == "hil"` -> "hil")."""
    import re

    dist = getattr(ep, "dist", None)
    for line in (dist.requires or []) if dist is not None else []:
        m = re.match(r"([A-Za-z0-9_.-]+).*?extra\s*==\s*[\"']([^\"']+)[\"']", line)
        if m and m[1].lower().replace("-", "_") == module.split(".")[0].lower() \
                and m[2] != "test":
            return m[2]
    return None


def cmd_plugin(args: argparse.Namespace) -> int:
    if args.plugin_missing is not None:
        ep, module = args.plugin_missing
        if ep.value.split(".")[0] == module.split(".")[0]:     # its own package is gone
            raise EdgeError(f"`edge {ep.name}` is broken in this install ({module} is "
                            "missing): reinstall edge")
        extra = _extra_for(ep, module)
        how = f"pip install 'edge[{extra}]'" if extra else f"pip install {module}"
        raise EdgeError(f"`edge {ep.name}` needs {module}, which is not installed: {how}")
    return importlib.import_module(args.plugin_module).run(args)


def check_output_file(path: str) -> None:
    """Refuse at start an output file that could not be written at the end."""
    target = Path(path)
    if target.is_dir():
        raise EdgeError(f"cannot write {path}: it is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise EdgeError(f"cannot write {path}: no directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists()
                                                    and not os.access(target, os.W_OK)):
        raise EdgeError(f"cannot write {path}: permission denied")


def _write_json(path: str, data: dict[str, Any]) -> None:
    import json

    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EdgeError(f"cannot write {path}: {exc.strerror}") from None


def _format_summary(s: dict[str, Any], sections: Sequence[str]) -> str:
    """The summary as text: the cycle, the tasks, then one line per entry in `sections`
    (what the board's sections contributed, Runtime.summary_names)."""
    lines = [f"board {s['board']} ({s['mode']}, period {s['period_us']:.0f} us): "
             f"{s['ticks']} ticks, {s['overruns']} overruns, "
             f"{s['executor']['deadline_misses']} deadline misses, "
             f"{s['late_commands']} late commands, {s['state_drops']} state drops"]
    if "latency_us" in s:
        lat = s["latency_us"]
        lines.append(f"wake-up latency us: p50 {lat['p50_us']:.2f}  p99 {lat['p99_us']:.2f}  "
                     f"p99.9 {lat['p999_us']:.2f}  max {lat['max_us']:.2f}  "
                     f"(busy-wait tail {s['busy_tail_us']:.0f} us = "
                     f"{100 * s['busy_tail_cpu_fraction']:.1f}% of a CPU)")
    ex = s["exec_us"]
    lines.append(f"tick execution us: p50 {ex['p50']:.2f}  p99 {ex['p99']:.2f}  "
                 f"max {ex['max']:.2f}")
    for task in s["executor"]["tasks"]:
        lines.append(f"task {task['name']}: {task['releases']} releases, "
                     f"{task['misses']} misses, max runtime {task['max_runtime_us']:.0f} us")
    for refused in s.get("realtime", {}).get("refused", []):
        lines.append(f"note: {refused}")
    for name in sections:
        if s.get(name):
            lines.append(f"{name}: {_compact(s[name])}")
    return "\n".join(lines)


def _format_explain(e: dict[str, Any]) -> str:
    """`edge run --explain`: what the controller is made of, in tick order."""
    lines = [f"board {e['board']} (period {e['period_us']:.0f} us)",
             "tick: read every block (drive inputs) -> commands due -> step each block in "
             "stage order -> write every block (drive outputs)",
             f"stages: {' -> '.join(e['stages'])}"]
    lines += [f"block {b['index']}: {b['name']} (stage {b['stage']})" for b in e["blocks"]]
    for t in e["tasks"]:
        stop = f", stop category {t['stop_category']}" if t["stop_category"] is not None else ""
        lines.append(f"task {t['name']}: period {t['period_ticks']} ticks, deadline "
                     f"{t['deadline_ticks']} ticks, offset {t['offset_ticks']}, priority "
                     f"{t['priority']}, on miss {t['on_miss']}{stop}")
    lines += [f"service {name}" for name in e["services"]]
    lines.append(f"components: {', '.join(e['components']) or 'none'}")
    bus = e["bus"]
    for what, key in (("delivery order", "order"), ("publishes", "publishes"),
                      ("subscribed", "subscriptions"),
                      ("published at start", "published_at_start")):
        lines.append(f"bus {what}: {', '.join(bus[key]) or 'none'}")
    return "\n".join(lines)


def _compact(value: Any) -> str:
    """A one-line rendering of a section's summary (the JSON has it in full)."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_compact(v)}" for k, v in value.items()
                         if not isinstance(v, (dict, list)) or k in ("faults", "tool_xyz_m"))
    if isinstance(value, list):
        return "[" + ", ".join(map(_compact, value)) + "]"
    return str(value)


def _load(board_arg: str | None, mqtt_url: str | None):
    """The board as `edge run` and `edge check` both see it (with --mqtt applied)."""
    from edge.config import load_board

    return load_board(board_arg, {"mqtt": mqtt_url} if mqtt_url else None)


def cmd_run(args: argparse.Namespace) -> int:
    if args.record:
        from edge.config import load_board

        options = {"mqtt": args.mqtt} if args.mqtt else {}
        board = load_board(args.board, {**options, "record": args.record})
    else:
        board = _load(args.board, args.mqtt)
    if args.virtual_time and args.mqtt:
        raise EdgeError("--virtual-time runs no services, so no MQTT bridge: leave out "
                        "--mqtt or --virtual-time")
    if args.stats_json:
        check_output_file(args.stats_json)
    if args.stats_every and not args.stats_json:
        raise EdgeError("--stats-every needs --stats-json PATH")
    from edge.rt.runtime import Runtime

    _checkpoint()
    if args.explain:        # built as `edge check` builds it: nothing durable is written
        print(_format_explain(Runtime.for_check(board, virtual_time=args.virtual_time)
                              .explain()))
        return EXIT_OK
    runtime = Runtime(board, virtual_time=args.virtual_time)
    if args.virtual_time and runtime.service_names:
        log.warning("virtual time runs no services: %s not started",
                    ", ".join(runtime.service_names))
    if args.stats_every:
        runtime.add_service(lambda: _periodic_summary(runtime, args.stats_json,
                                                      args.stats_every), "periodic summary")
    stopped: KeyboardInterrupt | None = None
    try:
        _checkpoint()
        for line in runtime.cycle.stats().realtime_report():
            log.warning(line)
        how_long = "until Ctrl-C or SIGTERM" if args.duration is None and not \
            args.virtual_time else f"for {args.duration or VIRTUAL_DEFAULT_S:g} s"
        log.info("running board %s in %s time %s", board.name,
                 "virtual" if args.virtual_time else "real", how_long)
        if args.virtual_time:
            runtime.run_virtual(args.duration or VIRTUAL_DEFAULT_S)
        else:
            runner = _loop_runner()
            runner(runtime.run_realtime(args.duration))
    except KeyboardInterrupt as exc:   # before the run took the signal over: summarise
        stopped = exc
    summary = runtime.summary()
    print(_format_summary(summary, runtime.summary_names))
    if args.stats_json:
        _write_json(args.stats_json, summary)
    failures = runtime.failures(summary)
    for why in failures:
        print(f"edge: run faulted: {why}", file=sys.stderr)
    if stopped is not None:
        return _stopped(stopped)
    return EXIT_FAULTED if failures else EXIT_OK


@contextlib.asynccontextmanager
async def _periodic_summary(runtime, path: str, every_s: float):
    """A service rewriting the summary file while the run goes on, for a watcher (a soak,
    a monitoring sidecar) that cannot wait for the end; each write is atomic."""
    async def write_every() -> None:
        while True:
            await asyncio.sleep(every_s)
            _write_json(path, runtime.summary())

    task = asyncio.create_task(write_every(), name="periodic-summary")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _loop_runner():
    try:
        import uvloop

        return uvloop.run
    except ImportError:   # uvloop is a dependency; asyncio is the reported fallback
        log.warning("uvloop not available; running on the default asyncio loop")
        return asyncio.run


def cmd_check(args: argparse.Namespace) -> int:
    board = _load(args.path, args.mqtt)
    from edge.rt.runtime import Runtime

    Runtime.for_check(board)      # every check `edge run` makes before it starts
    from edge.config import CORE_SECTIONS

    sections = ", ".join([*CORE_SECTIONS, *board.sections])
    print(f"{board.file}: board '{board.name}' is valid ({len(board.axes)} axes; {sections})")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from edge.bench import ENTRY_POINT_GROUP, benchmarks

    if not getattr(args, "bench", None):
        names = ", ".join(benchmarks())
        raise EdgeError(f"name a benchmark: {names}" if names else
                        f"no benchmark is installed (the entry-point group "
                        f"'{ENTRY_POINT_GROUP}' is empty: reinstall edge)")
    if getattr(args, "bench_missing", False):
        raise EdgeError(f"benchmark '{args.bench}' is not part of this build of edge")
    report = importlib.import_module(args.bench_module).run(args)
    print(report.text)
    if args.json:
        _write_json(args.json, report.data)
    return 0


def cmd_native(args: argparse.Namespace) -> int:
    if not args.include:
        raise EdgeError("say what to print: edge native --include")
    import edge

    print(edge.get_include())
    return 0


COMMANDS = {"run": cmd_run, "check": cmd_check, "bench": cmd_bench, "native": cmd_native}


def main(argv: Sequence[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _terminate)       # the run installs its own
    repeats = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        repeats = configure_logging(args.log_level)
        if not args.command:
            parser.print_usage(sys.stderr)
            return 2
        return COMMANDS.get(args.command, cmd_plugin)(args)
    except EdgeError as exc:
        print(f"edge: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        return _stopped(exc)
    finally:
        if repeats is not None:
            repeats.flush()


if __name__ == "__main__":
    sys.exit(main())
