"""`edge hil run --realtime`: a scenario run against a separate `edge run` process in
wall time, over the real protocols. The rig is a mosquitto, the Modbus TCP devices the
scenario declares (each behind a TcpFaultLink, its fault line), and `edge run --board
<the scenario's board, overrides merged, written to a temporary file> --mqtt`.

The timeline is driven in wall time, a tick being the board's period: requests go to
the controller as an operator's MQTT commands (`cmd/<name>`), device, broker and power
faults through the rig's injectors. The signals are what can be seen from outside: bus
topics as the bridge publishes them (`edge/v1/<device>/<topic>`), the logic program's
outputs, the summary (`stats`), raw bridge messages (`mqtt`: the birth and death message),
an independent paho subscriber's audit of the streams (`audit`) and the device lines'
counters (`rig`). They are sampled every SAMPLE_S into a trace of one row per tick (a
sample holds until the next), and the assertions are judged on it as in virtual time.

A signal, step or fault that exists only inside the process (the state record, the
safety block's status, a Python stall, a plant torque) is refused before anything
starts, with the scenario line and "not available in real time".
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from edge.acquisition.sources import DEFAULT_TIMEOUT_MS
from edge.config import Board, Node
from edge.errors import ConfigError, EdgeError
from hil.scenario import Run
from hil.signals import SOURCES, Probe, bind_signal
from hil.temporal import Trace
from hil.timeline import FaultStep, PublishStep, RequestStep, ResetStep, Step, StopStep

SAMPLE_S = 0.01
REALTIME_SOURCES = ("topic", "logic", "injected", "stats", "mqtt", "audit", "rig")
DEVICE_KINDS = ("modbus_tcp",)
REGISTER_TABLES = ("holding", "input", "coil", "discrete")
REGISTER_TYPES = ("int16", "uint16", "int32", "uint32", "float32")
DEVICE_ID = "edge-hil"          # the bridge's device id, unless the board names one
SETTLE_TIMEOUT_S = 10.0         # edge run ready until its first bridged frames arrive
LOG_LINES = 5                   # of edge run's log per start, in a failed run's notes
END_TIMEOUT_S = 30.0            # faults still ending (a restart) when the run is over


@dataclass
class Device:
    """A device the scenario declares: started on the rig, the board's acquisition
    device of the same name pointed at it."""

    name: str
    kind: str
    unit: int
    registers: list[tuple[str, int, float, str]]
    node: Node


def parse_devices(node: Node | None, board: Board) -> list[Device]:
    """The scenario's `devices:` mapping: `pump: {kind: modbus_tcp, unit: 1, registers:
    [{table: holding, address: 0, value: 1234, type: uint16}]}`."""
    if node is None:
        return []
    out = []
    for name, child in node.mapping().items():
        child.only("kind", "unit", "registers")
        kind = child.get("kind", str, choices=DEVICE_KINDS)
        unit = child.get("unit", int, 1, min=0, max=247)
        registers = []
        regs = child.child("registers", None)
        for item in regs.sequence() if regs is not None else []:
            item.only("table", "address", "value", "type")
            registers.append((item.get("table", str, "holding", choices=REGISTER_TABLES),
                              item.get("address", int, min=0, max=65535),
                              item.get("value", float),
                              item.get("type", str, "uint16", choices=REGISTER_TYPES)))
        out.append(Device(name, kind, unit, registers, child))
    return out


def _source_kind(node: Node) -> str:
    return next(k for k in node.mapping() if k in SOURCES)


@dataclass
class Need:
    """What in a scenario needs a real-time rig, and its line."""

    what: str
    line: int

    def __str__(self) -> str:
        return self.what


def needs_realtime(run: Run) -> Need | None:
    """The first signal, device or fault of the run that only a real-time rig has."""
    from hil.outside import OUTSIDE_SOURCES
    from hil.rig_faults import RigFault

    for s in run.signals:
        if (kind := _source_kind(s.node)) in OUTSIDE_SOURCES:
            return Need(f"the {kind} signal '{s.name}'", s.node.line)
    if run.devices:
        return Need(f"the device '{run.devices[0].name}'", run.devices[0].node.line)
    for step in run.steps:
        if isinstance(step, FaultStep) and isinstance(step.fault, RigFault):
            return Need(f"the {step.fault.kind} fault '{step.name}'", step.line)
    return None


def check_realtime(run: Run) -> None:
    """Refuse what a real-time run cannot do; ConfigError at the scenario line."""
    from hil.rig_faults import DeviceFault, PowerFault, RigFault

    where = {"file": run.file}
    for s in run.signals:
        kind = _source_kind(s.node)
        if kind not in REALTIME_SOURCES:
            hint = "; the bridged topic state/controller carries mode, fault_code and " \
                "stop_category" if kind in ("stop", "fault", "state") else ""
            raise s.node.error(f"a {kind} signal is not available in real time: it lives "
                               "inside the process (real time observes "
                               f"{', '.join(REALTIME_SOURCES)}){hint}", kind)
    acq = {d.get("name"): d for d in (run.board_data.get("acquisition") or {}).get("devices", [])
           if isinstance(d, dict)}
    for d in run.devices:
        if acq.get(d.name, {}).get("kind") != d.kind:
            raise d.node.error(f"the board has no acquisition device '{d.name}' of kind "
                               f"{d.kind} to point at this device")
    names = {d.name for d in run.devices}
    for step in run.steps:
        if isinstance(step, FaultStep):
            if not isinstance(step.fault, RigFault):
                raise ConfigError(f"a {step.fault.kind} fault is not available in real time "
                                  "(it acts inside the process); real-time faults: device, "
                                  "broker, power", line=step.line, **where)
            if isinstance(step.fault, DeviceFault) and step.fault.device not in names:
                raise ConfigError(f"no device '{step.fault.device}' in the scenario's devices "
                                  f"({', '.join(sorted(names)) or 'none'})", line=step.line,
                                  **where)
            if isinstance(step.fault, PowerFault) and step.end_tick is None:
                raise ConfigError("a power fault needs a 'for': the power comes back (edge "
                                  "run starts again) when it ends", line=step.line, **where)
        elif isinstance(step, PublishStep) and not step.topic.startswith("cmd/"):
            raise ConfigError(f"publish on '{step.topic}' is not available in real time: from "
                              "outside, the bridge takes only commands (cmd/<name>)",
                              line=step.line, **where)
        elif not isinstance(step, RequestStep | StopStep | ResetStep | PublishStep):
            raise ConfigError(f"a {step.kind} step is not available in real time",
                              line=step.line, **where)


def _command(step: Step) -> tuple[str, dict[str, Any]]:
    """The MQTT command an operator would send for a step: name and arguments."""
    if isinstance(step, RequestStep):
        return step.kind, dict(step.args or {})
    if isinstance(step, StopStep):
        return "stop", {} if step.category is None else {"category": step.category}
    if isinstance(step, ResetStep):
        return "reset", {}
    assert isinstance(step, PublishStep)
    return step.topic.split("/", 1)[1], dict(step.data or {})


def _device_timeout_s(board_data: dict, name: str) -> float:
    """The request timeout of the board's acquisition device `name` (edge's default if
    the board does not set it)."""
    for device in (board_data.get("acquisition") or {}).get("devices") or []:
        if device.get("name") == name and "timeout_ms" in device:
            return float(device["timeout_ms"]) / 1e3
    return DEFAULT_TIMEOUT_MS / 1e3


def board_file(run: Run, directory: Path, ports: dict[str, int], broker_url: str) -> Path:
    """The run's board as `edge run` reads it: overrides merged, the scenario's devices'
    ports, the rig's broker and the commands its timeline sends allowed."""
    import yaml

    data = dict(run.board_data)
    acq = data.get("acquisition")
    if acq:
        acq = data["acquisition"] = dict(acq)
        acq["devices"] = [{**d, "host": "127.0.0.1", "port": ports[d["name"]]}
                          if d.get("name") in ports else d for d in acq.get("devices", [])]
    mqtt = data["mqtt"] = {"device_id": DEVICE_ID, **(data.get("mqtt") or {}),
                           "url": broker_url}
    commands = mqtt["commands"] = dict(mqtt.get("commands") or {})
    for step in run.steps:
        if not isinstance(step, FaultStep):
            commands.setdefault(_command(step)[0], None)
    if not commands:
        del mqtt["commands"]
    path = directory / "board.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class OutsideView:
    """What the run observes of `edge run`: one paho client on `edge/v1/#` keeping each
    topic's latest message, an independent audit subscriber (hil.mqtt_watch) and the
    summary, read at most once per sample."""

    def __init__(self, port: int, rig: RealtimeRig) -> None:
        import paho.mqtt.client as paho

        from hil.mqtt_watch import StreamWatch

        self.rig = rig
        self._latest: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stats: dict[str, Any] | None = None
        self.replies: list[dict[str, Any]] = []
        tag = uuid.uuid4().hex[:8]
        self.watch = StreamWatch(port, "edge/v1/+/#", client_id=f"edge-hil-audit-{tag}")
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"edge-hil-view-{tag}")
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = lambda c, *_: c.subscribe("edge/v1/#", qos=1)
        self.client.on_message = self._on_message
        self.port = port

    def _on_message(self, client, userdata, message) -> None:
        import msgpack

        parts = message.topic.split("/", 3)
        if len(parts) < 4:
            return
        try:
            payload = msgpack.unpackb(message.payload, raw=False)
        except Exception:                   # not msgpack: kept as None, never fatal
            payload = None
        with self._lock:
            self._latest[parts[3]] = payload
            if parts[3].startswith("reply/") and isinstance(payload, dict):
                self.replies.append(payload)

    def __enter__(self) -> OutsideView:
        self.watch.__enter__()
        self.client.connect("127.0.0.1", self.port, keepalive=5)
        self.client.loop_start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.watch.__exit__(*exc_info)

    async def wait_flowing(self, timeout_s: float) -> None:
        """Until the birth message and a bridged bus message have arrived: the run's
        tick 0 is when the controller is seen working from outside."""
        from hil.rigs.base import wait_for_condition

        def flowing() -> bool:
            with self._lock:
                birth = self._latest.get("state")
                return isinstance(birth, dict) and birth.get("online") is True and any(
                    isinstance(v, dict) and "seq" in v for v in self._latest.values())
        await wait_for_condition(flowing, timeout_s,
                                 "edge run: no birth message or bridged frame seen")

    def next_sample(self) -> None:
        self._stats = None

    # -- what the signals read ------------------------------------------------------
    def latest(self, topic: str) -> Any:
        """A bus topic's latest message as bridged (what `bus.latest` is in-process)."""
        with self._lock:
            payload = self._latest.get(topic)
        if not isinstance(payload, dict) or "data" not in payload:
            return None
        return SimpleNamespace(data=payload["data"])

    def raw(self, topic: str) -> Any:
        with self._lock:
            return self._latest.get(topic)

    def stats(self) -> dict[str, Any]:
        if self._stats is None:
            self._stats = self.rig.edge.stats() if self.rig.edge is not None else {}
        return self._stats

    def audit(self, field: str, pattern: str) -> int:
        """Summed over the matching streams; `lost`: the gaps below the highest seq seen
        (a lost tail shows against the summary's `bus.published_per_topic`)."""
        total = 0
        for topic, counts in self.watch.report().items():
            bus_topic = topic.split("/", 3)[-1]
            if not pattern or bus_topic == pattern or (
                    pattern.endswith("#") and bus_topic.startswith(pattern[:-1])):
                total += counts[field]
        return total

    def rig_counter(self, device: str, counter: str):
        if device not in self.rig.links:
            raise EdgeError(f"no device '{device}' in the scenario's devices")
        faults = self.rig.links[device].faults
        return lambda: int(getattr(faults, counter))


