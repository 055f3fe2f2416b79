"""The simulated CiA 402 servo drive (cia402_sim) against the profile's text: statusword
patterns and controlword commands as IEC 61800-7-201 / CiA 402 part 2 tabulate them
(written out here, not taken from native/drive.c), transitions with their delays,
quick stop, a following-error fault, fault reset only on the rising edge of bit 7."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.motion.cia402_sim import (
    CIA402_SIM_CMD_FAULT,
    CIA402_SIM_CMD_JAM,
    CIA402_SIM_CMD_STO,
    Cia402SimConfig,
    cia402_sim_block,
)
from edge.motion.drive import (
    DRIVE_CMD_CONTROLWORD,
    DRIVE_CMD_MODE,
    DRIVE_CMD_POWER,
    FAULT_DRIVE_ENABLE_LOST,
    FAULT_DRIVE_STATE,
    POWER_ON,
    POWER_QUICK_STOP,
    DriveState,
    state_of,
)
from edge.rt.native import NO_STOP, TARGET_CYCLE, Cycle, setpoint_block

# Statusword (0x6041) patterns, "State coding" table: (mask, value) of bits 0-3, 5, 6.
STATUSWORD = {
    "not ready to switch on": (0b0100_1111, 0b0000_0000),    # xxxx xxxx x0xx 0000
    "switch on disabled": (0b0100_1111, 0b0100_0000),        # xxxx xxxx x1xx 0000
    "ready to switch on": (0b0110_1111, 0b0010_0001),        # xxxx xxxx x01x 0001
    "switched on": (0b0110_1111, 0b0010_0011),               # xxxx xxxx x01x 0011
    "operation enabled": (0b0110_1111, 0b0010_0111),         # xxxx xxxx x01x 0111
    "quick stop active": (0b0110_1111, 0b0000_0111),         # xxxx xxxx x00x 0111
    "fault reaction active": (0b0100_1111, 0b0000_1111),     # xxxx xxxx x0xx 1111
    "fault": (0b0100_1111, 0b0000_1000),                     # xxxx xxxx x0xx 1000
}
# Controlword (0x6040) commands, "Command coding" table (bits 7, 3, 2, 1, 0).
SHUTDOWN, SWITCH_ON, ENABLE_OPERATION = 0b0000_0110, 0b0000_0111, 0b0000_1111
DISABLE_VOLTAGE, QUICK_STOP, FAULT_RESET = 0b0000_0000, 0b0000_0010, 0b1000_0000
FOLLOWING_ERROR_CODE = 0x8611      # CiA 402 error code: position control, following error
CSP, CSV = 8, 9                    # modes of operation (0x6060)
N = 2
DT = 1e-3
CYCLE_RESET = 2


def named(statusword: int) -> str:
    """The state a statusword shows, by the standard's table above."""
    hits = [name for name, (mask, value) in STATUSWORD.items() if statusword & mask == value]
    assert len(hits) == 1, (hex(statusword), hits)
    return hits[0]


def rig(**overrides):
    cfg = Cia402SimConfig(max_velocity=np.full(N, 2.0), torque_limit=np.full(N, 50.0),
                          inertia=np.full(N, 0.1), boot_ms=2.0, switch_on_ms=5.0,
                          enable_ms=10.0, following_error_window=0.02,
                          following_error_timeout_ms=5.0, quick_stop_deceleration=10.0)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    c = Cycle(1_000_000, N)
    drive = c.add_block(cia402_sim_block(cfg, [0.0] * N))
    sp = c.add_block(setpoint_block([1.0] * N, [20.0] * N))
    return c, drive, sp


def states(recs) -> list[str]:
    return [named(int(sw)) for sw in recs["statusword"][:, 0]]


