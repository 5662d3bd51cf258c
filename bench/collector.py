"""Benchmark of the BLE collector: notifications parsed and published per second per core, and
collector CPU at the acceptance load (10 devices x (1 Hz heart rate + 1 Hz temperature)).

Three processes, as in production: the Bumble virtual world (``flarewatch ble-sim``), the
collector (``flarewatch collect`` over an HCI transport on TCP) and Mosquitto. Phases:

1. ceiling  - the virtual world pushed as fast as it can to a bare consumer in this process
              (bleak on the Bumble backend, counting only): the world's own limit;
2. saturate - the same world load through the collector (parse -> outbox -> MQTT), counted by an
              MQTT subscriber; per core = published/s / collector CPU fraction;
3. nominal  - 10 bands at 1 Hz + 1 Hz through the collector: collector CPU %.

Usage: ``.venv/bin/python bench/collector.py [--seconds 15] [--devices 10] [--rate-hz 150]``.
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
import subprocess
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
import psutil
from bleak import BleakClient, BleakScanner

from collector.ble.backend import select_backend
from collector.ble.bumble_backend import close_central
from collector.virtual.control import WorldProcess
from flarewatch.localservers import MosquittoServer
from flarewatch.payloads import decode_sample_batch
from flarewatch.topics import SAMPLES_SUBSCRIPTION

HR = "00002a37-0000-1000-8000-00805f9b34fb"
TEMP = "00002a1c-0000-1000-8000-00805f9b34fb"


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


class SampleCounter:
    """MQTT subscriber counting samples (QoS 1)."""

    def __init__(self, port: int) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-counter")
        self.client.on_connect = lambda c, *_: c.subscribe(SAMPLES_SUBSCRIPTION, qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        n = len(decode_sample_batch(message.payload).samples)
        with self.lock:
            self.count += n

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def bare_consumer(world: WorldProcess, seconds: float) -> tuple[float, float]:
    """Connect to every band from this process and only count notifications: the ceiling."""
    backend = select_backend("bumble:" + world.hci_transport)
    count = 0

    def on_data(_c: object, _d: bytearray) -> None:
        nonlocal count
        count += 1

    clients = []
    for device in world.ready["devices"]:
        found = await BleakScanner.find_device_by_address(
            device["address"], timeout=10, backend=backend.scanner
        )
        assert found is not None, device
        client = BleakClient(found, backend=backend.client)
        await client.connect()
        await client.start_notify(HR, on_data)
        await client.start_notify(TEMP, on_data)
        clients.append(client)
    await asyncio.sleep(2.0)  # warm-up
    world_proc = psutil.Process(world.proc.pid)  # type: ignore[union-attr]
    start_count, start_cpu, start = count, cpu_seconds(world_proc), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - start
    rate = (count - start_count) / elapsed
    world_cpu = (cpu_seconds(world_proc) - start_cpu) / elapsed * 100
    for client in clients:
        await client.disconnect()
    await close_central(world.hci_transport)
    return rate, world_cpu


def delivered_total(world: WorldProcess) -> int:
    """Notifications and indications the world has handed to the collector's controller."""
    assert world.client is not None
    return sum(
        len(r["heart_rate_counters"]) + r["temperatures"] + r["other"]
        for r in world.client.delivered().values()
    )


