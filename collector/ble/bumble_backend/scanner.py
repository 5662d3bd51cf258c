"""bleak scanner backend on a shared Bumble central (``BleakScanner(backend=...)``)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, ClassVar, Literal

from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.uuids import normalize_uuid_str
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement
from bumble.hci import Address

from collector.ble.bumble_backend.central import get_central

_UUID_LISTS = (
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA = (
    AdvertisingData.SERVICE_DATA_16_BIT_UUID,
    AdvertisingData.SERVICE_DATA_32_BIT_UUID,
    AdvertisingData.SERVICE_DATA_128_BIT_UUID,
)


def bleak_uuid(uuid: UUID) -> str:
    """Bumble UUID -> bleak's normalized 128-bit lower-case string."""
    return normalize_uuid_str(uuid.to_hex_str("-"))


def _decoded(data: AdvertisingData, kind: int) -> list[Any]:
    """The AD structures of ``kind``, decoded; malformed ones are skipped.

    Any device in radio range can send them (a 1-byte manufacturer field, a short service-data
    UUID): Bumble's decoder raises on those, inside its HCI packet handler, for every report.
    """
    decoded = []
    for raw in data.get_all(kind, raw=True):
        try:
            decoded.append(AdvertisingData.ad_data_to_object(kind, raw))
        except Exception:  # noqa: BLE001 - whatever the decoder raises, the field is unusable
            continue
    return decoded


def _local_name(data: AdvertisingData) -> str | None:
    """The complete, else the shortened, local name, with invalid UTF-8 replaced.

    A name shortened in the middle of a character is common; Bumble's decoder raises on it.
    """
    for kind in (AdvertisingData.COMPLETE_LOCAL_NAME, AdvertisingData.SHORTENED_LOCAL_NAME):
        for raw in data.get_all(kind, raw=True):
            if raw:
                return raw.decode("utf-8", errors="replace")
    return None


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """Translate one Bumble advertisement report into bleak's ``AdvertisementData``."""
    data = advertisement.data
    name = _local_name(data)
    uuids: list[str] = []
    for kind in _UUID_LISTS:
        for uuid_list in _decoded(data, kind):
            if isinstance(uuid_list, list):
                uuids.extend(bleak_uuid(u) for u in uuid_list if isinstance(u, UUID))
    service_data: dict[str, bytes] = {}
    for kind in _SERVICE_DATA:
        for entry in _decoded(data, kind):
            if isinstance(entry, tuple) and isinstance(entry[0], UUID):
                service_data[bleak_uuid(entry[0])] = bytes(entry[1])
    manufacturer = {
        entry[0]: bytes(entry[1])
        for entry in _decoded(data, AdvertisingData.MANUFACTURER_SPECIFIC_DATA)
        if isinstance(entry, tuple) and isinstance(entry[0], int)
    }
    tx_power = next(iter(_decoded(data, AdvertisingData.TX_POWER_LEVEL)), None)
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power if isinstance(tx_power, int) else None,
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )


class BleakScannerBumble(BaseBleakScanner):
    """Scanner on the Bumble central of :attr:`transport_spec` (set by :func:`backend_classes`)."""

    transport_spec: ClassVar[str] = ""
    bonds_file: ClassVar[Path | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._token = object()

    async def start(self) -> None:
        """Start receiving advertisements from the shared central."""
        self.seen_devices = {}
        await get_central(self.transport_spec, bonds_file=self.bonds_file).add_listener(
            self._token, self._on_advertisement, self._forget
        )

    async def stop(self) -> None:
        """Stop receiving advertisements."""
        await get_central(self.transport_spec).remove_listener(self._token)

    def _forget(self, addresses: Collection[str]) -> None:
        """Drop devices the central forgot (silent for minutes): ``seen_devices`` stays bounded."""
        for address in addresses:
            self.seen_devices.pop(address, None)

    def _on_advertisement(self, advertisement: Advertisement, identity: Address | None) -> None:
        adv = advertisement_data(advertisement)
        # a bonded band with privacy is known by its identity; connects go to where it is now
        address = (identity or advertisement.address).to_string(False)
        previous = self.seen_devices.get(address)
        if previous is not None and adv.local_name is None and previous[1].local_name:
            # scan responses and advertisements carry different fields: keep the name we saw
            adv = adv._replace(local_name=previous[1].local_name)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        device = self.create_or_update_device(
            address, address, adv.local_name, advertisement.address, adv
        )
        # bleak keeps a known device's first details: a band with privacy is reached where it
        # advertises from now, not from the address it had when first heard
        device.details = advertisement.address
        self.call_detection_callbacks(device, adv)