def test_power_up_then_the_enable_sequence_with_its_delays() -> None:
    c, drive, _ = rig()
    c.step(5)
    recs = c.pop_states()
    s, cw = states(recs), [int(w) for w in recs["controlword"][:, 0]]
    # transition 1 after the boot delay (2 ms); switched off, the block sends shutdown:
    # transition 2 to ready to switch on
    assert s == ["not ready to switch on"] * 2 + ["switch on disabled"] + \
        ["ready to switch on"] * 2
    assert cw[2] == SHUTDOWN
    c.push_command(c.tick, drive, DRIVE_CMD_POWER, [POWER_ON])
    c.step(30)
    recs = c.pop_states()
    s, cw = states(recs), [int(w) for w in recs["controlword"][:, 0]]
    # then switch on + enable operation (transitions 3 + 4), held until they are done
    assert s[0] == "ready to switch on" and set(cw) == {ENABLE_OPERATION}
    # switched on after 5 ms of asking, operation enabled 10 ms after that
    first = {name: s.index(name) for name in ("switched on", "operation enabled")}
    assert first["switched on"] == 5
    assert first["operation enabled"] - first["switched on"] == 10
    assert s[-1] == "operation enabled"
    assert [state_of(int(w)) for w in recs["statusword"][-1, :N]] == \
        [DriveState.OPERATION_ENABLED] * N


def test_illegal_commands_are_ignored_and_targets_only_followed_when_enabled() -> None:
    # (a window wide enough for the jump to the target once enabled)
    c, drive, sp = rig(boot_ms=0.0, following_error_window=1.0)
    c.push_command(0, sp, 1, [0.5, -0.5])                # a target far away ...
    c.push_command(0, drive, DRIVE_CMD_CONTROLWORD, [ENABLE_OPERATION])  # not from disabled
    c.step(50)
    recs = c.pop_states()
    assert set(states(recs)[1:]) == {"switch on disabled"}     # (after the boot tick)
    assert np.all(recs["q"][:, :N] == 0.0)               # ... is ignored
    c.push_command(c.tick, drive, DRIVE_CMD_CONTROLWORD, [SHUTDOWN])
    c.push_command(c.tick + 1, drive, DRIVE_CMD_CONTROLWORD, [FAULT_RESET])   # not a fault
    c.step(20)
    recs = c.pop_states()
    assert states(recs)[-1] == "ready to switch on"
    assert np.all(recs["q"][:, :N] == 0.0)
    c.push_command(c.tick, drive, DRIVE_CMD_CONTROLWORD, [SWITCH_ON])
    c.step(20)
    assert states(c.pop_states())[-1] == "switched on"
    c.push_command(c.tick, drive, DRIVE_CMD_CONTROLWORD, [ENABLE_OPERATION])
    c.step(300)
    recs = c.pop_states()
    assert states(recs)[-1] == "operation enabled"
    assert np.max(np.abs(recs["q"][-1, :N] - recs["q_cmd"][-1, :N])) < 1e-3   # followed


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([SHUTDOWN, SWITCH_ON, ENABLE_OPERATION,
                                           DISABLE_VOLTAGE, QUICK_STOP, FAULT_RESET,
                                           0x0B, 0x0D, 0x8F]),
                          st.integers(1, 15)), min_size=1, max_size=12))
def test_no_motion_unless_operation_enabled(words) -> None:
    """Whatever the controlwords, the load moves only in ticks the drive ends in
    operation enabled (or quick stop / fault reaction, ramping down from it)."""
    c, drive, sp = rig(boot_ms=0.0, switch_on_ms=2.0, enable_ms=3.0)
    c.push_command(0, sp, 1, [0.8, -0.8])
    tick = 0
    for word, ticks in words:
        c.push_command(tick, drive, DRIVE_CMD_CONTROLWORD, [word])
        tick += ticks
    c.step(tick + 5)
    recs = c.pop_states()
    s = states(recs)
    q = recs["q"][:, :N]
    moving = ("operation enabled", "quick stop active", "fault reaction active")
    for k in range(len(s) - 1):
        if np.any(q[k + 1] != q[k]):             # moved in tick k: state after its write
            assert s[k + 1] in moving, (k, s[k], s[k + 1])
    if "operation enabled" not in s:
        assert np.all(q == 0.0)


