"""Replaying a recording through a detector bank, exactly as the service feeds live batches."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from flarewatch.payloads import Sample
from models.alarm import Alarm, alarm_record
from models.bank import DetectorBank
from models.const import EVAL_CHUNK_S


def chunk_by_time(samples: Iterable[Sample], span_s: float) -> Iterator[list[Sample]]:
    """Consecutive batches each covering at most ``span_s`` seconds (a gateway's buffer)."""
    batch: list[Sample] = []
    start_ms = 0
    span_ms = span_s * 1000.0
    for sample in samples:
        if batch and sample.time_ms - start_ms >= span_ms:
            yield batch
            batch = []
        if not batch:
            start_ms = sample.time_ms
        batch.append(sample)
    if batch:
        yield batch


def replay(
    bank: DetectorBank,
    patient_id: str,
    samples: Iterable[Sample],
    *,
    chunk_s: float = EVAL_CHUNK_S,
    progress: Callable[[int], None] | None = None,
) -> list[Alarm]:
    """Feed ``samples`` of one patient in time-sliced batches; each batch is preceded by a tick."""
    alarms: list[Alarm] = []
    for batch in chunk_by_time(samples, chunk_s):
        alarms.extend(bank.tick(batch[0].time_ms / 1000.0))
        alarms.extend(bank.update([(patient_id, batch)]))
        if progress is not None:
            progress(len(batch))
    return alarms


def write_events(alarms: Iterable[Alarm], out: IO[str]) -> int:
    """Write alarms as JSON lines in time order; returns how many were written."""
    ordered = sorted(alarms, key=lambda a: a.time_s)
    for alarm in ordered:
        out.write(json.dumps(alarm_record(alarm), separators=(",", ":")) + "\n")
    return len(ordered)
