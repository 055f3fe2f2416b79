"""The binding to edge._native: the cycle engine and its blocks, owned from Python.

Python and C meet here only: setup calls, the command ring (in), the state ring (out)
and read-only statistics. Every native handle is held with ffi.gc so ownership is
visible in one line; the Cycle keeps its blocks alive as long as it lives.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edge.errors import NativeError

try:
    from edge._native import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised by the CLI test with a fake path
    ffi = lib = None
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None

# block.h's scalars, read from the library (None without it: require_native says why);
# edge.rt.contract builds the enums. TICK_ASAP: apply at the next boundary (watchdog, stops)
MAX_AXES, NO_STOP, TARGET_CYCLE, TICK_ASAP = (
    getattr(lib, name, None) for name in ("EDGE_MAX_AXES", "EDGE_NO_STOP",
                                          "EDGE_TARGET_CYCLE", "EDGE_TICK_ASAP"))


def require_native():
    """(ffi, lib), or NativeError saying how to build the extension."""
    if lib is None:
        raise NativeError(
            f"the native extension edge._native is not built ({_IMPORT_ERROR}); "
            "reinstall with `pip install .` (or `./dev run`) on a machine with gcc")
    return ffi, lib


def _state_dtype() -> np.dtype:
    """A numpy dtype laid out exactly like struct edge_state (offsets taken from C)."""
    ffi_, _ = require_native()
    axes = ("q", "qd", "tau", "q_cmd", "qd_cmd")
    fields = [("tick", "<i8"), ("t_ns", "<i8"), ("wake_latency_ns", "<i4"), ("exec_ns", "<i4"),
              ("mode", "<u4"), ("fault_code", "<u4"), ("stop_category", "<u4"),
              ("inputs", "<u4"), ("outputs", "<u4"), ("n_axes", "<i4"),
              ("commands_popped", "<i8")]
    fields += [(name, "<f8", (MAX_AXES,)) for name in axes]
    fields += [("signals", "<f8", (lib.EDGE_SIGNALS,))]
    # the drives' CiA 402 words (native/drive.h), per axis
    fields += [(name, "<u2", (MAX_AXES,)) for name in ("controlword", "statusword",
                                                       "drive_error")]
    fields += [("drive_mode", "<i2", (MAX_AXES,))]
    names = [f[0] for f in fields]
    return np.dtype({
        "names": names,
        "formats": [f[1] if len(f) == 2 else (f[1], f[2]) for f in fields],
        "offsets": [ffi_.offsetof("edge_state", n) for n in names],
        "itemsize": ffi_.sizeof("edge_state"),
    })


STATE_DTYPE = _state_dtype() if lib is not None else None
# The same records as opaque bytes: numpy copies a record with fields (and padding) field
# by field, ten times slower than bytes; bulk moves of records go through this view.
STATE_BYTES = np.dtype((np.void, STATE_DTYPE.itemsize)) if lib is not None else None


def state_bytes(records: np.ndarray) -> np.ndarray:
    """`records` (dtype STATE_DTYPE) viewed as opaque bytes, for copies and fancy indexing."""
    return records.view(STATE_BYTES)

# Fields that depend on wall-clock timing, not on inputs and ticks (commands_popped: when
# the cycle took each command from the ring; watchdog kicks make it differ between runs).
TIMING_FIELDS = ("t_ns", "wake_latency_ns", "exec_ns", "commands_popped")


def logical_states(states: np.ndarray) -> np.ndarray:
    """State records without the timing fields, packed: what must replay bit for bit."""
    from numpy.lib import recfunctions

    keep = [n for n in states.dtype.names if n not in TIMING_FIELDS]
    return recfunctions.repack_fields(states[keep])


@dataclass(frozen=True)
class CycleStats:
    ticks: int
    overruns: int
    missed_periods: int
    late_commands: int
    rejected_commands: int
    command_overflows: int
    state_drops: int
    spin_ns: int
    run_ns: int
    rt_fifo: int
    rt_affinity: int
    rt_mlock: int
    running: bool

    def realtime_report(self) -> list[str]:
        """One line per real-time request that was not granted (empty when all were)."""
        lines = []
        for what, code in (("SCHED_FIFO", self.rt_fifo), ("CPU pinning", self.rt_affinity),
                           ("mlockall", self.rt_mlock)):
            if code < 0:
                lines.append(f"{what} refused ({errno.errorcode.get(-code, -code)}: "
                             f"{os.strerror(-code)}); running without it")
        return lines

    @property
    def spin_cpu_fraction(self) -> float:
        """Share of one CPU spent in the busy-wait tail."""
        return self.spin_ns / self.run_ns if self.run_ns else 0.0


class Block:
    """A native block owned by Python: `handle` is the edge_block*, freed with the object."""

    def __init__(self, name: str, handle) -> None:
        ffi_, lib_ = require_native()
        if handle == ffi_.NULL:
            raise NativeError(f"native block '{name}' refused its configuration")
        self.name = name
        self.handle = ffi_.gc(handle, lib_.edge_block_free)
        self.index: int | None = None

    @property
    def kind(self) -> int:
        """edge_block.kind (edge.rt.contract.BlockKind): what the block is, set by C."""
        return int(require_native()[1].edge_block_kind(self.handle))


def kind_checked(function: str, *args):
    """lib.<function>(*args) for a setup or query call taking blocks (Block arguments are
    passed as their handles). C refuses a block of another kind than the one the call
    is for (its name's first word: safety_get_status takes a safety block) with
    EDGE_ERR_KIND; that becomes a NativeError naming the kinds involved."""
    from edge.rt.contract import ERR_KIND, block_kind_name

    _, lib_ = require_native()
    rc = getattr(lib_, function)(*(a.handle if isinstance(a, Block) else a for a in args))
    if rc == ERR_KIND:
        given = ", ".join(f"'{a.name}' is a {block_kind_name(a.kind)} block"
                          for a in args if isinstance(a, Block))
        raise NativeError(f"{function} refused a block of the wrong kind (it takes a "
                          f"{function.split('_')[0]} block): {given}")
    return rc


def include_dir() -> str:
    """The directory holding block.h (and what it includes), to pass as `-I` when
    compiling an integrator's native block: edge/include/ of an installed package, or
    native/ of a source checkout (an editable install). NativeError if neither has it."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (os.path.join(package, "include"),
                      os.path.join(os.path.dirname(package), "native")):
        if os.path.exists(os.path.join(candidate, "block.h")):
            return candidate
    raise NativeError(f"edge's C headers are missing from {package}/include: reinstall "
                      "edge (the wheel ships them)")


