"""The parsed `acquisition:` section: devices, channels, thresholds, usage, crypto."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.thresholds import ThresholdRule

CRYPTO_ALGORITHMS = ("aes-gcm", "sm4-gcm")


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt n (0-based): initial * factor**n, capped."""

    initial_s: float = 0.05
    max_s: float = 5.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * self.factor ** min(attempt, 64))


@dataclass
class DeviceConfig:
    name: str
    kind: str                                      # a key of devices.DEVICE_KINDS
    period_ms: float = 100.0                       # poll period (0: back to back)
    link: Any = None          # the kind's link (ModbusLink, SerialLink...); None: simulated
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
