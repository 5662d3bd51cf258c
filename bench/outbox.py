"""Outbox throughput: append+read+ack of samples per second, against raw SQLite in the same run.

    .venv/bin/python bench/outbox.py [--samples 200000] [--batch 500] [--synchronous NORMAL]

The ceiling is plain ``executemany`` INSERT (and INSERT+DELETE) of the same, already serialized
rows into a WAL database with the same ``synchronous`` setting: what SQLite alone costs. The
outbox adds contract validation and JSON serialization of every reading, sequence numbering and
the device table. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import repo_first_on_path  # noqa: F401  (before our packages: see its docstring)

from collector.outbox import Outbox
from collector.sources.base import Reading

T0 = 1_764_081_600_000
DEVICES = 100


def make_readings(n: int) -> list[Reading]:
    return [
        Reading(
            time_ms=T0 + i * 1000,
            heart_rate_bpm=60.0 + i % 40,
            rr_intervals_s=(0.92,),
            skin_temperature_c=33.25,
            steps=i % 3,
            acceleration_g=1.01,
            acceleration_sd_g=0.03,
            contact_detected=True,
            battery_percent=88,
        )
        for i in range(n)
    ]


def bench_outbox(path: Path, readings: list[Reading], batch: int, synchronous: str) -> float:
    per_device = max(1, batch // DEVICES)
    with Outbox(path, synchronous=synchronous) as box:
        started = time.perf_counter()
        cursor = 0
        for start in range(0, len(readings), per_device * DEVICES):
            groups = [
                (f"p{d}", f"d{d}", readings[start + d * per_device : start + (d + 1) * per_device])
                for d in range(DEVICES)
            ]
            box.append_many(groups)
            rows = box.read(cursor, batch)
            cursor = rows[-1].row_id
            box.ack(r.row_id for r in rows)
        while rows := box.read(cursor, batch):
            cursor = rows[-1].row_id
            box.ack(r.row_id for r in rows)
        elapsed = time.perf_counter() - started
        assert box.pending == 0, box.stats()
    return len(readings) / elapsed


def bench_raw(path: Path, bodies: list[str], batch: int, synchronous: str, delete: bool) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, device TEXT, seq INTEGER, body TEXT)")
    started = time.perf_counter()
    for start in range(0, len(bodies), batch):
        chunk = bodies[start : start + batch]
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO t (id, device, seq, body) VALUES (?, ?, ?, ?)",
            [(start + i + 1, "d", start + i, b) for i, b in enumerate(chunk)],
        )
        db.execute("COMMIT")
        if delete:
            db.execute("BEGIN")
            db.executemany(
                "DELETE FROM t WHERE id = ?", [(start + i + 1,) for i in range(len(chunk))]
            )
            db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return len(bodies) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="samples per transaction")
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"])
    args = parser.parse_args()
    readings = make_readings(args.samples)
    with tempfile.TemporaryDirectory(prefix="flarewatch-bench-") as tmp:
        work = Path(tmp)
        with Outbox(work / "probe.db") as probe:
            probe.append("p", "d", readings[:1])
            body = probe.read()[0].body
        bodies = [body] * args.samples
        raw_insert = bench_raw(work / "raw1.db", bodies, args.batch, args.synchronous, False)
        raw_both = bench_raw(work / "raw2.db", bodies, args.batch, args.synchronous, True)
        outbox = bench_outbox(work / "outbox.db", readings, args.batch, args.synchronous)
    print(f"raw SQLite INSERT (ceiling)        {raw_insert:12,.0f} samples/s")
    print(f"raw SQLite INSERT + DELETE         {raw_both:12,.0f} samples/s")
    print(f"outbox append + read + ack         {outbox:12,.0f} samples/s")
    print(f"outbox / raw insert+delete          {outbox / raw_both:12.2f}")
    print(
        json.dumps(
            {
                "outbox_append_ack_samples_per_s": round(outbox),
                "raw_insert_samples_per_s": round(raw_insert),
                "raw_insert_delete_samples_per_s": round(raw_both),
                "ratio_to_raw_insert_delete": round(outbox / raw_both, 3),
                "samples": args.samples,
                "batch": args.batch,
                "synchronous": args.synchronous,
            }
        )
    )


if __name__ == "__main__":
    main()
