"""The virtual world: wearables on a shared Bumble link, and HCI controllers for collectors.

A collector reaches the world exactly as it reaches a USB dongle: through an HCI transport. The
world listens on TCP (``tcp-client:127.0.0.1:PORT`` for the collector) and gives every incoming
HCI connection its own virtual controller on the link, so a collector can be killed and restarted.

What Bumble's virtual link lacks, the world adds (GUIDE §3): radio range (a virtual link has no
supervision timeout, so taking a device out of range drops its links at once with reason
"connection timeout" and silences it), and a working LE Create Connection Cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bumble import core, hci, ll
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.profiles.heart_rate_service import HeartRateService
from bumble.transport.common import AsyncPipeSink, StreamPacketSink, StreamPacketSource

from collector.virtual.const import SUPERVISION_TIMEOUT_REASON, WEARABLE_ADDRESS_PREFIX
from collector.virtual.wearable import VirtualWearable, VitalsFeed

log = logging.getLogger(__name__)

_ATT_CID = 0x0004
_ATT_NOTIFICATION = 0x1B
_ATT_INDICATION = 0x1D


class RangeLink(LocalLink):
    """A LocalLink where some controllers are out of radio range: nothing reaches or leaves them."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.out_of_range: set[Controller] = set()

    def send_advertising_pdu(
        self, sender_controller: Controller, packet: ll.AdvertisingPdu
    ) -> None:
        """Broadcast to every controller in range, unless the sender itself is out of range."""
        if sender_controller in self.out_of_range:
            return
        loop = asyncio.get_running_loop()
        for other in self.controllers:
            if other is not sender_controller and other not in self.out_of_range:
                loop.call_soon(other.on_ll_advertising_pdu, packet)

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: core.PhysicalTransport,
        data: bytes,
    ) -> None:
        """Deliver data only between controllers in range."""
        destination = self.find_le_controller(destination_address)
        if sender_controller in self.out_of_range or destination in self.out_of_range:
            return
        super().send_acl_data(sender_controller, destination_address, transport, data)

    def send_ll_control_pdu(
        self, sender_address: hci.Address, receiver_address: hci.Address, packet: ll.ControlPdu
    ) -> None:
        """Deliver link-layer control only between controllers in range (else it is lost)."""
        receiver = self.find_le_controller(receiver_address)
        sender = self.find_le_controller(sender_address)
        if receiver is None or receiver in self.out_of_range or sender in self.out_of_range:
            return
        super().send_ll_control_pdu(sender_address, receiver_address, packet)


@dataclass(slots=True)
class Delivered:
    """What reached a collector's controller from one wearable (the oracle for end-to-end tests)."""

    heart_rate_counters: list[int] = field(default_factory=list)
    temperatures: int = 0
    rsc_cadences: list[int] = field(default_factory=list)
    other: int = 0


