"""A ``seq`` far ahead of its device's numbering (buggy or forged publisher, or a gateway taking a
device over) must not make the device's later genuine samples look like duplicates, at run time
and after a restart, while redeliveries stay duplicates."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flarewatch import topics
from flarewatch.localservers import InfluxServer, MosquittoServer
from flarewatch.payloads import MAX_SEQ, Sample, SampleBatch
from flarewatch.settings import MqttSettings
from service.const import DEDUP_MAX_NUMBERINGS, DEDUP_SEED_SEQS, DEDUP_WINDOW_SEQS
from service.ingest import IngestService
from service.ingest.dedup import SeqWindow
from service.stores.base import SampleStore
from service.stores.influx import InfluxStore
from service.stores.sqlite import SqliteStore
from tests.ingest_helpers import T0_MS, RawPublisher, make_batch, now_ms, stored_seqs, wait_for

POISON = MAX_SEQ  # valid by the contract, far ahead of any real numbering


def samples(*seqs: int) -> list[Sample]:
    return [Sample(seq=s, time_ms=T0_MS + i * 1000) for i, s in enumerate(seqs)]


def accepted(window: SeqWindow, device: str, *seqs: int) -> list[int]:
    return [s.seq for s in window.accept(device, samples(*seqs))]


def test_far_ahead_seq_does_not_hide_later_samples(caplog: pytest.LogCaptureFixture) -> None:
    window = SeqWindow()
    assert accepted(window, "d1", *range(100)) == list(range(100))
    with caplog.at_level(logging.WARNING, logger="service.ingest.dedup"):
        assert accepted(window, "d1", POISON) == [POISON]
    assert accepted(window, "d1", *range(100, 200)) == list(range(100, 200))
    # redeliveries of either numbering are still duplicates
    assert accepted(window, "d1", POISON) == []
    assert accepted(window, "d1", 150, 199, POISON) == []
    assert accepted(window, "d1", 200) == [200]
    assert window.jumps == 1 and window.numberings("d1") == 2
    (record,) = caplog.records
    assert record.getMessage().startswith(f"seq of device d1 jumped from 99 to {POISON}")


def test_far_ahead_seq_inside_a_genuine_batch() -> None:
    window = SeqWindow()
    assert accepted(window, "d1", 0, 1, 2) == [0, 1, 2]
    assert accepted(window, "d1", 3, 4, POISON - 5, POISON) == [3, 4, POISON - 5, POISON]
    assert accepted(window, "d1", 4, 5, 6) == [5, 6]
    assert accepted(window, "d1", 7, POISON - 5, POISON - 4) == [7, POISON - 4]
    assert window.jumps == 1


def test_late_samples_of_the_old_numbering_after_a_takeover_are_accepted_once() -> None:
    """A gateway that takes a device over numbers from its clock; the old outbox still replays."""
    window = SeqWindow()
    assert accepted(window, "d1", 0, 1, 2, 5, 6) == [0, 1, 2, 5, 6]
    taken_over = 1_764_000_000_000
    assert accepted(window, "d1", taken_over, taken_over + 1) == [taken_over, taken_over + 1]
    assert accepted(window, "d1", 3, 4, 5, 7) == [3, 4, 7]  # the old outbox's gap, then on
    assert accepted(window, "d1", 3, taken_over + 1, taken_over + 2) == [taken_over + 2]


def test_far_ahead_first_sample_of_a_new_device() -> None:
    """The poison arrives before anything else of the device: the device's own still pass."""
    window = SeqWindow()
    assert accepted(window, "d1", POISON) == [POISON]
    assert accepted(window, "d1", 0, 1, 2) == [0, 1, 2]
    assert accepted(window, "d1", 2, 3) == [3]
    assert accepted(window, "d1", POISON) == []
    assert window.jumps == 1


def test_a_jump_of_exactly_the_window_is_no_jump_and_loses_nothing() -> None:
    window = SeqWindow()
    assert accepted(window, "d1", 0) == [0]
    assert accepted(window, "d1", DEDUP_WINDOW_SEQS) == [DEDUP_WINDOW_SEQS]
    assert accepted(window, "d1", *range(1, 100)) == list(range(1, 100))  # remembered as gaps
    assert window.jumps == 0
    assert accepted(window, "d1", 2 * DEDUP_WINDOW_SEQS + 1) == [2 * DEDUP_WINDOW_SEQS + 1]
    assert window.jumps == 1


def test_seeded_from_the_stores_recent_seqs_with_a_poisoned_sample() -> None:
    window = SeqWindow()
    window.seed({"d1": [*range(900, 1000), POISON], "d2": 41})
    assert accepted(window, "d1", 998, 999, 1000, 1001) == [1000, 1001]
    assert accepted(window, "d1", 950, 951, POISON) == []
    assert accepted(window, "d1", 12) == []  # below what was read: in the store already
    assert accepted(window, "d2", 40, 41, 42) == [42]
    assert window.jumps == 0


