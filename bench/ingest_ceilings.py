"""Ceilings of the ingest benchmark: serialization costs, raw InfluxDB writes, broker pub→sub.

Also the publisher harness shared with the end-to-end phase of ``bench/ingest.py``.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import threading
import time
from typing import Any

import httpx
from ingest_roles import PublisherSpec, publisher_main, subscriber_main

from flarewatch.payloads import Sample, SampleBatch, decode_sample_batch, encode
from service.stores.influx import InfluxStore
from service.stores.lineprotocol import lines_of, sample_fields

CTX = mp.get_context("spawn")


# -- serialization costs --------------------------------------------------------------------------


def serializer_costs(samples_per_message: int) -> dict[str, float]:
    """µs per sample of decoding, hand-built line protocol, influxdb-client Point, gzip."""
    from influxdb_client import Point, WritePrecision

    t0 = int(time.time() * 1000) - 86_400_000
    batch = SampleBatch(
        patient_id="p1",
        device_id="p1-band",
        samples=tuple(
            Sample(
                seq=s,
                time_ms=t0 + s * 1000,
                heart_rate_bpm=60 + s % 30,
                rr_intervals_s=(0.81,),
                skin_temperature_c=33.1,
                steps=s % 4,
                acceleration_g=1.01,
                acceleration_sd_g=0.05,
                contact_detected=True,
                battery_percent=90,
            )
            for s in range(samples_per_message)
        ),
    )
    payload, n, rounds = encode(batch), samples_per_message, 200
    now_ms = int(time.time() * 1000)

    def per_sample(action: Any) -> float:
        start = time.perf_counter()
        for _ in range(rounds):
            action()
        return (time.perf_counter() - start) / rounds / n * 1e6

    def points() -> None:
        for s in batch.samples:
            p = (
                Point("vitals")
                .tag("device", "p1-band")
                .tag("patient", "p1")
                .time(s.time_ms, WritePrecision.MS)
            )
            p.field("seq", s.seq)
            for name, value in s.model_dump(exclude={"seq", "time_ms"}, exclude_none=True).items():
                p.field(name, ",".join(map(repr, value)) if name == "rr_intervals_s" else value)
            p.to_line_protocol()

    body = "\n".join(lines_of([batch])).encode()
    return {
        "decode_validate_us": per_sample(lambda: decode_sample_batch(payload, now_ms=now_ms)),
        "line_protocol_hand_us": per_sample(lambda: lines_of([batch])),
        "line_protocol_point_us": per_sample(points),
        "gzip_level1_us": per_sample(lambda: gzip.compress(body, 1)),
    }


# -- InfluxDB ceiling -----------------------------------------------------------------------------


def influx_bodies(points: int, patients: int, lines_per_body: int) -> list[bytes]:
    """Gzipped /write bodies with ``points`` distinct points of the same shape as the ingest's."""
    t0 = int(time.time() * 1000) - 86_400_000
    template = Sample(
        seq=0,
        time_ms=t0,
        heart_rate_bpm=71.0,
        rr_intervals_s=(0.8451,),
        skin_temperature_c=33.07,
        steps=1,
        acceleration_g=1.0123,
        acceleration_sd_g=0.0456,
        contact_detected=True,
        battery_percent=87,
    )
    fields = sample_fields(template).removeprefix("seq=0i,")
    bodies, lines = [], []
    per_patient = points // patients + 1
    for seq in range(per_patient):
        for p in range(patients):
            hr = 55 + (seq * 7 + p) % 60
            varied = fields.replace("71.0", f"{hr}.0", 1)
            lines.append(
                f"vitals,device=p{p}-band,patient=p{p} seq={seq}i,{varied} {t0 + seq * 1000}"
            )
            if len(lines) == lines_per_body:
                bodies.append(gzip.compress("\n".join(lines).encode(), 1))
                lines = []
        if len(bodies) * lines_per_body >= points:
            break
    return bodies


