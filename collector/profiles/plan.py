"""The measurement plan of one connected device: what to subscribe to and read, and how to map.

The BLE connection manager builds one plan per device and connection with
``ProfileRegistry.plan_for`` and then only calls
``plan.to_sample_fields(uuid, data, device_id=..., received_s=...)`` for every notification or
read. A plan owns the per-device state of measurements that need it (steps from a cadence), so a
new connection, which gets a new plan, never carries state over from the last one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid as uuid_module
from collections.abc import Iterator, Mapping
from typing import Any

from collector.errors import GattParseError
from collector.gatt import GattValue, normalize_uuid
from collector.profiles.base import (
    DeviceProfile,
    FieldAccumulator,
    Measurement,
    SampleFieldValue,
)
from collector.profiles.sample_fields import conform_to_contract


@dataclasses.dataclass(frozen=True, slots=True)
class DecodedCharacteristic:
    """One decoded characteristic value and the sample fields it yields.

    ``fields`` can be passed to ``flarewatch.payloads.Sample`` as they are; ``rejected`` names
    fields the device sent but the contract refuses (e.g. 0 bpm without skin contact), for a
    counter. Metadata characteristics (device information) yield no fields: use ``value``.
    """

    uuid: str
    measurement: str
    value: GattValue
    fields: Mapping[str, SampleFieldValue]
    rejected: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class MeasurementPlan:
    """The characteristics of a device from all matching profiles, one owner per characteristic.

    ``accumulators`` holds this device's state for the measurements that declare one.
    """

    profiles: tuple[DeviceProfile, ...]
    measurements: Mapping[str, Measurement[Any]]
    accumulators: Mapping[str, FieldAccumulator[Any]] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, profiles: tuple[DeviceProfile, ...]) -> MeasurementPlan:
        """Merge ``profiles`` (highest priority first): the first to declare a UUID owns it."""
        ordered = tuple(sorted(profiles, key=lambda p: (-p.priority, p.name)))
        measurements: dict[str, Measurement[Any]] = {}
        for profile in ordered:
            for measurement in profile.measurements:
                measurements.setdefault(measurement.uuid, measurement)
        accumulators = {
            uuid: m.accumulator() for uuid, m in measurements.items() if m.accumulator is not None
        }
        return cls(ordered, measurements, accumulators)

    @property
    def subscriptions(self) -> tuple[Measurement[Any], ...]:
        """Characteristics to subscribe to (notify or indicate), once per connection."""
        return tuple(m for m in self.measurements.values() if m.subscribe is not None)

    @property
    def reads_on_connect(self) -> tuple[Measurement[Any], ...]:
        """Characteristics to read once after every (re)connection."""
        return tuple(m for m in self.measurements.values() if m.read_on_connect)

    def decode(
        self,
        uuid: str | int | uuid_module.UUID,
        data: bytes | bytearray | memoryview,
        *,
        device_id: str | None = None,
    ) -> tuple[Measurement[Any], GattValue]:
        """Parse one value with the plan's parser; ``GattParseError`` carries uuid and device.

        A parser that raises anything else (a bug in a plug-in) is reported as a
        ``GattParseError`` with reason ``profile_error``, naming only the exception type.
        """
        try:
            canonical = normalize_uuid(uuid)
            measurement = self.measurements.get(canonical)
            if measurement is None:
                raise GattParseError(
                    canonical, "no profile of this device uses it", reason="unsupported_uuid"
                )
            with _profile_errors(measurement, "parser"):
                return measurement, measurement.parse(data)
        except GattParseError as exc:
            raise exc.for_device(device_id) from None

    def to_sample_fields(
        self,
        uuid: str | int | uuid_module.UUID,
        data: bytes | bytearray | memoryview,
        *,
        device_id: str | None = None,
        received_s: float | None = None,
    ) -> DecodedCharacteristic:
        """Decode a notification or read and map it to contract sample fields.

        ``received_s`` (monotonic seconds) feeds the device's accumulators, e.g. steps from a
        cadence; without it such a measurement yields only its stateless fields (none for RSC).
        """
        measurement, value = self.decode(uuid, data, device_id=device_id)
        accumulator = self.accumulators.get(measurement.uuid)
        try:
            with _profile_errors(measurement, "mapper"):
                if accumulator is not None and received_s is not None:
                    mapped = accumulator.to_fields(value, received_s)
                else:
                    mapped = measurement.to_fields(value)
                fields, rejected = conform_to_contract(mapped)
        except GattParseError as exc:
            raise exc.for_device(device_id) from None
        return DecodedCharacteristic(measurement.uuid, measurement.name, value, fields, rejected)


@contextlib.contextmanager
def _profile_errors(measurement: Measurement[Any], part: str) -> Iterator[None]:
    """Turn anything but ``GattParseError`` raised by a profile's code into one (``profile_error``).

    Profile code may come from a vendor plug-in; its bug must be a counted rejection of one value,
    not an exception inside the BLE stack's callback (Bumble logs it from its packet handler and
    never confirms an indication). Only the type is kept: the message may quote the payload.
    """
    try:
        yield
    except GattParseError:
        raise
    except Exception as exc:  # re-raised as ours: see the docstring
        raise GattParseError(
            measurement.uuid,
            f"the {measurement.name} {part} raised {type(exc).__name__} (a bug in the profile)",
            reason="profile_error",
        ) from exc
