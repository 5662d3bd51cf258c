"""The device -> patient registry of a gateway, read from a TOML file.

::

    [[devices]]
    id = "band-anna"                  # device id on the wire (letters, digits, _ . -)
    patient = "anna"                  # patient id on the wire
    address = "C0:5E:00:00:00:01"     # Bluetooth address (or give `name`, or both)
    name = "Polar H10 1234ABCD"       # advertised name, matched exactly
    profiles = ["heart_rate"]         # optional: force profiles instead of matching services
    bond = true                       # optional: encrypt every link, pairing once (see docs/ble.md)

Without ``bond`` a band that asks for an encrypted link is paired when it asks (as BlueZ does);
``bond = true`` encrypts right after connecting, for bands that hide their services until then.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flarewatch.errors import ConfigError
from flarewatch.topics import is_valid_id


@dataclass(frozen=True, slots=True)
class ConfiguredDevice:
    """One wearable the gateway should stream, and whose patient it belongs to."""

    device_id: str
    patient_id: str
    address: str | None = None
    name: str | None = None
    profiles: tuple[str, ...] = ()
    bond: bool = False
    """Encrypt every link before reading the band (pairing the first time, its bond after)."""

    def matches(self, address: str, name: str | None) -> bool:
        """Whether an advertisement from ``address`` named ``name`` is this device."""
        if self.address is not None and self.address.upper() != address.upper():
            return False
        return not (self.name is not None and self.name != name)


def parse_devices(document: dict[str, Any], source: str = "devices file") -> list[ConfiguredDevice]:
    """Validate the ``[[devices]]`` tables of a parsed TOML document."""
    entries = document.get("devices")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: add at least one [[devices]] table (id, patient, address)")
    devices: list[ConfiguredDevice] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        where = f"{source}: device #{index}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(entry) - {"id", "patient", "address", "name", "profiles", "bond"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        device_id, patient_id = entry.get("id"), entry.get("patient")
        for key, value in (("id", device_id), ("patient", patient_id)):
            if not isinstance(value, str) or not is_valid_id(value):
                raise ConfigError(f"{where}: '{key}' must be an id of letters, digits, _ . -")
        address, name = entry.get("address"), entry.get("name")
        if address is None and name is None:
            raise ConfigError(f"{where}: give its Bluetooth 'address' or advertised 'name'")
        if address is not None and (not isinstance(address, str) or len(address.split(":")) != 6):
            raise ConfigError(f"{where}: 'address' must look like C0:5E:00:00:00:01")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"{where}: 'name' must be a string")
        profiles = entry.get("profiles", [])
        if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
            raise ConfigError(f"{where}: 'profiles' must be a list of profile names")
        bond = entry.get("bond", False)
        if not isinstance(bond, bool):
            raise ConfigError(f"{where}: 'bond' must be true or false")
        assert isinstance(device_id, str) and isinstance(patient_id, str)
        if device_id in seen:
            raise ConfigError(f"{where}: device id {device_id!r} appears twice")
        seen.add(device_id)
        devices.append(
            ConfiguredDevice(
                device_id, patient_id, address and address.upper(), name, tuple(profiles), bond
            )
        )
    return devices


def load_devices(path: Path) -> list[ConfiguredDevice]:
    """Read the device registry from a TOML file (a clear ConfigError when it is wrong)."""
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"devices file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"devices file {path} is not valid TOML: {exc}") from exc
    return parse_devices(document, str(path))
