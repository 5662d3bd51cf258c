"""One contract suite, run against every SampleStore implementation on real servers."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from influxdb_client import Point, WritePrecision
from pydantic import SecretStr

from flarewatch.localservers import InfluxServer, free_port
from flarewatch.payloads import Sample, SampleBatch
from flarewatch.settings import load_settings
from service.const import INFLUX_ANNOTATION_MEASUREMENT
from service.errors import StoreError
from service.stores.base import SampleStore
from service.stores.factory import create_store
from service.stores.influx import InfluxStore
from service.stores.lineprotocol import batch_lines
from service.stores.sqlite import SqliteStore
from tests.ingest_helpers import stored_seqs

T0 = 1_764_000_000_000


def full_sample(seq: int, time_ms: int, hr: float = 72.5) -> Sample:
    return Sample(
        seq=seq,
        time_ms=time_ms,
        heart_rate_bpm=hr,
        rr_intervals_s=(0.81, 0.8125),
        skin_temperature_c=33.25,
        steps=3,
        acceleration_g=1.01,
        acceleration_sd_g=0.02,
        energy_expended_kj=12,
        contact_detected=True,
        battery_percent=88,
    )


def batch(patient: str, device: str, seqs: range, *, step_ms: int = 1000) -> SampleBatch:
    return SampleBatch(
        patient_id=patient,
        device_id=device,
        samples=tuple(
            Sample(seq=s, time_ms=T0 + s * step_ms, heart_rate_bpm=60.0 + s) for s in seqs
        ),
    )


@pytest.fixture(params=["influx", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SampleStore]:
    """Each implementation, prepared and empty."""
    if request.param == "influx":
        server: InfluxServer = request.getfixturevalue("influxdb")
        impl: SampleStore = InfluxStore(server.url, database="contract")
    else:
        impl = SqliteStore(tmp_path / "sub" / "samples.sqlite3")
    impl.prepare()
    with impl:
        yield impl


def test_written_samples_read_back_with_every_field(store: SampleStore) -> None:
    full = SampleBatch(
        patient_id="p1", device_id="d1", gateway_id="g1", samples=(full_sample(7, T0),)
    )
    sparse = SampleBatch(
        patient_id="p1", device_id="d1", samples=(Sample(seq=8, time_ms=T0 + 1000, steps=0),)
    )
    assert store.write([full, sparse]) == 2
    found = store.samples(device_id="d1")
    assert [(s.patient_id, s.device_id) for s in found] == [("p1", "d1")] * 2
    assert found[0].sample == full.samples[0]
    assert found[1].sample == sparse.samples[0]
    assert isinstance(found[0].sample.heart_rate_bpm, float)
    assert found[0].sample.contact_detected is True


def test_write_is_idempotent(store: SampleStore) -> None:
    first = batch("p1", "d1", range(0, 10))
    store.write([first])
    store.write([first, batch("p1", "d1", range(5, 15))])
    assert store.count() == 15
    seqs = [s.sample.seq for s in store.samples(device_id="d1")]
    assert seqs == list(range(15))


def test_every_sample_is_found_by_seq(store: SampleStore) -> None:
    store.write([batch("p1", "d1", range(20)), batch("p1", "d2", range(20))])
    (hit,) = store.samples(device_id="d2", seq=13)
    assert (hit.device_id, hit.sample.seq, hit.sample.time_ms) == ("d2", 13, T0 + 13_000)
    assert store.samples(device_id="d2", seq=99) == []


def test_filters_by_patient_device_and_time(store: SampleStore) -> None:
    store.write(
        [batch("p1", "d1", range(10)), batch("p2", "d2", range(10)), batch("p2", "d3", range(4))]
    )
    assert store.count(patient_id="p2") == 14
    assert store.count(device_id="d3") == 4
    assert store.count(patient_id="nobody") == 0
    window = store.samples(patient_id="p2", start_ms=T0 + 2000, end_ms=T0 + 5000)
    assert [(s.device_id, s.sample.seq) for s in window] == [
        ("d2", 2),
        ("d2", 3),
        ("d2", 4),
        ("d3", 2),
        ("d3", 3),
    ]


def test_a_patients_time_span_is_their_first_and_last_sample(store: SampleStore) -> None:
    assert store.time_span_ms("p1") is None
    store.write(
        [
            batch("p1", "d1", range(3, 10)),
            batch("p1", "d2", range(1, 4)),
            batch("p2", "d3", range(50)),
        ]
    )
    assert store.time_span_ms("p1") == (T0 + 1000, T0 + 9000)
    assert store.time_span_ms("p2") == (T0, T0 + 49_000)


def test_erasing_a_patient_deletes_only_their_samples(store: SampleStore) -> None:
    store.write(
        [batch("p1", "d1", range(10)), batch("p1", "d4", range(3)), batch("p2", "d2", range(5))]
    )
    assert store.erase_patient("p1") == 13
    assert store.count(patient_id="p1") == 0
    assert store.latest_vitals("p1") == {}
    assert store.last_seqs() == {"d2": 4}
    assert [s.sample.seq for s in store.samples(patient_id="p2")] == list(range(5))
    assert store.erase_patient("p1") == 0  # idempotent: a re-run after an interruption
    store.write([batch("p1", "d1", range(10, 12))])  # a patient added again starts afresh
    assert store.count(patient_id="p1") == 2


def test_erasing_a_patient_also_deletes_their_grafana_alert_marks(influxdb: InfluxServer) -> None:
    store = InfluxStore(influxdb.url, database="marks")
    store.prepare()
    with store:
        for patient in ("p1", "p2"):
            event = f'{INFLUX_ANNOTATION_MEASUREMENT},patient={patient},kind=flush event="opened"'
            store.write_bodies(store.bodies([f"{event} {T0}"]))
        store.erase_patient("p1")
        (result,) = store.query(f"SELECT * FROM {INFLUX_ANNOTATION_MEASUREMENT} GROUP BY patient")
        assert [series["tags"]["patient"] for series in result["series"]] == ["p2"]


def test_last_seq_per_device(store: SampleStore) -> None:
    assert store.last_seqs() == {}
    store.write([batch("p1", "d1", range(10)), batch("p2", "d2", range(3, 40))])
    assert store.last_seqs() == {"d1": 9, "d2": 39}


def test_latest_vitals_takes_newest_value_of_each_field(store: SampleStore) -> None:
    store.write(
        [
            SampleBatch(
                patient_id="p1",
                device_id="d1",
                samples=(
                    full_sample(1, T0, hr=70.0),
                    Sample(seq=2, time_ms=T0 + 1000, heart_rate_bpm=95.0),
                ),
            ),
            batch("p2", "d9", range(3)),
        ]
    )
    latest = store.latest_vitals("p1")
    assert latest["heart_rate_bpm"].value == 95.0
    assert latest["heart_rate_bpm"].time_ms == T0 + 1000
    assert latest["skin_temperature_c"].value == 33.25
    assert latest["skin_temperature_c"].time_ms == T0
    assert latest["contact_detected"].value is True
    assert latest["battery_percent"].value == 88
    assert store.latest_vitals("nobody") == {}


def test_hand_built_line_protocol_matches_influxdb_client_point() -> None:
    sample = full_sample(7, T0)
    (line,) = batch_lines(SampleBatch(patient_id="p1", device_id="d1", samples=(sample,)))
    point = Point("vitals").tag("patient", "p1").tag("device", "d1").time(T0, WritePrecision.MS)
    point.field("seq", sample.seq)
    for name, value in sample.model_dump(exclude={"seq", "time_ms"}, exclude_none=True).items():
        point.field(name, ",".join(map(repr, value)) if name == "rr_intervals_s" else value)

    def fields(text: str) -> tuple[str, set[str], str]:
        head, field_set, stamp = text.split(" ")
        return head, set(field_set.split(",")) - {'"0.8125"'}, stamp

    expected = point.to_line_protocol()
    # Point writes the RR string as "0.81,0.8125" too; the split on "," cuts it the same way.
    assert fields(line) == fields(expected)


def test_unreachable_influxdb_raises_retryable_store_error() -> None:
    store = InfluxStore(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(StoreError, match="is it running") as caught:
        store.write([batch("p1", "d1", range(2))])
    assert caught.value.retryable
    store.close()


@pytest.mark.parametrize("timeout", [False, True], ids=["refused", "silent"])
def test_an_influxdb_url_with_credentials_never_shows_them(timeout: bool) -> None:
    """An unreachable or silent server is named by its address, never by the user:password."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1] if timeout else free_port()
        store = InfluxStore(f"http://flare:S3cret-pw@127.0.0.1:{port}", timeout_s=0.5)
        with pytest.raises(StoreError) as caught:
            store.write([batch("p1", "d1", range(2))])
        store.close()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "S3cret-pw" not in str(caught.value) and "flare:" not in str(caught.value)


