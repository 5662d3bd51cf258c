"""BLE connection management: one explicit state machine per configured wearable.

::

    IDLE -> SCANNING -> CONNECTING -> SUBSCRIBING -> STREAMING
                ^                                        |  link lost / watchdog / GATT error
                +------------- BACKOFF <-----------------+  (any failure on the way, too)

* Scanning is filtered by the configured devices; a device is connected only when it advertised
  within ``ADVERTISEMENT_FRESH_S`` (connecting to a band that left burns the single initiator).
* Connects go through ``bleak_retry_connector.establish_connection`` with the backend chosen from
  settings; at most ``max_connections`` links per adapter (a semaphore held while connected).
* Every connection gets a new generation number; callbacks of an older connection are ignored,
  so a reconnect never doubles samples (a known field failure, GUIDE §3).
* A watchdog reconnects when no notification arrived for ``watchdog_timeout_s`` although the link
  is up. Backoff after a failure is :func:`collector.ble.backoff.backoff_s` of its kind.
* A band that wants an encrypted link is paired when it asks (``bond = true``: before reading
  it) and encrypted with its bond after that, by the backend; a failure to pair is the
  ``pairing`` failure, reported in the device status and logged as a warning.
* Every notification is parsed and handed to the sink (the outbox) at once; a malformed one is
  counted per device and reason and logged without its payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak_retry_connector import establish_connection

from collector.ble.backend import BleakBackend
from collector.ble.backoff import (
    FailureKind,
    LinkLost,
    StallDetected,
    backoff_s,
    classify_failure,
)
from collector.ble.const import (
    ADVERTISEMENT_FRESH_S,
    BATTERY_READ_INTERVAL_S,
    CONNECT_ATTEMPTS,
    MAX_CONNECTIONS_PER_ADAPTER,
    WATCHDOG_TICK_S,
    WATCHDOG_TIMEOUT_S,
)
from collector.ble.devices import ConfiguredDevice
from collector.errors import BluetoothAdapterError, GattParseError
from collector.outbox import wall_clock_ms
from collector.profiles import DeviceDescription, MeasurementPlan, ProfileRegistry
from collector.sources.base import Reading
from flarewatch.errors import ConfigError
from flarewatch.log_throttle import LogThrottle
from flarewatch.payloads import LinkState

log = logging.getLogger(__name__)

BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"


class DeviceState(enum.StrEnum):
    """Where a device is in its connection life cycle."""

    IDLE = "idle"
    SCANNING = "scanning"
    CONNECTING = "connecting"
    SUBSCRIBING = "subscribing"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    STOPPED = "stopped"


class ReadingSink(Protocol):
    """Where readings and link states go (``collector.publisher.MqttPublisher`` is one)."""

    def submit(self, patient_id: str, device_id: str, readings: Sequence[Reading]) -> int:
        """Store readings durably; returns how many were accepted."""
        ...

    def update_device(
        self,
        patient_id: str,
        device_id: str,
        state: LinkState,
        *,
        reason: str | None = None,
        battery_percent: int | None = None,
        contact_detected: bool | None = None,
    ) -> None:
        """Report the device's link state (published as its retained status)."""
        ...


@dataclass(slots=True)
class DeviceLink:
    """The state of one configured device, owned by the manager; counters are for status/tests."""

    config: ConfiguredDevice
    state: DeviceState = DeviceState.IDLE
    history: deque[DeviceState] = field(default_factory=lambda: deque(maxlen=64))
    generation: int = 0
    failures: int = 0
    last_failure: FailureKind | None = None
    advertised: tuple[BLEDevice, AdvertisementData, float] | None = None
    heard: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    last_data_at: float = 0.0
    battery_percent: int | None = None
    contact_detected: bool | None = None
    connects: int = 0
    notifications: int = 0
    readings: int = 0
    parse_errors: Counter[str] = field(default_factory=Counter)
    rejected_fields: Counter[str] = field(default_factory=Counter)
    plan: MeasurementPlan | None = None

    def enter(self, state: DeviceState) -> None:
        """Move to ``state`` (logged at debug level, kept in ``history``)."""
        if state is not self.state:
            log.debug("%s: %s -> %s", self.config.device_id, self.state, state)
        self.state = state
        self.history.append(state)


Sleep = Callable[[float], Awaitable[None]]