def load_block(library: str | os.PathLike, factory: str, signature: str, *args) -> Block:
    """An integrator's native block from a shared library: `factory` is a C function
    returning `edge_block *` (NULL on bad input), declared by `signature`, e.g.
    load_block("libclamp.so", "velocity_clamp_alloc", "edge_block *velocity_clamp_alloc(int,
    double);", 2, 0.5). The block runs in the cycle like the built-in ones; see
    docs/motion-extending.md for the rules a block must follow."""
    import cffi

    ffi_, _ = require_native()
    user = cffi.FFI()
    user.cdef("typedef struct edge_block edge_block;\n" + signature)
    try:
        libh = user.dlopen(os.fspath(library))
        fn = getattr(libh, factory)
    except (OSError, AttributeError) as exc:
        raise NativeError(f"cannot load native block {factory} from {library}: {exc}") from None
    handle = fn(*args)
    if handle == user.NULL:
        raise NativeError(f"native block factory {factory}{args} refused its input")
    block = Block(factory, ffi_.cast("edge_block *", int(user.cast("uintptr_t", handle))))
    block.library = libh          # keep the library loaded as long as the block lives
    return block


def setpoint_block(max_velocity: Sequence[float], max_acceleration: Sequence[float]) -> Block:
    """Rate-limited joint position setpoints (commands: SETPOINT_CMD_TARGET)."""
    _, lib_ = require_native()
    n = len(max_velocity)
    return Block("setpoint", lib_.setpoint_block_alloc(n, list(map(float, max_velocity)),
                                                         list(map(float, max_acceleration))))


def drive_sim_block(initial_position: Sequence[float], tau_s: float = 0.0) -> Block:
    """A simulated position drive with a first-order lag of tau_s seconds."""
    _, lib_ = require_native()
    return Block("drive_sim", lib_.drive_sim_block_alloc(len(initial_position), float(tau_s),
                                                           list(map(float, initial_position))))


