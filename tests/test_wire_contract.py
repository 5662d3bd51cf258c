"""Wire contract v1: topics, payload validation and the committed JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flarewatch import schema, topics
from flarewatch.errors import ContractError
from flarewatch.payloads import (
    MAX_SEQ,
    DeviceStatus,
    GatewayStatus,
    LinkState,
    Sample,
    SampleBatch,
    decode_device_status,
    decode_gateway_status,
    decode_sample_batch,
    encode,
)

NOW_MS = 1_764_081_600_000


def batch(**overrides: object) -> SampleBatch:
    fields: dict[str, object] = {
        "patient_id": "p1",
        "device_id": "band-1",
        "samples": (
            Sample(seq=1, time_ms=NOW_MS, heart_rate_bpm=71.0, rr_intervals_s=(0.84, 0.85)),
            Sample(seq=2, time_ms=NOW_MS + 1000, skin_temperature_c=33.2, steps=2),
        ),
    }
    fields.update(overrides)
    return SampleBatch.model_validate(fields)


def test_round_trip_keeps_every_field() -> None:
    original = batch()
    assert decode_sample_batch(encode(original), now_ms=NOW_MS) == original


def test_absent_values_are_left_out_of_the_wire() -> None:
    doc = json.loads(encode(batch()))
    assert "skin_temperature_c" not in doc["samples"][0]
    assert doc["v"] == 1


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json at all", "not_json"),
        (b"", "not_json"),
        (b"[]", "invalid"),
        (b'{"v":1,"patient_id":"p1","device_id":"d","samples":[]}', "invalid"),
        (b"x" * (300 * 1024), "too_large"),
    ],
)
def test_garbage_is_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as info:
        decode_sample_batch(payload, now_ms=NOW_MS)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"heart_rate_bpm":71.0', b'"heart_rate_bpm":"71"'),  # wrong type
        (b'"heart_rate_bpm":71.0', b'"heart_rate_bpm":NaN'),  # NaN
        (b'"heart_rate_bpm":71.0', b'"heart_rate_bpm":1e999'),  # infinity
        (b'"heart_rate_bpm":71.0', b'"heart_rate_bpm":900.0'),  # implausible
        (b'"seq":2', b'"seq":1'),  # not increasing
        (b'"patient_id":"p1"', b'"patient_id":"p/+"'),  # wildcard in id
        (b'"steps":2', b'"steps":2,"extra":1'),  # unknown field
        (b'"v":1', b'"v":2'),  # other contract version
    ],
)
def test_invalid_fields_are_rejected(old: bytes, new: bytes) -> None:
    payload = encode(batch())
    assert old in payload
    with pytest.raises(ContractError) as info:
        decode_sample_batch(payload.replace(old, new), now_ms=NOW_MS)
    assert info.value.reason == "invalid"
    assert "71" not in info.value.detail  # never echo values (health data) into logs


def test_clock_checks_reject_future_and_unset_clocks() -> None:
    years_ahead = batch(samples=(Sample(seq=1, time_ms=NOW_MS + 3 * 365 * 86_400_000),))
    with pytest.raises(ContractError, match="future"):
        decode_sample_batch(encode(years_ahead), now_ms=NOW_MS)
    # Without a receiver clock, the same message is structurally valid.
    assert decode_sample_batch(encode(years_ahead)).samples[0].seq == 1
    with pytest.raises(ContractError):
        decode_sample_batch(encode(batch()).replace(str(NOW_MS).encode(), b"1000"), now_ms=NOW_MS)


@pytest.mark.parametrize("seq", [MAX_SEQ + 1, 2**63, 2**64])
def test_seq_beyond_what_every_store_and_json_number_hold_is_rejected(seq: int) -> None:
    body = b'{"v":1,"patient_id":"p1","device_id":"d1","samples":[{"seq":%d,"time_ms":%d}]}'
    assert decode_sample_batch(body % (MAX_SEQ, NOW_MS), now_ms=NOW_MS).samples[0].seq == MAX_SEQ
    with pytest.raises(ContractError) as info:
        decode_sample_batch(body % (seq, NOW_MS), now_ms=NOW_MS)
    assert info.value.reason == "invalid" and "samples.0.seq" in info.value.detail
    status = (
        b'{"v":1,"patient_id":"p1","device_id":"d1","time_ms":%d,"state":"online","last_seq":%d}'
    )
    assert decode_device_status(status % (NOW_MS, MAX_SEQ)).last_seq == MAX_SEQ
    with pytest.raises(ContractError):
        decode_device_status(status % (NOW_MS, seq))


def test_status_messages_round_trip() -> None:
    device = DeviceStatus(
        patient_id="p1",
        device_id="band-1",
        time_ms=NOW_MS,
        state=LinkState.ONLINE,
        battery_percent=80,
    )
    assert decode_device_status(encode(device)) == device
    will = GatewayStatus(gateway_id="gw-1", state=LinkState.OFFLINE)
    assert decode_gateway_status(encode(will)) == will


def test_topics_build_and_parse() -> None:
    topic = topics.samples_topic("p1", "band-1")
    assert topic == "flarewatch/v1/p1/band-1/samples"
    parsed = topics.parse_topic(topic)
    assert (parsed.kind, parsed.patient_id, parsed.device_id) == ("samples", "p1", "band-1")
    gateway = topics.parse_topic(topics.gateway_status_topic("gw-1"))
    assert (gateway.kind, gateway.gateway_id) == (topics.TopicKind.GATEWAY_STATUS, "gw-1")
    status = topics.parse_topic(topics.device_status_topic("p1", "band-1"))
    assert status.kind is topics.TopicKind.DEVICE_STATUS
    assert topics.parse_topic(topics.alerts_topic("p1")).kind is topics.TopicKind.ALERTS
    ack = topics.parse_topic(topics.alert_ack_topic("p1"))
    assert (ack.kind, ack.patient_id) == (topics.TopicKind.ALERT_ACK, "p1")


@pytest.mark.parametrize(
    "bad",
    [
        "other/v1/p/d/samples",
        "flarewatch/v1/p/d/other",
        "flarewatch/v1/_x/d/samples",
        "flarewatch/v1/p",
    ],
)
def test_unknown_topics_are_rejected(bad: str) -> None:
    with pytest.raises(ContractError) as info:
        topics.parse_topic(bad)
    assert info.value.reason == "bad_topic"


@pytest.mark.parametrize("bad_id", ["", "_reserved", "a/b", "a+b", "#", "x" * 65])
def test_ids_that_would_break_topics_are_refused(bad_id: str) -> None:
    with pytest.raises(ContractError):
        topics.samples_topic(bad_id, "d")


def test_committed_json_schema_is_current() -> None:
    committed = Path(schema.DEFAULT_DIR)
    for name, text in schema.render().items():
        path = committed / name
        assert path.exists(), f"{path} missing: run python -m flarewatch.schema"
        assert path.read_text() == text, f"{path} is stale: run python -m flarewatch.schema"
