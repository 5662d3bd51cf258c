"""Pure parts of the ingest: duplicate filter, retry decisions, message validation."""

from __future__ import annotations

import json

import pytest

from flarewatch import topics
from flarewatch.errors import ContractError
from flarewatch.payloads import Sample, SampleBatch
from service.errors import StoreError
from service.ingest.backoff import store_retry_delay_s, warn_outage
from service.ingest.dedup import SeqWindow
from service.ingest.validation import TOPIC_MISMATCH, decode_message
from tests.ingest_helpers import T0_MS, now_ms


def samples(*seqs: int) -> list[Sample]:
    return [Sample(seq=s, time_ms=T0_MS + s * 1000) for s in seqs]


def accepted(window: SeqWindow, device: str, *seqs: int) -> list[int]:
    return [s.seq for s in window.accept(device, samples(*seqs))]


def test_dedup_drops_redelivered_samples_per_device() -> None:
    window = SeqWindow()
    assert accepted(window, "d1", 0, 1, 2) == [0, 1, 2]
    assert accepted(window, "d1", 1, 2, 3) == [3]
    assert accepted(window, "d2", 1, 2) == [1, 2]
    assert window.last_seq("d1") == 3


def test_dedup_accepts_late_samples_once_within_the_window() -> None:
    window = SeqWindow(window=100)
    assert accepted(window, "d1", 0, 1, 10, 11) == [0, 1, 10, 11]
    assert accepted(window, "d1", 5, 6, 12) == [5, 6, 12]
    assert accepted(window, "d1", 5, 6, 7) == [7]
    assert accepted(window, "d1", 100) == [100]
    assert accepted(window, "d1", 8, 9) == [8, 9]  # gaps are kept until memory is trimmed
    assert accepted(window, "d1", 8, 60, 99) == [60, 99]
    for start in range(110, 1000, 10):  # many gaps: the oldest are forgotten
        window.accept("d1", samples(start))
    assert accepted(window, "d1", 2, 995) == [995]
    assert window.jumps == 0 and window.numberings("d1") == 1


def test_dedup_seeded_from_the_store() -> None:
    window = SeqWindow()
    window.seed({"d1": 41})
    assert accepted(window, "d1", 40, 41, 42) == [42]
    assert accepted(window, "d9", 0) == [0]


def test_dedup_gap_memory_stays_bounded() -> None:
    window = SeqWindow(window=50)
    for start in range(0, 100_000, 40):
        window.accept("d1", samples(start))
    assert window.remembered_gaps("d1") <= 100 and window.numberings("d1") == 1


@pytest.mark.parametrize(
    ("status", "retryable", "attempt", "delay"),
    [
        (None, True, 1, 0.2),
        (None, True, 2, 0.4),
        (503, True, 4, 1.6),
        (None, True, 30, 5.0),
        (401, True, 3, 0.8),
        (400, False, 1, None),
    ],
)
def test_store_retry_delay(
    status: int | None, retryable: bool, attempt: int, delay: float | None
) -> None:
    error = StoreError("x", store="influx", retryable=retryable, status=status)
    assert store_retry_delay_s(error, attempt) == delay


def test_decode_checks_topic_against_payload_ids() -> None:
    batch = SampleBatch(patient_id="p1", device_id="d1", samples=tuple(samples(1)))
    body = batch.model_dump_json().encode()
    assert decode_message(topics.samples_topic("p1", "d1"), body, now_ms=now_ms()) == batch
    with pytest.raises(ContractError) as caught:
        decode_message(topics.samples_topic("p1", "d2"), body, now_ms=now_ms())
    assert caught.value.reason == TOPIC_MISMATCH


def test_decode_gateway_status_and_cleared_retained_status() -> None:
    body = json.dumps({"v": 1, "gateway_id": "gw", "state": "online"}).encode()
    assert decode_message(topics.gateway_status_topic("gw"), body, now_ms=0).gateway_id == "gw"
    assert decode_message(topics.device_status_topic("p", "d"), b"", now_ms=0) is None
    with pytest.raises(ContractError) as caught:
        decode_message(topics.gateway_status_topic("other"), body, now_ms=0)
    assert caught.value.reason == TOPIC_MISMATCH
    with pytest.raises(ContractError) as caught:
        decode_message(topics.alerts_topic("p"), body, now_ms=0)
    assert caught.value.reason == "bad_topic"


def test_dedup_new_device_numbering_may_start_anywhere() -> None:
    window = SeqWindow()
    first = 1_764_000_000_000  # the gateway outbox starts a device's seq at the clock
    assert accepted(window, "d1", first, first + 1) == [first, first + 1]
    assert window.remembered_gaps("d1") == 0 and window.jumps == 0
    assert accepted(window, "d1", first + 3) == [first + 3]
    assert accepted(window, "d1", first + 2, first + 2) == [first + 2]


def test_an_outage_is_logged_when_it_starts_and_when_its_cause_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = StoreError("cannot reach InfluxDB", store="influx", retryable=True)
    missing = StoreError("HTTP 404 from /write", store="influx", retryable=True, status=404)
    logged = ""
    for error in (down, down, down, missing, missing):
        logged = warn_outage(error, logged, "store write failed")
    assert [r.getMessage() for r in caplog.records] == [
        f"store write failed: {down}",
        f"store write failed: {missing}",
    ]