def run_collector(
    workdir: Path, broker: MosquittoServer, world: WorldProcess, seconds: float, warmup_s: float
) -> dict[str, float]:
    """Run ``flarewatch collect`` against the world; count published samples and its CPU."""
    devices = workdir / "devices.toml"
    devices.write_text(
        "".join(
            f'[[devices]]\nid = "{d["name"]}"\npatient = "p{i}"\naddress = "{d["address"]}"\n'
            for i, d in enumerate(world.ready["devices"])
        )
    )
    config = workdir / "flarewatch.toml"
    config.write_text(
        f'[mqtt]\nurl = "{broker.url}"\n[collector]\ngateway_id = "bench"\n'
        f'outbox_path = "{workdir / "outbox.sqlite3"}"\ndevices_file = "{devices}"\n'
        f'ble_backend = "bumble:{world.hci_transport}"\nble_max_connections = 64\n'
    )
    counter = SampleCounter(broker.port)
    log = (workdir / "collector.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flarewatch.cli", "collect", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while world.client is not None and world.client.connected() < len(world.ready["devices"]):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"collector did not connect all bands; see {log.name}")
            time.sleep(0.2)
        time.sleep(warmup_s)
        collector = psutil.Process(proc.pid)
        world_proc = psutil.Process(world.proc.pid)  # type: ignore[union-attr]
        start_count, start = counter.count, time.monotonic()
        start_cpu, start_world = cpu_seconds(collector), cpu_seconds(world_proc)
        start_delivered = delivered_total(world)
        time.sleep(seconds)
        elapsed = time.monotonic() - start
        delivered = (delivered_total(world) - start_delivered) / elapsed
        published = (counter.count - start_count) / elapsed
        cpu_fraction = (cpu_seconds(collector) - start_cpu) / elapsed
        world_cpu = (cpu_seconds(world_proc) - start_world) / elapsed * 100
    finally:
        proc.terminate()
        try:
            proc.wait(60)  # an overloaded collector drains its HCI backlog before it stops
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        counter.close()
    return {
        "delivered_per_s": delivered,
        "published_per_s": published,
        "collector_cpu_percent": cpu_fraction * 100,
        "per_core_per_s": published / cpu_fraction if cpu_fraction > 0 else 0.0,
        "world_cpu_percent": world_cpu,
    }


def collector_phase(
    workdir: Path, broker: MosquittoServer, args: argparse.Namespace, world_args: tuple[str, ...]
) -> dict[str, float]:
    """One measured phase: a fresh virtual world with ``world_args``, read by the collector."""
    workdir.mkdir()
    with WorldProcess(args.devices, extra_args=world_args) as world:
        return run_collector(workdir, broker, world, args.seconds, 3.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window")
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--rate-hz", type=float, default=150.0, help="per band, saturating phase")
    args = parser.parse_args()
    sim_args = ("--steady", "--rate-hz", str(args.rate_hz))
    offered = args.devices * args.rate_hz * 2
    results: dict[str, float | int] = {"devices": args.devices, "offered_per_s": offered}
    with tempfile.TemporaryDirectory() as tmp, MosquittoServer() as broker:
        print(f"1/3 ceiling: {args.devices} bands x {args.rate_hz} Hz x 2 -> bare consumer ...")
        with WorldProcess(args.devices, extra_args=sim_args) as world:
            ceiling, world_cpu = asyncio.run(bare_consumer(world, args.seconds))
        print(
            f"    virtual world ceiling {ceiling:,.0f} notifications/s "
            f"(world CPU {world_cpu:.0f} %)"
        )
        results |= {"world_ceiling_per_s": ceiling, "world_cpu_percent_at_ceiling": world_cpu}

        print("2/3 saturate: the same load through the collector ...")
        saturated = collector_phase(Path(tmp) / "saturate", broker, args, sim_args)
        print(
            f"    world delivered {saturated['delivered_per_s']:,.0f}/s, collector published "
            f"{saturated['published_per_s']:,.0f} samples/s at CPU "
            f"{saturated['collector_cpu_percent']:.0f} % -> {saturated['per_core_per_s']:,.0f} "
            f"per core ({saturated['published_per_s'] / ceiling * 100:.0f} % of the bare ceiling)"
        )
        results |= {f"saturated_{k}": v for k, v in saturated.items()}

        print(f"3/3 nominal: {args.devices} bands x (1 Hz HR + 1 Hz temperature) ...")
        nominal = collector_phase(Path(tmp) / "nominal", broker, args, ("--rate-hz", "1"))
        print(
            f"    published {nominal['published_per_s']:.1f} samples/s, collector CPU "
            f"{nominal['collector_cpu_percent']:.1f} % of one core"
        )
        results |= {f"nominal_{k}": v for k, v in nominal.items()}
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
