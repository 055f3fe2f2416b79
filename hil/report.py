"""The plots of `edge hil run --report DIR`: per run, PNG images (matplotlib, Agg) of
what it recorded: the assertions over time, the joints against the board's limits, the
TCP path against the walls, the safety and fault timeline, bus topics and message rates,
task counters and the rest. Only this module imports matplotlib (extra `hil`).

The plots are drawn where the trace is (the worker process of the run: `render_run`);
the page that shows them is hil.report_page, written once every run is back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import EdgeError

if TYPE_CHECKING:
    from hil.runner import RunResult
    from hil.scenario import Run
    from hil.signals import Signal
    from hil.temporal import Trace

_TIMELINE_KINDS = ("stop", "fault", "input", "injected", "motion", "safety", "observer")
_JOINT_PANELS = (("q", "position (rad)", ("q", "q_cmd")), ("qd", "velocity (rad/s)",
                 ("qd", "qd_cmd")), ("tau", "torque (N·m)", ("tau",)))
_PASS, _FAIL = "#2e7d32", "#c62828"


@dataclass
class Figure:
    """One image of a run: its file (relative to the report directory) and a title."""

    file: str
    title: str


def need_matplotlib() -> None:
    """Raise EdgeError, one line naming the extra to install, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EdgeError("--report draws its plots with matplotlib, which is not installed: "
                        "pip install 'edge[hil]'") from None


def _kind(s: Signal) -> str:
    from hil.signals import SOURCES

    return next(k for k in s.node.mapping() if k in SOURCES)


# -- plots, in the run's process ------------------------------------------------------------

