"""The edge_hil pytest plugin, as a bench's own project meets it: a fresh pytest process
in an empty directory (no conftest, no configuration) finds the fixtures through the
pytest11 entry point, and a rig that cannot start fails its test with one line."""

from __future__ import annotations

import socket

import pytest

pytest_plugins = ["pytester"]
TIMEOUT_S = 180             # a sub-run that hangs fails instead

DEVICES = '''
import socket

import paho.mqtt.client as paho
import pytest
from pymodbus.client import AsyncModbusTcpClient


@pytest.mark.asyncio
@pytest.mark.modbus_device(unit=2, size=30)
async def test_a_register_and_a_broker(mosquitto, modbus_device):
    await modbus_device.set_value("holding", 5, 999)
    client = AsyncModbusTcpClient("127.0.0.1", port=modbus_device.port, timeout=2, retries=0)
    await client.connect()
    try:
        rsp = await client.read_holding_registers(5, count=1, device_id=2)
    finally:
        client.close()
    assert rsp.registers == [999]
    with socket.create_connection(("127.0.0.1", mosquitto.port), timeout=2):
        pass


def test_a_sync_test_round_trips_through_the_broker(mosquitto):
    got = []
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="sub")
    sub.on_message = lambda c, u, m: got.append(m.payload)
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("bench/t", qos=1)
    sub.loop_start()
    try:
        pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="pub")
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        import time
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            pub.publish("bench/t", b"hello", qos=1)
            time.sleep(0.2)
        pub.loop_stop()
    finally:
        sub.loop_stop()
    assert got and got[0] == b"hello"


@pytest.mark.asyncio
@pytest.mark.modbus_rtu_device(unit=7, size=10)
async def test_an_rtu_device_and_a_serial_device(modbus_rtu_device, serial_device):
    import os
    from types import SimpleNamespace

    assert os.path.exists(modbus_rtu_device.path) and modbus_rtu_device.unit == 7
    link = SimpleNamespace(protocol="ascii", format="csv", fields=["a", "b"], separator=",",
                           terminator=b"\\n", nmea=False, request=None)
    dev = await serial_device(link, {"a": 1, "b": 2}, stream_period_s=0.01)
    fd = os.open(dev.path, os.O_RDONLY | os.O_NOCTTY)
    try:
        import asyncio
        data = b""
        for _ in range(100):
            data += await asyncio.to_thread(os.read, fd, 64)
            if data.count(b"\\n") >= 2:
                break
    finally:
        os.close(fd)
    assert b"1,2\\n" in data
'''


def test_the_fixtures_come_from_the_entry_point_and_serve(pytester: pytest.Pytester):
    pytester.makepyfile(test_devices=DEVICES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=TIMEOUT_S)
    result.assert_outcomes(passed=3)


def test_without_the_plugin_the_fixtures_are_not_there(pytester: pytest.Pytester):
    pytester.makepyfile(test_devices=DEVICES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:edge_hil",
                                           timeout=TIMEOUT_S)
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*fixture 'mosquitto' not found*"])


def test_a_rig_that_cannot_start_fails_its_test_with_one_line(pytester: pytest.Pytester):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pytester.makepyfile(test_taken=f'''
import pytest


@pytest.mark.mosquitto(port={port})
def test_needs_a_broker(mosquitto):
    pass
''')
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=TIMEOUT_S)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert f"broker: port {port} on 127.0.0.1 is taken" in out
    assert "Traceback" not in out and "def mosquitto" not in out    # no code, one line


@pytest.mark.slow
def test_edge_rig_runs_the_sim_arm_board_against_the_broker(pytester: pytest.Pytester):
    pytester.makepyfile(test_rig='''
import pytest


@pytest.mark.asyncio
async def test_rig(edge_rig, mosquitto):
    rig = await edge_rig("sim_arm")
    stats = rig.edge.stats()
    assert rig.broker is mosquitto and stats["mqtt"]["connected"] and stats["ticks"] > 0
    rc = await rig.edge.stop()      # 3: a loaded machine made a LET task miss (arm faulted)
    assert rc == 0 or rc == 3 and "run faulted" in rig.edge.stderr_text()
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=TIMEOUT_S)
    result.assert_outcomes(passed=1)


SCENARIO_TESTS = '''
import pytest


def test_a_shipped_scenario_by_name(hil_scenario):
    verdict = hil_scenario("collision_link3")
    assert verdict.passed and not verdict.failures and not verdict.errors
    assert [r.params for r in verdict.runs] == [{"torque_nm": 30.0}, {"torque_nm": 60.0}]
    for trace in verdict.traces:                 # hit at 600: latched within 10 ticks
        latched = trace.columns["latched"]
        assert not latched[:600].any() and latched[610]


def test_a_wrong_scenario_beside_the_test(hil_scenario):
    verdict = hil_scenario("collision_wrong.yaml")
    assert not verdict.passed
    assert len(verdict.failures) == 2            # one per run of the sweep
    for failure in verdict.failures:             # the window of 'after' closes at v + D
        assert failure.tick == 610
        assert failure.values == {"latched": True, "collision": True, "category": 1}
        assert "failed at tick 610" in failure.message()


def test_the_seed_is_the_draws_seed(hil_scenario):
    verdict = hil_scenario("estop_during_move", seed=5)
    assert {r.seed for r in verdict.runs} == {5}
    with pytest.raises(ValueError):
        verdict.trace                            # two runs: take one of .traces


def test_a_bad_scenario_file(hil_scenario):
    hil_scenario("broken.yaml")
'''


def test_hil_scenario_runs_a_scenario_file_and_returns_its_verdict(pytester: pytest.Pytester):
    from hil.cli import SHIPPED

    text = (SHIPPED / "collision_link3.yaml").read_text()
    old = "expect: latched AND collision AND category = 1"
    assert old in text
    (pytester.path / "collision_wrong.yaml").write_text(
        text.replace(old, "expect: latched AND collision AND category = 2"))
    (pytester.path / "broken.yaml").write_text("name: broken\nboard: sim_arm\nduration: x\n"
                                               "assert: [{always: true}]\n")
    pytester.makepyfile(test_scenarios=SCENARIO_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=TIMEOUT_S)
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    assert "broken.yaml:3" in out and "expected a duration" in out
    assert "Traceback" not in out and "def hil_scenario" not in out   # one line, no code
    assert "another exception occurred" not in out
