"""How the `edge` command's log reads: one line per kind of event, not one per repeat.

A stall makes many releases miss their deadline at once, a dead device fails every poll:
each of those is logged where it happens, and this filter keeps the log readable. The
first record of a kind (same logger, level and message template) in a window passes; the
repeats inside the window are counted, not printed; the first record after the window
carries the count ("... [and 76 more like this in the last 10.0 s]"), and `flush()` logs
the counts still held when the run ends. Nothing is lost from the counters the summary
prints: this only shapes the log.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KINDS = 1024               # message templates remembered (oldest forgotten first)


class RepeatFilter(logging.Filter):
    """Collapse repeats of a log record kind within `window_s` into a count."""

    def __init__(self, window_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        # kind -> [window start, repeats suppressed in it, last suppressed record]
        self._kinds: OrderedDict[tuple, list] = OrderedDict()
        self.suppressed = 0

    @staticmethod
    def _kind(record: logging.LogRecord) -> tuple:
        return record.name, record.levelno, str(record.msg)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_edge_repeat_summary", False):
            return True
        kind = self._kind(record)
        now = self.clock()
        entry = self._kinds.get(kind)
        if entry is not None and now - entry[0] < self.window_s:
            entry[1] += 1
            entry[2] = record
            self.suppressed += 1
            return False
        if entry is not None and entry[1]:
            record.msg = f"{record.msg} [and {entry[1]} more like this in the last " \
                         f"{now - entry[0]:.1f} s]"
        self._kinds[kind] = [now, 0, None]
        self._kinds.move_to_end(kind)
        while len(self._kinds) > MAX_KINDS:
            self._kinds.popitem(last=False)
        return True

    def flush(self) -> None:
        """Log each kind's repeats still counted (the last one, with the count)."""
        for kind, (start, count, last) in list(self._kinds.items()):
            if count and last is not None:
                last.msg = f"{last.msg} [last of {count} like this since " \
                           f"{self.clock() - start:.1f} s ago]"
                last._edge_repeat_summary = True
                logging.getLogger(last.name).handle(last)
            self._kinds[kind] = [start, 0, None]


def configure(level: str) -> RepeatFilter:
    """The command line's logging: one-line records on stderr, repeats collapsed."""
    root = logging.getLogger()
    before = set(root.handlers)
    logging.basicConfig(level=level.upper(), format="edge: %(levelname)s: %(message)s")
    repeats = RepeatFilter()
    # only the handler made here: one a host program (or a test harness) installed keeps
    # every record it is given
    for handler in set(root.handlers) - before:
        handler.addFilter(repeats)
    return repeats
