"""What every source of readings (BLE wearable, simulator, file replay) shares.

A :class:`Source` produces :class:`Reading` values (a contract ``Sample`` without its sequence
number, which only the outbox assigns) and hands them to a :class:`SampleSink`, normally the
:class:`collector.publisher.MqttPublisher`, whose ``submit`` stores them durably before returning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement of a wearable at one instant, before it gets its per-device ``seq``.

    Fields mirror :class:`flarewatch.payloads.Sample` (same names and units); ``None`` means not
    measured. Values are checked against the contract when the outbox stores them.
    """

    time_ms: int
    heart_rate_bpm: float | None = None
    rr_intervals_s: tuple[float, ...] | None = None
    skin_temperature_c: float | None = None
    steps: int | None = None
    acceleration_g: float | None = None
    acceleration_sd_g: float | None = None
    energy_expended_kj: int | None = None
    contact_detected: bool | None = None
    battery_percent: int | None = None

    def fields(self) -> dict[str, Any]:
        """The measured values as a dict (``None`` left out), ready for ``Sample(seq=..., **d)``."""
        return {
            name: value for name in self.__slots__ if (value := getattr(self, name)) is not None
        }


class SampleSink(Protocol):
    """Where sources deliver readings; ``submit`` returns once they are stored durably."""

    def submit(self, patient_id: str, device_id: str, readings: Sequence[Reading]) -> int:
        """Store readings of one device durably for publishing; returns how many were accepted."""
        ...


class Source(ABC):
    """A producer of readings for one or more devices, run until cancelled or exhausted."""

    @abstractmethod
    async def run(self, sink: SampleSink) -> None:
        """Deliver readings to ``sink`` until the source ends or the task is cancelled."""
