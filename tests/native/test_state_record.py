"""The state record publishes what the blocks wrote: every signal slot an integrator's
(custom) block may write, only the declared slots of edge's own blocks, and zero where
nothing wrote. The expected values are what the test's own block wrote each tick."""

from types import SimpleNamespace

import numpy as np

from edge.rt.contract import BlockKind
from edge.rt.native import Cycle, drive_sim_block, require_native

ffi, lib = require_native()
SLOT = 5


def writer_block(kind: int, declared: int = 0):
    """A block whose step writes signals[SLOT] = tick * 0.5 and signals[SLOT + 1] = -tick,
    held by Python (ffi memory: never handed to edge_block_free)."""

    @ffi.callback("void(void *, edge_image *)")
    def step(self, img):
        img.signals[SLOT] = img.tick * 0.5
        img.signals[SLOT + 1] = -float(img.tick)
        img.q_cmd[1] = img.tick * 0.25

    handle = ffi.new("edge_block *")
    handle.name = name = ffi.new("char[]", b"writer")
    handle.step = step
    handle.kind = kind
    handle.signals_written = declared
    return SimpleNamespace(name="writer", handle=handle, index=None, keep=(step, name))


def run(block, ticks=20):
    c = Cycle(1_000_000, 2)
    c.add_block(drive_sim_block([0.1, 0.2]))
    c.add_block(block)
    c.step(ticks)
    return c.pop_states(), block          # the block outlives the cycle's ticks


def test_a_custom_block_has_every_slot_it_writes_published():
    states, _ = run(writer_block(BlockKind.CUSTOM))
    ticks = states["tick"].astype(float)
    assert np.array_equal(states["signals"][:, SLOT], ticks * 0.5)
    assert np.array_equal(states["signals"][:, SLOT + 1], -ticks)
    others = np.delete(states["signals"], [SLOT, SLOT + 1], axis=1)
    assert not others.any()


def test_edge_blocks_publish_only_the_slots_they_declare():
    states, _ = run(writer_block(BlockKind.TRAJ, declared=1 << SLOT))
    ticks = states["tick"].astype(float)
    assert np.array_equal(states["signals"][:, SLOT], ticks * 0.5)
    assert not np.delete(states["signals"], SLOT, axis=1).any()   # SLOT + 1: undeclared


def test_axis_fields_are_published_as_written():
    """The commanded position reaches the record as the block wrote it, and the drive
    (no lag) reports it as measured from the next tick on; the entries beyond n_axes
    and the unused slots stay zero."""
    states, _ = run(writer_block(BlockKind.TRAJ))
    ticks = states["tick"].astype(float)
    assert np.array_equal(states["q_cmd"][:, 1], ticks * 0.25)
    assert states["q"][0, 1] == 0.2 and np.array_equal(states["q"][1:, 1], ticks[:-1] * 0.25)
    assert not states["q"][:, 2:].any() and not states["q_cmd"][:, 2:].any()
    assert not states["signals"].any()
    assert np.array_equal(states["tick"], np.arange(20))