def _enabled_and_moving(c, drive, sp, velocity_target=0.8):
    c.push_command(0, drive, DRIVE_CMD_POWER, [POWER_ON])
    c.step(40)
    c.push_command(c.tick, sp, 1, [velocity_target, velocity_target])
    c.step(200)                                   # at the setpoint's 1 rad/s
    c.pop_states()


def test_quick_stop_ramps_down_then_switch_on_disabled_or_stays() -> None:
    for option, end in ((2, "switch on disabled"), (6, "quick stop active")):
        c, drive, sp = rig(boot_ms=0.0, quick_stop_option=option)
        _enabled_and_moving(c, drive, sp, 5.0)
        c.push_command(c.tick, drive, DRIVE_CMD_POWER, [POWER_QUICK_STOP])
        c.step(300)
        recs = c.pop_states()
        s, qd = states(recs), recs["qd"][:, 0]
        assert s[0] == "operation enabled" and s[1] == "quick stop active"
        v0 = qd[1]
        assert v0 > 0.5
        # 0x6085 = 10 rad/s²: each period takes 10 · 1 ms = 0.01 rad/s off, to standstill
        stop = int(np.argmax(qd == 0.0))
        np.testing.assert_allclose(np.diff(qd[1:stop]), -0.01, atol=1e-12)
        assert stop - 1 == int(np.ceil(v0 / 0.01 - 1e-9))
        assert s[-1] == end and np.all(qd[stop:] == 0.0)


def test_a_following_error_beyond_the_window_for_longer_than_the_timeout_faults() -> None:
    c, drive, sp = rig(boot_ms=0.0)
    _enabled_and_moving(c, drive, sp, 0.1)
    c.push_command(c.tick, drive, CIA402_SIM_CMD_JAM, [0, 1])      # the load is blocked
    c.push_command(c.tick, sp, 1, [1.0, 0.1])
    c.step(200)
    recs = c.pop_states()
    s = states(recs)
    fe = recs["q_cmd"][:, 0] - recs["q"][:, 0]
    beyond = int(np.argmax(np.abs(fe) > 0.02))    # first record beyond 0x6065 = 0.02 rad
    react = s.index("fault reaction active")
    # 0x6066 = 5 ms: the drive faults once the error has lasted longer than 5 periods
    assert 5 <= react - beyond <= 7, (beyond, react)
    assert "fault" in s[react:]
    assert int(recs["drive_error"][-1, 0]) == FOLLOWING_ERROR_CODE
    assert int(recs["fault_code"][-1]) == FAULT_DRIVE_STATE      # the cycle latched a stop
    assert int(recs["stop_category"][-1]) == 0
    # category 0: the block disables voltage on every axis
    assert s[-1] == "fault" and named(int(recs["statusword"][-1, 1])) == "switch on disabled"


def test_fault_reset_only_from_fault_and_only_on_the_rising_edge() -> None:
    c, drive, _ = rig(boot_ms=0.0)
    c.push_command(0, drive, DRIVE_CMD_CONTROLWORD, [FAULT_RESET])   # held high from the start
    c.push_command(5, drive, CIA402_SIM_CMD_FAULT, [0, 0x2310])
    c.step(30)
    recs = c.pop_states()
    s = states(recs)
    assert s[-1] == "fault"                       # bit 7 was already high: no edge
    assert int(recs["drive_error"][-1, 0]) == 0x2310
    c.push_command(c.tick, drive, CIA402_SIM_CMD_FAULT, [0, 0])           # the cause goes
    c.push_command(c.tick, drive, DRIVE_CMD_CONTROLWORD, [DISABLE_VOLTAGE])
    c.push_command(c.tick + 3, drive, DRIVE_CMD_CONTROLWORD, [FAULT_RESET])   # the edge
    c.step(6)
    s = states(recs := c.pop_states())
    assert s[:4] == ["fault"] * 4 and s[4] == "switch on disabled"   # transition 15
    assert int(recs["drive_error"][-1, 0]) == 0


