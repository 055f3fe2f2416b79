"""Signals observed from outside a separate `edge run` process, for scenarios run with
`edge hil run --realtime` (hil.realtime): its summary (`--stats-json`), the raw MQTT
messages of its bridge (the birth / death message on `state`, replies), an independent
paho subscriber's audit of the bridged streams (hil.mqtt_watch), and the counters of the
rig's own device lines. In virtual time there is no process to observe: binding one of
them is an error naming the signal's line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge.config import Board, Node
from edge.errors import EdgeError
from hil.signals import BOOL, INT, LIVE, REAL, Probe, Signal, _default

AUDIT_FIELDS = ("lost", "reordered", "duplicates", "received", "unique")
RIG_COUNTERS = ("answers", "dropped", "corrupted", "slow")


def _outside(p: Probe, what: str) -> Any:
    outside = getattr(p, "outside", None)
    if outside is None:
        raise EdgeError(f"a {what} signal observes a separate `edge run` process: only with "
                        "`edge hil run --realtime`")
    return outside


def _path(node: Node, text: str, what: str) -> tuple:
    keys = tuple(int(k) if k.isdigit() else k for k in text.split(".") if k)
    if not keys:
        raise node.error(f"expected a dotted path, got {text!r}", what)
    return keys


def _dig(value: Any, keys: tuple, kind: str, default: Any) -> Any:
    from edge.errors import LogicError
    from edge.logic.compiler import as_type

    try:
        for key in keys:
            value = value[key]
        return as_type(value, kind)
    except (KeyError, IndexError, TypeError, LogicError):
        return default


def _stats(name: str, spec: str, node: Node, board: Board) -> Signal:
    """`{stats: acquisition.devices.pump.polls, type: INT}`: a field of the summary."""
    keys = _path(node, spec, "stats")
    kind = node.get("type", str, choices=(BOOL, INT, REAL))
    default = _default(node, kind)

    def bind(p: Probe) -> Callable:
        outside = _outside(p, "stats")
        return lambda: _dig(outside.stats(), keys, kind, default)
    return Signal(name, kind, LIVE, bind, node, spec)


def _mqtt(name: str, spec: str, node: Node, board: Board) -> Signal:
    """`{mqtt: state, field: online, type: BOOL}`: the latest raw message the bridge sent
    on `edge/v1/<device>/<spec>` (msgpack), not a bus message: the birth / death message,
    replies."""
    keys = _path(node, node.get("field", str, ""), "field") if node.child("field", None) \
        else ()
    kind = node.get("type", str, choices=(BOOL, INT, REAL))
    default = _default(node, kind)

    def bind(p: Probe) -> Callable:
        outside = _outside(p, "mqtt")
        return lambda: _dig(outside.raw(spec), keys, kind, default) \
            if outside.raw(spec) is not None else default
    return Signal(name, kind, LIVE, bind, node, spec)


def _audit(name: str, spec: str, node: Node, board: Board) -> Signal:
    """`{audit: lost, stream: state/joints}`: what an independent paho subscriber saw of
    the bridged streams (every topic, or the bus topics matching `stream`)."""
    if spec not in AUDIT_FIELDS:
        raise node.error(f"unknown audit field '{spec}' (expected one of "
                         f"{', '.join(AUDIT_FIELDS)})", "audit")
    topic = node.get("stream", str, "")

    def bind(p: Probe) -> Callable:
        outside = _outside(p, "audit")
        return lambda: outside.audit(spec, topic)
    return Signal(name, INT, LIVE, bind, node, spec)


def _rig(name: str, spec: str, node: Node, board: Board) -> Signal:
    """`{rig: pump.dropped}`: a counter of a scenario device's line, as the rig saw it."""
    device, _, counter = spec.rpartition(".")
    if counter not in RIG_COUNTERS or not device:
        raise node.error(f"'{spec}': expected <device>.<{'|'.join(RIG_COUNTERS)}>", "rig")

    def bind(p: Probe) -> Callable:
        outside = _outside(p, "rig")
        return outside.rig_counter(device, counter)
    return Signal(name, INT, LIVE, bind, node, spec)


OUTSIDE_SOURCES = {"stats": _stats, "mqtt": _mqtt, "audit": _audit, "rig": _rig}
OUTSIDE_FIELDS = {"stats": ("type", "default"), "mqtt": ("field", "type", "default"),
                  "audit": ("stream",)}
