"""The permission table: ordered roles, unknown actions refused, stop open to all."""

import pytest

from edge.security.roles import PERMISSIONS, AccessDenied, Identity, Role, authorize


def who(role: Role) -> Identity:
    return Identity(user="pat", role=role, source="program")


def test_each_role_may_do_what_the_roles_below_it_may() -> None:
    for action, least in PERMISSIONS.items():
        for role in Role:
            if role >= least:
                authorize(who(role), action)
            else:
                with pytest.raises(AccessDenied, match=f"{action} needs role {least}"):
                    authorize(who(role), action)


def test_the_issue_s_minimum_roles() -> None:
    # issue 15: reset and jog technician, move and config.set engineer, users admin
    assert PERMISSIONS["reset"] == Role.TECHNICIAN
    assert PERMISSIONS["jog"] == Role.TECHNICIAN
    assert PERMISSIONS["move"] == Role.ENGINEER
    assert PERMISSIONS["config.set"] == Role.ENGINEER
    assert PERMISSIONS["users"] == Role.ADMIN
    assert PERMISSIONS["stop"] == Role.VIEWER


def test_an_action_nobody_named_is_refused_even_to_admin() -> None:
    with pytest.raises(AccessDenied, match="unknown action 'format_disk'"):
        authorize(who(Role.ADMIN), "format_disk")


def test_role_names_read_back() -> None:
    assert Role.named("Technician") is Role.TECHNICIAN
    with pytest.raises(ValueError, match="unknown role 'root'"):
        Role.named("root")