class OutsideProbe(Probe):
    """The Probe of a real-time run: `runtime.bus` is the bridged view."""

    def __init__(self, view: OutsideView) -> None:
        super().__init__(SimpleNamespace(bus=view))
        self.outside = view


class RealtimeRig:
    """The resources of one real-time run, started in order, stopped in reverse."""

    def __init__(self, run: Run, workdir: Path) -> None:
        self.run = run
        self.workdir = workdir
        self.broker = None
        self.broker_faults = None
        self.devices: dict[str, Any] = {}
        self.links: dict[str, Any] = {}
        self.edge = None

    def device_faults(self, name: str):
        return self.links[name].faults

    async def open(self, stack: contextlib.AsyncExitStack) -> None:
        from hil.rigs import Broker, BrokerFaults, EdgeProcess, ModbusTcpDevice, TcpFaultLink

        broker_dir = self.workdir / "broker"
        self.broker = await stack.enter_async_context(Broker(directory=str(broker_dir)))
        self.broker_faults = BrokerFaults(self.broker)
        for d in self.run.devices:
            dev = await stack.enter_async_context(ModbusTcpDevice(unit=d.unit))
            for table, address, value, dtype in d.registers:
                await dev.set_value(table, address, value, dtype)
            self.devices[d.name] = dev
            link = self.links[d.name] = await stack.enter_async_context(TcpFaultLink(dev.port))
            # an answer later than half edge's timeout may have lost the race with it
            link.faults.slow_after_s = _device_timeout_s(self.run.board_data, d.name) / 2
        url = f"mqtt://127.0.0.1:{self.broker.port}"
        board = board_file(self.run, self.workdir,
                           {name: link.port for name, link in self.links.items()}, url)
        self.edge = EdgeProcess(board, mqtt=url,
                                workdir=self.workdir / "edge", log_level="warning",
                                ready_timeout_s=30.0, stats_every_s=0.1)

    async def start_edge(self, stack: contextlib.AsyncExitStack) -> None:
        await stack.enter_async_context(self.edge)


