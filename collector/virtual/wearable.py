"""A virtual wearable: a Bumble peripheral streaming Heart Rate, Health Thermometer and Battery.

The values come from a vitals feed (the physiological simulator). Given ``rsc_interval_s`` it also
serves Running Speed and Cadence (0x1814), as a sports watch or foot pod does, with the cadence
the feed says the wearer walks at.

Like many real bands, it may serve its readings only over an encrypted link
(:class:`BandSecurity`): then it pairs (Just Works, or with a passkey it "shows" in
:attr:`VirtualWearable.shown_passkey`), keeps the bond, and can be reset to forget it.

Heart Rate Measurement payloads are encoded by Bumble's own Heart Rate profile, an encoder
independent of our parsers. The energy-expended field counts notifications (it is cumulative on a
real band too), which lets tests name every sample end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bumble import att, gatt, hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.profiles.heart_rate_service import HeartRateService
from bumble.transport.common import AsyncPipeSink

from collector.gatt.health_thermometer import encode_temperature_measurement
from collector.virtual.const import (
    ADVERTISING_INTERVAL_MS,
    HEART_RATE_INTERVAL_S,
    STEP_LENGTH_M,
    TEMPERATURE_INTERVAL_S,
)

log = logging.getLogger(__name__)

HEART_RATE_MEASUREMENT = gatt.GATT_HEART_RATE_MEASUREMENT_CHARACTERISTIC
TEMPERATURE_MEASUREMENT = UUID.from_16_bits(0x2A1C, "Temperature Measurement")
INTERMEDIATE_TEMPERATURE = UUID.from_16_bits(0x2A1E, "Intermediate Temperature")
BATTERY_LEVEL = gatt.GATT_BATTERY_LEVEL_CHARACTERISTIC
RSC_MEASUREMENT = UUID.from_16_bits(0x2A53, "RSC Measurement")
RSC_FEATURE = UUID.from_16_bits(0x2A54, "RSC Feature")
RSC_FEATURE_RUNNING_STATUS = 0x0004  # RSCS §3.2.1: walking/running status supported
RSC_FLAG_RUNNING = 0x04  # RSCS §3.1.1.1
RUNNING_CADENCE_PER_MIN = 140
"""Cadences from here up are reported as running (a brisk walk stays below ~130 steps/min)."""


class BandSecurity(enum.StrEnum):
    """What a band asks of the link before it lets its readings be read or subscribed to."""

    NONE = "none"
    """Anyone in range may read it (most heart-rate straps)."""
    ENCRYPTION = "encryption"
    """Only over an encrypted link: paired once (Just Works), then its bond."""
    PASSKEY = "passkey"
    """Only after pairing with the six digits it shows (protected against a man in the middle)."""


@dataclass(frozen=True, slots=True)
class Vitals:
    """What the wearable measures at one instant."""

    heart_rate_bpm: float
    skin_temperature_c: float
    rr_intervals_s: tuple[float, ...] = ()
    contact_detected: bool = True
    battery_percent: int = 90
    cadence_per_min: int = 0


class VitalsFeed(Protocol):
    """Source of vitals over time (the physiological simulator implements it)."""

    def vitals_at(self, elapsed_s: float) -> Vitals:
        """Vitals ``elapsed_s`` seconds after the wearable started."""
        ...


@dataclass(slots=True)
class SteadyVitals:
    """A calm resting patient: heart rate and skin temperature with a slow, small oscillation."""

    heart_rate_bpm: float = 68.0
    skin_temperature_c: float = 33.2
    battery_percent: int = 90
    cadence_per_min: int = 0

    def vitals_at(self, elapsed_s: float) -> Vitals:
        """Deterministic vitals: +-3 bpm and +-0.1 degC over a 60 s period."""
        wave = math.sin(2 * math.pi * elapsed_s / 60.0)
        rate = self.heart_rate_bpm + 3 * wave
        return Vitals(
            heart_rate_bpm=rate,
            skin_temperature_c=self.skin_temperature_c + 0.1 * wave,
            rr_intervals_s=(60.0 / rate,),
            battery_percent=self.battery_percent,
            cadence_per_min=self.cadence_per_min,
        )


class _BandDisplay(PairingDelegate):
    """The band's side of pairing: a six-digit display in passkey mode, else no input/output."""

    def __init__(self, band: VirtualWearable) -> None:
        display = band.security is BandSecurity.PASSKEY
        super().__init__(
            io_capability=(
                PairingDelegate.DISPLAY_OUTPUT_ONLY
                if display
                else PairingDelegate.NO_OUTPUT_NO_INPUT
            )
        )
        self._band = band

    async def accept(self) -> bool:
        """Whether the band is in pairing mode."""
        return self._band.accepts_pairing

    async def confirm(self, auto: bool = False) -> bool:
        """Just Works: refused by a band that insists on its passkey."""
        return self._band.security is not BandSecurity.PASSKEY

    async def display_number(self, number: int, digits: int) -> None:
        """Show the passkey (a test or a person reads it off :attr:`shown_passkey`)."""
        self._band.shown_passkey = number


