"""edge's HIL rigs as pytest fixtures (registered as the `edge_hil` pytest11 plugin, so a
bench's own test suite gets them by installing edge; `-p no:edge_hil` turns them off).

Fixtures: `mosquitto` (a broker), `modbus_device` (Modbus TCP), `modbus_faults` (a fault
link in front of it), `modbus_rtu_device` (Modbus RTU on a pty), `serial_device` (a
factory of serial devices on ptys), `edge_rig` (a factory of `edge run` against the
broker), `hil_scenario` (a scenario file run in virtual time, its verdict). Options go
in markers named like the fixture, e.g.
`@pytest.mark.modbus_device(unit=3, size=50)`. A rig that cannot start fails the test
with one line naming the resource and why. docs/hil-rigs.md describes them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

try:
    import pytest_asyncio
except ImportError:            # the plugin still loads; its async fixtures then say why not
    pytest_asyncio = None

MARKERS = {
    "mosquitto": "mosquitto(**options): options of hil.rigs.Broker (tls, users, log_all)",
    "modbus_device": "modbus_device(unit=1, size=200, more_units=()): the Modbus TCP device",
    "modbus_rtu_device": "modbus_rtu_device(unit=1, size=200, more_units=(), baudrate=115200)"
                         ": the Modbus RTU device",
}
DEVICE_SIZE = 200              # coils, inputs and registers each, unless a marker says


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)


def _options(request: pytest.FixtureRequest, name: str, **defaults) -> dict:
    marker = request.node.get_closest_marker(name)
    return {**defaults, **(marker.kwargs if marker else {})}


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """A rig that cannot start (or stop) fails the test with its one line, not a
    traceback."""
    from hil.rigs import RigError

    try:
        yield
    except RigError as exc:
        pytest.fail(str(exc), pytrace=False)


@contextlib.asynccontextmanager
async def _started(resource):
    """`resource` running for as long as the block, pymodbus quiet meanwhile (it logs every
    fault a rig injects on purpose as an error)."""
    from hil.rigs.modbus import quiet_pymodbus

    with quiet_pymodbus(), _one_line():
        async with resource:
            yield resource


def _async_fixture(fn):
    if pytest_asyncio is not None:
        return pytest_asyncio.fixture(fn)

    def missing():
        pytest.fail(f"edge_hil: fixture {fn.__name__!r} needs pytest-asyncio "
                    "(pip install pytest-asyncio)", pytrace=False)

    missing.__doc__ = fn.__doc__
    return pytest.fixture(name=fn.__name__)(missing)


@pytest.fixture
def mosquitto(request: pytest.FixtureRequest):
    """A real mosquitto broker on a free loopback port (hil.rigs.Broker): `port`, `url`,
    `stop()`, `start()` (same port), `kill()`, `freeze()`, `thaw()`."""
    from hil.rigs import Broker

    with _one_line(), Broker(**_options(request, "mosquitto")) as broker:
        yield broker


@_async_fixture
async def modbus_device(request: pytest.FixtureRequest):
    """A Modbus TCP device (hil.rigs.ModbusTcpDevice) on a free loopback port: `port`,
    `set_value(table, address, value, dtype, ...)`, `set_registers`, `get_registers`."""
    from hil.rigs import ModbusTcpDevice

    options = _options(request, "modbus_device", size=DEVICE_SIZE)
    async with _started(ModbusTcpDevice(**options)) as device:
        yield device


@_async_fixture
async def modbus_faults(modbus_device):
    """A fault link (hil.rigs.TcpFaultLink) in front of `modbus_device`: clients poll
    `port`; `faults.silent`, `faults.delay_s`, `faults.corrupt`, `faults.clear()`,
    `drop_connections()`, `cut()`, `restore()`."""
    from hil.rigs import TcpFaultLink

    async with _started(TcpFaultLink(modbus_device.port)) as link:
        yield link


@_async_fixture
async def modbus_rtu_device(request: pytest.FixtureRequest):
    """A Modbus RTU device (hil.rigs.ModbusRtuDevice) on a pty line: clients open `path`;
    `faults` bend its answers; registers as for `modbus_device`."""
    from hil.rigs import ModbusRtuDevice

    options = _options(request, "modbus_rtu_device", size=DEVICE_SIZE)
    async with _started(ModbusRtuDevice(**options)) as device:
        yield device


@_async_fixture
async def serial_device():
    """A factory: `dev = await serial_device(link, values, stream_period_s=None,
    payload=None)` starts a hil.rigs.SerialDevice on a pty (`dev.path`), stopped after
    the test."""
    from hil.rigs import SerialDevice

    async with contextlib.AsyncExitStack() as stack:
        async def start(link, values, **options) -> SerialDevice:
            return await stack.enter_async_context(_started(SerialDevice(link, values,
                                                                         **options)))

        yield start


@_async_fixture
async def edge_rig(mosquitto, tmp_path):
    """A factory: `rig = await edge_rig("sim_arm", via_link=False, **EdgeProcess options)`
    runs `edge run` of the board against `mosquitto` (hil.rigs.EdgeRig): `rig.edge`,
    `rig.broker`, `rig.broker_faults`, `rig.link`; stopped after the test."""
    from hil.rigs import EdgeRig

    async with contextlib.AsyncExitStack() as stack:
        count = 0

        async def start(board="sim_arm", **options) -> EdgeRig:
            nonlocal count
            count += 1
            rig = EdgeRig(board, tmp_path / f"rig-{count}", broker=mosquitto, **options)
            return await stack.enter_async_context(_started(rig))

        yield start


@pytest.fixture
def hil_scenario(request: pytest.FixtureRequest):
    """A function: `verdict = hil_scenario(path_or_name, seed=None)` runs a scenario file
    (a path, relative to the test's directory or the current one, or a shipped scenario's
    name) in virtual time and returns its hil.scenario_verdict.ScenarioVerdict:
    `passed`, `failures` (each with `tick`, `values`, `message()`), `trace`, `runs`.
    A bad scenario file fails the test with its one line (file, line, field)."""
    from pathlib import Path

    from edge.errors import EdgeError
    from hil.scenario_verdict import run_scenario

    def run(path_or_name, seed: int | None = None):
        beside = Path(request.path).parent / str(path_or_name)
        target = beside if beside.is_file() else path_or_name
        try:
            return run_scenario(target, seed)
        except EdgeError as exc:
            line = exc.one_line()
        pytest.fail(line, pytrace=False)     # outside the except: no chained report

    return run
