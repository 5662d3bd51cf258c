"""End to end through real Mosquitto and real InfluxDB: nothing lost, nothing doubled, bad input
rejected and counted while good data keeps flowing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from logging import WARNING
from pathlib import Path

import pytest

from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from collector.sources.base import Reading
from flarewatch import topics
from flarewatch.localservers import InfluxServer, MosquittoServer
from flarewatch.payloads import Sample, SampleBatch
from flarewatch.settings import MqttSettings
from service.ingest import IngestService
from service.processing import IngestCycle, Processor
from service.stores.base import EncodedWrite, SampleStore
from service.stores.influx import InfluxStore
from service.stores.sqlite import SqliteStore
from tests.ingest_helpers import (
    T0_MS,
    RawPublisher,
    Subscriber,
    make_batch,
    now_ms,
    stored_seqs,
    wait_for,
)

IngestFactory = Callable[..., IngestService]


@pytest.fixture
def start_ingest(mosquitto: MosquittoServer, influxdb: InfluxServer) -> Iterator[IngestFactory]:
    """Start an ingest (same client id every time: one persistent session), into InfluxDB unless
    another store is given."""
    started: list[IngestService] = []

    def start(
        processor: Processor | None = None, store: SampleStore | None = None
    ) -> IngestService:
        ingest = IngestService(
            store or InfluxStore(influxdb.url), MqttSettings(url=mosquitto.url), processor=processor
        )
        ingest.start()
        assert ingest.wait_ready(15), "ingest did not subscribe"
        started.append(ingest)
        return ingest

    yield start
    for ingest in started:
        ingest.stop()


@pytest.fixture
def store(influxdb: InfluxServer) -> Iterator[InfluxStore]:
    with InfluxStore(influxdb.url) as reader:
        yield reader


def test_every_sample_from_the_gateway_publisher_is_stored_exactly_once(
    start_ingest: IngestFactory, store: InfluxStore, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    ingest = start_ingest()
    devices = {f"patient-{i}": f"band-{i}" for i in range(8)}
    t0 = now_ms() - 600_000
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        publisher = MqttPublisher(MqttSettings(url=mosquitto.url), outbox, gateway_id="gw-1")
        with publisher:
            for chunk in range(5):
                publisher.submit_many(
                    (
                        patient,
                        device,
                        [
                            Reading(
                                time_ms=t0 + (chunk * 60 + k) * 1000, heart_rate_bpm=70.0 + k % 9
                            )
                            for k in range(60)
                        ],
                    )
                    for patient, device in devices.items()
                )
            assert publisher.wait_until_sent(30)
    total = 5 * 60 * len(devices)
    wait_for(lambda: ingest.stats().stored_samples >= total, 30, f"{total} samples stored")
    for patient, device in devices.items():
        seqs = stored_seqs(store, device)
        assert len(seqs) == 300 and seqs == list(range(seqs[0], seqs[0] + 300)), device
        assert store.count(patient_id=patient) == 300
    # at-least-once redelivery of the same batches is filtered, and the store stays exact
    raw = RawPublisher(mosquitto.url)
    first = store.samples(device_id="band-0")[0].sample
    again = make_batch(
        "patient-0",
        "band-0",
        range(first.seq, first.seq + 50),
        t0_ms=first.time_ms,
        seq_origin=first.seq,
    )
    raw.batch(again).wait_for_publish(10)
    wait_for(lambda: ingest.stats().duplicate_samples >= 50, 10, "duplicates counted")
    raw.close()
    assert store.count() == total
    assert ingest.stats().rejected == {}


def test_malformed_messages_are_rejected_and_counted_while_good_data_flows(
    start_ingest: IngestFactory, store: InfluxStore, mosquitto: MosquittoServer
) -> None:
    ingest = start_ingest()
    deadletters = Subscriber(mosquitto.url, f"{topics.TOPIC_ROOT}/{topics.DEADLETTER}/#")
    raw = RawPublisher(mosquitto.url)
    good_topic = topics.samples_topic("p1", "d1")
    now = now_ms()
    sample = {"seq": 10_000, "time_ms": now, "heart_rate_bpm": 71.0}

    def payload(**sample_overrides: object) -> bytes:
        body = {
            "v": 1,
            "patient_id": "p1",
            "device_id": "d1",
            "samples": [sample | sample_overrides],
        }
        return json.dumps(body).encode()

    bad = [
        (good_topic, b"{this is not json", "not_json"),
        (good_topic, payload(heart_rate_bpm="fast"), "invalid"),
        (good_topic, b'{"v": 1, "patient_id": "p1", "samples": []}', "invalid"),
        (
            good_topic,
            b'{"v":1,"patient_id":"p1","device_id":"d1","samples":[{"seq":1,'
            b'"time_ms":%d,"heart_rate_bpm":NaN}]}' % now,
            "invalid",
        ),
        (good_topic, payload(time_ms=now + 5 * 365 * 86_400_000), "invalid"),
        (good_topic, b"[" + b"1," * 500_000 + b"1]", "too_large"),
        (topics.samples_topic("p2", "d2"), payload(), "topic_mismatch"),
        (f"{topics.TOPIC_ROOT}/_nobody/d1/samples", payload(), "bad_topic"),
        (topics.device_status_topic("p1", "d1"), b'{"v": 1}', "invalid"),
    ]
    seq = 0
    for topic, body, _ in bad:
        raw.batch(make_batch("p1", "d1", range(seq, seq + 20)))
        raw.publish(topic, body)
        seq += 20
    raw.batch(make_batch("p1", "d1", range(seq, seq + 20))).wait_for_publish(10)
    seq += 20

    wait_for(lambda: ingest.stats().rejected_total >= len(bad), 20, "every bad message rejected")
    wait_for(lambda: ingest.stats().stored_samples >= seq, 20, "every good sample stored")
    expected: dict[str, int] = {}
    for _, _, reason in bad:
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(ingest.stats().rejected) == expected
    assert stored_seqs(store, "d1") == list(range(seq))
    assert ingest.running

    wait_for(lambda: len(deadletters.messages) >= len(bad), 10, "dead-letter reports")
    reports = list(deadletters.json())
    assert sorted(r["reason"] for r in reports) == sorted(r for _, _, r in bad)
    for report, (topic, body, reason) in zip(reports, bad, strict=True):
        assert set(report) == {"topic", "reason", "detail", "size_bytes", "received_ms"}
        assert (report["topic"], report["reason"], report["size_bytes"]) == (
            topic,
            reason,
            len(body),
        )
    # metadata only: no payload content (values) is ever echoed
    text = b"".join(m for _, m in deadletters.messages)
    assert b"fast" not in text and b"71.0" not in text and b"not json" not in text
    raw.close()
    deadletters.close()


def test_influxdb_outage_loses_nothing(
    start_ingest: IngestFactory,
    store: InfluxStore,
    mosquitto: MosquittoServer,
    influxdb: InfluxServer,
) -> None:
    ingest = start_ingest()
    raw = RawPublisher(mosquitto.url)
    raw.batch(make_batch("p1", "d1", range(0, 100))).wait_for_publish(10)
    wait_for(lambda: ingest.stats().stored_samples >= 100, 20, "first samples stored")

    influxdb.stop()
    for start in range(100, 1600, 10):  # 150 messages: more than the broker lets be in flight
        raw.batch(make_batch("p1", "d1", range(start, start + 10)))
    # ~3 s down: five failed attempts with the backoff doubling from 0.2 s
    wait_for(lambda: ingest.stats().store_errors >= 5, 20, "store errors while InfluxDB is down")
    assert ingest.stats().unacked_messages > 0
    influxdb.start()

    wait_for(lambda: ingest.stats().stored_samples >= 1600, 60, "backlog stored after restart")
    assert stored_seqs(store, "d1") == list(range(1600))
    assert ingest.stats().unacked_messages == 0
    raw.close()


class StallingProcessor(Processor):
    """Blocks the ingest worker until released: a consumer that stops acknowledging."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.seen = 0

    def process(self, cycle: IngestCycle) -> None:
        if cycle.batches:
            self.stalled.set()
            self.release.wait(60)
        self.seen += cycle.sample_count


