"""Motion: trajectories (and, from other parts of issue 4, kinematics and control)."""

from edge.motion.trajectory import Trajectory, plan, plan_stop, traj_block

__all__ = ["Trajectory", "plan", "plan_stop", "traj_block"]
