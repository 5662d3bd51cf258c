"""A write the store refuses for good costs only the messages it refuses, never their neighbours.

InfluxDB refuses a point beyond the retention policy (or of a conflicting field type) with HTTP
400 ``partial write``: the contract still accepts samples up to 90 days old, so a gateway
replaying an old outbox into a database with a shorter retention policy meets it. Real Mosquitto
and InfluxDB 1.x.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from flarewatch.localservers import InfluxServer, MosquittoServer
from flarewatch.payloads import Sample, SampleBatch
from flarewatch.settings import MqttSettings
from service.errors import StoreError
from service.ingest import IngestService
from service.processing import IngestCycle, Processor
from service.stores.base import EncodedWrite
from service.stores.influx import InfluxStore
from tests.ingest_helpers import RawPublisher, make_batch, now_ms, stored_seqs, wait_for

RETENTION = "short"


@pytest.fixture
def influx_1h(influxdb: InfluxServer) -> Iterator[InfluxStore]:
    """A store writing into a retention policy of 1 h (the shortest InfluxDB 1.x allows)."""
    with InfluxStore(influxdb.url) as admin:
        admin.prepare()
        admin.query(
            f'CREATE RETENTION POLICY "{RETENTION}" ON "flarewatch" DURATION 1h REPLICATION 1'
        )
    with InfluxStore(influxdb.url, retention_policy=RETENTION) as store:
        yield store


def old_and_live(patient: str, device: str, seqs: range) -> SampleBatch:
    """A batch whose first sample is 2 h old (valid by the contract), the rest taken just now."""
    now = now_ms()
    first, *rest = seqs
    samples = [Sample(seq=first, time_ms=now - 2 * 3_600_000, heart_rate_bpm=70.0)]
    samples += [
        Sample(seq=s, time_ms=now - (seqs[-1] - s) * 1000, heart_rate_bpm=71.0) for s in rest
    ]
    return SampleBatch(patient_id=patient, device_id=device, samples=tuple(samples))


def test_a_refused_request_does_not_stop_the_requests_after_it(
    influxdb: InfluxServer, influx_1h: InfluxStore
) -> None:
    with InfluxStore(influxdb.url, retention_policy=RETENTION, lines_per_request=1) as store:
        with pytest.raises(StoreError) as refused:
            store.write([old_and_live("p1", "d1", range(1, 4))])
        assert not refused.value.retryable and refused.value.status == 400
        assert stored_seqs(store, "d1") == [2, 3]  # the requests after the refused one were sent


class HeldEncoding(InfluxStore):
    """The real store, whose first ``encode`` (on the ingest's decoder thread) waits for a go:
    what arrives meanwhile queues up and is taken into the decoder's next cycle, together."""

    def __init__(self, url: str) -> None:
        super().__init__(url, retention_policy=RETENTION)
        self.held = threading.Event()
        self.go = threading.Event()

    def encode(self, batches: Sequence[SampleBatch]) -> EncodedWrite:
        if not self.held.is_set():
            self.held.set()
            self.go.wait(60)
        return super().encode(batches)


class Recorder(Processor):
    """Records the seqs the processing hook is given, per device."""

    def __init__(self) -> None:
        self.seen: dict[str, list[int]] = {}

    def process(self, cycle: IngestCycle) -> None:
        for batch in cycle.batches:
            self.seen.setdefault(batch.device_id, []).extend(s.seq for s in batch.samples)


def test_a_refused_message_costs_nothing_to_the_others_of_its_cycle(
    mosquitto: MosquittoServer, influxdb: InfluxServer, influx_1h: InfluxStore
) -> None:
    store, seen = HeldEncoding(influxdb.url), Recorder()
    ingest = IngestService(store, MqttSettings(url=mosquitto.url), processor=seen)
    ingest.start()
    raw = RawPublisher(mosquitto.url)
    try:
        assert ingest.wait_ready(15)
        raw.batch(make_batch("p1", "d1", range(0, 3), t0_ms=now_ms() - 10_000))
        assert store.held.wait(10), "the decoder holds its first cycle"
        raw.batch(old_and_live("p2", "d2", range(10, 13)))  # refused: a sample 2 h old
        raw.batch(make_batch("p3", "d3", range(0, 5), t0_ms=now_ms() - 10_000))
        wait_for(lambda: ingest.stats().queue_depth == 2, 10, "both messages queued together")
        store.go.set()

        wait_for(lambda: ingest.stats().unacked_messages == 0, 20, "every message acknowledged")
        wait_for(lambda: ingest.stats().received_messages == 3, 10, "every message counted")
        stats = ingest.stats()
        assert dict(stats.rejected) == {"store_refused": 1}
        assert dict(stats.rejected_by_patient) == {"p2": 1}
        assert stored_seqs(influx_1h, "d3") == list(range(5))
        assert seen.seen == {"d1": [0, 1, 2], "d3": [0, 1, 2, 3, 4]}, "the good ones processed"
        assert stats.stored_by_patient == {"p1": 3, "p3": 5}
    finally:
        raw.close()
        ingest.stop()
