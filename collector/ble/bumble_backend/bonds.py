"""The bonds of a gateway on Bumble: one JSON file, readable by its owner only.

A band that needs an encrypted link is paired once; both sides keep the keys (the bond), and every
later connection is encrypted with them, without pairing again. BlueZ keeps its bonds under
``/var/lib/bluetooth`` (root only); a gateway on Bumble keeps them in ``collector.bonds_file``
(``var/bonds.json`` by default), written atomically with mode 0600: the keys decrypt the band's
traffic (its heart rate) for whoever holds them. No key is ever logged.

::

    {"version": 1,
     "bonds": {"C0:5E:00:00:00:01": {"bonded_s": 1764412800.0, "keys": {...}}}}

``keys`` is Bumble's own ``PairingKeys.to_dict()``. A file that cannot be read is an error at start
(:class:`~collector.errors.BondStoreError`), never an empty store: silently forgetting every bond
would make each band pair anew, which some only do in pairing mode, by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bumble.keys import KeyStore, PairingKeys

from collector.errors import BondStoreError

BONDS_FILE_VERSION: Final = 1
FILE_MODE: Final = 0o600


@dataclass(frozen=True, slots=True)
class Bond:
    """What may be shown of a bond: whose, since when, how it was made (never the keys)."""

    address: str
    bonded_s: float
    authenticated: bool
    """Paired with a passkey (protected against a man in the middle), not Just Works."""


class BondStore(KeyStore):
    """Bumble's key store on one JSON file (see the module docstring)."""

    def __init__(self, path: Path, clock_s: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock_s = clock_s

    # --- what the gateway's people see -----------------------------------------------------------

    def bonds(self) -> list[Bond]:
        """Every bond, by address (raises BondStoreError when the file is broken)."""
        return [
            Bond(_bare(address), float(entry.get("bonded_s", 0.0)), _authenticated(entry["keys"]))
            for address, entry in sorted(self._read().items())
        ]

    def forget(self, address: str) -> bool:
        """Drop the bond with ``address`` (``/P``, Bumble's mark of a public one, optional)."""
        bonds = self._read()
        gone = [name for name in bonds if _bare(name) == _bare(address)]
        for name in gone:
            del bonds[name]
        if gone:
            self._write(bonds)
        return bool(gone)

    # --- Bumble's KeyStore -----------------------------------------------------------------------

    async def get(self, name: str) -> PairingKeys | None:
        """The keys of the band at address ``name``, if bonded."""
        entry = self._read().get(name.upper())
        return None if entry is None else PairingKeys.from_dict(entry["keys"])

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        """Every bond's keys."""
        return [
            (address, PairingKeys.from_dict(entry["keys"]))
            for address, entry in self._read().items()
        ]

    async def update(self, name: str, keys: PairingKeys) -> None:
        """Keep the keys of a pairing that just completed (merged, as Bumble distributes them)."""
        bonds = self._read()
        entry = bonds.setdefault(name.upper(), {"keys": {}})
        entry["keys"] = {**entry["keys"], **keys.to_dict()}
        entry["bonded_s"] = self._clock_s()
        self._write(bonds)

    async def delete(self, name: str) -> None:
        """Forget the bond with ``name`` (the band lost its own, or a person asked)."""
        self.forget(name)

    # --- the file --------------------------------------------------------------------------------

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise BondStoreError(self.path, f"cannot be read ({exc.strerror})") from exc
        try:
            document = json.loads(text)
            bonds = document["bonds"]
            if document.get("version") != BONDS_FILE_VERSION or not isinstance(bonds, dict):
                raise ValueError("unknown layout")
            for entry in bonds.values():
                PairingKeys.from_dict(entry["keys"])  # every bond must load, or none is trusted
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BondStoreError(
                self.path,
                "is not a flarewatch bonds file; move it aside, then pair the bands that need "
                "it again (flarewatch pair DEVICE)",
            ) from exc
        return dict(bonds)

    def _write(self, bonds: dict[str, dict[str, Any]]) -> None:
        document = {"version": BONDS_FILE_VERSION, "bonds": bonds}
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()  # a leftover of a crash may carry another mode
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            temporary.replace(self.path)
        except OSError as exc:
            raise BondStoreError(self.path, f"cannot be written ({exc.strerror})") from exc


def _bare(address: str) -> str:
    """``AA:BB:CC:DD:EE:FF`` of ``aa:bb:cc:dd:ee:ff/P`` (Bumble marks public addresses so)."""
    return address.upper().split("/", 1)[0]


def _authenticated(keys: dict[str, Any]) -> bool:
    return any(
        isinstance(key, dict) and key.get("authenticated") is True
        for name, key in keys.items()
        if name.startswith("ltk")
    )
