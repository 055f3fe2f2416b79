"""Acquisition fixtures: a real pymodbus server on loopback, fault proxies, pty links."""

import logging
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:          # hil/ is a rig beside the package, not installed
    sys.path.insert(0, str(ROOT))

from hil.faults import Faults, PtyLink, TcpFaultProxy  # noqa: E402
from hil.slave_sim import SlaveSimulator  # noqa: E402

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


@pytest.fixture
async def slave():
    sim = SlaveSimulator(unit=1, size=200)
    async with sim.tcp():
        yield sim


@pytest.fixture
async def proxy(slave):
    async with TcpFaultProxy("127.0.0.1", slave.port, Faults()).running() as p:
        yield p


@pytest.fixture
async def pty_link():
    async with PtyLink(Faults()).running() as link:
        yield link
