"""Simulator generation rate: samples/s for a cohort, as arrays and as Reading objects.

    .venv/bin/python bench/simulator.py [--patients 1000] [--chunk-s 600] [--steps 10]

The baseline measured in the same run is the bare cost of building the same number of
``Reading`` objects from ready Python lists (no physiology): generation cannot beat it when
readings are wanted. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import repo_first_on_path  # noqa: F401  (before our packages: see its docstring)

from collector.simulation import Cohort
from collector.sources.base import Reading

DAY0 = 1_764_028_800_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--chunk-s", type=int, default=600)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    cohort = Cohort(args.patients, seed=1, band_on_ms=DAY0)
    chunk_ms = args.chunk_s * 1000
    start = DAY0 + 8 * 3_600_000

    began = time.perf_counter()
    n_arrays = 0
    for step in range(args.steps):
        blocks = cohort.generate(start + step * chunk_ms, start + (step + 1) * chunk_ms)
        n_arrays += sum(len(b) for b in blocks)
    arrays_rate = n_arrays / (time.perf_counter() - began)

    began = time.perf_counter()
    n_readings = 0
    later = start + args.steps * chunk_ms
    for step in range(args.steps):
        groups = cohort.device_groups(later + step * chunk_ms, later + (step + 1) * chunk_ms)
        n_readings += sum(len(g[2]) for g in groups)
    readings_rate = n_readings / (time.perf_counter() - began)

    values = [float(i) for i in range(n_readings)]
    began = time.perf_counter()
    baseline = [
        Reading(time_ms=i, heart_rate_bpm=v, skin_temperature_c=v, acceleration_g=v, steps=0)
        for i, v in enumerate(values)
    ]
    baseline_rate = len(baseline) / (time.perf_counter() - began)

    print(f"patients {args.patients}, chunks of {args.chunk_s} s, {args.steps} steps")
    print(f"generation as numpy arrays          {arrays_rate:12,.0f} samples/s")
    print(f"generation as Reading objects       {readings_rate:12,.0f} samples/s")
    print(f"baseline: bare Reading construction {baseline_rate:12,.0f} samples/s")
    print(
        json.dumps(
            {
                "arrays_samples_per_s": round(arrays_rate),
                "readings_samples_per_s": round(readings_rate),
                "baseline_reading_construction_per_s": round(baseline_rate),
                "patients": args.patients,
                "chunk_s": args.chunk_s,
                "steps": args.steps,
            }
        )
    )


if __name__ == "__main__":
    main()
