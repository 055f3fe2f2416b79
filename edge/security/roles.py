"""Who may do what: five roles and the one permission table the console, the control
socket, inbound MQTT commands and programs all ask before acting.

An action is a request name (`status`, `reset`, `config.set`, a motion request such as
`move_joint`). An action the table does not name is refused: a new door or a new
request cannot slip through with no role attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from edge.errors import EdgeError


class Role(IntEnum):
    """Ordered: a role may do everything the roles below it may."""

    VIEWER = 1
    OPERATOR = 2
    TECHNICIAN = 3
    ENGINEER = 4
    ADMIN = 5

    @classmethod
    def named(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r} (roles: "
                             f"{', '.join(r.name.lower() for r in cls)})") from None

    def __str__(self) -> str:
        return self.name.lower()


V, O, T, E, A = Role.VIEWER, Role.OPERATOR, Role.TECHNICIAN, Role.ENGINEER, Role.ADMIN

# action -> the least role that may ask for it. `stop` is open to every identity: anyone
# who can reach the controller may make it safe.
PERMISSIONS: dict[str, Role] = {
    # looking
    "status": V, "version": V, "faults.list": V, "faults.history": V, "log": V,
    "health": V, "config.show": V, "config.diff": V, "sbom": V, "logout": V,
    # making safe and running
    "stop": V, "enable": O, "disable": O, "set_mode": O, "playback": O,
    # service
    "reset": T, "faults.ack": T, "jog": T, "diag": T, "audit.show": T, "audit.verify": T,
    # changing what the machine does
    "move": E, "move_joint": E, "move_linear": E, "move_circular": E, "move_velocity": E,
    "move_custom": E, "teach": E, "config.set": E, "custom": E,
    # people
    "users": A,
}


class AccessDenied(EdgeError):
    """An identity asked for an action its role may not give (or one nobody may)."""

    def __init__(self, identity: Identity, action: str, required: Role | None) -> None:
        self.identity, self.action, self.required = identity, action, required
        if required is None:
            why = f"unknown action {action!r}"
        else:
            why = f"{action} needs role {required}, {identity.user} is {identity.role}"
        super().__init__(f"refused: {why}")


@dataclass(frozen=True)
class Identity:
    """Who a request acts for: a user, the role they hold, and the door they came in by
    (`console:/dev/ttyS0`, `socket:uid=1000`, `mqtt:<username>`, `program`)."""

    user: str
    role: Role
    source: str


def required_role(action: str) -> Role | None:
    """The least role for `action`, or None when the table does not name it."""
    return PERMISSIONS.get(action)


def allowed(role: Role, action: str) -> bool:
    required = PERMISSIONS.get(action)
    return required is not None and role >= required


def authorize(identity: Identity, action: str) -> None:
    """Raise AccessDenied unless `identity` may ask for `action`."""
    if not allowed(identity.role, action):
        raise AccessDenied(identity, action, PERMISSIONS.get(action))
