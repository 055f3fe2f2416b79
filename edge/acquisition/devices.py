"""The device kinds a board may name: one table, each entry defined beside its source.

The section parser (device and channel fields, links, shared serial lines) and the sampler
(which source to build, which devices are sampled inline) read only this table, so a new
kind of device is one `DeviceKind` in its source module and one entry here.
"""

from __future__ import annotations

from edge.acquisition.sources import DeviceKind
from edge.acquisition.sources.modbus import MODBUS_RTU, MODBUS_TCP
from edge.acquisition.sources.serial import SERIAL
from edge.acquisition.sources.simulated import SIMULATED

DEVICE_KINDS: dict[str, DeviceKind] = {
    kind.name: kind for kind in (SIMULATED, MODBUS_TCP, MODBUS_RTU, SERIAL)}
