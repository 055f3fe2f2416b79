"""The C twin of a SerialArm (native/arm_model.h): the model struct handed to native
blocks, and thin calls of the C kinematics and dynamics (used by tests and benchmarks to
check the C against the numpy implementation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.errors import NativeError
from edge.motion.kinematics import IKResult, SerialArm
from edge.rt.native import require_native


def native_model(arm: SerialArm):
    """A `arm_model *` (cffi, owned by the returned object) describing `arm`."""
    ffi, lib = require_native()
    if arm.n > lib.ARM_MAX_LINKS:
        raise NativeError(f"the native model holds at most {lib.ARM_MAX_LINKS} links")
    m = ffi.new("arm_model *")
    m.n = arm.n
    for i, link in enumerate(arm.links):
        m.a[i], m.d[i], m.alpha[i] = link.a, link.d, link.alpha
        m.theta_offset[i], m.mass[i] = link.theta_offset, link.mass
        m.armature[i] = link.armature
        for k in range(3):
            m.com[i][k] = float(link.com[k])
        for k, v in enumerate(link.inertia.reshape(9)):
            m.inertia[i][k] = float(v)
    for k, v in enumerate(arm.base.reshape(16)):
        m.base[k] = float(v)
    for k, v in enumerate(arm.tool.reshape(16)):
        m.tool[k] = float(v)
    for k in range(3):
        m.gravity[k] = float(arm.gravity[k])
    for i in range(arm.n):
        m.q_min[i], m.q_max[i] = float(arm.q_min[i]), float(arm.q_max[i])
    if lib.arm_model_check(m) != 0:
        raise NativeError("the arm model has non-finite numbers or negative masses")
    return m


class NativeArm:
    """The C kinematics and dynamics of `arm`, called with numpy arrays."""

    def __init__(self, arm: SerialArm) -> None:
        self.ffi, self.lib = require_native()
        self.arm = arm
        self.n = arm.n
        self.model = native_model(arm)

    def _in(self, v: Sequence[float]):
        # from_buffer keeps the array alive as long as the cdata lives
        a = np.ascontiguousarray(v, dtype=float).reshape(self.n)
        return self.ffi.from_buffer("double[]", a)

    def _out(self, *shape: int):
        a = np.empty(shape)
        return self.ffi.from_buffer("double[]", a), a

    def frames(self, q: Sequence[float]) -> np.ndarray:
        cq = self._in(q)
        buf, out = self._out(self.n + 2, 4, 4)
        self.lib.arm_fk_frames(self.model, cq, buf)
        return out

    def fk(self, q: Sequence[float]) -> np.ndarray:
        cq = self._in(q)
        buf, out = self._out(4, 4)
        self.lib.arm_fk(self.model, cq, buf)
        return out

    def link_points(self, q: Sequence[float]) -> np.ndarray:
        cq = self._in(q)
        buf, out = self._out(self.n + 2, 3)
        self.lib.arm_link_points(self.model, cq, buf)
        return out

    def jacobian(self, q: Sequence[float]) -> np.ndarray:
        cq = self._in(q)
        buf, out = self._out(6, self.n)
        self.lib.arm_jacobian(self.model, cq, buf)
        return out

    def inverse_dynamics(self, q, qd, qdd, gravity: Sequence[float] | None = None
                         ) -> np.ndarray:
        cq, cqd, cqdd = self._in(q), self._in(qd), self._in(qdd)
        buf, out = self._out(self.n)
        g = self.ffi.NULL if gravity is None else self.ffi.new("double[3]", list(gravity))
        self.lib.arm_rnea(self.model, cq, cqd, cqdd, g, buf)
        return out

    def gravity_torques(self, q: Sequence[float]) -> np.ndarray:
        cq = self._in(q)
        buf, out = self._out(self.n)
        self.lib.arm_gravity(self.model, cq, buf)
        return out

    def mass_matrix(self, q: Sequence[float]) -> np.ndarray:
        cq = self._in(q)
        buf, out = self._out(self.n, self.n)
        self.lib.arm_mass_matrix(self.model, cq, buf)
        return out

    def momentum(self, q: Sequence[float], qd: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """(p, beta) of the momentum observer: M(q) qd and g(q) - C(q, qd)^T qd."""
        pb, p = self._out(self.n)
        bb, beta = self._out(self.n)
        self.lib.arm_momentum(self.model, self._in(q), self._in(qd), pb, bb)
        return p, beta

    def ik(self, target: np.ndarray, q0: Sequence[float], **options) -> IKResult:
        """SerialArm.ik (same options, restarts and reach check) with the C inner solve."""
        return self.arm.ik(target, q0, solve_once=self.ik_once, **options)

    def ik_path(self, targets, q0: Sequence[float], **options):
        """SerialArm.ik_path with the C solve for each point."""
        return self.arm.ik_path(targets, q0, solve_once=self.ik_once, **options)

    def ik_once(self, target: np.ndarray, q0: Sequence[float], orientation: bool = True,
                position_tolerance: float = 1e-7, orientation_tolerance: float = 1e-7,
                max_iterations: int = 200, damping: float = 1e-3) -> IKResult:
        """The C damped-least-squares IK from one start (no restarts): bounded work, for
        warm-started use. Same algorithm as SerialArm.ik's numpy inner solve."""
        t = np.ascontiguousarray(target, dtype=float).reshape(16)
        opt = self.ffi.new("arm_ik_options *", dict(
            orientation=int(orientation), max_iterations=int(max_iterations),
            position_tolerance=float(position_tolerance),
            orientation_tolerance=float(orientation_tolerance), damping=float(damping)))
        report = self.ffi.new("arm_ik_report *")
        buf, q = self._out(self.n)
        rc = self.lib.arm_ik(self.model, self.ffi.from_buffer("double[]", t), self._in(q0),
                             opt, buf, report)
        if rc < 0:
            raise NativeError("arm_ik refused its input (non-finite start or bad options)")
        return IKResult(q, rc == 0, report.position_error, report.orientation_error,
                        report.iterations, "" if rc == 0 else "not reached from this start")
