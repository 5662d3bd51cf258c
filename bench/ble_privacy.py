"""Cost of knowing bonded bands behind private addresses: microseconds per advertisement.

Every advertisement a gateway hears goes through ``BumbleCentral.identity_of``: a resolvable
private address is checked against the identity resolving key (IRK) of every bond, one AES each,
to tell a bonded band (known by its identity) from anyone else's phone. A street's worth of
phones advertise many times a second, each from an address kept for minutes, so the answer is
remembered per address.

Measured on a real central (Bumble, on the virtual world's controller) with 0, 10 and 100 bonds,
over a crowd of ``--addresses`` private addresses each heard ``--repeats`` times (a phone
advertising every 100 ms for a while), among them the bonded bands' own. Ceiling in the same
run: the same advertisements through Bumble's resolver without the memory (what a gateway
without it pays), and the floor: writing each address as text, which every advertisement costs
anyway.

Usage: ``.venv/bin/python bench/ble_privacy.py [--addresses 500] [--repeats 20]``.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and its name would hide the
# ``collector`` package: drop it before importing anything of ours.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import json
import random
import secrets
import time

from bumble import hci
from bumble.keys import PairingKeys

from collector.ble.bumble_backend import BumbleCentral
from collector.virtual.world import VirtualWorld


async def bonded_central(world: VirtualWorld, bonds: int) -> tuple[BumbleCentral, list[bytes]]:
    """A started central holding ``bonds`` bonds (random IRKs); their IRKs."""
    central = BumbleCentral(world.hci_transport)
    device = await central.start()
    assert device.keystore is not None
    irks = [secrets.token_bytes(16) for _ in range(bonds)]
    for index, irk in enumerate(irks):
        keys = PairingKeys(
            address_type=hci.AddressType.RANDOM_DEVICE,
            ltk=PairingKeys.Key(secrets.token_bytes(16)),
            irk=PairingKeys.Key(irk),
        )
        await device.keystore.update(f"C0:5E:00:00:{index >> 8:02X}:{index & 0xFF:02X}", keys)
    await device.refresh_resolving_list()
    return central, irks


def crowd(irks: list[bytes], addresses: int, repeats: int, rng: random.Random) -> list[hci.Address]:
    """Advertisements of ``addresses`` private addresses (one in ten a bonded band's), shuffled."""
    strangers = [secrets.token_bytes(16) for _ in range(8)]
    unique = [
        hci.Address.generate_private_address(
            irks[i % len(irks)] if irks and i % 10 == 0 else strangers[i % len(strangers)]
        )
        for i in range(addresses)
    ]
    heard = [address for address in unique for _ in range(repeats)]
    rng.shuffle(heard)
    return heard


def per_advertisement_us(heard: list[hci.Address], look: object) -> float:
    assert callable(look)
    start = time.perf_counter()
    for address in heard:
        look(address)
    return (time.perf_counter() - start) / len(heard) * 1e6


async def main(addresses: int, repeats: int) -> dict[str, object]:
    world = VirtualWorld()
    await world.start_hci_server()
    rng = random.Random(20261129)
    figures: dict[str, object] = {"addresses": addresses, "repeats": repeats}
    try:
        for bonds in (0, 10, 100):
            central, irks = await bonded_central(world, bonds)
            heard = crowd(irks, addresses, repeats, rng)
            device = central.device
            assert device is not None
            resolver = device.address_resolver
            floor = per_advertisement_us(heard, lambda a: a.to_string(False))
            remembered = per_advertisement_us(heard, central.identity_of)
            alone = per_advertisement_us(heard, resolver.resolve) if resolver else 0.0
            found = sum(central.identity_of(a) is not None for a in heard)
            figures[f"bonds_{bonds}"] = {
                "floor_us": round(floor, 3),
                "identity_of_us": round(remembered, 3),
                "resolver_alone_us": round(alone, 3),
                "bonded_heard": found,
            }
            print(
                f"{bonds:3d} bonds: identity_of {remembered:7.2f} us/advertisement, "
                f"Bumble's resolver alone {alone:7.2f}, floor (address as text) {floor:5.2f}; "
                f"{found} of {len(heard)} were bonded bands"
            )
            await central.close()
    finally:
        await world.close()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addresses", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.addresses, args.repeats))))
