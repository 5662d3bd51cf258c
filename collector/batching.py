"""Outbox rows grouped into contract ``SampleBatch`` messages, one topic per (patient, device)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collector.const import PUBLISH_BATCH_MAX_SAMPLES
from collector.outbox import PendingRow
from flarewatch import topics
from flarewatch.const import SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class BatchMessage:
    """A ready-to-publish batch and the outbox rows it carries (deleted on its PUBACK)."""

    topic: str
    payload: bytes
    row_ids: tuple[int, ...]


def batches_from_rows(
    rows: Sequence[PendingRow], gateway_id: str | None, max_samples: int = PUBLISH_BATCH_MAX_SAMPLES
) -> list[BatchMessage]:
    """Group outbox rows per (patient, device) in order into ``SampleBatch`` payloads.

    Bodies are already contract-valid JSON (checked when stored) and ids match the contract's id
    pattern (no characters needing escapes), so the batch is assembled without re-parsing.
    """
    groups: dict[tuple[str, str], list[PendingRow]] = {}
    for row in rows:
        groups.setdefault((row.patient_id, row.device_id), []).append(row)
    gateway = f',"gateway_id":"{gateway_id}"' if gateway_id else ""
    batches = []
    for (patient_id, device_id), group in groups.items():
        topic = topics.samples_topic(patient_id, device_id)
        head = (
            f'{{"v":{SCHEMA_VERSION},"patient_id":"{patient_id}",'
            f'"device_id":"{device_id}"{gateway},"samples":['
        )
        for start in range(0, len(group), max_samples):
            chunk = group[start : start + max_samples]
            payload = head + ",".join(r.body for r in chunk) + "]}"
            batches.append(BatchMessage(topic, payload.encode(), tuple(r.row_id for r in chunk)))
    return batches
