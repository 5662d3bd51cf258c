"""One Bumble central per HCI transport, shared by every bleak scanner and client of a process.

A controller has one initiator: Bumble refuses a second ``connect`` while one is pending, and
cancelling ``Device.connect()`` leaves the controller stuck (GUIDE §3). So connects are serialized
here, run in their own task with a finite timeout, and never cancelled from outside: a caller that
gives up simply stops waiting, and a connection that completes nobody wants is closed.

Bonds are kept in ``bonds_file`` (:mod:`collector.ble.bumble_backend.bonds`; in memory without
one); links are encrypted through :func:`collector.ble.bumble_backend.pairing.secure_link`.

A band with privacy advertises from a resolvable private address it renews every few minutes.
Once bonded, its identity resolving key (IRK) is among the bonds: its advertisements are then
told to the scanners under its identity address (the one it gave when pairing, the one
``devices.toml`` names), while connects go to the address it advertises from now, as BlueZ does.

Advertisers are remembered (typed address by text, for :meth:`BumbleCentral.resolve_address`) only
while heard: one silent for ``ADVERTISER_FORGET_AFTER_S`` is forgotten, and the scanners are told
to drop it too, unless a connection to it is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from bumble import core, hci
from bumble.device import Advertisement, Connection, Device
from bumble.keys import MemoryKeyStore
from bumble.pairing import PairingDelegate
from bumble.transport import open_transport

from collector.ble.bumble_backend.bonds import BondStore
from collector.ble.bumble_backend.pairing import pairing_config
from collector.ble.const import (
    ADVERTISER_FORGET_AFTER_S,
    ADVERTISER_SWEEP_INTERVAL_S,
    BUMBLE_CONNECT_TIMEOUT_S,
    BUMBLE_POWER_ON_TIMEOUT_S,
    CENTRAL_ADDRESS,
    RESOLVED_ADDRESSES_MAX,
    TRANSPORT_REOPEN_INTERVAL_S,
)
from collector.clocks import MonotonicClockS

log = logging.getLogger(__name__)

AdvertisementListener = Callable[[Advertisement, hci.Address | None], None]
"""Called with each advertisement and the identity its private address resolves to (if bonded)."""
ForgetListener = Callable[[Collection[str]], None]
"""Called with the address texts (``to_string(False)``) of advertisers just forgotten."""


class BumbleCentral:
    """A powered-on Bumble ``Device`` on one transport: serialized connects, shared scans."""

    def __init__(
        self,
        transport_spec: str,
        clock_s: MonotonicClockS = time.monotonic,
        *,
        power_on_timeout_s: float = BUMBLE_POWER_ON_TIMEOUT_S,
        bonds_file: Path | None = None,
    ) -> None:
        self.transport_spec = transport_spec
        self.power_on_timeout_s = power_on_timeout_s
        self.bonds: BondStore | None = None if bonds_file is None else BondStore(bonds_file)
        self.pairing_delegate: PairingDelegate | None = None
        """Who answers a band's passkey (``flarewatch pair``); None: Just Works only."""
        self.device: Device | None = None
        self._transport: Any = None
        self._connect_lock = asyncio.Lock()
        self._listeners: dict[object, tuple[AdvertisementListener, ForgetListener | None]] = {}
        self._scanning = False
        self._clock_s = clock_s
        self._heard: dict[str, tuple[hci.Address, float]] = {}
        """Typed address and monotonic time last heard, by address text."""
        self._next_sweep_s = clock_s() + ADVERTISER_SWEEP_INTERVAL_S
        self._resolver: object = None
        self._resolved: dict[str, hci.Address | None] = {}
        """Private address text -> the identity it resolves to, under ``_resolver``'s bonds."""
        self._start_lock = asyncio.Lock()

    async def start(self) -> Device:
        """Open the transport and power the controller on (once; later calls return the device).

        Raises ``TimeoutError`` when the controller does not answer within
        ``power_on_timeout_s``; a transport opened by a failed attempt is closed again.
        """
        async with self._start_lock:
            if self.device is not None:
                return self.device
            transport: Any = None
            try:
                async with asyncio.timeout(self.power_on_timeout_s):
                    transport = await open_transport(self.transport_spec)
                    device = Device.with_hci(
                        "flarewatch", hci.Address(CENTRAL_ADDRESS), transport.source, transport.sink
                    )
                    device.keystore = self.bonds or MemoryKeyStore()
                    device.pairing_config_factory = lambda _c: pairing_config(self.pairing_delegate)
                    await device.power_on()
            except BaseException as exc:
                if transport is not None:
                    with contextlib.suppress(Exception):
                        await transport.close()
                if isinstance(exc, TimeoutError):
                    raise TimeoutError(
                        f"no answer from the Bluetooth controller on {self.transport_spec} "
                        f"within {self.power_on_timeout_s:g} s"
                    ) from exc
                raise
            device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
            terminated = getattr(transport.source, "terminated", None)
            if isinstance(terminated, asyncio.Future):
                terminated.add_done_callback(lambda _f: self._on_transport_lost(device))
            self._transport = transport
            self.device = device
            log.info("Bumble central up on %s", self.transport_spec)
            if self._listeners:  # scanners registered before a transport loss: resume them
                self._scanning = True
                await device.start_scanning(filter_duplicates=False)
            return device

    def _on_transport_lost(self, device: Device) -> None:
        """The controller went away (dongle unplugged, HCI socket closed): drop every link.

        Bumble cannot tell its connections that their controller is gone, so they are reported
        as timed out here; the transport is reopened for the scanners (and by the next connect).
        """
        if self.device is not device:
            return
        log.error("HCI transport %s lost; reopening it", self.transport_spec)
        self.device, self._transport, self._scanning = None, None, False
        for connection in list(device.connections.values()):
            connection.emit(
                connection.EVENT_DISCONNECTION, hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
            )
        if self._listeners:
            task = asyncio.ensure_future(self._reopen())
            _background.add(task)
            task.add_done_callback(_background.discard)

    async def _reopen(self) -> None:
        """Reopen the transport for the scanners, retrying while the controller is absent."""
        while self.device is None and self._listeners:
            await asyncio.sleep(TRANSPORT_REOPEN_INTERVAL_S)
            try:
                await self.start()
            except (OSError, core.BaseBumbleError, hci.HCI_Error) as exc:
                log.warning("HCI transport %s still unavailable: %s", self.transport_spec, exc)

    async def close(self) -> None:
        """Close the HCI transport (all links drop with it)."""
        transport, self._transport, self.device = self._transport, None, None
        self._scanning = False
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.close()

    # --- scanning ------------------------------------------------------------------------------

    async def add_listener(
        self,
        token: object,
        listener: AdvertisementListener,
        on_forget: ForgetListener | None = None,
    ) -> None:
        """Deliver every advertisement to ``listener`` until :meth:`remove_listener`.

        ``on_forget`` learns which advertisers were forgotten (silent for too long), so the
        listener can drop what it keeps about them.
        """
        device = await self.start()
        self._listeners[token] = (listener, on_forget)
        if not self._scanning:
            self._scanning = True
            await device.start_scanning(filter_duplicates=False)

    async def remove_listener(self, token: object) -> None:
        """Stop delivering to the listener; scanning stops with the last one."""
        self._listeners.pop(token, None)
        if not self._listeners and self._scanning and self.device is not None:
            self._scanning = False
            await self.device.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        now_s = self._clock_s()
        address = advertisement.address
        identity = self.identity_of(address)
        self._heard[(identity or address).to_string(False)] = (address, now_s)
        for listener, _ in list(self._listeners.values()):
            listener(advertisement, identity)
        if now_s >= self._next_sweep_s:
            self._forget_silent(now_s)

    def identity_of(self, address: hci.Address) -> hci.Address | None:
        """The identity of a bonded band behind a resolvable private address (else None)."""
        device = self.device
        resolver = None if device is None else device.address_resolver
        if resolver is None or not address.is_resolvable:
            return None
        if resolver is not self._resolver or len(self._resolved) >= RESOLVED_ADDRESSES_MAX:
            self._resolver, self._resolved = resolver, {}  # bonds changed, or too many heard
        text = address.to_string(False)
        if text not in self._resolved:  # one AES per bond: once per private address
            self._resolved[text] = resolver.resolve(address)
        return self._resolved[text]

    def _forget_silent(self, now_s: float) -> None:
        """Forget advertisers silent for ``ADVERTISER_FORGET_AFTER_S``, except connected ones."""
        self._next_sweep_s = now_s + ADVERTISER_SWEEP_INTERVAL_S
        in_use = self._connected_addresses()
        silent = [
            text
            for text, (_, heard_s) in self._heard.items()
            if now_s - heard_s >= ADVERTISER_FORGET_AFTER_S and text not in in_use
        ]
        if not silent:
            return
        for text in silent:
            del self._heard[text]
        log.debug(
            "forgot %d advertisers not heard for %.0f s", len(silent), ADVERTISER_FORGET_AFTER_S
        )
        for _, on_forget in list(self._listeners.values()):
            if on_forget is not None:
                on_forget(silent)

    def _connected_addresses(self) -> set[str]:
        device = self.device
        if device is None:
            return set()
        return {c.peer_address.to_string(False) for c in device.connections.values()}

    def known_addresses(self) -> frozenset[str]:
        """Texts of the advertisers currently remembered (heard recently, or connected)."""
        return frozenset(self._heard)

    def resolve_address(self, text: str) -> hci.Address:
        """The typed address last seen advertising as ``text`` (random static if never seen).

        For a bonded band with privacy, ``text`` is its identity and the answer the private
        address it advertised from last: the one to connect to.
        """
        known = self._heard.get(text.upper())
        if known is not None:
            return known[0]
        return hci.Address(text, hci.Address.RANDOM_DEVICE_ADDRESS)

    # --- connecting ----------------------------------------------------------------------------

    async def connect(self, address: hci.Address, timeout_s: float | None = None) -> Connection:
        """Connect to ``address``: one pending connect at a time, finite timeout, never cancelled.

        Raises bumble's ``TimeoutError``/``ConnectionError`` on failure. If the caller is cancelled
        the attempt runs to its end in the background and a late connection is closed.
        """
        device = await self.start()
        timeout = BUMBLE_CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
        attempt = asyncio.create_task(self._serialized_connect(device, address, timeout))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(_close_unwanted)
            raise

    async def _serialized_connect(
        self, device: Device, address: hci.Address, timeout_s: float
    ) -> Connection:
        async with self._connect_lock:
            return await device.connect(address, timeout=timeout_s)


