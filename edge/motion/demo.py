"""The board's `demo_motion:` section: the smallest moving controller, for boards without
an arm model (edge/boards/demo_axes.yaml). Rate-limited setpoints on a first-order
simulated drive, and a task that moves every axis between its initial position and an
offset pose.

    demo_motion: {every_s: 2.0, offset: 0.5}    # both optional; offset in rad
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.config import Board, Node
from edge.rt.executor import LetTask
from edge.rt.native import drive_sim_block, require_native, setpoint_block
from edge.sections import Section

DRIVE_TAU_S = 0.005           # the simulated drive's first-order lag


@dataclass(frozen=True)
class DemoMotion:
    every_s: float = 2.0      # s between moves (each move toggles the pose)
    offset: float = 0.5       # rad added to each axis' initial position


def parse_demo_motion(node: Node, board: Board) -> DemoMotion:
    """Parse `demo_motion:` (an empty mapping or nothing takes the defaults)."""
    if "motion" in board.sections:       # two drives would write the same axes
        raise node.error("a board has a motion or a demo_motion section, not both")
    if node.value is None:
        return DemoMotion()
    node.only("every_s", "offset")
    return DemoMotion(every_s=node.get("every_s", float, DemoMotion.every_s, min=1e-3),
                      offset=node.get("offset", float, DemoMotion.offset))


def attach(runtime, demo: DemoMotion) -> None:
    axes = runtime.board.axes
    home = [a.initial_position for a in axes]
    setpoint = runtime.add_block(setpoint_block([a.max_velocity for a in axes],
                                                [a.max_acceleration for a in axes]), "motion")
    runtime.add_block(drive_sim_block(home, tau_s=DRIVE_TAU_S), "drive")
    period_ticks = max(1, int(round(demo.every_s * 1e9 / runtime.period_ns)))
    poses = [home, [q + demo.offset for q in home]]
    target = require_native()[1].SETPOINT_CMD_TARGET

    def demo_moves(ctx) -> None:
        pose = poses[(ctx.tick // period_ticks) % 2]
        ctx.command(setpoint.index, target, pose)

    runtime.add_task(LetTask("demo_moves", demo_moves, period_ticks=period_ticks,
                             deadline_ticks=min(10, period_ticks)))


SECTIONS = (Section("demo_motion", parse_demo_motion, attach),)