class _Driver:
    """The timeline in wall time and the sampling of every signal into columns."""

    def __init__(self, run: Run, rig: RealtimeRig, view: OutsideView) -> None:
        self.run, self.rig, self.view = run, rig, view
        self.probe = OutsideProbe(view)
        n = run.duration_ticks
        self.columns = {s.name: np.zeros(n, dtype=s.dtype) for s in run.signals}
        self.readers = [(self.columns[s.name], bind_signal(s, self.probe))
                        for s in run.signals]
        self.tasks: list[asyncio.Task] = []
        self.errors: list[str] = []

    def _send(self, step: Step) -> None:
        import msgpack

        name, args = _command(step)
        device_id = (self.run.board_data.get("mqtt") or {}).get("device_id", DEVICE_ID)
        self.view.client.publish(f"edge/v1/{device_id}/cmd/{name}",
                                 msgpack.packb({"id": f"line-{step.line}", "args": args}),
                                 qos=1)

    def _fault(self, step: FaultStep, on: bool) -> None:
        async def act() -> None:
            try:
                await (step.fault.begin if on else step.fault.finish)(self.rig)
            except EdgeError as exc:
                self.errors.append(f"{self.run.file}:{step.line}: {exc.one_line()}")
        if on:
            self.probe.active_faults.add(step.name)
        else:
            self.probe.active_faults.discard(step.name)
        self.tasks.append(asyncio.create_task(act()))

    def _events(self) -> list[tuple[int, int, Any]]:
        out = []
        for i, step in enumerate(self.run.steps):
            if isinstance(step, FaultStep):
                out.append((step.tick, i, lambda s=step: self._fault(s, True)))
                if step.end_tick is not None:
                    out.append((step.end_tick, i, lambda s=step: self._fault(s, False)))
            else:
                out.append((step.tick, i, lambda s=step: self._send(s)))
        return sorted(out, key=lambda e: (e[0], e[1]))

    async def go(self) -> Trace:
        period_s = self.run.board.cycle.period_ns / 1e9
        n = self.run.duration_ticks
        events = self._events()
        done = 0
        started = time.monotonic()
        while done < n:
            now_tick = min(n, int((time.monotonic() - started) / period_s) + 1)
            while events and events[0][0] < now_tick:
                events.pop(0)[2]()
            self.view.next_sample()
            self.probe.next_tick()
            for column, read in self.readers:
                column[done:now_tick] = read()
            done = now_tick
            await asyncio.sleep(SAMPLE_S)
        if self.tasks:
            await asyncio.wait_for(asyncio.gather(*self.tasks), END_TIMEOUT_S)
        if self.errors:
            raise EdgeError(self.errors[0])
        types = {s.name: s.type for s in self.run.signals}
        return Trace(np.arange(n, dtype=np.int64), self.columns, types,
                     self.run.board.cycle.period_ns)

    def notes(self) -> list[str]:
        return [f"{self.run.file}: command {r.get('command')} {r.get('status')}: "
                f"{r.get('error', '')}" for r in self.view.replies if r.get("ok") is False]


