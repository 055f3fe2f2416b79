"""The C twin of a SerialArm (native/arm_model.h): the model struct handed to native
blocks, and thin calls of the C kinematics and dynamics (used by tests and benchmarks to
check the C against the numpy implementation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.errors import NativeError
from edge.motion.kinematics import SerialArm
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