def measure_influx_ceiling(url: str, args: argparse.Namespace) -> dict[str, float]:
    bodies = influx_bodies(args.influx_ceiling_points, args.patients, 5000)
    store = InfluxStore(url, database="ceiling")
    store.prepare()
    store.close()
    lock, done, next_body = threading.Lock(), [0], [0]
    deadline = time.monotonic() + args.ceiling_seconds

    def writer() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                with lock:
                    if next_body[0] >= len(bodies):
                        return
                    body = bodies[next_body[0]]
                    next_body[0] += 1
                response = http.post(
                    "/write",
                    params={"db": "ceiling", "precision": "ms"},
                    content=body,
                    headers={"Content-Encoding": "gzip"},
                )
                response.raise_for_status()
                with lock:
                    done[0] += 5000

    start = time.monotonic()
    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    exhausted = next_body[0] >= len(bodies)
    with InfluxStore(url, database="ceiling") as cleanup:
        cleanup.query('DROP DATABASE "ceiling"')  # no background compaction during the e2e run
    return {
        "points_per_s": done[0] / elapsed,
        "points": done[0],
        "seconds": elapsed,
        "pool_exhausted": exhausted,
    }


# -- publishers -----------------------------------------------------------------------------------


class Publishers:
    """Publisher processes sharing one credit counter (published vs consumed samples)."""

    def __init__(
        self, url: str, topic_root: str, args: argparse.Namespace, run_s: float, consumed: Any
    ) -> None:
        self.published = CTX.Value("q", 0)
        self.consumed = consumed
        self.ready = [CTX.Event() for _ in range(args.publishers)]
        self.go = CTX.Event()
        self.results: Any = CTX.Queue()
        t0_ms = int(time.time() * 1000) - 2 * 86_400_000
        share = -(-args.patients // args.publishers)
        self.procs = []
        for i in range(args.publishers):
            first = i * share
            count = min(share, args.patients - first)
            spec = PublisherSpec(
                url, first, count, args.seed, args.samples_per_message, t0_ms, topic_root, run_s
            )
            self.procs.append(
                CTX.Process(
                    target=publisher_main,
                    args=(
                        spec,
                        self.published,
                        consumed,
                        args.max_lead_samples,
                        self.ready[i],
                        self.go,
                        self.results,
                    ),
                )
            )

    def start(self) -> None:
        for proc in self.procs:
            proc.start()
        for event in self.ready:
            if not event.wait(300):
                raise SystemExit("publishers did not get ready")
        self.go.set()

    def finish(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _ in self.procs:
            counts.update(self.results.get(timeout=600))
        for proc in self.procs:
            proc.join(30)
        return counts


def rate_between(timeline: list[tuple[float, int]], start: float, end: float) -> float:
    inside = [(t, n) for t, n in timeline if start <= t <= end]
    if len(inside) < 2:
        return 0.0
    (t1, n1), (t2, n2) = inside[0], inside[-1]
    return (n2 - n1) / (t2 - t1)


def measure_broker_ceiling(url: str, args: argparse.Namespace) -> dict[str, float]:
    consumed = CTX.Value("q", 0)
    ready, stop = CTX.Event(), CTX.Event()
    root = "bench/ceiling"
    sub = CTX.Process(
        target=subscriber_main,
        args=(url, f"{root}/#", args.samples_per_message, consumed, ready, stop),
    )
    sub.start()
    if not ready.wait(30):
        raise SystemExit("ceiling subscriber did not subscribe")
    pubs = Publishers(url, root, args, args.ceiling_seconds, consumed)
    pubs.start()
    started = time.monotonic()
    timeline = []
    while (
        any(p.is_alive() for p in pubs.procs)
        and time.monotonic() - started < args.ceiling_seconds + 60
    ):
        timeline.append((time.monotonic(), consumed.value))
        time.sleep(0.1)
        if time.monotonic() - started > args.ceiling_seconds:
            break
    pubs.finish()
    stop.set()
    sub.join(30)
    warm = min(2.0, args.ceiling_seconds / 4)
    rate = rate_between(timeline, started + warm, started + args.ceiling_seconds)
    return {"samples_per_s": rate, "messages_per_s": rate / args.samples_per_message}
