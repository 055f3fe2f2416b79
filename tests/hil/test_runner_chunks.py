"""The scenario runner steps the controller in chunks and reads the signals of the state
records in bulk (hil/runner.py); the oracle here is the plain way: one tick at a time,
each signal read by its per-record or live reader after every tick. Both must give the
same trace, bit for bit, on the shipped scenarios (timeline steps, bus messages, logic
outputs, the safety status, sensor faults)."""

import numpy as np
import pytest

from hil.cli import SHIPPED
from hil.runner import Bench
from hil.scenario import load_scenario
from hil.signals import RECORD, bind_signal


def tick_by_tick(run) -> dict[str, np.ndarray]:
    bench = Bench(run)                    # the controller, with the steps bound to it
    executor, probe = bench.runtime.executor, bench.probe
    readers = [(s, bind_signal(s, probe)) for s in run.signals]
    events: dict[int, list] = {}
    for step in run.steps:
        for tick, action in step.events():
            events.setdefault(tick, []).append(action)
    values: dict[str, list] = {s.name: [] for s in run.signals}
    for k in range(run.duration_ticks):
        for action in events.get(k, ()):
            action(bench)
        executor.step(1)
        probe.next_tick()
        (rec,) = executor.history(1)
        assert int(rec["tick"]) == k
        for s, read in readers:
            values[s.name].append(read(rec) if s.how == RECORD else read())
    return {s.name: np.asarray(values[s.name], dtype=s.dtype) for s in run.signals}


@pytest.mark.parametrize("name, index", [("logic_interlock", 0), ("collision_link3", 1),
                                         ("wall_approach", 0), ("sensor_faults", 0),
                                         ("estop_during_move", 0)])
def test_chunked_runner_gives_the_tick_by_tick_trace(name, index):
    path = SHIPPED / f"{name}.yaml"
    want = tick_by_tick(load_scenario(path).run(index))
    got = Bench(load_scenario(path).run(index)).go().columns
    assert list(got) == list(want)
    for signal, column in want.items():
        assert column.dtype == got[signal].dtype
        np.testing.assert_array_equal(got[signal], column, err_msg=f"{name}: {signal}")