def test_many_jumps_keep_memory_bounded_and_the_devices_own_numbering() -> None:
    window = SeqWindow()
    assert accepted(window, "d1", *range(500)) == list(range(500))
    spread = [POISON - i * 10 * DEDUP_WINDOW_SEQS for i in range(999, -1, -1)]
    assert accepted(window, "d1", *spread) == spread  # one message, 1000 jumps
    assert window.numberings("d1") == DEDUP_MAX_NUMBERINGS
    assert accepted(window, "d1", *range(400, 600)) == list(range(500, 600))
    assert window.jumps == 1000


# -- through the ingest, with the real stores ----------------------------------------------------


def _poison(patient: str, device: str) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "patient_id": patient,
            "device_id": device,
            "samples": [{"seq": POISON, "time_ms": now_ms() - 60_000, "heart_rate_bpm": 61.0}],
        }
    ).encode()


def _ingest(store: SampleStore, mosquitto: MosquittoServer, client_id: str) -> IngestService:
    ingest = IngestService(store, MqttSettings(url=mosquitto.url), client_id=client_id)
    ingest.start()
    assert ingest.wait_ready(15), "ingest did not subscribe"
    return ingest


def _genuine(start: int, stop: int) -> SampleBatch:
    return make_batch("p1", "d1", range(start, stop))


StoreFactory = Callable[[], SampleStore]


@pytest.fixture(params=["sqlite", "influx"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens a new, prepared store on the same database each time (an ingest closes its own)."""
    opened: list[SampleStore] = []

    def open_() -> SampleStore:
        if request.param == "influx":
            server: InfluxServer = request.getfixturevalue("influxdb")
            store: SampleStore = InfluxStore(server.url)
        else:
            store = SqliteStore(tmp_path / "samples.sqlite3")
        store.prepare()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def test_genuine_samples_after_a_poisoned_message_are_stored_exactly_once(
    open_store: StoreFactory, mosquitto: MosquittoServer
) -> None:
    """At run time and after a restart (seeded from the store), with redeliveries of both."""
    raw = RawPublisher(mosquitto.url)
    reader = open_store()
    ingest = _ingest(open_store(), mosquitto, "poison-ingest")
    raw.batch(_genuine(0, 50))
    raw.publish(topics.samples_topic("p1", "d1"), _poison("p1", "d1"))
    raw.batch(_genuine(50, 100))
    raw.batch(_genuine(0, 50))  # redeliveries
    raw.publish(topics.samples_topic("p1", "d1"), _poison("p1", "d1")).wait_for_publish(10)
    wait_for(lambda: ingest.stats().received_samples >= 152, 30, "every sample received")
    stats = ingest.stats()
    assert (stats.stored_samples, stats.duplicate_samples, stats.seq_jumps) == (101, 51, 1)
    assert stored_seqs(reader, "d1") == [*range(100), POISON]
    ingest.stop()

    restarted = _ingest(open_store(), mosquitto, "poison-ingest")
    raw.batch(_genuine(100, 150))
    raw.batch(_genuine(60, 100))  # redeliveries after the restart
    raw.publish(topics.samples_topic("p1", "d1"), _poison("p1", "d1")).wait_for_publish(10)
    wait_for(lambda: restarted.stats().received_samples >= 91, 30, "every sample received")
    stats = restarted.stats()
    # 41 redeliveries at least: on a loaded machine the broker may also hand the new session
    # what the first one received last but had not acknowledged yet (at least once), and the
    # publisher may resend what it was not sure of; each is one more duplicate, never a sample
    assert (stats.stored_samples, stats.seq_jumps) == (50, 0)
    assert stats.duplicate_samples >= 41
    assert stored_seqs(reader, "d1") == [*range(150), POISON]
    restarted.stop()
    raw.close()


def test_recent_seqs_of_the_real_stores(open_store: StoreFactory) -> None:
    """The seed of the duplicate filter: the highest and the most recent numbers, ascending.

    Recent by ``seq`` (SQLite) or by time (InfluxDB): here both orders agree for the genuine
    numbering, and the far-ahead sample is the oldest in time, so only its being the highest
    brings it in.
    """
    real_store = open_store()
    assert real_store.recent_seqs(DEDUP_SEED_SEQS) == {}
    real_store.write([_genuine(0, 30), make_batch("p2", "d2", range(5, 8))])
    poison = Sample(seq=POISON, time_ms=T0_MS - 500)
    real_store.write([SampleBatch(patient_id="p1", device_id="d1", samples=(poison,))])
    recent = real_store.recent_seqs(4)
    assert recent["d2"] == [5, 6, 7]
    assert recent["d1"][-4:] == [27, 28, 29, POISON]
    assert set(recent["d1"]) <= {*range(30), POISON} and len(recent["d1"]) <= 5
    assert recent["d1"] == sorted(recent["d1"])