class CentralController(Controller):
    """The controller a collector drives over HCI: counts deliveries, cancels connects properly."""

    def __init__(
        self,
        name: str,
        world: VirtualWorld,
        hci_transport: asyncio.WriteTransport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, link=world.link, **kwargs)
        self.world = world
        self.hci_transport = hci_transport

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Abort the pending connect and report it, as Core Vol 4 Part E 7.8.13 requires.

        Bumble's virtual controller ignores the cancel, which leaves ``Device.connect(timeout=...)``
        waiting forever (GUIDE §3).
        """
        pending = self.pending_le_connection
        if pending is not None:
            self.pending_le_connection = None
            self.send_hci_packet(
                hci.HCI_LE_Connection_Complete_Event(
                    status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                    connection_handle=0,
                    role=hci.Role.CENTRAL,
                    peer_address_type=pending.peer_address.address_type,
                    peer_address=pending.peer_address,
                    connection_interval=0,
                    peripheral_latency=0,
                    supervision_timeout=0,
                    central_clock_accuracy=0,
                )
            )
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_link_acl_data(
        self, sender_address: hci.Address, transport: core.PhysicalTransport, data: bytes
    ) -> None:
        """Forward to the host, noting notifications and indications that reach it."""
        if sender_address in self.le_connections:
            self.world.note_delivery(sender_address, data)
        super().on_link_acl_data(sender_address, transport, data)


class VirtualWorld:
    """Wearables plus an HCI server for collectors, with the range/stall harness."""

    def __init__(self) -> None:
        self.link = RangeLink()
        self.wearables: dict[str, VirtualWearable] = {}
        self.delivered: defaultdict[str, Delivered] = defaultdict(Delivered)
        self.centrals: set[CentralController] = set()
        self.advertisers: list[Device] = []
        """Devices in range that only advertise (beacons, a neighbour's gadgets)."""
        self._server: asyncio.Server | None = None
        self.hci_port = 0
        self.hci_transport = ""
        """What a collector opens to reach this world, e.g. ``tcp-client:127.0.0.1:PORT``."""

    # --- population ----------------------------------------------------------------------------

    async def add_wearable(
        self, name: str, feed: VitalsFeed | None = None, **kwargs: Any
    ) -> VirtualWearable:
        """Create, power on and start a wearable called ``name``."""
        index = len(self.wearables) + 1
        address = f"{WEARABLE_ADDRESS_PREFIX}:{index >> 8:02X}:{index & 0xFF:02X}"
        wearable = VirtualWearable(name, address, self.link, feed, **kwargs)
        self.wearables[name] = wearable
        await wearable.start()
        return wearable

    async def add_advertiser(
        self, address: str, advertising_data: bytes, interval_ms: int = 100
    ) -> Device:
        """Power on a device that only advertises ``advertising_data`` (raw AD structures).

        Anything in radio range may: a beacon, a neighbour's gadget, malformed data or not.
        """
        controller = Controller(f"ctl-{address}", link=self.link)
        device = Device(
            name=address,
            address=hci.Address(address),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        await device.power_on()
        await device.start_advertising(
            auto_restart=True,
            advertising_data=advertising_data,
            advertising_interval_min=interval_ms,
            advertising_interval_max=interval_ms,
        )
        self.advertisers.append(device)
        return device

    async def start_hci_server(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen for collectors; returns their transport string ``tcp-client:HOST:PORT``."""
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _HciConnection(self), host, port
        )
        self.hci_port = int(self._server.sockets[0].getsockname()[1])
        self.hci_transport = f"tcp-client:{host}:{self.hci_port}"
        return self.hci_transport

    async def close(self) -> None:
        """Stop serving and stop every wearable."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for wearable in self.wearables.values():
            await wearable.stop()
        for device in self.advertisers:
            with contextlib.suppress(Exception):
                await device.stop_advertising()

    # --- harness -------------------------------------------------------------------------------

    def take_out_of_range(self, name: str) -> None:
        """The wearable walks away: its links time out and nothing it sends is heard."""
        wearable = self.wearables[name].controller
        self.link.out_of_range.add(wearable)
        for central in self.centrals:
            _sever(central, wearable, SUPERVISION_TIMEOUT_REASON)

    def bring_back(self, name: str) -> None:
        """The wearable comes back in range (it is advertising again)."""
        self.link.out_of_range.discard(self.wearables[name].controller)

    def stall(self, name: str, stalled: bool = True) -> None:
        """Stop (or resume) the wearable's notifications while its link stays up."""
        self.wearables[name].stalled = stalled

    def note_delivery(self, sender: hci.Address, acl_pdu: bytes) -> None:
        """Record an ATT notification/indication that reached a central's controller."""
        if len(acl_pdu) < 7:
            return
        _length, cid = struct.unpack_from("<HH", acl_pdu)
        if cid != _ATT_CID or acl_pdu[4] not in (_ATT_NOTIFICATION, _ATT_INDICATION):
            return
        handle = struct.unpack_from("<H", acl_pdu, 5)[0]
        value = acl_pdu[7:]
        for wearable in self.wearables.values():
            if wearable.controller.random_address != sender:
                continue
            record = self.delivered[wearable.name]
            if handle == wearable.heart_rate_handle:
                try:
                    measurement = HeartRateService.HeartRateMeasurement.from_bytes(value)
                except (struct.error, IndexError, core.BaseBumbleError):
                    record.other += 1
                    return
                if measurement.energy_expended is None:
                    record.other += 1
                else:
                    record.heart_rate_counters.append(measurement.energy_expended)
            elif handle == wearable.temperature_handle:
                record.temperatures += 1
            elif handle == wearable.rsc_handle and len(value) >= 4:
                record.rsc_cadences.append(value[3])  # RSCS §3.1: the cadence octet
            else:
                record.other += 1
            return

    def unplug_collectors(self) -> None:
        """Close every collector's HCI connection, as when a USB dongle is pulled out."""
        for central in list(self.centrals):
            if central.hci_transport is not None:
                central.hci_transport.close()

    def drop_central(self, central: CentralController) -> None:
        """A collector went away (killed or closed): its links drop and its controller leaves."""
        self.centrals.discard(central)
        for wearable in self.wearables.values():
            _sever(central, wearable.controller, SUPERVISION_TIMEOUT_REASON)
        with contextlib.suppress(KeyError):
            self.link.remove_controller(central)


def _sever(central: Controller, peripheral: Controller, reason: int) -> None:
    """Drop every link between two controllers on both sides, as a supervision timeout would."""
    for peer_address, connection in list(central.le_connections.items()):
        if peer_address != peripheral.random_address:
            continue
        central.on_le_disconnected(connection, reason)
        for back_address, back in list(peripheral.le_connections.items()):
            if back_address == connection.self_address:
                peripheral.on_le_disconnected(back, reason)


class _HciConnection(asyncio.Protocol):
    """One collector's HCI byte stream <-> its own CentralController."""

    def __init__(self, world: VirtualWorld) -> None:
        self.world = world
        self.source = StreamPacketSource()
        self.controller: CentralController | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.controller = CentralController(
            f"central-{len(self.world.centrals)}",
            self.world,
            transport,
            host_source=self.source,
            host_sink=StreamPacketSink(transport),
        )
        self.world.centrals.add(self.controller)
        log.info("collector connected to the virtual world")

    def data_received(self, data: bytes) -> None:
        self.source.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.controller is not None:
            self.controller.host = None
            self.world.drop_central(self.controller)
            log.info("collector left the virtual world")
