"""MQTT topic layout of contract v1: built and parsed in one place.

::

    flarewatch/v1/{patient}/{device}/samples   SampleBatch, QoS 1          collector -> service
    flarewatch/v1/{patient}/{device}/status    DeviceStatus, retained      collector -> service
    flarewatch/v1/_gateways/{gateway}/status   GatewayStatus, retained, Last Will
    flarewatch/v1/{patient}/alerts             alert events                service -> sirens, HA
    flarewatch/v1/{patient}/alerts/ack         acknowledgements            buttons, HA -> service
    flarewatch/v1/_deadletter/{reason}         rejected messages (metadata only, never payloads)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from flarewatch.const import ID_PATTERN, TOPIC_ROOT
from flarewatch.errors import ContractError

GATEWAYS: Final = "_gateways"
DEADLETTER: Final = "_deadletter"

_ID = re.compile(ID_PATTERN)

SAMPLES_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/+/samples"
STATUS_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/+/status"
"""Matches device *and* gateway status topics; :func:`parse_topic` tells them apart."""
ALERTS_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/alerts"
ALERT_ACKS_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/alerts/ack"


class TopicKind(StrEnum):
    """What a topic carries."""

    SAMPLES = "samples"
    DEVICE_STATUS = "status"
    GATEWAY_STATUS = "gateway_status"
    ALERTS = "alerts"
    ALERT_ACK = "alert_ack"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """The parts of a contract topic."""

    kind: TopicKind
    patient_id: str | None = None
    device_id: str | None = None
    gateway_id: str | None = None


def is_valid_id(value: str) -> bool:
    """Tell whether ``value`` may be used as a patient, device or gateway id."""
    return bool(_ID.fullmatch(value))


def _checked(value: str, what: str) -> str:
    if not is_valid_id(value):
        raise ContractError(
            "bad_id",
            f"{what} id {value!r} must match {ID_PATTERN} (letters, digits, '_', '.', '-')",
        )
    return value


def samples_topic(patient_id: str, device_id: str) -> str:
    """Topic a device's sample batches are published on."""
    return f"{TOPIC_ROOT}/{_checked(patient_id, 'patient')}/{_checked(device_id, 'device')}/samples"


def device_status_topic(patient_id: str, device_id: str) -> str:
    """Retained topic holding a device's latest status."""
    return f"{TOPIC_ROOT}/{_checked(patient_id, 'patient')}/{_checked(device_id, 'device')}/status"


def gateway_status_topic(gateway_id: str) -> str:
    """Retained topic holding a gateway's status; also its MQTT Last Will."""
    return f"{TOPIC_ROOT}/{GATEWAYS}/{_checked(gateway_id, 'gateway')}/status"


def alerts_topic(patient_id: str) -> str:
    """Topic the service publishes a patient's alert events on (sirens, home automation)."""
    return f"{TOPIC_ROOT}/{_checked(patient_id, 'patient')}/alerts"


def alert_ack_topic(patient_id: str) -> str:
    """Topic on which a patient's alerts can be acknowledged (a button, a home-automation rule)."""
    return f"{alerts_topic(patient_id)}/ack"


def deadletter_topic(reason: str) -> str:
    """Topic the service reports a rejected message on (metadata only, never the payload)."""
    return f"{TOPIC_ROOT}/{DEADLETTER}/{reason}"


def parse_topic(topic: str) -> ParsedTopic:
    """Split a contract topic into its parts, or raise :class:`ContractError` (``bad_topic``)."""
    parts = topic.split("/")
    root = TOPIC_ROOT.split("/")
    if parts[: len(root)] != root:
        raise ContractError("bad_topic", "not under " + TOPIC_ROOT, topic=topic)
    rest = parts[len(root) :]
    if len(rest) == 3 and rest[0] == GATEWAYS and rest[2] == "status" and is_valid_id(rest[1]):
        return ParsedTopic(TopicKind.GATEWAY_STATUS, gateway_id=rest[1])
    if len(rest) == 2 and rest[1] == "alerts" and is_valid_id(rest[0]):
        return ParsedTopic(TopicKind.ALERTS, patient_id=rest[0])
    if rest[1:] == ["alerts", "ack"] and is_valid_id(rest[0]):
        return ParsedTopic(TopicKind.ALERT_ACK, patient_id=rest[0])
    if len(rest) == 3 and is_valid_id(rest[0]) and is_valid_id(rest[1]):
        if rest[2] == "samples":
            return ParsedTopic(TopicKind.SAMPLES, patient_id=rest[0], device_id=rest[1])
        if rest[2] == "status":
            return ParsedTopic(TopicKind.DEVICE_STATUS, patient_id=rest[0], device_id=rest[1])
    raise ContractError("bad_topic", "unknown topic layout", topic=topic)
