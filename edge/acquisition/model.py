"""The parsed `acquisition:` section: devices, channels, thresholds, usage, crypto."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.sources import Backoff
from edge.acquisition.sources.modbus import ModbusLink
from edge.acquisition.sources.serial import SerialLink
from edge.acquisition.thresholds import ThresholdRule

CRYPTO_ALGORITHMS = ("aes-gcm", "sm4-gcm")


@dataclass
class DeviceConfig:
    name: str
    kind: str                                      # a key of devices.DEVICE_KINDS
    period_ms: float = 100.0                       # poll period (0: back to back)
    link: ModbusLink | SerialLink | None = None    # None for simulated devices
    backoff: Backoff = field(default_factory=Backoff)
    dropout_s: tuple[float, float] | None = None   # simulated: fail over this window
    line: int | None = None


@dataclass
class UsageConfig:
    file: str
    save_every_s: float = 60.0
    running_channel: str | None = None             # None: running whenever the runtime runs
    running_above: float = 0.0


@dataclass
class CryptoConfig:
    algorithm: str
    key_file: str
    key_id: str | None = None


@dataclass
class TaskConfig:
    period_ms: float | None = None                 # None: the gcd of the channel periods
    deadline_ms: float | None = None
    priority: int = 0


@dataclass
class AcquisitionConfig:
    devices: list[DeviceConfig] = field(default_factory=list)
    channels: list[ChannelConfig] = field(default_factory=list)
    thresholds: list[ThresholdRule] = field(default_factory=list)
    usage: UsageConfig | None = None
    crypto: CryptoConfig | None = None
    task: TaskConfig = field(default_factory=TaskConfig)
