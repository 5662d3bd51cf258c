"""One worker cycle of the ingest: received messages turned into validated, deduplicated batches.

Runs on the ingest's decoder thread; the writer thread then stores, processes and acknowledges the
cycle. Rejected messages are reported through a callback and stay in the cycle so that they are
acknowledged in order with the others (a malformed message will never become valid).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from flarewatch.errors import ContractError
from flarewatch.payloads import DeviceStatus, GatewayStatus, SampleBatch
from flarewatch.topics import parse_topic
from service.const import DEADLETTER_DETAIL_CHARS
from service.ingest.dedup import SeqWindow
from service.ingest.validation import decode_message
from service.stores.base import EncodedWrite


@dataclass(slots=True)
class ReceivedMessage:
    """An MQTT message as the network thread hands it over (acknowledged later by ``mid``)."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    patient_id: str | None = None
    has_new_samples: bool = False


@dataclass(slots=True)
class Cycle:
    """Messages taken from the queue in one cycle and what they decoded to."""

    messages: list[ReceivedMessage] = field(default_factory=list)
    batches: list[SampleBatch] = field(default_factory=list)
    device_statuses: list[DeviceStatus] = field(default_factory=list)
    gateway_statuses: list[GatewayStatus] = field(default_factory=list)
    received_samples: int = 0
    new_samples: int = 0
    duplicates: int = 0
    seq_jumps: int = 0
    encoded: EncodedWrite | None = None

    def samples_by_patient(self) -> Counter[str]:
        """New samples per patient."""
        counts: Counter[str] = Counter()
        for batch in self.batches:
            counts[batch.patient_id] += len(batch.samples)
        return counts


Reject = Callable[[ReceivedMessage, str, str], None]
"""Called with a rejected message, the reason tag and a description without payload content."""


class CycleDecoder:
    """Validates messages into a :class:`Cycle`, drops duplicate samples, tracks latest statuses."""

    def __init__(self, dedup: SeqWindow, reject: Reject) -> None:
        self.dedup = dedup
        self.reject = reject
        self.devices: dict[str, DeviceStatus] = {}
        self.gateways: dict[str, GatewayStatus] = {}

    def add(self, cycle: Cycle, received: ReceivedMessage, now_ms: int) -> None:
        """Decode one message into ``cycle`` (or reject it)."""
        cycle.messages.append(received)
        try:
            decoded = decode_message(received.topic, received.payload, now_ms=now_ms)
        except ContractError as exc:
            self.reject(received, exc.reason, exc.detail)
            return
        if isinstance(decoded, SampleBatch):
            received.patient_id = decoded.patient_id
            cycle.received_samples += len(decoded.samples)
            jumps = self.dedup.jumps
            fresh = self.dedup.accept(decoded.device_id, decoded.samples)
            cycle.duplicates += len(decoded.samples) - len(fresh)
            cycle.seq_jumps += self.dedup.jumps - jumps
            if fresh:
                if len(fresh) != len(decoded.samples):
                    decoded = decoded.model_copy(update={"samples": tuple(fresh)})
                cycle.batches.append(decoded)
                cycle.new_samples += len(fresh)
                received.has_new_samples = True
        elif isinstance(decoded, DeviceStatus):
            self.devices[decoded.device_id] = decoded
            cycle.device_statuses.append(decoded)
        elif isinstance(decoded, GatewayStatus):
            self.gateways[decoded.gateway_id] = decoded
            cycle.gateway_statuses.append(decoded)


def patient_of(topic: str) -> str | None:
    """The patient id of a samples/status topic, for per-patient reject counts (best effort)."""
    try:
        return parse_topic(topic).patient_id
    except ContractError:
        return None


def deadletter_report(received: ReceivedMessage, reason: str, detail: str, now_ms: int) -> str:
    """The dead-letter report of a rejected message: metadata only, never the payload."""
    return json.dumps(
        {
            "topic": received.topic,
            "reason": reason,
            "detail": detail[:DEADLETTER_DETAIL_CHARS],
            "size_bytes": len(received.payload),
            "received_ms": now_ms,
        }
    )
