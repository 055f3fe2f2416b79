"""A worked example of an integrator's planner: a quintic (minimum-jerk-like) joint move
over a fixed duration. Register it with the motion controller and run it:

    controller.register_planner("quintic", quintic_planner)
    controller.move_custom("quintic", goal_joint_positions)

The controller plans it in its planner task, checks the path against the joint limits
and the start position, and plays it in the native path player; the safety layer checks
every tick as for any other move.
"""

from __future__ import annotations

import numpy as np

from edge.motion.paths import JointLimits, JointPath, differentiate

DURATION_S = 3.0


def quintic_planner(q_start: np.ndarray, goal, limits: JointLimits,
                    period_s: float) -> JointPath:
    """q(t) = q_start + (goal - q_start) * (10 s^3 - 15 s^4 + 6 s^5), s = t / T: starts
    and ends at rest with zero acceleration."""
    tau = np.arange(0.0, DURATION_S + period_s, period_s) / DURATION_S
    s = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
    return differentiate(q_start + np.outer(s, np.asarray(goal, float) - q_start), period_s)
