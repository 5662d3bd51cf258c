"""What a device profile is: how to recognise a wearable and turn its characteristics into samples.

A profile is declarative data plus two small functions per characteristic (the parser, which
decodes bytes into a ``GattValue``, and the mapper, which turns that value into contract sample
fields), so a vendor plug-in is one module holding one ``DeviceProfile`` (docs/device-profiles.md).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from collector.gatt import GattValue, normalize_uuid

SampleFieldValue = float | int | bool | tuple[float, ...]
"""A value of one ``flarewatch.payloads.Sample`` field."""

V = TypeVar("V", bound=GattValue)
V_contra = TypeVar("V_contra", bound=GattValue, contravariant=True)


class FieldAccumulator(Protocol[V_contra]):
    """Per-device state of a mapping that needs earlier notifications (steps from a cadence).

    One is created per device and connection (with its ``MeasurementPlan``), so a reconnect
    starts afresh; ``received_s`` is the receive time on the gateway's monotonic clock.
    """

    def to_fields(self, value: V_contra, received_s: float) -> Mapping[str, SampleFieldValue]:
        """Sample fields of ``value``, received at ``received_s``, given what came before."""
        ...


def no_sample_fields(value: GattValue) -> Mapping[str, SampleFieldValue]:
    """Mapper of metadata characteristics (device information, sensor location)."""
    return {}


class Subscription(enum.StrEnum):
    """How the device pushes a characteristic: GATT notifications or indications."""

    NOTIFY = "notify"
    INDICATE = "indicate"


@dataclasses.dataclass(frozen=True, slots=True)
class Measurement(Generic[V]):
    """One characteristic a profile uses: how to get it, decode it and map it to sample fields.

    ``subscribe`` is how to receive updates (``None``: read only); ``read_on_connect`` asks for
    one read after every (re)connection (battery, metadata); ``required`` says the profile is
    useless without it, so its absence on a connected device is a configuration problem.
    ``accumulator`` makes a fresh per-device ``FieldAccumulator``; when set it maps the values
    (given their receive time) and ``to_fields`` only serves callers that know no time.
    """

    uuid: str
    name: str
    parse: Callable[[bytes | bytearray | memoryview], V]
    to_fields: Callable[[V], Mapping[str, SampleFieldValue]] = no_sample_fields
    subscribe: Subscription | None = None
    read_on_connect: bool = False
    required: bool = False
    accumulator: Callable[[], FieldAccumulator[V]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "uuid", normalize_uuid(self.uuid))


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceDescription:
    """What is known of a device before (advertisement) or after (GATT discovery) connecting.

    Build it from bleak's ``BLEDevice.name``, ``AdvertisementData.service_uuids`` and
    ``AdvertisementData.manufacturer_data``; UUIDs may be in any form and are normalised.
    """

    name: str | None = None
    service_uuids: frozenset[str] = frozenset()
    manufacturer_data: Mapping[int, bytes] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "service_uuids", frozenset(normalize_uuid(u) for u in self.service_uuids)
        )

    def with_services(self, service_uuids: Iterable[str]) -> DeviceDescription:
        """A copy of this description plus the services found by GATT discovery after connecting."""
        return dataclasses.replace(self, service_uuids=self.service_uuids | set(service_uuids))


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceMatch:
    """One recognition rule; every criterion given must hold (a profile matches on any rule).

    ``service_uuids``: at least one of them is offered; ``name_pattern``: a regular expression
    searched in the advertised name; ``manufacturer_id`` (Bluetooth SIG company identifier) with
    an optional ``manufacturer_data_prefix`` its data must start with.
    """

    service_uuids: frozenset[str] = frozenset()
    name_pattern: str | None = None
    manufacturer_id: int | None = None
    manufacturer_data_prefix: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "service_uuids", frozenset(normalize_uuid(u) for u in self.service_uuids)
        )
        if self.name_pattern is not None:
            re.compile(self.name_pattern)  # fail when the profile is declared, not when matching
        if not (self.service_uuids or self.name_pattern or self.manufacturer_id is not None):
            raise ValueError("a DeviceMatch needs at least one criterion")

    def matches(self, device: DeviceDescription) -> bool:
        """Whether ``device`` satisfies every criterion of this rule."""
        if self.service_uuids and not self.service_uuids & device.service_uuids:
            return False
        if self.name_pattern is not None and not (
            device.name and re.search(self.name_pattern, device.name)
        ):
            return False
        if self.manufacturer_id is not None:
            data = device.manufacturer_data.get(self.manufacturer_id)
            if data is None or not data.startswith(self.manufacturer_data_prefix):
                return False
        return True


STANDARD_PRIORITY = 0
"""Priority of the Bluetooth SIG profiles; vendor plug-ins use more to override a characteristic."""

VENDOR_PRIORITY = 100


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceProfile:
    """A kind of device: how to recognise it and which characteristics give which sample fields.

    ``priority`` orders profiles that match the same device: when two declare the same
    characteristic, the higher priority decides how it is parsed.
    """

    name: str
    description: str
    matches: tuple[DeviceMatch, ...]
    measurements: tuple[Measurement[Any], ...]
    priority: int = STANDARD_PRIORITY

    def __post_init__(self) -> None:
        uuids = [m.uuid for m in self.measurements]
        if len(set(uuids)) != len(uuids):
            raise ValueError(f"profile {self.name} declares a characteristic twice")

    def applies_to(self, device: DeviceDescription) -> bool:
        """Whether any recognition rule matches ``device``."""
        return any(rule.matches(device) for rule in self.matches)
