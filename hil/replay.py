"""`edge hil replay DIR`: replay a flight recording (`edge run --record DIR`) in virtual
time and say whether the controller did bit for bit what it did live; exit 0 only then.

A module of the `edge hil` command table: `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import sys

from edge.errors import EXIT_ERROR, EXIT_OK, EdgeError

HELP = "replay a flight recording in virtual time: identical, or the first divergent tick"
EXIT_DIVERGED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a recording made by edge run --record DIR")
    parser.add_argument("--until-tick", type=int, metavar="K", default=None,
                        help="compare the ticks before K only")


def run(args: argparse.Namespace) -> int:
    """Print what was replayed, both hashes and `identical` or the first divergent tick.
    0: identical; 1: diverged; 2: the recording cannot be read or replayed (one line)."""
    from edge.rt.replay import read_recording, replay

    try:
        recording = read_recording(args.dir)
        result = replay(recording, until_tick=args.until_tick)
    except EdgeError as exc:
        print(f"edge: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_ERROR
    header = recording.header
    end = ("a clean end" if recording.clean_end else
           f"no clean end (the recorder was stopped abruptly; a torn record of "
           f"{recording.torn_bytes} bytes cut)" if recording.torn_bytes else
           "no clean end (the recorder was stopped abruptly)")
    print(f"recording {recording.dir}: board {header.get('board')}, edge "
          f"{header.get('edge_version')}, {recording.inputs} inputs, {end}")
    print(f"ticks replayed: {result.ticks} (ticks {result.first_tick} to "
          f"{result.first_tick + result.ticks - 1}, virtual time)")
    print(f"recorded output hash: {result.recorded_hash}")
    print(f"replayed output hash: {result.replayed_hash}")
    for note in result.notes:
        print(f"note: {note}")
    if result.identical:
        print("identical")
        return EXIT_OK
    print(f"diverged: first divergent tick {result.divergence}")
    return EXIT_DIVERGED