async def _execute(run: Run, result: Any, trace_dir: str | Path | None,
                   report_dir: str | Path | None = None) -> None:
    from hil.rigs.modbus import quiet_pymodbus
    from hil.runner import judge

    with tempfile.TemporaryDirectory(prefix="edge-hil-rt-") as tmp, quiet_pymodbus():
        rig = RealtimeRig(run, Path(tmp))
        async with contextlib.AsyncExitStack() as stack:
            await rig.open(stack)
            view = stack.enter_context(OutsideView(rig.broker.port, rig))
            await rig.start_edge(stack)
            await view.wait_flowing(SETTLE_TIMEOUT_S)
            driver = _Driver(run, rig, view)
            trace = await driver.go()
            result.notes = driver.notes()
        judge(run, trace, result, trace_dir, report_dir)
        if not result.passed:            # what edge run logged says why, often
            result.notes += [f"edge run (start {i}): {line}" for i in range(1, rig.edge.starts + 1)
                             for line in rig.edge.stderr_text(i).splitlines()[:LOG_LINES]]


def execute_realtime(run: Run, trace_dir: str | Path | None = None,
                     report_dir: str | Path | None = None):
    """Carry out one run in real time on its own rig and judge it; an EdgeError on the
    way (a rig that cannot start, a fault that fails) becomes the result's error."""
    from hil.runner import RunResult

    result = RunResult(run.id, run.scenario, run.file, run.index, dict(run.params), run.seed,
                       ticks=run.duration_ticks, description=run.description)
    started = time.perf_counter()
    try:
        check_realtime(run)
        asyncio.run(_execute(run, result, trace_dir, report_dir))
    except EdgeError as exc:
        result.error = exc.one_line()
    except (TimeoutError, OSError) as exc:
        result.error = f"{run.file}: real-time rig: {type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    return result