def test_influxdb_answers_of_any_length_are_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queries are read in chunks: past a server's row limit, and past the 10,000 points that
    InfluxDB 1.6 flags "partial" in an unchunked answer it sent whole."""
    monkeypatch.setenv("INFLUXDB_HTTP_MAX_ROW_LIMIT", "5")  # over the project's configuration
    with InfluxServer(tmp_path) as server, InfluxStore(server.url) as store:
        store.prepare()
        store.write([batch("p1", "d1", range(12))])
        assert len(store.samples(patient_id="p1", start_ms=0, end_ms=T0 + 10**9)) == 12
        for low in range(0, 25_000, 1000):  # 25,000 more of another band: 3 chunks
            samples = tuple(
                Sample(seq=s, time_ms=T0 + s * 1000, heart_rate_bpm=70.0)
                for s in range(low, low + 1000)
            )
            store.write([SampleBatch(patient_id="p1", device_id="d2", samples=samples)])
        found = store.samples(patient_id="p1", start_ms=0, end_ms=T0 + 10**9)
        assert len(found) == 25_012
        assert [s.sample.seq for s in found if s.device_id == "d2"] == list(range(25_000))
        assert store.count(patient_id="p1") == 25_012


def test_unwritable_sqlite_path_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = SqliteStore(blocker / "samples.sqlite3")
    with pytest.raises(StoreError, match="cannot create"):
        store.prepare()


def test_factory_picks_store_from_settings(tmp_path: Path) -> None:
    sqlite = create_store(load_settings(store={"sqlite_path": tmp_path / "s.db"}))
    influx = create_store(load_settings(influx={"url": "http://127.0.0.1:1"}))
    assert isinstance(sqlite, SqliteStore)
    assert isinstance(influx, InfluxStore)
    sqlite.close()
    influx.close()


def test_influxdb_basic_auth_and_refused_credentials(tmp_path: Path) -> None:
    with InfluxServer(tmp_path, auth_enabled=True) as server:
        # InfluxDB 1.x lets the first (admin) user be created without credentials
        with InfluxStore(server.url) as anonymous:
            anonymous.query("CREATE USER admin WITH PASSWORD 'Str0ng-enough' WITH ALL PRIVILEGES")
            with pytest.raises(StoreError, match="check the token") as refused:
                anonymous.write([batch("p1", "d1", range(3))])
            assert refused.value.status == 401 and refused.value.retryable
        with InfluxStore(
            server.url, username="admin", password=SecretStr("Str0ng-enough")
        ) as authed:
            authed.prepare()
            authed.write([batch("p1", "d1", range(3))])
            assert authed.count() == 3
        with InfluxStore(server.url, username="admin", password=SecretStr("wrong")) as wrong:
            with pytest.raises(StoreError) as caught:
                wrong.count()
            assert caught.value.status == 401


def test_encoded_write_stores_the_same_as_write(store: SampleStore) -> None:
    encoded = store.encode([batch("p1", "d1", range(10)), batch("p2", "d2", range(5))])
    assert encoded.samples == 15
    assert store.write_encoded(encoded) == 15
    store.write_encoded(encoded)  # idempotent too
    assert store.count() == 15
    assert stored_seqs(store, "d2") == list(range(5))


def test_malformed_influx_write_is_not_retryable_and_not_echoed(influxdb: InfluxServer) -> None:
    with InfluxStore(influxdb.url, database="contract") as store:
        store.prepare()
        body = gzip.compress(b"vitals,device=d1,patient=p1 heart_rate_bpm=abc123 1764000000000")
        with pytest.raises(StoreError, match="HTTP 400") as caught:
            store.write_bodies([body])
        assert not caught.value.retryable
        assert "abc123" not in str(caught.value)


def test_an_integer_beyond_64_bits_is_refused_for_good(store: SampleStore) -> None:
    # a caller that skipped the contract's validation (which bounds seq at MAX_SEQ)
    sample = Sample.model_construct(seq=2**63, time_ms=T0, heart_rate_bpm=72.5)
    unchecked = SampleBatch.model_construct(patient_id="p1", device_id="d1", samples=(sample,))
    with pytest.raises(StoreError) as caught:
        store.write([unchecked])
    assert not caught.value.retryable
    assert "72.5" not in str(caught.value)
    store.write([batch("p1", "d1", range(3))])
    assert store.count() == 3


def test_missing_influx_database_is_retryable_with_operator_advice(influxdb: InfluxServer) -> None:
    advice = "create database 'not-created-yet'"
    with InfluxStore(influxdb.url, database="not-created-yet") as store:
        with pytest.raises(StoreError, match=advice) as write_error:
            store.write([batch("p1", "d1", range(2))])
        assert write_error.value.status == 404 and write_error.value.retryable
        with pytest.raises(StoreError, match=advice) as read_error:  # the ingest's start-up read
            store.last_seqs()
        assert read_error.value.retryable
        store.query('CREATE DATABASE "not-created-yet"')  # what the operator does
        store.write([batch("p1", "d1", range(2))])
        assert store.last_seqs() == {"d1": 1}


def test_interval_means_reduce_every_device_of_the_patient_in_the_span(store: SampleStore) -> None:
    minute = T0 - T0 % 60_000  # a whole minute
    store.write(
        [
            SampleBatch(  # minute 0: 60 and 70 (two devices), skin 33 then 34
                patient_id="p1",
                device_id="strap",
                samples=(
                    Sample(seq=1, time_ms=minute + 1_000, heart_rate_bpm=60.0),
                    Sample(seq=2, time_ms=minute + 2_000, skin_temperature_c=33.0),
                    Sample(seq=3, time_ms=minute + 61_000, steps=4),  # minute 1: nothing charted
                    Sample(seq=4, time_ms=minute + 125_000, heart_rate_bpm=90.0),
                    Sample(seq=5, time_ms=minute + 185_000, heart_rate_bpm=99.0),  # past the end
                ),
            ),
            SampleBatch(
                patient_id="p1",
                device_id="watch",
                samples=(
                    Sample(seq=1, time_ms=minute + 59_999, heart_rate_bpm=70.0),
                    Sample(seq=2, time_ms=minute + 30_000, skin_temperature_c=34.0),
                ),
            ),
            batch("p2", "d9", range(3), step_ms=1000),  # another patient, same minutes
        ]
    )
    found = store.interval_means("p1", minute, minute + 180_000)
    assert [(m.start_ms - minute, m.heart_rate_bpm, m.skin_temperature_c) for m in found] == [
        (0, 65.0, 33.5),
        (120_000, 90.0, None),
    ]
    assert store.interval_means("p1", minute + 180_000, minute + 3_600_000) == [
        type(found[0])(minute + 180_000, 99.0, None)
    ]
    assert store.interval_means("nobody", minute, minute + 3_600_000) == []
    # longer intervals (a chart of days), counted from the epoch as the minutes are
    hour = T0 - T0 % 3_600_000
    wide = store.interval_means("p1", hour, hour + 2 * 3_600_000, interval_ms=3_600_000)
    assert [(m.start_ms, m.heart_rate_bpm, m.skin_temperature_c) for m in wide] == [
        (hour, (60.0 + 70.0 + 90.0 + 99.0) / 4, 33.5)
    ]
