"""Outbox rows grouped into contract ``SampleBatch`` messages, one topic per (patient, device)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from collector.const import PUBLISH_BATCH_MAX_SAMPLES
from collector.outbox import PendingRow
from flarewatch import topics
from flarewatch.const import MAX_PAYLOAD_BYTES, SCHEMA_VERSION

_SEPARATOR = b","
_TAIL = b"]}"


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

    A batch holds at most ``max_samples`` samples and closes before its payload would exceed the
    contract's ``MAX_PAYLOAD_BYTES``, which receivers reject (a single sample always fits). Bodies
    are already contract-valid JSON (checked when stored) and ids match the contract's id pattern
    (no characters needing escapes), so the batch is assembled without re-parsing.
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
        ).encode()
        for chunk in _chunks(group, len(head) + len(_TAIL), max_samples):
            payload = head + _SEPARATOR.join(body for _, body in chunk) + _TAIL
            batches.append(BatchMessage(topic, payload, tuple(row_id for row_id, _ in chunk)))
    return batches


def _chunks(
    rows: Sequence[PendingRow], framing_bytes: int, max_samples: int
) -> Iterator[list[tuple[int, bytes]]]:
    """Consecutive ``(row_id, body)`` runs that fit one batch once framed by ``framing_bytes``."""
    chunk: list[tuple[int, bytes]] = []
    size = framing_bytes
    for row in rows:
        body = row.body.encode()
        added = len(body) + (len(_SEPARATOR) if chunk else 0)
        if chunk and (len(chunk) >= max_samples or size + added > MAX_PAYLOAD_BYTES):
            yield chunk
            chunk, size, added = [], framing_bytes, len(body)
        chunk.append((row.row_id, body))
        size += added
    if chunk:
        yield chunk