def test_the_drive_block_resets_a_drive_fault_with_the_cycle_reset() -> None:
    c, drive, _ = rig(boot_ms=0.0)
    c.push_command(0, drive, DRIVE_CMD_POWER, [POWER_ON])
    c.push_command(30, drive, CIA402_SIM_CMD_FAULT, [1, 0x2310])
    c.push_command(35, drive, CIA402_SIM_CMD_FAULT, [1, 0])
    c.step(60)
    recs = c.pop_states()
    assert named(int(recs["statusword"][-1, 1])) == "fault"
    assert int(recs["stop_category"][-1]) == 0
    c.push_command(c.tick, TARGET_CYCLE, CYCLE_RESET)
    c.step(40)
    recs = c.pop_states()
    cw = [int(w) for w in recs["controlword"][:, 1]]
    assert cw[0] == FAULT_RESET and cw[1] != FAULT_RESET       # one rising edge
    assert int(recs["stop_category"][0]) == NO_STOP
    assert states(recs)[-1] == "operation enabled"             # and enabled again
    assert named(int(recs["statusword"][-1, 1])) == "operation enabled"


def test_modes_of_operation_display_follows_the_mode_asked_for() -> None:
    c, drive, _ = rig(boot_ms=0.0)
    c.push_command(0, drive, DRIVE_CMD_POWER, [POWER_ON])
    c.push_command(40, drive, DRIVE_CMD_MODE, [CSV])
    assert c.push_command(41, drive, DRIVE_CMD_MODE, [7])      # refused by the block
    c.step(45)
    recs = c.pop_states()
    assert int(recs["drive_mode"][10, 0]) == CSP and int(recs["drive_mode"][-1, 0]) == CSV
    assert c.stats().rejected_commands == 1


def test_a_drive_that_leaves_operation_enabled_unasked_latches_a_stop() -> None:
    """Its own safe torque off input drops it to switch on disabled: the block was
    still sending enable operation, so it latches a category 0 stop."""
    c, drive, _ = rig(boot_ms=0.0)
    c.push_command(0, drive, DRIVE_CMD_POWER, [POWER_ON])
    c.push_command(40, drive, CIA402_SIM_CMD_STO, [1, 1])
    c.step(45)
    recs = c.pop_states()
    assert named(int(recs["statusword"][39, 1])) == "operation enabled"
    assert int(recs["stop_category"][40]) == NO_STOP
    assert named(int(recs["statusword"][41, 1])) == "switch on disabled"
    assert int(recs["stop_category"][41]) == 0
    assert int(recs["fault_code"][41]) == FAULT_DRIVE_ENABLE_LOST
    c.push_command(c.tick, drive, CIA402_SIM_CMD_STO, [1, 0])
    c.push_command(c.tick + 1, TARGET_CYCLE, CYCLE_RESET)
    c.step(40)
    recs = c.pop_states()
    assert int(recs["stop_category"][-1]) == NO_STOP
    assert states(recs)[-1] == "operation enabled"


def test_a_manual_controlword_cannot_keep_the_power_on_through_a_category_0_stop() -> None:
    c, drive, _ = rig(boot_ms=0.0, switch_on_ms=0.0, enable_ms=0.0)
    c.push_command(0, drive, DRIVE_CMD_CONTROLWORD, [SHUTDOWN])
    c.push_command(2, drive, DRIVE_CMD_CONTROLWORD, [ENABLE_OPERATION])
    c.push_command(10, TARGET_CYCLE, 1, [0, 0])          # CYCLE_CMD_STOP, category 0
    c.step(15)
    recs = c.pop_states()
    s, cw = states(recs), [int(w) for w in recs["controlword"][:, 0]]
    assert s[9] == "operation enabled" and cw[9] == ENABLE_OPERATION
    assert cw[10] & 0b10 == 0                     # enable voltage cleared: disable voltage
    assert s[11] == "switch on disabled"          # transition 9