class Cycle:
    """The native cycle: start() on its real-time thread, or step(n) in virtual time."""

    def __init__(self, period_ns: int, n_axes: int, *, busy_tail_ns: int = 0, cpu: int = -1,
                 priority: int = 0, lock_memory: bool = False, watchdog_ticks: int = 0,
                 estop_category: int = 0, command_capacity: int = 1024,
                 state_capacity: int = 8192) -> None:
        ffi_, lib_ = require_native()
        if period_ns <= 0:
            raise NativeError(f"period must be positive, got {period_ns} ns")
        if not 0 <= n_axes <= MAX_AXES:
            raise NativeError(f"a cycle drives 0 to {MAX_AXES} axes, got {n_axes}")
        cfg = ffi_.new("cycle_config *", dict(
            period_ns=period_ns, busy_tail_ns=busy_tail_ns, n_axes=n_axes, cpu=cpu,
            priority=priority, lock_memory=int(lock_memory), command_capacity=command_capacity,
            state_capacity=state_capacity, watchdog_ticks=watchdog_ticks,
            estop_category=estop_category))
        handle = lib_.cycle_alloc(cfg)
        if handle == ffi_.NULL:
            raise NativeError("the native cycle could not be allocated")
        self._ffi, self._lib = ffi_, lib_
        self._handle = ffi_.gc(handle, lib_.cycle_free)
        self.period_ns = period_ns
        self.n_axes = n_axes
        self.blocks: list[Block] = []
        self.signal_slots: dict[str, range] = {}      # who writes which signals, in order
        self._cmd = ffi_.new("edge_command *")
        # push_hook(tick, target, kind, args) -> the tick to push with, or None to leave
        # the command out; called before every push (the flight recorder and its replay).
        # `pushes` counts the commands the ring took: the next one is number `pushes`.
        self.pushes = 0
        self.push_hook: Callable[[int, int, int, Sequence[float]], int | None] | None = None
        self._state_buf_len = 1024
        self._state_buf = ffi_.new("edge_state[]", self._state_buf_len)
        self._state_view = np.frombuffer(ffi_.buffer(self._state_buf), dtype=STATE_BYTES)

    # -- setup ---------------------------------------------------------------------
    def add_block(self, block: Block) -> int:
        """Append a block to the fixed tick order; returns its command target index."""
        index = self._lib.cycle_add_block(self._handle, block.handle)
        if index < 0:
            raise NativeError(f"cannot add block '{block.name}': cycle running or full")
        block.index = index
        self.blocks.append(block)
        return index

    def assign_signals(self, name: str, count: int) -> range:
        """Reserve `count` consecutive slots of the state record's `signals` for `name`
        (a block that writes them every tick, so tasks read them from the record of
        their release tick); NativeError when the EDGE_SIGNALS slots are used up."""
        if name in self.signal_slots:
            raise NativeError(f"signal slots for '{name}' are already assigned")
        first = max((r.stop for r in self.signal_slots.values()), default=0)
        if count < 1 or first + count > self._lib.EDGE_SIGNALS:
            raise NativeError(f"cannot assign {count} signal slots to '{name}': "
                              f"{self._lib.EDGE_SIGNALS - first} of "
                              f"{self._lib.EDGE_SIGNALS} left")
        self.signal_slots[name] = range(first, first + count)
        return self.signal_slots[name]

    # -- running -------------------------------------------------------------------
    def start(self) -> None:
        err = self._lib.cycle_start(self._handle)
        if err:
            raise NativeError(f"cycle thread did not start: {os.strerror(err)}")

    def stop(self) -> None:
        self._lib.cycle_stop(self._handle)

    def step(self, n: int = 1) -> None:
        """Run n ticks now, in the caller's thread, without sleeping (virtual time)."""
        if self._lib.cycle_step(self._handle, n) != 0:
            raise NativeError("step() is for virtual time; the cycle thread is running")

    @property
    def tick(self) -> int:
        """The next tick the cycle will run."""
        return self._lib.cycle_current_tick(self._handle)

    def tick_reader(self) -> Callable[[], int]:
        """A function returning `tick`, for code that stamps thousands of readings a
        second (one C call, without the property's Python frames)."""
        return functools.partial(self._lib.cycle_current_tick, self._handle)

    @property
    def wake_fd(self) -> int:
        """An eventfd the cycle thread writes to once a tick asked for by wake_at has run
        (-1 when the kernel gave none): lets an event loop wait for a tick, not poll."""
        return self._lib.cycle_wake_fd(self._handle)

    def wake_at(self, tick: int) -> bool:
        """Ask for one write to wake_fd once the state record of `tick` is poppable.
        False when that tick already ran (nothing to wait for)."""
        return bool(self._lib.cycle_wake_at(self._handle, tick))

    # -- rings ---------------------------------------------------------------------
    def push_command(self, tick: int, target: int, kind: int, args: Sequence[float] = ()) -> bool:
        """Queue a command to take effect at `tick`; False if the ring is full (counted)."""
        if self.push_hook is not None:
            tick = self.push_hook(tick, target, kind, args)
            if tick is None:
                return True
        cmd = self._cmd
        cmd.tick, cmd.target, cmd.kind = tick, target, kind
        n = len(args)
        if n > 16:
            raise NativeError(f"a command carries at most 16 arguments, got {n}")
        for i in range(16):
            cmd.args[i] = args[i] if i < n else 0.0
        if self._lib.cycle_push_command(self._handle, cmd):
            self.pushes += 1
            return True
        return False

    def pop_states(self, max_records: int | None = None) -> np.ndarray:
        """Drain up to max_records state records (a copy, dtype STATE_DTYPE)."""
        limit = self._state_buf_len if max_records is None else min(max_records,
                                                                    self._state_buf_len)
        chunks = []
        while True:
            n = self._lib.cycle_pop_states(self._handle, self._state_buf, limit)
            if n:
                chunks.append(self._state_view[:n].copy().view(STATE_DTYPE))
            if n < limit or max_records is not None:
                break
        if not chunks:
            return np.empty(0, dtype=STATE_DTYPE)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def pop_states_into(self, history: StateHistory, max_records: int
                        ) -> tuple[int, int, int, int] | None:
        """Move up to max_records state records straight into `history` (no numpy copy):
        (first tick, last tick + 1, count, the tick the cycle was at before the move) of
        those moved, or None when the ring was empty."""
        span = history.span_c
        n = self._lib.cycle_pop_states_by_tick(self._handle, history.slots_c, len(history),
                                               max_records, span)
        return (span[0], span[1], n, span[2]) if n else None

    # -- statistics ----------------------------------------------------------------
    def stats(self) -> CycleStats:
        raw = self._ffi.new("cycle_stats *")
        self._lib.cycle_get_stats(self._handle, raw)
        return CycleStats(**{f: getattr(raw, f) for f in CycleStats.__dataclass_fields__
                             if f != "running"}, running=bool(raw.running))

    def reset_stats(self) -> None:
        self._lib.cycle_reset_stats(self._handle)

    def latency_us(self, quantile: float) -> float:
        """Wake-up latency at `quantile` (0..1), microseconds."""
        return self._lib.hist_quantile(self._lib.cycle_latency_hist(self._handle), quantile) / 1e3

    def exec_us(self, quantile: float) -> float:
        """Tick execution time at `quantile` (0..1), microseconds."""
        return self._lib.hist_quantile(self._lib.cycle_exec_hist(self._handle), quantile) / 1e3

    def latency_summary_us(self) -> dict[str, float]:
        h = self._lib.cycle_latency_hist(self._handle)
        return histogram_summary_us(h)


