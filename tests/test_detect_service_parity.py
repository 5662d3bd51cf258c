"""``flarewatch detect`` raises what the service raises from the same samples (docs/models.md).

The replay feeds 5-minute batches, each after a ``tick``; the service feeds what each ingest
cycle brought (a gateway's minute), ticks after it on the ingest clock, and keeps cycling
through a silence. The same recording through both, real bank, real processor, real episode
engine on SQLite: the alarms the engine is handed are those ``detect`` writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from flarewatch.cli import main
from flarewatch.payloads import Sample, SampleBatch
from models.alarm import Alarm, AlarmKind
from models.artifacts import default_bank
from models.datasets import DATA_DIR
from models.injection import Episode, inject
from models.recording import iter_samples, read_recording
from service.episodes import AlertingProcessor
from service.processing import IngestCycle
from tests.alerting_helpers import FakeClock, RecordedEngine, build_stack

CYCLE_MS = 60_000  # a gateway's batch, and the ingest's cycle through a silence


def as_event(alarm: Alarm) -> tuple[object, ...]:
    return (round(alarm.time_s, 3), alarm.kind.value, alarm.severity.value, alarm.resolved)


def test_detect_writes_the_alarms_the_service_raises(tmp_path: Path) -> None:
    frame = pd.read_csv(DATA_DIR / "stress_predict" / "S02.csv.gz")
    start = float(frame["time_s"].iloc[0])
    surge = Episode(AlarmKind.ANAPHYLAXIS, start + 25 * 60, 90.0, 20 * 60.0, 300.0, 0.5, 0.0, 120.0)
    frame = inject(frame, [surge], np.random.default_rng(0))
    # the band silent for 10 min after the surge: "no data", then its end
    silent = frame["time_s"].between(start + 47 * 60, start + 57 * 60)
    rec = tmp_path / "rec.csv"
    frame[~silent].to_csv(rec, index=False)
    out = tmp_path / "events.jsonl"
    assert main(["detect", "--input", str(rec), "--out", str(out), "--patient", "p1"]) == 0
    written = [
        (e["time_s"], e["kind"], e["severity"], e["resolved"])
        for e in map(json.loads, out.read_text().splitlines())
    ]
    kinds = {kind for _, kind, _, _ in written}
    assert {"anaphylaxis", "no_data"} <= kinds, "the comparison would prove little"

    cleaned, _ = read_recording(rec)
    samples = list(iter_samples(cleaned))
    stack = build_stack(f"sqlite:///{tmp_path}/fw.sqlite3", FakeClock(start))
    engine = RecordedEngine(stack.manager)
    processor = AlertingProcessor(default_bank(), engine)
    cycle_end = samples[0].time_ms + CYCLE_MS
    pending: list[Sample] = []

    def cycle(now_ms: int) -> None:
        """One ingest cycle: the samples that arrived in it, or none (the ingest still ticks)."""
        batches = (
            [SampleBatch(patient_id="p1", device_id="band1", samples=tuple(pending))]
            if pending
            else []
        )
        processor.process(IngestCycle(now_ms, batches=batches))
        pending.clear()

    for sample in samples:
        while sample.time_ms >= cycle_end:
            cycle(cycle_end)
            cycle_end += CYCLE_MS
        pending.append(sample)
    cycle(cycle_end)
    processor.close()
    stack.close()
    served = sorted((as_event(a) for a in engine.alarms), key=lambda e: e[0])
    assert served == written
