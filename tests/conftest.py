"""Shared fixtures: real components (native extension, mosquitto, pymodbus, ptys)."""

import pytest

from hil.broker import Mosquitto


@pytest.fixture
def mosquitto():
    """A real mosquitto broker on a free loopback port, stoppable and restartable."""
    with Mosquitto() as broker:
        yield broker