def _close_unwanted(attempt: asyncio.Task[Connection]) -> None:
    if attempt.cancelled() or attempt.exception() is not None:
        return
    connection = attempt.result()
    log.debug("closing a connection whose caller gave up: %s", connection.peer_address)
    task = asyncio.ensure_future(connection.disconnect())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Future[Any]] = set()

_centrals: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, BumbleCentral]] = (
    weakref.WeakKeyDictionary()
)


def get_central(
    transport_spec: str,
    *,
    clock_s: MonotonicClockS = time.monotonic,
    bonds_file: Path | None = None,
) -> BumbleCentral:
    """The central for ``transport_spec`` in the running event loop (created on demand).

    ``clock_s`` times advertisers' silence and ``bonds_file`` keeps the bonds of a central this
    call creates (tests pass their own clock).
    """
    per_loop = _centrals.setdefault(asyncio.get_running_loop(), {})
    central = per_loop.get(transport_spec)
    if central is None:
        central = per_loop[transport_spec] = BumbleCentral(
            transport_spec, clock_s, bonds_file=bonds_file
        )
    return central


async def close_central(transport_spec: str) -> None:
    """Close and forget the central of ``transport_spec`` in the running loop, if any."""
    central = _centrals.get(asyncio.get_running_loop(), {}).pop(transport_spec, None)
    if central is not None:
        await central.close()
