"""Pick the bleak backend from settings: the OS default (BlueZ on Linux) or Bumble on HCI.

``collector.ble_backend = "bumble:usb:0"`` selects Bumble; the collector never knows which.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner

from collector.ble.const import BUMBLE_BACKEND_PREFIX
from flarewatch.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BleakBackend:
    """The ``backend=`` classes to hand to ``BleakScanner``/``BleakClient`` (None = OS default)."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None
    description: str = "os-default"


def select_backend(spec: str | None, bonds_file: Path | None = None) -> BleakBackend:
    """Translate ``collector.ble_backend`` into bleak backend classes.

    ``None``/``""``/``"bluez"`` keep bleak's platform default; ``"bumble:<transport>"`` drives an
    HCI controller directly through Bumble (``bumble:usb:0``,
    ``bumble:serial:/dev/ttyACM0,1000000,rtscts``, ``bumble:tcp-client:127.0.0.1:9100``), keeping
    its bonds in ``bonds_file`` (``collector.bonds_file``; None: in memory). BlueZ keeps its own.
    A bonds file that cannot be read raises :class:`~collector.errors.BondStoreError` here, at
    start, rather than when a band first needs it.
    """
    if spec in (None, "", "bluez", "default"):
        return BleakBackend()
    assert spec is not None
    if not spec.startswith(BUMBLE_BACKEND_PREFIX) or len(spec) == len(BUMBLE_BACKEND_PREFIX):
        raise ConfigError(
            f"collector.ble_backend {spec!r} is not understood: leave it unset for BlueZ, or use "
            "'bumble:<transport>' such as 'bumble:usb:0' or 'bumble:serial:/dev/ttyACM0,1000000'"
        )
    return _bumble_backend(spec[len(BUMBLE_BACKEND_PREFIX) :], bonds_file)


@functools.cache
def _bumble_backend(transport: str, bonds_file: Path | None) -> BleakBackend:
    try:
        from collector.ble.bumble_backend import BleakClientBumble, BleakScannerBumble, BondStore
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "the Bumble backend needs the 'ble' extra: pip install 'flarewatch[ble]'"
        ) from exc
    if bonds_file is not None:
        BondStore(bonds_file).bonds()  # every bond must load, or the gateway does not start
    suffix = "".join(c if c.isalnum() else "_" for c in transport)
    where = {"transport_spec": transport, "bonds_file": bonds_file}
    scanner: type[BleakScannerBumble] = type(
        f"BleakScannerBumble_{suffix}", (BleakScannerBumble,), where
    )
    client: type[BleakClientBumble] = type(
        f"BleakClientBumble_{suffix}", (BleakClientBumble,), where
    )
    return BleakBackend(scanner, client, f"bumble:{transport}")


def bonded_addresses(backend: BleakBackend, bonds_file: Path) -> frozenset[str] | None:
    """The addresses of the bands a Bumble backend keeps a bond with (None: BlueZ keeps its own)."""
    if backend.client is None:
        return None
    from collector.ble.bumble_backend import BondStore

    return frozenset(bond.address for bond in BondStore(bonds_file).bonds())
