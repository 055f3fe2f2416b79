"""Block kinds: every block knows what it is, and each setup or query call refuses a block
of another kind (EDGE_ERR_KIND, then a NativeError naming both kinds) instead of reading
its state as the wrong struct. Also run under the sanitizer build (test_sanitizers.py):
a wrong-kind call there touches no memory it should not."""

import pytest

from edge.config import load_board
from edge.errors import NativeError
from edge.motion.arm_sim import arm_sim_block
from edge.motion.blocks import load_path, path_block
from edge.motion.safety_monitor import observer_block, safety_block
from edge.motion.trajectory import traj_block
from edge.rt.native import drive_sim_block, kind_checked, require_native, setpoint_block

ffi, lib = require_native()
BOARD = load_board("sim_arm")
ARM = BOARD.sections["motion"].arm
CFG = BOARD.sections["safety"]
N = ARM.n
HOME = [a.initial_position for a in BOARD.axes]
ONES = [1.0] * N


def blocks() -> dict[str, object]:
    """One block of each built-in kind, keyed by the kind name block_kinds.def gives."""
    return {
        "traj": traj_block(ONES, ONES, ONES),
        "setpoint": setpoint_block(ONES, ONES),
        "path": path_block(N, 8),
        "safety": safety_block(ARM, CFG),
        "observer": observer_block(ARM, CFG.observer),
        "arm_sim": arm_sim_block(ARM, HOME),
        "drive_sim": drive_sim_block(HOME),
    }


# each setup / query call taking a block, with the rest of its arguments
def _calls():
    q = ffi.new("double[]", N)
    out = ffi.new("double[]", 64)
    return {
        "safety_get_status": ("safety", (ffi.new("safety_status *"),)),
        "safety_fault_history": ("safety", (ffi.new("safety_fault[]", 4), 4)),
        "safety_config_state": ("safety", ()),
        "safety_set_config": ("safety", (ffi.new("safety_config *"),)),
        "safety_sphere_distances": ("safety", (q, out)),
        "observer_get_status": ("observer", (ffi.new("observer_status *"),)),
        "observer_set_config": ("observer", (ffi.new("observer_config *"),)),
        "path_block_load": ("path", (0, q, q, q, 1)),
    }


def test_each_block_reports_its_own_kind():
    """The kind in C matches the block's constructor (the kind names of block_kinds.def
    are the names the blocks have always had)."""
    from edge.rt.contract import BlockKind

    for name, block in blocks().items():
        assert block.kind == BlockKind[name.upper()], name
        assert block.name == name


@pytest.mark.parametrize("function", sorted(_calls()))
def test_every_setup_and_query_call_refuses_a_block_of_another_kind(function):
    kind, args = _calls()[function]
    for name, block in blocks().items():
        if name == kind:
            continue
        assert getattr(lib, function)(block.handle, *args) == lib.EDGE_ERR_KIND, name
    # NULL is no block of any kind
    assert getattr(lib, function)(ffi.NULL, *args) == lib.EDGE_ERR_KIND


def test_the_right_kind_is_accepted():
    b = blocks()
    st = ffi.new("safety_status *")
    assert lib.safety_get_status(b["safety"].handle, st) == 0 and st.enabled in (0, 1)
    assert lib.safety_config_state(b["safety"].handle) == 0           # nothing queued
    assert lib.safety_link_observer(b["safety"].handle, b["observer"].handle) == 0
    assert lib.safety_link_observer(b["safety"].handle, ffi.NULL) == 0  # unlinking
    assert lib.observer_get_status(b["observer"].handle, ffi.new("observer_status *")) == 0


def test_linking_checks_both_blocks():
    b = blocks()
    assert lib.safety_link_observer(b["safety"].handle, b["traj"].handle) == lib.EDGE_ERR_KIND
    assert lib.safety_link_observer(b["observer"].handle,
                                    b["observer"].handle) == lib.EDGE_ERR_KIND


def test_python_turns_the_refusal_into_an_error_naming_both_kinds():
    b = blocks()
    with pytest.raises(NativeError) as exc:
        kind_checked("safety_get_status", b["traj"], ffi.new("safety_status *"))
    msg = str(exc.value)
    assert "takes a safety block" in msg and "'traj' is a traj block" in msg
    assert "\n" not in msg


def test_loading_a_path_into_a_safety_block_is_refused():
    import numpy as np

    from edge.motion.paths import JointPath

    path = JointPath(np.zeros((2, N)), np.zeros((2, N)), np.zeros((2, N)), 0.001)
    with pytest.raises(NativeError, match=r"takes a path block\): 'safety' is a safety block"):
        load_path(blocks()["safety"], 0, path)
