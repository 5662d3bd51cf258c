"""Run the virtual world in its own process and steer it from tests, benchmarks and the demo.

``flarewatch ble-sim --devices 5`` serves the world (HCI for collectors over TCP, plus a control
port speaking one JSON object per line) and prints one JSON line saying where:
``{"hci_transport": "tcp-client:127.0.0.1:PORT", "control_port": PORT, "devices": [...]}``.
:class:`WorldProcess` starts that command and gives a :class:`WorldClient` to steer it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any, Self

from collector.errors import SimulationError
from collector.virtual.const import HEART_RATE_INTERVAL_S, TEMPERATURE_INTERVAL_S
from collector.virtual.feeds import simulated_vitals
from collector.virtual.wearable import BandSecurity, SteadyVitals
from collector.virtual.world import VirtualWorld
from flarewatch.lifecycle import StartStop

log = logging.getLogger(__name__)

WORLD_START_TIMEOUT_S = 30.0
"""Starting Python, Bumble and N wearables takes ~1-3 s; 30 s covers a loaded 2-core CI box."""


async def serve_world(
    devices: int,
    *,
    host: str = "127.0.0.1",
    hci_port: int = 0,
    control_port: int = 0,
    heart_rate_interval_s: float = HEART_RATE_INTERVAL_S,
    temperature_interval_s: float = TEMPERATURE_INTERVAL_S,
    simulator: bool = True,
    running_speed_cadence: bool = False,
    security: BandSecurity = BandSecurity.NONE,
    privacy: bool = False,
) -> tuple[VirtualWorld, asyncio.Server, dict[str, Any]]:
    """Start ``devices`` wearables named band-1..N, the HCI server and the control server.

    ``simulator`` feeds each band from the physiological simulator (a different patient each);
    else the bands send steady resting values (cheapest, for throughput benchmarks).
    ``running_speed_cadence`` makes them serve RSC too, notified as often as the heart rate.
    ``security``: what every band asks of the link before it lets itself be read; ``privacy``:
    the bands advertise from resolvable private addresses (``rotate`` renews one).
    """
    world = VirtualWorld()
    for index in range(1, devices + 1):
        await world.add_wearable(
            f"band-{index}",
            simulated_vitals(index - 1) if simulator else SteadyVitals(),
            heart_rate_interval_s=heart_rate_interval_s,
            temperature_interval_s=temperature_interval_s,
            rsc_interval_s=heart_rate_interval_s if running_speed_cadence else None,
            security=security,
            privacy=privacy,
        )
    transport = await world.start_hci_server(host, hci_port)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                reply = await _command(world, json.loads(line))
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        writer.close()

    control = await asyncio.start_server(handle, host, control_port)
    ready = {
        "hci_transport": transport,
        "control_port": control.sockets[0].getsockname()[1],
        "devices": [{"name": w.name, "address": w.address} for w in world.wearables.values()],
    }
    return world, control, ready


async def _command(world: VirtualWorld, request: dict[str, Any]) -> dict[str, Any]:
    op, name = request.get("op"), request.get("device", "")
    try:
        if op == "out_of_range":
            world.take_out_of_range(name)
        elif op == "back":
            world.bring_back(name)
        elif op in ("stall", "resume"):
            world.stall(name, op == "stall")
        elif op == "malformed":
            world.wearables[name].inject_malformed(bytes.fromhex(request["hex"]))
        elif op == "delivered":
            return {"ok": True, "delivered": {k: asdict(v) for k, v in world.delivered.items()}}
        elif op == "connected":
            return {"ok": True, "connected": sum(len(c.le_connections) for c in world.centrals)}
        elif op == "pairing":
            band = world.wearables[name]
            return {"ok": True, "pairings": band.pairings, "passkey": band.shown_passkey}
        elif op in ("refuse_pairing", "accept_pairing"):
            world.wearables[name].accepts_pairing = op == "accept_pairing"
        elif op == "reset":
            await world.wearables[name].forget_bonds()
        elif op == "rotate":
            await world.wearables[name].rotate_address()
        else:
            return {"ok": False, "error": f"unknown op {op!r}"}
    except (KeyError, ValueError) as exc:
        return {"ok": False, "error": f"{op}: {exc!r}"}
    return {"ok": True}


def run_ble_sim(
    devices: int,
    hci_port: int,
    control_port: int,
    *,
    host: str = "127.0.0.1",
    rate_hz: float = 1.0,
    simulator: bool = True,
    running_speed_cadence: bool = False,
    security: BandSecurity = BandSecurity.NONE,
    privacy: bool = False,
) -> int:
    """Blocking entry point of ``flarewatch ble-sim``: serve until interrupted."""
    # Bumble's virtual controllers warn about every packet still in flight when a link drops
    logging.getLogger("bumble").setLevel(logging.ERROR)

    async def main() -> None:
        world, control, ready = await serve_world(
            devices,
            host=host,
            hci_port=hci_port,
            control_port=control_port,
            heart_rate_interval_s=1.0 / rate_hz,
            temperature_interval_s=1.0 / rate_hz,
            simulator=simulator,
            running_speed_cadence=running_speed_cadence,
            security=security,
            privacy=privacy,
        )
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        try:
            await asyncio.Event().wait()
        finally:
            control.close()
            await world.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


class WorldClient:
    """Steer a world served by :func:`serve_world` over its control port (blocking calls)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._sock = socket.create_connection((host, port), timeout=10)
        self._file = self._sock.makefile("rwb")

    def call(self, op: str, **params: Any) -> dict[str, Any]:
        """Send one command; raises SimulationError when the world refuses it."""
        self._file.write(json.dumps({"op": op, **params}).encode() + b"\n")
        self._file.flush()
        reply: dict[str, Any] = json.loads(self._file.readline())
        if not reply.get("ok"):
            raise SimulationError(f"virtual world refused {op}: {reply.get('error')}")
        return reply

    def take_out_of_range(self, device: str) -> None:
        """The wearable walks away (its links drop as on a supervision timeout)."""
        self.call("out_of_range", device=device)

    def bring_back(self, device: str) -> None:
        """The wearable is back in range."""
        self.call("back", device=device)

    def stall(self, device: str, stalled: bool = True) -> None:
        """Stop (or resume) notifications while the link stays up."""
        self.call("stall" if stalled else "resume", device=device)

    def delivered(self) -> dict[str, dict[str, Any]]:
        """Per wearable: heart-rate counters and temperature count that reached a collector."""
        result: dict[str, dict[str, Any]] = self.call("delivered")["delivered"]
        return result

    def connected(self) -> int:
        """How many wearable links collectors currently hold."""
        return int(self.call("connected")["connected"])

    def pairings(self, device: str) -> int:
        """How many pairings the wearable completed (a bonded gateway pairs no more)."""
        return int(self.call("pairing", device=device)["pairings"])

    def shown_passkey(self, device: str) -> int | None:
        """The passkey on the wearable's display, while a pairing waits for it."""
        passkey = self.call("pairing", device=device)["passkey"]
        return None if passkey is None else int(passkey)

    def accept_pairing(self, device: str, accept: bool = True) -> None:
        """Put the wearable in (or out of) pairing mode."""
        self.call("accept_pairing" if accept else "refuse_pairing", device=device)

    def reset(self, device: str) -> None:
        """A factory reset: the wearable forgets every bond."""
        self.call("reset", device=device)

    def rotate(self, device: str) -> None:
        """The wearable advertises from a new private address (``--privacy``; not while linked)."""
        self.call("rotate", device=device)

    def close(self) -> None:
        """Close the control connection."""
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()


class WorldProcess(StartStop):
    """``flarewatch ble-sim`` in a subprocess (the benchmark and SIGKILL tests need it apart)."""

    def __init__(self, devices: int, *, extra_args: tuple[str, ...] = ()) -> None:
        self.devices = devices
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self.client: WorldClient | None = None

    @property
    def hci_transport(self) -> str:
        """Transport string for a collector: ``tcp-client:127.0.0.1:PORT``."""
        return str(self.ready["hci_transport"])

    def start(self) -> Self:
        """Start the process and wait for its ready line."""
        command = [sys.executable, "-m", "flarewatch.cli", "--log-level", "WARNING", "ble-sim"]
        command += ["--devices", str(self.devices), *self.extra_args]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, start_new_session=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + WORLD_START_TIMEOUT_S
        line = self.proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            self.stop()
            raise SimulationError(f"ble-sim did not start (exit code {self.proc.poll()})")
        self.ready = json.loads(line)
        self.client = WorldClient(int(self.ready["control_port"]))
        return self

    def stop(self) -> None:
        """Stop the world process."""
        if self.client is not None:
            self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