def encode_temperature(celsius: float) -> bytes:
    """Temperature Measurement / Intermediate Temperature value in 0.01 degC (no extras)."""
    return encode_temperature_measurement(round(celsius * 100), -2)


def encode_rsc_measurement(cadence_per_min: int) -> bytes:
    """RSC Measurement value (RSCS §3.1): flags, speed in 1/256 m/s, cadence; no optional fields.

    Written with ``struct`` from the specification, independently of the collector's parser.
    """
    cadence = max(0, min(cadence_per_min, 0xFF))
    speed = min(round(cadence / 60 * STEP_LENGTH_M * 256), 0xFFFF)
    flags = RSC_FLAG_RUNNING if cadence >= RUNNING_CADENCE_PER_MIN else 0
    return struct.pack("<BHB", flags, speed, cadence)


class VirtualWearable:
    """One virtual band on a shared link; see :class:`collector.virtual.world.VirtualWorld`."""

    def __init__(
        self,
        name: str,
        address: str,
        link: LocalLink,
        feed: VitalsFeed | None = None,
        *,
        heart_rate_interval_s: float = HEART_RATE_INTERVAL_S,
        temperature_interval_s: float = TEMPERATURE_INTERVAL_S,
        rsc_interval_s: float | None = None,
        clock: Callable[[], float] | None = None,
        advertise_services: bool = True,
        security: BandSecurity = BandSecurity.NONE,
        privacy: bool = False,
    ) -> None:
        self.name = name
        self.advertise_services = advertise_services
        """False: the advertisement names the band only, as many bands' do; its services are
        found once connected."""
        self.address = address
        self.feed: VitalsFeed = feed or SteadyVitals()
        self.heart_rate_interval_s = heart_rate_interval_s
        self.temperature_interval_s = temperature_interval_s
        self.rsc_interval_s = rsc_interval_s
        self.controller = Controller(f"ctl-{name}", link=link)
        self.device = Device(
            name=name,
            address=hci.Address(address),
            host=Host(self.controller, AsyncPipeSink(self.controller)),
        )
        self.stalled = False
        self.privacy = privacy
        """Advertise from a resolvable private address (renewed by :meth:`rotate_address`), the
        identity address (``address``) given only to the gateway it pairs with."""
        self.device.irk = secrets.token_bytes(16)
        self.security = security
        self.accepts_pairing = True
        """False: the band refuses every pairing (not in pairing mode)."""
        self.pairings = 0
        """Pairings completed: a bonded gateway encrypts with the bond instead."""
        self.shown_passkey: int | None = None
        """The passkey on the band's display during a passkey pairing."""
        self.device.pairing_config_factory = lambda _c: PairingConfig(
            sc=True,
            mitm=security is BandSecurity.PASSKEY,
            bonding=True,
            delegate=_BandDisplay(self),
        )
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)
        self.energy_counter = 0
        self._clock = clock or asyncio.get_running_loop().time
        self._started_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._pending_garbage: bytes | None = None
        self._advertising_data = b""
        props = gatt.Characteristic.Properties
        no_access = gatt.Characteristic.Permissions(0)
        self._battery: gatt.Characteristic[bytes] = gatt.Characteristic(
            BATTERY_LEVEL,
            props.READ | props.NOTIFY,
            gatt.Characteristic.READABLE,
            gatt.CharacteristicValue(read=lambda _conn: bytes([self._vitals().battery_percent])),
        )
        self._heart_rate: gatt.Characteristic[bytes] = gatt.Characteristic(
            HEART_RATE_MEASUREMENT, props.NOTIFY, no_access, b""
        )
        self._temperature: gatt.Characteristic[bytes] = gatt.Characteristic(
            TEMPERATURE_MEASUREMENT, props.INDICATE, no_access, b""
        )
        self._intermediate: gatt.Characteristic[bytes] = gatt.Characteristic(
            INTERMEDIATE_TEMPERATURE, props.NOTIFY, no_access, b""
        )
        location: gatt.Characteristic[bytes] = gatt.Characteristic(
            gatt.GATT_BODY_SENSOR_LOCATION_CHARACTERISTIC,
            gatt.Characteristic.Properties.READ,
            gatt.Characteristic.READABLE,
            bytes([HeartRateService.BodySensorLocation.WRIST]),
        )
        self._rsc: gatt.Characteristic[bytes] = gatt.Characteristic(
            RSC_MEASUREMENT, props.NOTIFY, no_access, b""
        )
        services = [
            gatt.Service(gatt.GATT_HEART_RATE_SERVICE, [self._heart_rate, location]),
            gatt.Service(
                gatt.GATT_HEALTH_THERMOMETER_SERVICE, [self._temperature, self._intermediate]
            ),
            gatt.Service(gatt.GATT_BATTERY_SERVICE, [self._battery]),
        ]
        self._advertised_services = [0x180D, 0x1809, 0x180F]
        if rsc_interval_s is not None:
            feature: gatt.Characteristic[bytes] = gatt.Characteristic(
                RSC_FEATURE,
                props.READ,
                gatt.Characteristic.READABLE,
                struct.pack("<H", RSC_FEATURE_RUNNING_STATUS),
            )
            services.append(
                gatt.Service(gatt.GATT_RUNNING_SPEED_AND_CADENCE_SERVICE, [self._rsc, feature])
            )
            self._advertised_services.append(0x1814)
        self.device.add_services(services)
        self._protect(services)

    def _protect(self, services: list[gatt.Service]) -> None:
        """Make every value and subscription of the band's services ask for its security."""
        if self.security is BandSecurity.NONE:
            return
        # a passkey band refuses Just Works pairing (_BandDisplay.confirm); Bumble counts any
        # encrypted link as authenticated, so encryption is what its attributes can ask for
        read, write = (
            att.Attribute.READ_REQUIRES_ENCRYPTION,
            att.Attribute.WRITE_REQUIRES_ENCRYPTION,
        )
        for service in services:
            for attribute in self.device.gatt_server.attributes:
                inside = service.handle < attribute.handle <= service.end_group_handle
                if inside and not isinstance(attribute, gatt.CharacteristicDeclaration):
                    if attribute.permissions & att.Attribute.READABLE:
                        attribute.permissions |= read
                    if attribute.permissions & att.Attribute.WRITEABLE:
                        attribute.permissions |= write

    def _on_connection(self, connection: Connection) -> None:
        def paired(_keys: object) -> None:
            self.pairings += 1
            self.shown_passkey = None

        def failed(_reason: int) -> None:
            self.shown_passkey = None  # the display clears: the next pairing shows a new one

        connection.on(connection.EVENT_PAIRING, paired)
        connection.on(connection.EVENT_PAIRING_FAILURE, failed)

    async def rotate_address(self) -> None:
        """Advertise from a new resolvable private address (phones renew theirs every 15 min)."""
        await self.device.stop_advertising()
        await self._new_private_address()
        await self._advertise()

    async def _advertise(self) -> None:
        """Advertise (again after every disconnection) from the device's random address."""
        await self.device.start_advertising(
            auto_restart=True,
            advertising_data=self._advertising_data,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    async def _new_private_address(self) -> None:
        address = hci.Address.generate_private_address(self.device.irk)
        await self.device.send_sync_command(
            hci.HCI_LE_Set_Random_Address_Command(random_address=address)
        )
        self.device.random_address = address

    async def forget_bonds(self) -> None:
        """A factory reset: the band forgets every gateway it was paired with."""
        if self.device.keystore is not None:
            await self.device.keystore.delete_all()

    def _vitals(self) -> Vitals:
        return self.feed.vitals_at(self._clock() - self._started_at)

    async def start(self) -> None:
        """Power on, advertise (restarting after every disconnection) and start streaming."""
        await self.device.power_on()
        if self.privacy:
            await self._new_private_address()
        services = (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            struct.pack(f"<{len(self._advertised_services)}H", *self._advertised_services),
        )
        self._advertising_data = bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),
                    *([services] if self.advertise_services else []),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
                ]
            )
        )
        await self._advertise()
        self._started_at = self._clock()
        self._tasks = [
            asyncio.create_task(self._every(self.heart_rate_interval_s, self._send_heart_rate)),
            asyncio.create_task(self._every(self.temperature_interval_s, self._send_temperature)),
        ]
        if self.rsc_interval_s is not None:
            self._tasks.append(
                asyncio.create_task(self._every(self.rsc_interval_s, self._send_rsc))
            )

    async def stop(self) -> None:
        """Stop streaming and power off."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.device.power_off()

    def inject_malformed(self, payload: bytes) -> None:
        """Send ``payload`` instead of the next heart-rate measurement (a misbehaving band)."""
        self._pending_garbage = payload

    async def _every(self, period_s: float, send: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += period_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if self.stalled:
                continue
            try:
                result = send()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - a link dropping mid-send is expected here
                log.debug("%s: send failed: %s", self.name, exc)

    @property
    def heart_rate_handle(self) -> int:
        """ATT handle of the Heart Rate Measurement value."""
        return int(self._heart_rate.handle)

    @property
    def rsc_handle(self) -> int | None:
        """ATT handle of the RSC Measurement value (``None``: this band serves no RSC)."""
        return None if self.rsc_interval_s is None else int(self._rsc.handle)

    @property
    def temperature_handle(self) -> int:
        """ATT handle of the Temperature Measurement value."""
        return int(self._temperature.handle)

    def _subscribed(self, characteristic: gatt.Characteristic[bytes]) -> bool:
        return any(
            cccds.get(characteristic.handle, b"\0\0") != b"\0\0"
            for cccds in self.device.gatt_server.subscribers.values()
        )

    async def _send_heart_rate(self) -> None:
        if not self._subscribed(self._heart_rate):
            return
        if self._pending_garbage is not None:
            payload, self._pending_garbage = self._pending_garbage, None
            await self.device.notify_subscribers(self._heart_rate, payload)
            return
        vitals = self._vitals()
        self.energy_counter = (self.energy_counter + 1) & 0xFFFF
        payload = bytes(
            HeartRateService.HeartRateMeasurement(
                heart_rate=round(vitals.heart_rate_bpm),
                sensor_contact_detected=vitals.contact_detected,
                energy_expended=self.energy_counter,
                rr_intervals=vitals.rr_intervals_s or None,
            )
        )
        await self.device.notify_subscribers(self._heart_rate, payload)

    async def _send_temperature(self) -> None:
        if not self._subscribed(self._temperature):
            return
        await self.device.indicate_subscribers(
            self._temperature, encode_temperature(self._vitals().skin_temperature_c)
        )

    async def _send_rsc(self) -> None:
        if not self._subscribed(self._rsc):
            return
        await self.device.notify_subscribers(
            self._rsc, encode_rsc_measurement(self._vitals().cadence_per_min)
        )