class ConnectionManager:
    """Keeps every configured wearable streaming into the sink; run it with :meth:`run`."""

    def __init__(
        self,
        devices: Sequence[ConfiguredDevice],
        sink: ReadingSink,
        registry: ProfileRegistry,
        *,
        backend: BleakBackend | None = None,
        max_connections: int = MAX_CONNECTIONS_PER_ADAPTER,
        watchdog_timeout_s: float = WATCHDOG_TIMEOUT_S,
        watchdog_tick_s: float = WATCHDOG_TICK_S,
        clock: Callable[[], float] = time.monotonic,
        clock_ms: Callable[[], int] = wall_clock_ms,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        for device in devices:  # an unknown profile name is a configuration error: say so now,
            for name in device.profiles:  # not at every connection attempt once it advertises
                try:
                    registry.get(name)
                except ConfigError as exc:
                    raise ConfigError(f"device {device.device_id}: {exc}") from None
        self.links = {d.device_id: DeviceLink(d) for d in devices}
        self._log_throttle = LogThrottle()  # a malformed value every second: a line a minute
        self.sink = sink
        self.registry = registry
        self.backend = backend or BleakBackend()
        self.max_connections = max_connections
        self.watchdog_timeout_s = watchdog_timeout_s
        self.watchdog_tick_s = watchdog_tick_s
        self._clock = clock
        self._clock_ms = clock_ms
        self._sleep = sleep
        self._slots = asyncio.Semaphore(max_connections)
        self._clients: dict[str, BleakClient] = {}

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Scan and keep every device connected until cancelled; then disconnect all.

        Raises :class:`collector.errors.BluetoothAdapterError` when scanning cannot start.
        """
        try:
            scanner = BleakScanner(self._on_advertisement, backend=self.backend.scanner)
            await scanner.start()
        except Exception as exc:  # any failure here means no usable adapter
            raise BluetoothAdapterError(self.backend.description, exc) from exc
        try:
            async with asyncio.TaskGroup() as tasks:
                for link in self.links.values():
                    tasks.create_task(self._run_device(link), name=link.config.device_id)
        finally:
            for link in self.links.values():
                link.enter(DeviceState.STOPPED)
            await asyncio.gather(*(self._close(d) for d in list(self._clients)))
            with contextlib.suppress(Exception):
                await scanner.stop()

    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        for link in self.links.values():
            if link.config.matches(device.address, adv.local_name or device.name):
                link.advertised = (device, adv, self._clock())
                link.heard.set()
                return

    async def _run_device(self, link: DeviceLink) -> None:
        config = link.config
        while True:
            link.enter(DeviceState.SCANNING)
            device, adv = await self._wait_for_advertisement(link)
            async with self._slots:
                link.enter(DeviceState.CONNECTING)
                self.sink.update_device(config.patient_id, config.device_id, LinkState.CONNECTING)
                kind = FailureKind.OTHER
                try:
                    await self._session(link, device, adv)
                except Exception as exc:  # noqa: BLE001 - every failure leads to backoff
                    kind = classify_failure(exc)
                    # a band that will not pair waits for a person: said louder than a link lost
                    level = logging.WARNING if kind is FailureKind.PAIRING else logging.INFO
                    log.log(level, "%s: %s (%s)", config.device_id, kind, exc or type(exc).__name__)
                finally:
                    await self._close(config.device_id)
            link.failures += 1
            link.last_failure = kind
            if kind in (FailureKind.LINK_LOST, FailureKind.NOT_FOUND):
                link.advertised = None  # it may have walked away: wait to hear it again
            self.sink.update_device(
                config.patient_id,
                config.device_id,
                LinkState.OFFLINE,
                reason=str(kind),
                battery_percent=link.battery_percent,
                contact_detected=link.contact_detected,
            )
            link.enter(DeviceState.BACKOFF)
            await self._sleep(backoff_s(kind, link.failures))

    async def _wait_for_advertisement(
        self, link: DeviceLink
    ) -> tuple[BLEDevice, AdvertisementData]:
        while True:
            seen = link.advertised
            if seen is not None and self._clock() - seen[2] <= ADVERTISEMENT_FRESH_S:
                return seen[0], seen[1]
            link.heard.clear()
            await link.heard.wait()

    async def _session(self, link: DeviceLink, device: BLEDevice, adv: AdvertisementData) -> None:
        """Connect, subscribe and stream; returns only by raising why streaming ended."""
        config = link.config
        link.generation += 1
        generation = link.generation
        link.lost.clear()

        def on_disconnect(_client: BleakClient) -> None:
            if generation == link.generation:
                link.lost.set()

        client = await establish_connection(
            BleakClient,
            device,
            config.device_id,
            disconnected_callback=on_disconnect,
            max_attempts=CONNECT_ATTEMPTS,
            backend=self.backend.client,
            pair=config.bond,
        )
        self._clients[config.device_id] = client
        link.connects += 1
        link.enter(DeviceState.SUBSCRIBING)
        available = {c.uuid: c for c in client.services.characteristics.values()}
        description = DeviceDescription(
            name=adv.local_name or device.name,
            service_uuids=frozenset(adv.service_uuids) | {s.uuid for s in client.services},
            manufacturer_data=adv.manufacturer_data,
        )
        plan = self.registry.plan_for(description, profile_names=config.profiles)
        link.plan = plan
        reads = [m for m in plan.reads_on_connect if m.uuid in available]
        subscriptions = [m for m in plan.subscriptions if m.uuid in available]
        if not subscriptions:
            raise LookupError(f"{config.device_id} offers nothing the profiles can stream")
        for measurement in reads:
            data = await client.read_gatt_char(available[measurement.uuid])
            self._deliver(link, measurement.uuid, data)
        for measurement in subscriptions:
            characteristic = available[measurement.uuid]
            if not {"notify", "indicate"} & set(characteristic.properties):
                continue  # optional notify (e.g. Battery Level): read on connect only
            callback = functools.partial(self._on_notification, link, generation, measurement.uuid)
            await client.start_notify(characteristic, callback)
        link.enter(DeviceState.STREAMING)
        link.failures = 0
        link.last_data_at = self._clock()
        self.sink.update_device(
            config.patient_id,
            config.device_id,
            LinkState.ONLINE,
            battery_percent=link.battery_percent,
            contact_detected=link.contact_detected,
        )
        await self._stream(link, client, available.get(BATTERY_LEVEL_UUID))

    async def _stream(
        self, link: DeviceLink, client: BleakClient, battery: BleakGATTCharacteristic | None
    ) -> None:
        battery_read_at = self._clock()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.lost.wait(), self.watchdog_tick_s)
            if link.lost.is_set() or not client.is_connected:
                raise LinkLost("link dropped")
            now = self._clock()
            if now - link.last_data_at > self.watchdog_timeout_s:
                raise StallDetected(f"no notification for {now - link.last_data_at:.1f} s")
            if battery is not None and now - battery_read_at >= BATTERY_READ_INTERVAL_S:
                battery_read_at = now
                self._deliver(link, battery.uuid, await client.read_gatt_char(battery))

    def _on_notification(
        self,
        link: DeviceLink,
        generation: int,
        uuid: str,
        _characteristic: BleakGATTCharacteristic,
        data: bytearray,
    ) -> None:
        if generation != link.generation:
            return  # a callback of an earlier connection: never deliver twice
        link.notifications += 1
        link.last_data_at = self._clock()
        self._deliver(link, uuid, data)

    def _deliver(self, link: DeviceLink, uuid: str, data: bytes | bytearray) -> None:
        """Parse one value and store it as a reading at once; count what cannot be used."""
        config = link.config
        if link.plan is None:
            return
        try:
            decoded = link.plan.to_sample_fields(
                uuid, data, device_id=config.device_id, received_s=self._clock()
            )
        except GattParseError as exc:
            link.parse_errors[exc.reason] += 1
            if self._log_throttle.allow((config.device_id, exc.reason)) is not None:
                log.warning("%s (%d so far from this device)", exc, link.parse_errors.total())
            return
        for name in decoded.rejected:
            link.rejected_fields[name] += 1
        if not decoded.fields:
            return
        fields: dict[str, Any] = dict(decoded.fields)
        if "battery_percent" in fields:
            link.battery_percent = int(fields["battery_percent"])
        if "contact_detected" in fields:
            link.contact_detected = bool(fields["contact_detected"])
        try:
            link.readings += self.sink.submit(
                config.patient_id, config.device_id, [Reading(time_ms=self._clock_ms(), **fields)]
            )
        except Exception:  # a sink failure must not kill the BLE callback
            log.exception("%s: could not store a reading", config.device_id)

    async def _close(self, device_id: str) -> None:
        client = self._clients.pop(device_id, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()