def test_stalled_consumer_beyond_mosquitto_default_queue_loses_nothing(
    start_ingest: IngestFactory, store: InfluxStore, mosquitto: MosquittoServer
) -> None:
    stall = StallingProcessor()
    ingest = start_ingest(stall)
    raw = RawPublisher(mosquitto.url)
    raw.batch(make_batch("p1", "d1", range(0, 1))).wait_for_publish(10)
    assert stall.stalled.wait(10)
    messages = 2500  # Mosquitto's default max_queued_messages is 1000 (deploy config: no limit)
    infos = [raw.batch(make_batch("p1", "d1", range(s, s + 1))) for s in range(1, messages + 1)]
    for info in infos:
        info.wait_for_publish(30)
    assert ingest.stats().unacked_messages <= 200  # the broker holds the rest, not our memory
    stall.release.set()
    wait_for(lambda: ingest.stats().stored_samples >= messages + 1, 60, "stalled backlog stored")
    assert stored_seqs(store, "d1") == list(range(messages + 1))
    assert stall.seen == messages + 1
    raw.close()


def test_offline_service_receives_the_backlog_of_its_persistent_session(
    start_ingest: IngestFactory, store: InfluxStore, mosquitto: MosquittoServer
) -> None:
    first = start_ingest()
    first.stop()
    raw = RawPublisher(mosquitto.url)
    for info in [raw.batch(make_batch("p1", "d9", range(s, s + 5))) for s in range(0, 6000, 5)]:
        info.wait_for_publish(30)
    second = start_ingest()
    wait_for(lambda: second.stats().stored_samples >= 6000, 60, "offline backlog stored")
    assert stored_seqs(store, "d9") == list(range(6000))
    raw.close()


