"""Ingest benchmark: simulated patients → real Mosquitto → flarewatch ingest → real InfluxDB.

Usage: ``python bench/ingest.py --patients 1000 --duration 60 [--profile]``

Three measurements in one run, on the same servers and message sizes:

1. ``influx_ceiling``: pre-built, pre-gzipped line protocol of the same shape POSTed to ``/write``
   (two connections) as fast as InfluxDB accepts it;
2. ``broker_ceiling``: the same publishers and messages, consumed by a bare QoS 1 paho subscriber
   that only counts;
3. end to end: the publishers feed the ingest service (its own process, as ``flarewatch serve``
   runs it) writing into InfluxDB; ``samples_per_s`` is the stored rate after a warm-up.
   Afterwards every device's samples are counted in InfluxDB: ``lost`` and ``duplicates``.

Publishers run in separate processes and replay samples of the collector's simulator generated
before the timed part (with fresh seq and time), each message carrying many samples. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest_ceilings import (
    CTX,
    Publishers,
    measure_broker_ceiling,
    measure_influx_ceiling,
    rate_between,
    serializer_costs,
)
from ingest_profile import finish_profiler, start_profiler

from flarewatch.const import TOPIC_ROOT
from flarewatch.localservers import InfluxServer, MosquittoServer
from service.stores.influx import InfluxStore


def log(text: str) -> None:
    print(text, flush=True)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load avg {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


# -- end to end -----------------------------------------------------------------------------------


def measure_end_to_end(
    mq: MosquittoServer, influx: InfluxServer, args: argparse.Namespace
) -> dict[str, Any]:
    # -c rather than running the file: a script's folder comes first on sys.path, and bench/ holds
    # modules (collector.py) that would shadow the packages of the same name.
    launch = "import sys; sys.path[:0] = sys.argv[1:3]; import ingest_roles; ingest_roles.main()"
    here = Path(__file__).resolve().parent
    service = subprocess.Popen(
        [sys.executable, "-c", launch, str(here.parent), str(here), mq.url, influx.url],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert service.stdout is not None
    if service.stdout.readline().strip() != "ready":
        raise SystemExit("service did not start")
    stored = CTX.Value("q", 0)
    last: dict[str, Any] = {}
    timeline: list[tuple[float, int]] = []

    def read_stats() -> None:
        assert service.stdout is not None
        for line in service.stdout:
            last.update(json.loads(line))
            stored.value = last["stored"]
            timeline.append((time.monotonic(), last["stored"]))

    threading.Thread(target=read_stats, daemon=True).start()
    proc = psutil.Process(service.pid)
    watched = {
        "service": proc,
        "influxd": psutil.Process(influx.proc.pid),
        "mosquitto": psutil.Process(mq.proc.pid),
    }
    pubs = Publishers(mq.url, TOPIC_ROOT, args, args.duration, stored)
    pubs.start()
    started = time.monotonic()
    cpu_before = {k: sum(p.cpu_times()[:2]) for k, p in watched.items()}
    system_before = psutil.cpu_times()
    profiler = start_profiler(service.pid, args) if args.profile else None
    rss_max = 0.0
    while time.monotonic() - started < args.duration:
        rss_max = max(rss_max, proc.memory_info().rss / 2**20)
        time.sleep(0.5)
    ended = time.monotonic()
    cpu = {
        f"{k}_cpu_cores": (sum(p.cpu_times()[:2]) - cpu_before[k]) / (ended - started)
        for k, p in watched.items()
    }
    system_after = psutil.cpu_times()
    busy = (sum(system_after) - system_after.idle - system_after.iowait) - (
        sum(system_before) - system_before.idle - system_before.iowait
    )
    cpu["system_busy_cores"] = busy / (ended - started)
    load_during = os.getloadavg()[0]
    published = pubs.finish()
    total = sum(published.values())
    drain_deadline = time.monotonic() + 120
    while last.get("stored", 0) < total and time.monotonic() < drain_deadline:
        time.sleep(0.2)
    drained_s = time.monotonic() - ended
    rate = rate_between(timeline, started + args.warmup, ended)
    profile = finish_profiler(profiler) if profiler else None
    service.send_signal(signal.SIGTERM)
    service.wait(60)
    verify = verify_store(influx.url, published)
    return {
        "samples_per_s": rate,
        "published": total,
        "service": last,
        "service_rss_mb": rss_max,
        "drain_s": drained_s,
        "load_avg_1m_during": load_during,
        **cpu,
        **verify,
        "profile": profile,
    }


def verify_store(url: str, published: dict[str, int]) -> dict[str, int]:
    """Count every device's samples in InfluxDB: missing seqs are lost, extra points duplicates."""
    with InfluxStore(url) as store:
        counts, distinct, highest = store.query(
            "SELECT count(seq) FROM vitals GROUP BY device;"
            "SELECT count(distinct(seq)) FROM vitals GROUP BY device;"
            "SELECT max(seq) FROM vitals GROUP BY device"
        )

    def by_device(result: dict[str, Any]) -> dict[str, int]:
        return {s["tags"]["device"]: int(s["values"][0][1]) for s in result.get("series", ())}

    count, unique, top = by_device(counts), by_device(distinct), by_device(highest)
    lost = sum(max(0, n - unique.get(d, 0)) for d, n in published.items())
    beyond = sum(1 for d, n in published.items() if top.get(d, -1) >= n)
    return {
        "lost": lost,
        "duplicates": sum(count.values()) - sum(unique.values()),
        "stored_total": sum(count.values()),
        "unexpected_seqs": beyond,
    }


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument(
        "--duration", type=float, default=60.0, help="end-to-end publishing seconds"
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out of the rate")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--samples-per-message", type=int, default=100)
    parser.add_argument("--max-lead-samples", type=int, default=100_000, help="credit window")
    parser.add_argument("--ceiling-seconds", type=float, default=10.0)
    parser.add_argument("--influx-ceiling-points", type=int, default=2_500_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="py-spy profile of the service")
    args = parser.parse_args()
    log(
        f"ingest benchmark: {args.patients} patients, {args.duration:.0f} s, "
        f"{args.samples_per_message} samples/message"
    )
    load_before = os.getloadavg()[0]
    log(f"before: {load_note()}")
    costs = serializer_costs(args.samples_per_message)
    log("µs per sample: " + ", ".join(f"{k}={v:.2f}" for k, v in costs.items()))
    with MosquittoServer() as mq, InfluxServer() as influx:
        ceiling = measure_influx_ceiling(influx.url, args)
        exhausted = ", pool exhausted" if ceiling["pool_exhausted"] else ""
        log(
            f"InfluxDB ceiling: {ceiling['points_per_s']:,.0f} points/s "
            f"({ceiling['points']:,} points, {ceiling['seconds']:.1f} s{exhausted}); {load_note()}"
        )
        broker = measure_broker_ceiling(mq.url, args)
        log(
            f"broker ceiling: {broker['samples_per_s']:,.0f} samples/s "
            f"({broker['messages_per_s']:,.0f} msg/s); {load_note()}"
        )
        e2e = measure_end_to_end(mq, influx, args)
    log(
        f"end to end: {e2e['samples_per_s']:,.0f} samples/s; published {e2e['published']:,}, "
        f"stored {e2e['stored_total']:,}, lost {e2e['lost']}, duplicates {e2e['duplicates']}; "
        f"drained {e2e['drain_s']:.1f} s after the run"
    )
    log(
        "CPU cores used during the run: "
        + ", ".join(
            f"{k.removesuffix('_cpu_cores')}={v:.2f}"
            for k, v in e2e.items()
            if k.endswith("_cpu_cores") or k == "system_busy_cores"
        )
    )
    if e2e["profile"]:
        log("service profile (% of on-CPU samples):")
        for name, share in e2e["profile"].items():
            log(f"  {share:5.1f}  {name}")
    floor = min(ceiling["points_per_s"], broker["samples_per_s"])
    result = {
        "samples_per_s": round(e2e["samples_per_s"]),
        "broker_ceiling_samples_per_s": round(broker["samples_per_s"]),
        "influx_ceiling_samples_per_s": round(ceiling["points_per_s"]),
        "ratio_to_min_ceiling": round(e2e["samples_per_s"] / floor, 3) if floor else None,
        "lost": e2e["lost"],
        "duplicates": e2e["duplicates"],
        "patients": args.patients,
        "duration_s": args.duration,
        "service_rss_mb": round(e2e["service_rss_mb"], 1),
        "samples_per_message": args.samples_per_message,
        "published": e2e["published"],
        "stored": e2e["stored_total"],
        "redeliveries_filtered": e2e["service"].get("duplicates", 0),
        "rejected": e2e["service"].get("rejected", 0),
        "service_cpu_cores": round(e2e["service_cpu_cores"], 2),
        "influxd_cpu_cores": round(e2e["influxd_cpu_cores"], 2),
        "mosquitto_cpu_cores": round(e2e["mosquitto_cpu_cores"], 2),
        "system_busy_cores": round(e2e["system_busy_cores"], 2),
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_during": round(e2e["load_avg_1m_during"], 2),
        **{k: round(v, 2) for k, v in costs.items()},
    }
    print(json.dumps(result))
    return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