def render_run(run: Run, trace: Trace, rows: list[dict[str, Any]], result: RunResult,
               directory: Path) -> list[Figure]:
    """Draw the run's plots into `directory` (created); the figures drawn, in page order.
    A plot is drawn only for signals the scenario recorded."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeError(f"cannot create {directory}: {exc.strerror}") from None
    fail_ticks = sorted({v.tick for v in result.verdicts if not v.passed and v.tick is not None})
    kinds = {s.name: _kind(s) for s in run.signals}
    done: set[str] = set()
    out: list[Figure] = []
    for name, title, draw in _PLOTS:
        fig = draw(run, trace, rows, result, kinds, done, fail_ticks)
        if fig is None:
            continue
        path = directory / f"{name}.png"
        try:
            fig.savefig(path, dpi=90)
        except OSError as exc:
            raise EdgeError(f"cannot write {path}: {exc.strerror}") from None
        out.append(Figure(f"{directory.name}/{name}.png", title))
    return out


def _figure(panels: int, height: float = 2.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(10, 0.6 + height * panels), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def _ticks_axis(ax, trace: Trace, fail_ticks: list[int], last: bool) -> None:
    for t in fail_ticks:
        ax.axvline(t, color=_FAIL, linestyle=":", linewidth=1.2)
    ax.grid(True, alpha=0.3)
    ax.set_xlim(float(trace.ticks[0]), float(trace.ticks[-1]))
    if last:
        ax.set_xlabel(f"tick ({trace.period_ns / 1e6:g} ms each)"
                      + ("; dotted: a failure's tick" if fail_ticks else ""))


def _lanes(ax, trace: Trace, names: list[str]) -> None:
    """BOOL signals as lanes: a bar where each is TRUE."""
    for row, name in enumerate(names):
        on = trace.columns[name].astype(bool)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], on.view(np.int8), [0]))))
        spans = [(float(trace.ticks[a]), float(b - a)) for a, b in zip(edges[::2], edges[1::2],
                                                                       strict=True)]
        ax.broken_barh(spans, (row - 0.35, 0.7), color="#1565c0")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.invert_yaxis()


def _assertions(run, trace, rows, result, kinds, done, fail_ticks):
    """One lane per assertion: where what it expects holds (an `after` form: its windows
    shaded), its failure marked."""
    if not run.assertions or len(result.verdicts) != len(run.assertions):
        return None
    fig, (ax,) = _figure(1, 0.45 * len(run.assertions) + 0.8)
    labels = []
    for row, (a, v) in enumerate(zip(run.assertions, result.verdicts, strict=True)):
        holds = a.expect.holds(rows)
        good = ~holds if a.form == "never" else holds
        if a.form == "after" and a.event is not None:
            event = a.event.holds(rows)
            for i in np.flatnonzero(event & ~np.concatenate(([False], event[:-1]))):
                ax.broken_barh([(float(trace.ticks[i]), float(a.within_ticks or 0) + 1)],
                               (row - 0.45, 0.9), color="#ffe082")
        edges = np.flatnonzero(np.diff(np.concatenate(([0], good.view(np.int8), [0]))))
        spans = [(float(trace.ticks[s]), float(e - s)) for s, e in zip(edges[::2], edges[1::2],
                                                                       strict=True)]
        ax.broken_barh(spans, (row - 0.2, 0.4), color=_PASS if v.passed else "#90a4ae")
        if not v.passed and v.tick is not None:
            ax.plot([v.tick], [row], marker="X", color=_FAIL, markersize=10)
            ax.annotate(f"tick {v.tick}", (v.tick, row), xytext=(6, -12),
                        textcoords="offset points", color=_FAIL, fontsize=8)
        labels.append(f"{'PASS' if v.passed else 'FAIL'}  line {v.where.rpartition(':')[2]}")
    ax.set_yticks(range(len(labels)), labels)
    for label, v in zip(ax.get_yticklabels(), result.verdicts, strict=True):
        label.set_color(_PASS if v.passed else _FAIL)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.invert_yaxis()
    ax.set_title("green: what the assertion expects holds (never: does not hold); "
                 "yellow: an after-window", fontsize=9)
    _ticks_axis(ax, trace, fail_ticks, True)
    return fig


def _joint_signals(run, kinds) -> dict[str, list[tuple[str, int, str]]]:
    """Recorded joint state by panel: (signal name, joint index, field)."""
    panels: dict[str, list[tuple[str, int, str]]] = {}
    for s in run.signals:
        base, _, index = s.spec.partition(".")
        if kinds[s.name] != "state" or not index.isdigit():
            continue
        for panel, _title, fields in _JOINT_PANELS:
            if base in fields:
                panels.setdefault(panel, []).append((s.name, int(index), base))
    return panels


def _joints(run, trace, rows, result, kinds, done, fail_ticks):
    panels = _joint_signals(run, kinds)
    if not panels:
        return None
    safety = run.board.sections.get("safety")
    fig, axes = _figure(len(panels))
    shown = [p for p in _JOINT_PANELS if p[0] in panels]
    for ax, (panel, title, _fields) in zip(axes, shown, strict=True):
        limits: list[tuple[float, str]] = []
        for k, (name, joint, base) in enumerate(panels[panel]):
            color = f"C{k % 10}"
            ax.plot(trace.ticks, trace.columns[name], color=color,
                    linestyle="--" if base.endswith("_cmd") else "-",
                    label=f"{name} ({base}.{joint})")
            limits += [(lim, color) for lim in _joint_limits(panel, joint, safety, run.board)]
            done.add(name)
        _limit_lines(ax, limits)
        ax.set_ylabel(title)
        ax.legend(loc="upper right", fontsize=8)
        _ticks_axis(ax, trace, fail_ticks, ax is axes[-1])
    axes[0].set_title("joints; dash-dot: the board's limits for that joint", fontsize=9)
    return fig


def _limit_lines(ax, limits: list[tuple[float, str]]) -> None:
    """The limits near the data as lines; the ones far off it (a joint that moved 0.1 rad
    of its 6.28) named in a corner instead of squashing the curves flat."""
    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    span = max(hi - lo, 1e-3)
    off = []
    for y, color in limits:
        if lo - span <= y <= hi + span:
            ax.axhline(y, color=color, linestyle="-.", linewidth=0.8, alpha=0.8)
        else:
            off.append(f"{y:.4g}")
    if off:
        ax.text(0.01, 0.03, "limits off the scale: " + ", ".join(dict.fromkeys(off)),
                transform=ax.transAxes, fontsize=8, color="#555")


def _joint_limits(panel: str, joint: int, safety: Any, board: Any) -> list[float]:
    if safety is not None and joint < len(safety.q_min):
        if panel == "q":
            return [safety.q_min[joint], safety.q_max[joint]]
        limit = (safety.v_max if panel == "qd" else safety.tau_max)[joint]
        return [-limit, limit]
    if panel == "qd" and joint < len(board.axes):
        return [-board.axes[joint].max_velocity, board.axes[joint].max_velocity]
    return []


def _tcp(run, trace, rows, result, kinds, done, fail_ticks):
    coords = {s.spec: s.name for s in run.signals if kinds[s.name] == "tcp"}
    pairs = [p for p in (("x", "y"), ("x", "z"), ("y", "z")) if set(p) <= set(coords)]
    if len(pairs) == 3:
        pairs = pairs[:2]                    # top view and side view
    if not pairs:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(5 * len(pairs), 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    safety = run.board.sections.get("safety")
    walls = safety.walls if safety is not None else []
    for ax, (a, b) in zip(fig.subplots(1, len(pairs), squeeze=False)[0], pairs, strict=True):
        xa, xb = trace.columns[coords[a]], trace.columns[coords[b]]
        ax.plot(xa, xb, color="C0", linewidth=1.2, label="TCP")
        ax.plot(xa[:1], xb[:1], "o", color="C2", label="start")
        ax.plot(xa[-1:], xb[-1:], "s", color="C3", label="end")
        for t in fail_ticks:
            i = int(np.searchsorted(trace.ticks, t))
            if i < len(xa):
                ax.plot([xa[i]], [xb[i]], "X", color=_FAIL, markersize=9)
        _walls(ax, walls, "xyz".index(a), "xyz".index(b), xa, xb)
        ax.set_xlabel(f"{a} (m)")
        ax.set_ylabel(f"{b} (m)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        ax.set_title(f"TCP path, {a}{b} projection", fontsize=9)
    done.update(coords.values())
    return fig


def _walls(ax, walls: list, ia: int, ib: int, xa: np.ndarray, xb: np.ndarray) -> None:
    """The walls seen in the (ia, ib) projection: a plane edge-on as a line with its
    forbidden side shaded, a box as its rectangle (keep_out hatched, keep_in dashed)."""
    from matplotlib.patches import Polygon, Rectangle

    span = max(float(np.ptp(xa)), float(np.ptp(xb)), 0.1)
    lo = np.array([xa.min(), xb.min()]) - span * 0.3
    hi = np.array([xa.max(), xb.max()]) + span * 0.3
    far_lo, far_hi = lo - 100 * span, hi + 100 * span     # the axes clip what is beyond
    ic = 3 - ia - ib
    for w in walls:
        if w.kind == "plane":
            n = np.array(w.normal)
            if abs(n[ic]) > 1e-9:            # not edge-on: it is no line in this view
                continue
            box = [(far_lo[0], far_lo[1]), (far_hi[0], far_lo[1]), (far_hi[0], far_hi[1]),
                   (far_lo[0], far_hi[1])]
            bad = _clip(box, n[ia], n[ib], w.offset)
            if bad:
                ax.add_patch(Polygon(bad, closed=True, color=_FAIL, alpha=0.15,
                                     label=f"wall {w.name} (forbidden side)"))
            ax.axline(*_line_points(n[ia], n[ib], w.offset), color=_FAIL, linewidth=1)
        else:
            keep_out = w.kind == "keep_out"
            ax.add_patch(Rectangle((w.lo[ia], w.lo[ib]), w.hi[ia] - w.lo[ia],
                                   w.hi[ib] - w.lo[ib], fill=keep_out, alpha=0.25 if
                                   keep_out else 1, color=_FAIL if keep_out else _PASS,
                                   hatch="//" if keep_out else None,
                                   linestyle="-" if keep_out else "--",
                                   label=f"{w.kind} {w.name}"))
            lo = np.minimum(lo, [w.lo[ia], w.lo[ib]])
            hi = np.maximum(hi, [w.hi[ia], w.hi[ib]])
    middle, half = (lo + hi) / 2, float(np.max(hi - lo)) / 2     # equal scales, no stretch
    ax.set_xlim(middle[0] - half, middle[0] + half)
    ax.set_ylim(middle[1] - half, middle[1] + half)
    ax.set_aspect("equal", adjustable="box")


def _line_points(na: float, nb: float, offset: float):
    """Two points of na*a + nb*b = offset."""
    if abs(nb) > abs(na):
        return (0.0, offset / nb), (1.0, (offset - na) / nb)
    return (offset / na, 0.0), ((offset - nb) / na, 1.0)


def _clip(poly: list, na: float, nb: float, offset: float) -> list:
    """The part of a convex polygon where na*a + nb*b < offset (the forbidden side)."""
    out = []
    for (a0, b0), (a1, b1) in zip(poly, poly[1:] + poly[:1], strict=True):
        d0, d1 = na * a0 + nb * b0 - offset, na * a1 + nb * b1 - offset
        if d0 < 0:
            out.append((a0, b0))
        if (d0 < 0) != (d1 < 0):
            t = d0 / (d0 - d1)
            out.append((a0 + t * (a1 - a0), b0 + t * (b1 - b0)))
    return out


def _by_kind(kinds_wanted: Sequence[str] | None, title: str, bool_title: str):
    """A plot of the signals of these kinds (None: every one not drawn yet): their BOOL
    ones as lanes, each other one in a panel of its own (stop category and fault code
    with their names)."""
    def draw(run, trace, rows, result, kinds, done, fail_ticks):
        picked = [s for s in run.signals if s.name not in done
                  and (kinds_wanted is None or kinds[s.name] in kinds_wanted)]
        if not picked:
            return None
        lanes = [s.name for s in picked if s.type == "BOOL"]
        values = [s for s in picked if s.type != "BOOL"]
        fig, axes = _figure(len(values) + bool(lanes))
        for ax, s in zip(axes, values, strict=False):
            _value_panel(ax, run, trace, s, kinds[s.name])
        if lanes:
            _lanes(axes[-1], trace, lanes)
            axes[-1].set_ylabel(bool_title)
        for ax in axes:
            _ticks_axis(ax, trace, fail_ticks, ax is axes[-1])
        axes[0].set_title(title, fontsize=9)
        done.update(s.name for s in picked)
        return fig
    return draw


def _rates(run, trace, rows, result, kinds, done, fail_ticks):
    """`messages` signals: the count, and the rate over a sliding window of 100 ms."""
    picked = [s for s in run.signals if kinds[s.name] == "messages"]
    if not picked:
        return None
    fig, (count_ax, rate_ax) = _figure(2)
    window = max(1, round(0.1e9 / trace.period_ns))
    for k, s in enumerate(picked):
        col = trace.columns[s.name].astype(np.float64)
        before = np.concatenate((np.zeros(window), col))[:len(col)]
        label = f"{s.name} ({s.spec})"
        count_ax.step(trace.ticks, col, where="post", color=f"C{k % 10}", label=label)
        rate_ax.plot(trace.ticks, (col - before) / (window * trace.period_ns / 1e9),
                     color=f"C{k % 10}", label=label)
    count_ax.set_ylabel("messages delivered")
    rate_ax.set_ylabel(f"messages/s ({window * trace.period_ns / 1e6:g} ms window)")
    for ax in (count_ax, rate_ax):
        ax.legend(loc="upper left", fontsize=8)
        _ticks_axis(ax, trace, fail_ticks, ax is rate_ax)
    count_ax.set_title("bus message rates", fontsize=9)
    done.update(s.name for s in picked)
    return fig


def _value_panel(ax, run, trace, s, kind: str) -> None:
    from hil.signals import FAULT_NAMES

    col = trace.columns[s.name]
    ax.step(trace.ticks, col, where="post", color="C0", label=f"{s.name} ({kind}: {s.spec})")
    if kind == "stop":                       # category: -1 none, 0 .. 2
        ax.set_yticks([-1, 0, 1, 2], ["none", "cat 0", "cat 1", "cat 2"])
        ax.set_ylim(-1.5, 2.5)
    elif s.type == "INT" and "quality" in f"{s.name} {s.spec}".lower():
        from edge.acquisition.channel import Quality  # an acquisition value's quality

        ax.set_yticks([int(q) for q in Quality], [q.name for q in Quality])
    elif kind == "fault":
        codes = sorted({int(c) for c in np.unique(col)} | {0})
        names = {v: k for k, v in FAULT_NAMES.items()}
        ax.set_yticks(codes, [names.get(c, str(c)) for c in codes])
    safety = run.board.sections.get("safety")
    if kind == "safety" and safety is not None:
        lines = {"min_wall_distance": [0.0, safety.wall_margin],
                 "min_wall_distance_cmd": [0.0, safety.wall_margin],
                 "tcp_speed": [safety.tcp_speed_max], "tcp_speed_cmd": [safety.tcp_speed_max],
                 "speed_scale": [1.0]}.get(s.spec, [])
        for y in lines:
            ax.axhline(y, color=_FAIL, linestyle="-.", linewidth=0.8)
    ax.legend(loc="upper right", fontsize=8)


_PLOTS = (
    ("assertions", "assertions over time", _assertions),
    ("joints", "joint positions, velocities and torques against the board's limits", _joints),
    ("tcp", "TCP path against the walls and keep-out boxes", _tcp),
    ("safety", "safety state, stop category and faults",
     _by_kind(_TIMELINE_KINDS, "safety state, stop category and faults", "state")),
    ("bus", "bus topics and logic outputs",
     _by_kind(("topic", "logic"), "bus topics and logic outputs (latest value each tick)",
              "topics")),
    ("rates", "bus message rates", _rates),
    ("tasks", "task counters", _by_kind(("task",), "task releases and deadline misses",
                                        "tasks")),
    ("other", "the other recorded signals",
     _by_kind(None, "the other recorded signals", "signals")),
)


def run_dir_name(position: int, run_id: str) -> str:
    """The folder of one run's images: its place in the campaign (two files may hold
    scenarios of the same name) and its id (`003-collision_link3-torque_nm=30`)."""
    from hil.reports import run_stem

    return f"{position:03d}-{run_stem(run_id)}"