def test_status_messages_reach_the_processing_hook(
    start_ingest: IngestFactory, mosquitto: MosquittoServer
) -> None:
    cycles: list[IngestCycle] = []

    class Recorder(Processor):
        def process(self, cycle: IngestCycle) -> None:
            cycles.append(cycle)

    ingest = start_ingest(Recorder())
    raw = RawPublisher(mosquitto.url)
    status = {"v": 1, "patient_id": "p1", "device_id": "d1", "time_ms": now_ms(), "state": "online"}
    raw.publish(topics.device_status_topic("p1", "d1"), json.dumps(status).encode())
    raw.publish(
        topics.gateway_status_topic("gw-1"), b'{"v": 1, "gateway_id": "gw-1", "state": "offline"}'
    )
    raw.publish(topics.device_status_topic("p1", "d1"), b"", qos=1)  # retained status cleared
    raw.batch(make_batch("p1", "d1", range(3))).wait_for_publish(10)
    wait_for(lambda: sum(c.sample_count for c in cycles) >= 3, 10, "samples processed")
    devices = [s for c in cycles for s in c.device_statuses]
    gateways = [g for c in cycles for g in c.gateway_statuses]
    assert [(d.device_id, d.state) for d in devices] == [("d1", "online")]
    assert [(g.gateway_id, g.state) for g in gateways] == [("gw-1", "offline")]
    assert ingest.device_statuses()["d1"].state == "online"
    assert ingest.gateway_statuses()["gw-1"].state == "offline"
    assert ingest.stats().rejected == {}
    raw.close()


def test_ingest_into_the_embedded_sqlite_store(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "samples.sqlite3")
    ingest = IngestService(store, MqttSettings(url=mosquitto.url), client_id="sqlite-ingest")
    ingest.start()
    assert ingest.wait_ready(15)
    raw = RawPublisher(mosquitto.url)
    for start in range(0, 1000, 50):
        raw.batch(make_batch("p1", "d1", range(start, start + 50)))
    raw.batch(make_batch("p1", "d1", range(0, 50))).wait_for_publish(10)  # a redelivery
    wait_for(lambda: ingest.stats().received_samples >= 1050, 20, "samples received")
    stats = ingest.stats()
    assert (stats.stored_samples, stats.duplicate_samples) == (1000, 50)
    assert stats.stored_by_patient == {"p1": 1000}
    assert stored_seqs(store, "d1") == list(range(1000))
    ingest.stop()
    raw.close()


def test_broker_restart_with_unacknowledged_messages_loses_nothing(
    start_ingest: IngestFactory, store: InfluxStore, mosquitto: MosquittoServer
) -> None:
    stall = StallingProcessor()
    ingest = start_ingest(stall)
    raw = RawPublisher(mosquitto.url)
    raw.batch(make_batch("p1", "d1", range(0, 1))).wait_for_publish(10)
    assert stall.stalled.wait(10)
    for info in [raw.batch(make_batch("p1", "d1", range(s, s + 2))) for s in range(1, 1001, 2)]:
        info.wait_for_publish(30)
    raw.close()
    mosquitto.restart()  # persisted session and queue survive; in-flight messages are resent
    stall.release.set()
    wait_for(lambda: ingest.stats().connected, 30, "ingest reconnected")
    wait_for(lambda: store.count(device_id="d1") >= 1001, 60, "everything stored after restart")
    assert stored_seqs(store, "d1") == list(range(1001))
    assert stall.seen == 1001  # the processing hook saw every sample exactly once


