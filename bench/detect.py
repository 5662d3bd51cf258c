"""Detection cost: microseconds per sample and memory per patient, for 1,000 patients.

Feeds real heart-rate/temperature/movement rows (stress-predict recordings, cycled across
patients with per-patient time offsets) through the DetectorBank the service uses, in one-minute
batches across all patients. Baseline measured in the same run: the cost of merely iterating the
same samples and reading their fields (the floor any per-sample detector pays in Python).

Usage: .venv/bin/python bench/detect.py [--patients 1000] [--minutes 20]
Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc

from flarewatch.payloads import Sample
from models.artifacts import default_bank
from models.datasets import load_stress_predict
from models.recording import iter_samples

TARGET_US_PER_SAMPLE = 50.0  # issue 4 acceptance
START_MS = 1_764_000_000_000


def build_streams(patients: int, minutes: int) -> list[list[Sample]]:
    sessions = [list(iter_samples(r.frame)) for r in load_stress_predict(limit=8)]
    streams = []
    for p in range(patients):
        base = sessions[p % len(sessions)]
        rows = base[: minutes * 60]
        # every patient on the same clock (concurrent), a few seconds apart (not in lock step)
        shift = START_MS + (p % 60) * 1_000 - rows[0].time_ms
        streams.append([s.model_copy(update={"time_ms": s.time_ms + shift}) for s in rows])
    return streams


def baseline_pass(streams: list[list[Sample]]) -> float:
    start = time.perf_counter()
    acc = 0.0
    for stream in streams:
        for s in stream:
            acc += (s.heart_rate_bpm or 0.0) + (s.skin_temperature_c or 0.0) + s.time_ms
    return time.perf_counter() - start


def detector_pass(
    streams: list[list[Sample]], batch_s: int
) -> tuple[float, int, float, float, str]:
    bank = default_bank()
    n_batches = max(len(s) for s in streams) // batch_s + 1
    alarms = 0
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    start = time.perf_counter()
    for b in range(n_batches):
        items = [(f"p{p:04d}", s[b * batch_s : (b + 1) * batch_s]) for p, s in enumerate(streams)]
        alarms += len(bank.update([(pid, rows) for pid, rows in items if rows]))
        alarms += len(
            bank.tick(max(s[min(len(s) - 1, (b + 1) * batch_s)].time_ms for s in streams) / 1000)
        )
    elapsed = time.perf_counter() - start
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    state_bytes = len(json.dumps(bank.state_dict()))
    return elapsed, alarms, grown / len(streams), state_bytes / len(streams), bank.model_version


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=20)
    args = parser.parse_args()
    streams = build_streams(args.patients, args.minutes)
    samples = sum(len(s) for s in streams)
    print(f"{args.patients} patients x {args.minutes} min at 1 Hz = {samples:,} samples")
    base = baseline_pass(streams)
    # timing without tracemalloc (it slows allocation-heavy code down)
    t0 = time.perf_counter()
    bank = default_bank()
    for b in range(args.minutes + 1):
        bank.update(
            [
                (f"p{p:04d}", s[b * 60 : (b + 1) * 60])
                for p, s in enumerate(streams)
                if s[b * 60 : (b + 1) * 60]
            ]
        )
    elapsed = time.perf_counter() - t0
    _, alarms, mem_per_patient, state_per_patient, version = detector_pass(streams, 60)
    us = elapsed / samples * 1e6
    base_us = base / samples * 1e6
    print(f"model {version}")
    print(f"baseline (iterate + read fields): {base_us:.2f} us/sample")
    print(
        f"detector bank (1-min batches, {args.patients} patients): {us:.2f} us/sample "
        f"(target <= {TARGET_US_PER_SAMPLE:.0f})"
    )
    print(
        f"memory per patient (tracemalloc growth): {mem_per_patient / 1024:.1f} KiB; "
        f"saved state per patient: {state_per_patient / 1024:.2f} KiB JSON"
    )
    print(f"alarms raised during the run: {alarms}")
    print(
        json.dumps(
            {
                "bench": "detect",
                "patients": args.patients,
                "samples": samples,
                "us_per_sample": round(us, 2),
                "baseline_us_per_sample": round(base_us, 2),
                "target_us_per_sample": TARGET_US_PER_SAMPLE,
                "memory_per_patient_kib": round(mem_per_patient / 1024, 2),
                "state_per_patient_kib": round(state_per_patient / 1024, 2),
                "model_version": version,
            }
        )
    )


if __name__ == "__main__":
    main()
