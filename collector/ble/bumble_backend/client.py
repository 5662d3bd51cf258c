"""bleak client backend on a shared Bumble central (``BleakClient(backend=...)``).

Bumble's failures are translated at this boundary so the collector only ever sees bleak's errors:
a connect timeout becomes ``TimeoutError`` (as on every bleak backend), a link lost during a GATT
call — which Bumble reports by cancelling the pending request (GUIDE §3) — becomes ``BleakError``,
an ATT error response ``BleakGATTProtocolError`` with its code.

Security as BlueZ does it: a GATT call the band refuses for want of encryption or authentication
encrypts the link (with the band's bond, else by pairing) and is tried once more; ``pair=True`` (a
``bond = true`` device) encrypts right after connecting, before the services are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.device import Connection, Peer
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy

from collector.ble.bumble_backend.central import BumbleCentral, get_central
from collector.ble.bumble_backend.pairing import secure_link
from collector.ble.bumble_backend.scanner import bleak_uuid
from collector.ble.const import (
    ATT_MTU_REQUEST_BYTES,
    BUMBLE_CONNECT_TIMEOUT_S,
    BUMBLE_DISCONNECT_TIMEOUT_S,
    PAIRING_TIMEOUT_S,
)
from collector.errors import PairingError

log = logging.getLogger(__name__)

T = TypeVar("T")

_SECURITY_ERRORS = frozenset(
    (
        att.ErrorCode.INSUFFICIENT_AUTHENTICATION,
        att.ErrorCode.INSUFFICIENT_ENCRYPTION,
        att.ErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
    )
)
"""ATT errors a band answers with until the link is encrypted (or paired with a passkey)."""

_PROPERTY_NAMES: tuple[tuple[Characteristic.Properties, CharacteristicPropertyName], ...] = (
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
)


class BleakClientBumble(BaseBleakClient):
    """Client on the Bumble central of :attr:`transport_spec` (set by :func:`backend_classes`)."""

    transport_spec: ClassVar[str] = ""
    bonds_file: ClassVar[Path | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._device_name: str | None = None
        self._peer_address: hci.Address | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._device_name = address_or_ble_device.name
            if isinstance(address_or_ble_device.details, hci.Address):
                self._peer_address = address_or_ble_device.details
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    # --- connectivity --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The advertised name, else the address."""
        return self._device_name or self.address

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU (23 until the exchange made in :meth:`connect`)."""
        return int(self._peer.gatt_client.mtu) if self._peer is not None else 23

    @property
    def is_connected(self) -> bool:
        """Whether the link is up."""
        return self._connection is not None

    @classmethod
    def shared_central(cls) -> BumbleCentral:
        """The central clients of this class connect through (one per transport and loop)."""
        return get_central(cls.transport_spec, bonds_file=cls.bonds_file)

    @property
    def central(self) -> BumbleCentral:
        """The shared central this client connects through."""
        return self.shared_central()

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect (serialized per controller), exchange the MTU and discover the services.

        ``pair``: encrypt the link first (with the band's bond, else by pairing).
        """
        central = self.central
        address = self._peer_address or central.resolve_address(self.address)
        # bleak-retry-connector asks for 20 s; a band that advertised a moment ago answers in far
        # less, and the initiator is blocked for everyone else meanwhile
        timeout = min(float(kwargs.get("timeout", self._timeout)), BUMBLE_CONNECT_TIMEOUT_S)
        try:
            connection = await central.connect(address, timeout_s=timeout)
        except core.TimeoutError as exc:
            raise TimeoutError(f"{self.address}: no answer to the connect request") from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: connect failed: {exc}") from exc
        self._connection = connection
        self._closing = False
        self._subscriptions.clear()
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._peer = Peer(connection)
        try:
            if pair:
                await self._secure(fresh=False)
            async with self._gatt("service discovery") as peer:
                await peer.request_mtu(ATT_MTU_REQUEST_BYTES)
                self.services = await self._discover(peer)
        except BaseException:
            await self.disconnect()
            raise

    async def disconnect(self) -> None:
        """Close the link (no-op when already down); the disconnect callback is not called."""
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        try:
            async with asyncio.timeout(BUMBLE_DISCONNECT_TIMEOUT_S):
                await connection.disconnect()
        except (TimeoutError, core.BaseBumbleError, hci.HCI_Error) as exc:
            log.debug("%s: disconnect did not complete cleanly: %s", self.address, exc)
        finally:
            self._forget()

    def _on_disconnection(self, reason: int) -> None:
        expected = self._closing
        self._forget()
        log.debug("%s: link down (reason 0x%02X)", self.address, reason)
        if not expected and self._disconnected_callback is not None:
            self._disconnected_callback()

    def _forget(self) -> None:
        self._connection = None
        self._peer = None
        self._subscriptions.clear()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair anew (bonding) on the open link; the keys are kept in the central's bonds.

        ``timeout_s``: how long pairing may take (a person typing a passkey needs more than the
        default :data:`~collector.ble.const.PAIRING_TIMEOUT_S`).
        """
        await self._secure(fresh=True, timeout_s=float(kwargs.get("timeout_s", PAIRING_TIMEOUT_S)))

    async def unpair(self) -> None:
        """Forget the band's bond and disconnect (it pairs anew when it next needs to)."""
        device = await self.central.start()
        if device.keystore is not None:
            await device.keystore.delete(self.address)  # bonds are named by identity address
            await device.refresh_resolving_list()
        await self.disconnect()

    async def _secure(self, *, fresh: bool, timeout_s: float = PAIRING_TIMEOUT_S) -> None:
        connection, device = self._connection, self.central.device
        if connection is None or device is None:
            raise BleakError(f"{self.address}: not connected (pairing)")
        try:
            await secure_link(device, connection, fresh=fresh, timeout_s=timeout_s, name=self.name)
        except PairingError as exc:
            if self._connection is None:  # it walked away meanwhile: a lost link, not a refusal
                raise BleakError(f"{self.address}: link lost during pairing") from exc
            raise

    async def _call(self, what: str, operation: Callable[[Peer], Awaitable[T]]) -> T:
        """One GATT operation; encrypt the link and try once more when the band asks for it."""
        async with self._gatt(what) as peer:
            try:
                return await operation(peer)
            except att.ATT_Error as exc:
                if exc.error_code not in _SECURITY_ERRORS:
                    raise
                connection = self._connection
                if connection is None or connection.is_encrypted:
                    raise  # encrypted already: more than pairing can give
            await self._secure(fresh=False)
            return await operation(peer)

    # --- GATT ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _gatt(self, what: str) -> AsyncIterator[Peer]:
        """Map Bumble's failures of one GATT operation to bleak's errors."""
        peer = self._peer
        if peer is None:
            raise BleakError(f"{self.address}: not connected ({what})")
        try:
            yield peer
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller was cancelled: let it unwind
            # Bumble cancels the pending request when the link drops (GUIDE §3)
            raise BleakError(f"{self.address}: link lost during {what}") from exc
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            raise BleakError(f"{self.address}: {what} failed: {exc}") from exc

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in await peer.discover_services():
            bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            for char in await peer.discover_characteristics(service=service):
                properties = [n for flag, n in _PROPERTY_NAMES if char.properties & flag]
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    bleak_uuid(char.uuid),
                    properties,
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for desc in await peer.discover_descriptors(char):
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, bleak_uuid(desc.type), bleak_char)
                    )
        return collection

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a characteristic value."""
        value = await self._call("read", lambda peer: peer.read_value(characteristic.handle))
        return bytearray(value)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor value."""
        value = await self._call("descriptor read", lambda peer: peer.read_value(descriptor.handle))
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write a characteristic value, with or without response."""
        await self._call(
            "write",
            lambda peer: peer.write_value(
                characteristic.handle, bytes(data), with_response=response
            ),
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Write a descriptor value."""
        await self._call(
            "descriptor write",
            lambda peer: peer.write_value(descriptor.handle, bytes(data), with_response=True),
        )

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe (notifications preferred over indications); a repeat replaces the callback."""
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        async def subscribe(peer: Peer) -> None:
            previous = self._subscriptions.pop(characteristic.handle, None)
            if previous is not None:
                # never two callbacks for one characteristic (duplicate-callback field failure)
                await peer.gatt_client.unsubscribe(proxy, previous)
            self._subscriptions[characteristic.handle] = deliver
            await peer.gatt_client.subscribe(proxy, deliver, prefer_notify=True)

        await self._call("subscribe", subscribe)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe and clear the CCCD."""
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        async with self._gatt("unsubscribe") as peer:
            subscriber = self._subscriptions.pop(characteristic.handle, None)
            await peer.gatt_client.unsubscribe(proxy, subscriber, force=subscriber is None)
