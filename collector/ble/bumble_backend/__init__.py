"""bleak backend on a Google Bumble central: virtual worlds in tests, HCI dongles without BlueZ."""

from collector.ble.bumble_backend.bonds import Bond, BondStore
from collector.ble.bumble_backend.central import BumbleCentral, close_central, get_central
from collector.ble.bumble_backend.client import BleakClientBumble
from collector.ble.bumble_backend.pairing import PasskeyDelegate
from collector.ble.bumble_backend.scanner import BleakScannerBumble

__all__ = [
    "BleakClientBumble",
    "BleakScannerBumble",
    "Bond",
    "BondStore",
    "BumbleCentral",
    "PasskeyDelegate",
    "close_central",
    "get_central",
]
