"""Turn one MQTT message into a contract object or a counted rejection reason."""

from __future__ import annotations

from flarewatch.errors import ContractError
from flarewatch.payloads import (
    DeviceStatus,
    GatewayStatus,
    SampleBatch,
    decode_device_status,
    decode_gateway_status,
    decode_sample_batch,
)
from flarewatch.topics import TopicKind, parse_topic

Decoded = SampleBatch | DeviceStatus | GatewayStatus

TOPIC_MISMATCH = "topic_mismatch"
"""Rejection reason: the ids in the payload differ from those in the topic (which broker ACLs
restrict per gateway), so the message could be written on behalf of another patient."""


def _check_ids(topic: str, wanted: tuple[str | None, ...], got: tuple[str | None, ...]) -> None:
    if wanted != got:
        raise ContractError(TOPIC_MISMATCH, "ids in the payload differ from the topic", topic=topic)


def decode_message(topic: str, payload: bytes, *, now_ms: int) -> Decoded | None:
    """Validate a message received on ``topic``; raise :class:`ContractError` to reject it.

    Returns ``None`` for an empty status payload: that is how a retained status is cleared, not an
    error. ``now_ms`` enables the contract's clock plausibility checks (statuses: no future).
    """
    parsed = parse_topic(topic)
    if parsed.kind is TopicKind.SAMPLES:
        batch = decode_sample_batch(payload, now_ms=now_ms)
        _check_ids(
            topic, (parsed.patient_id, parsed.device_id), (batch.patient_id, batch.device_id)
        )
        return batch
    if not payload and parsed.kind in (TopicKind.DEVICE_STATUS, TopicKind.GATEWAY_STATUS):
        return None
    if parsed.kind is TopicKind.DEVICE_STATUS:
        status = decode_device_status(payload, now_ms=now_ms)
        _check_ids(
            topic, (parsed.patient_id, parsed.device_id), (status.patient_id, status.device_id)
        )
        return status
    if parsed.kind is TopicKind.GATEWAY_STATUS:
        gateway = decode_gateway_status(payload, now_ms=now_ms)
        _check_ids(topic, (parsed.gateway_id,), (gateway.gateway_id,))
        return gateway
    raise ContractError(
        "bad_topic", f"the ingest does not consume {parsed.kind} topics", topic=topic
    )