def test_write_refused_by_influxdb_is_dead_lettered_and_ingest_continues(
    start_ingest: IngestFactory, store: InfluxStore, mosquitto: MosquittoServer
) -> None:
    ingest = start_ingest()
    # someone else wrote `steps` as a float into our measurement: InfluxDB refuses our integers
    conflicting = make_batch("p1", "d1", range(1)).samples[0].time_ms
    store.write_bodies(store.bodies([f"vitals,device=other,patient=other steps=1.5 {conflicting}"]))
    raw = RawPublisher(mosquitto.url)
    raw.batch(make_batch("p1", "d1", range(0, 10))).wait_for_publish(10)
    wait_for(lambda: ingest.stats().rejected.get("store_refused", 0) >= 1, 20, "write refused")
    assert ingest.running and ingest.stats().unacked_messages == 0
    good = SampleBatch(
        patient_id="p2",
        device_id="d2",
        samples=tuple(
            Sample(seq=s, time_ms=T0_MS + s * 1000, heart_rate_bpm=70.0) for s in range(5)
        ),
    )
    raw.batch(good).wait_for_publish(10)
    wait_for(lambda: store.count(device_id="d2") >= 5, 20, "later samples stored")
    raw.close()


def test_seq_beyond_the_contract_is_a_counted_rejection_and_good_data_flows(
    start_ingest: IngestFactory, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "samples.sqlite3")  # SQLite cannot hold an int beyond 64 bits
    ingest = start_ingest(store=store)
    raw = RawPublisher(mosquitto.url)
    raw.batch(make_batch("p1", "d1", range(0, 10)))
    poison = {"v": 1, "patient_id": "p2", "device_id": "d2"}
    poison["samples"] = [{"seq": 2**63, "time_ms": now_ms()}]
    raw.publish(topics.samples_topic("p2", "d2"), json.dumps(poison).encode())
    raw.batch(make_batch("p1", "d1", range(10, 20))).wait_for_publish(10)
    wait_for(lambda: ingest.stats().rejected_total >= 1, 20, "the bad seq rejected")
    wait_for(lambda: ingest.stats().stored_samples >= 20, 20, "every good sample stored")
    assert dict(ingest.stats().rejected) == {"invalid": 1}
    assert stored_seqs(store, "d1") == list(range(20)) and ingest.running
    raw.close()


class BuggySqliteStore(SqliteStore):
    """A real SQLite store whose first writes fail the way a bug would: not with a StoreError,
    and with a message that quotes a vital value."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    def write_encoded(self, encoded: EncodedWrite) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("cannot store heart_rate_bpm=187.5")
        return super().write_encoded(encoded)


def test_unexpected_store_exception_is_retried_like_an_outage_without_logging_data(
    start_ingest: IngestFactory,
    mosquitto: MosquittoServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = BuggySqliteStore(tmp_path / "samples.sqlite3", failures=3)
    ingest = start_ingest(store=store)
    raw = RawPublisher(mosquitto.url)
    raw.batch(make_batch("p1", "d1", range(0, 10))).wait_for_publish(10)
    wait_for(lambda: ingest.stats().stored_samples >= 10, 20, "samples stored after the retries")
    raw.batch(make_batch("p1", "d1", range(10, 20))).wait_for_publish(10)
    wait_for(lambda: ingest.stats().stored_samples >= 20, 20, "later samples stored")
    wait_for(lambda: ingest.stats().unacked_messages == 0, 20, "later samples acknowledged")
    stats = ingest.stats()
    assert (stats.stored_samples, stats.store_errors, dict(stats.rejected)) == (20, 3, {})
    assert stored_seqs(store, "d1") == list(range(20)) and ingest.running
    assert "unexpected RuntimeError" in caplog.text
    assert "187.5" not in caplog.text
    raw.close()


def test_influxdb_database_dropped_mid_run_is_waited_for_and_nothing_lost(
    start_ingest: IngestFactory,
    store: InfluxStore,
    mosquitto: MosquittoServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ingest = start_ingest()
    raw = RawPublisher(mosquitto.url)
    raw.batch(make_batch("p1", "d1", range(0, 10))).wait_for_publish(10)
    wait_for(lambda: ingest.stats().stored_samples >= 10, 20, "first samples stored")

    store.query('DROP DATABASE "flarewatch"')  # an operator's mistake, or a retention script
    for start in range(10, 110, 10):
        raw.batch(make_batch("p1", "d1", range(start, start + 10)))
    wait_for(lambda: ingest.stats().store_errors >= 4, 20, "writes failing on the missing database")
    assert ingest.stats().rejected == {} and ingest.stats().unacked_messages > 0
    store.query('CREATE DATABASE "flarewatch"')  # the operator's fix

    wait_for(lambda: ingest.stats().stored_samples >= 110, 30, "the backlog stored")
    wait_for(lambda: ingest.stats().unacked_messages == 0, 10, "the backlog acknowledged")
    assert stored_seqs(store, "d1") == list(range(10, 110)) and ingest.stats().rejected == {}
    warnings = [r for r in caplog.records if r.name.startswith("service.") and r.levelno >= WARNING]
    assert len(warnings) == 1, "one warning per outage"
    assert "create database 'flarewatch'" in warnings[0].getMessage()
    raw.close()
