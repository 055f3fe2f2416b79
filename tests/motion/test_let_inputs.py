"""LET for the motion and safety tasks: what they read comes from the state record of their
release tick, so a run in real time with Python slowed down gives the outputs of the
virtual-time run bit for bit (force mode on the observer's residual, the safety monitor's
fault publication); and a motion request made by an integrator's LetTask takes effect at
the first controller release at or after that task's deadline, never before."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import numpy as np

from edge.config import load_board
from edge.motion.arm_sim import ARM_SIM_CMD_EXT_WRENCH
from edge.motion.safety import FAULT_TOPIC
from edge.rt.executor import LetTask
from edge.rt.native import logical_states
from edge.rt.runtime import Runtime

HOG_S = 0.003          # a slow task body ahead of every controller release (real time)
RUN_S = 0.7


def sim_arm(virtual_time: bool) -> Runtime:
    """The shipped sim_arm board without its demo program, logic and acquisition; no
    real-time priority, so the test runs like any process on a loaded machine."""
    board = load_board("sim_arm")
    for name in ("program", "logic", "acquisition"):
        board.sections.pop(name, None)
    board = dataclasses.replace(board, cycle=dataclasses.replace(
        board.cycle, priority=0, busy_tail_us=0.0, lock_memory=False))
    return Runtime(board, virtual_time=virtual_time)


def force_mode_run(realtime: bool):
    """Enable, force mode, a 30 N push on the tool that the arm yields to, then 90 N: a
    collision (fault 300) one tick after a release of the safety monitor's task. In real
    time a task released with the controller and the safety monitor, ahead of both,
    sleeps HOG_S, so their bodies run a few ticks after their release. Returns the
    logical state records, and the messages of the motion and safety topics as (topic,
    tick, data)."""
    rt = sim_arm(virtual_time=not realtime)
    c = rt.motion
    c.enable()

    def script(ctx):
        if ctx.tick == 200:
            c.set_mode("force", deadband_n=2.0, damping_n_s_m=200.0)

    # the pushes: an input trace, applied at their ticks whatever Python does
    rt.cycle.push_command(267, c.drive_index, ARM_SIM_CMD_EXT_WRENCH, [30.0, 0, 0, 0, 0, 0])
    rt.cycle.push_command(507, c.drive_index, ARM_SIM_CMD_EXT_WRENCH, [90.0, 0, 0, 0, 0, 0])

    def hog(ctx):
        if realtime:
            time.sleep(HOG_S)

    rt.add_task(LetTask("script", script, period_ticks=10, priority=100))
    rt.add_task(LetTask("hog", hog, period_ticks=10, priority=99))
    seen = []
    rt.executor.add_state_listener(lambda tick, recs: seen.append(recs.copy()), 10)
    got = []
    for topic in ("motion/#", FAULT_TOPIC):
        rt.bus.subscribe(topic, callback=lambda m: got.append((m.topic, m.tick, m.data)))
    if realtime:
        asyncio.run(rt.run_realtime(RUN_S))
        late = {t.name: t.misses for t in rt.executor.tasks if t.name != "hog"}
        assert not any(late.values()), f"the machine was too loaded for the test: {late}"
    else:
        rt.run_virtual(RUN_S)
    # what the last tick published: a real-time run delivers it when it stops, a
    # virtual one at the next step
    last = rt.ticks_for(RUN_S) - 1
    return logical_states(np.concatenate(seen)), [m for m in got if m[1] < last]


def test_force_mode_and_fault_publication_replay_bit_for_bit_under_a_slow_python():
    virtual_states, virtual_msgs = force_mode_run(realtime=False)
    real_states, real_msgs = force_mode_run(realtime=True)
    faults = [m for m in virtual_msgs if m[0] == FAULT_TOPIC]
    assert [(f[2]["code"], f[2]["tick"]) for f in faults] == [(300, 511)]
    ticks, q_cmd = virtual_states["tick"], virtual_states["q_cmd"][:, :6]
    assert np.ptp(q_cmd[(ticks > 260) & (ticks < 500)], axis=0).max() > 1e-3   # it yielded
    assert [m for m in real_msgs if m[0] == FAULT_TOPIC] == faults
    assert real_msgs == virtual_msgs
    assert len(real_states) == len(virtual_states)
    assert real_states.tobytes() == virtual_states.tobytes()
