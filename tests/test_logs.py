"""Repeated log lines collapse into one line with a count (edge.logs.RepeatFilter)."""

import logging

from edge.logs import RepeatFilter


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _logger(name: str, repeats: RepeatFilter) -> tuple[logging.Logger, list[str]]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Keep()
    handler.addFilter(repeats)
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, lines


def test_repeats_in_a_window_are_counted_and_reported():
    clock = _Clock()
    repeats = RepeatFilter(window_s=10.0, clock=clock)
    log, lines = _logger("edge.test.repeats", repeats)
    for tick in range(77):                       # a stall: 77 misses within 2 s
        clock.t = tick * 0.025
        log.warning("task '%s' released at tick %d missed its deadline", "scan", tick)
    assert lines == ["task 'scan' released at tick 0 missed its deadline"]
    assert repeats.suppressed == 76
    clock.t = 12.0                               # the window is over: the next one passes
    log.warning("task '%s' released at tick %d missed its deadline", "scan", 500)
    assert len(lines) == 2
    assert lines[1].startswith("task 'scan' released at tick 500 missed its deadline")
    assert "[and 76 more like this in the last 12.0 s]" in lines[1]


def test_other_kinds_pass_and_flush_reports_what_is_held():
    clock = _Clock()
    repeats = RepeatFilter(window_s=10.0, clock=clock)
    log, lines = _logger("edge.test.flush", repeats)
    log.warning("device %s silent", "plc")
    log.warning("device %s silent", "psu")       # same kind: held
    log.error("bridge failed: %s", "disk full")   # another kind: passes
    assert lines == ["device plc silent", "bridge failed: disk full"]
    clock.t = 3.0
    repeats.flush()
    assert lines[-1] == "device psu silent [last of 1 like this since 3.0 s ago]"
    repeats.flush()                              # nothing held twice
    assert len(lines) == 3
