"""HIL rigs in labgrid's shape: resources (what exists on the rig, each opened in one
`async with` block), fault injectors (kept apart, acting on a resource's line) and a
strategy (bringing a whole rig into its working state). docs/hil-rigs.md shows them."""

from hil.rigs.base import Resource, RigError
from hil.rigs.broker import Broker
from hil.rigs.edge_process import EdgeProcess
from hil.rigs.faults import (
    BROKER_FAULTS,
    DEVICE_FAULTS,
    BrokerFaults,
    DeviceFaults,
    TcpFaultLink,
)
from hil.rigs.modbus import ModbusRtuDevice, ModbusTcpDevice
from hil.rigs.serial_line import SerialDevice
from hil.rigs.strategy import EdgeRig

__all__ = ["BROKER_FAULTS", "DEVICE_FAULTS", "Broker", "BrokerFaults", "DeviceFaults",
           "EdgeProcess", "EdgeRig", "ModbusRtuDevice", "ModbusTcpDevice", "Resource",
           "RigError", "SerialDevice", "TcpFaultLink"]