def histogram_summary_us(h) -> dict[str, float]:
    """p50/p99/p99.9/max (µs) and sample count of a native histogram."""
    _, lib_ = require_native()
    return {"p50_us": lib_.hist_quantile(h, 0.5) / 1e3, "p99_us": lib_.hist_quantile(h, 0.99) / 1e3,
            "p999_us": lib_.hist_quantile(h, 0.999) / 1e3, "max_us": lib_.hist_max(h) / 1e3,
            "samples": int(lib_.hist_count(h))}


class StateHistory:
    """The state records of the last ticks, each in slot tick % size of one array that
    the cycle fills directly (Cycle.pop_states_into): the executor reads the records it
    needs, and copies nothing for the ticks at which nothing happens."""

    def __init__(self, size: int) -> None:
        ffi_, _ = require_native()
        # written, not np.zeros (whose pages are mapped lazily): the cycle then fills
        # the slots without a page fault per few ticks during the first pass
        self.records = np.empty(size, dtype=STATE_DTYPE)
        self.records.view(np.uint8).fill(0)
        self.slots_c = ffi_.from_buffer("edge_state[]", self.records)
        self.span_c = ffi_.new("int64_t[3]")
        self._ticks = self.records["tick"]          # a view: the tick held by each slot

    def __len__(self) -> int:
        return len(self.records)

    def record(self, tick: int) -> np.void:
        """A read-only copy of the record of `tick` (its slot is reused `size` ticks
        later). Copied as bytes: numpy copies a record field by field, ten times slower."""
        slot = tick % len(self.records)
        return np.frombuffer(self.records[slot:slot + 1].tobytes(), dtype=STATE_DTYPE)[0]

    def holds(self, tick: int) -> bool:
        """Whether the record of `tick` arrived (False: the state ring dropped it)."""
        return int(self._ticks[tick % len(self.records)]) == tick

    def span(self, lo: int, hi: int) -> np.ndarray:
        """Copies of the records of ticks lo .. hi - 1 (at most `size` of them)."""
        idx = np.arange(lo, hi) % len(self.records)
        return state_bytes(self.records)[idx].view(STATE_DTYPE)
