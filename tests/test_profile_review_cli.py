"""``flarewatch admin patient profiles``: every profile replayed on a patient's stored samples.

The samples live in a real store (SQLite, and InfluxDB started by the fixture), the labelled
episode in the service database (SQLite and PostgreSQL), the alarm that opened it comes from the
real detector; ``flarewatch detect --compare-profiles`` does the same for a CSV.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pandas as pd
import pytest
from sqlalchemy import select

from flarewatch.cli import main
from flarewatch.localservers import InfluxServer
from flarewatch.payloads import Sample, SampleBatch
from flarewatch.settings import load_settings
from models.detector import PatientDetector
from service.alerts.manager import AlertManager
from service.db import Database, Episode
from service.episodes import EpisodeEngine
from service.stores.base import SampleStore, StoredSample
from service.stores.factory import create_store, describe_store
from service.stores.reading import stored_batches
from service.stores.sqlite import SqliteStore
from tests.alerting_helpers import service_writes_possible
from tests.test_models_detector import T0, make_samples

KEY = "profile-review-test-key"
DAY_MS = 86_400_000
UNTIL = dt.datetime.fromtimestamp(T0 + 2 * 3600, dt.UTC).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture(params=["sqlite", "influx"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SampleStore]:
    """The store the settings name, as the service would open it; empty."""
    monkeypatch.setenv("FLAREWATCH_CONFIG", "")
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", KEY)
    if request.param == "influx":
        server: InfluxServer = request.getfixturevalue("influxdb")
        monkeypatch.setenv("FLAREWATCH_STORE__KIND", "influx")
        monkeypatch.setenv("FLAREWATCH_INFLUX__URL", server.url)
        monkeypatch.setenv("FLAREWATCH_INFLUX__DATABASE", f"profiles_{uuid4().hex[:8]}")
    else:
        monkeypatch.setenv("FLAREWATCH_STORE__KIND", "sqlite")
        monkeypatch.setenv("FLAREWATCH_STORE__SQLITE_PATH", str(tmp_path / "samples.sqlite3"))
    impl = create_store(load_settings(None))
    impl.prepare()
    with impl:
        yield impl


@pytest.fixture
def admin(service_db_url: str, capsys: pytest.CaptureFixture[str]):
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["admin", "--database-url", service_db_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def write(store: SampleStore, patient: str, device: str, samples: list) -> None:
    store.write(
        [
            SampleBatch(patient_id=patient, device_id=device, samples=tuple(samples[i : i + 200]))
            for i in range(0, len(samples), 200)
        ]
    )


def test_profiles_replayed_on_stored_samples_and_scored_on_the_labelled_reaction(
    store: SampleStore,
    admin,
    service_db_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    assert admin("patient", "add", "p1", "--detection-profile", "quiet")[0] == 0
    samples = make_samples(60, surge_at_min=25, surge_frac=0.3)
    # the first half hour on one band, the rest on its replacement: merged in time order
    write(store, "p1", "band-1", samples[:360])
    write(store, "p1", "band-2", samples[360:])
    write(store, "p2", "band-9", make_samples(60, surge_at_min=10, surge_frac=0.6, seed=3))

    # the patient's own alarm (balanced, as the service would have raised it), labelled
    db = Database(service_db_url, secret_key=KEY)
    engine = EpisodeEngine(
        AlertManager(db, lambda: T0, secret_key=KEY, public_base_url="http://127.0.0.1:9")
    )
    for alarm in PatientDetector(patient_id="p1").update(samples):
        engine.on_alarm(alarm)
    with db.session() as session:
        [episode] = session.scalars(select(Episode)).all()
        episode_id, opened_s = episode.id, episode.opened_s
    db.dispose()
    assert admin("episode", "label", str(episode_id), "--as", "reaction", "--by", "dr")[0] == 0

    code, out, err = admin("patient", "profiles", "p1", "--until", UNTIL, "--days", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert "reactions found" in lines[0]
    rows = {line.split()[0]: line for line in lines[1:5]}
    assert list(rows) == ["sensitive", "balanced", "personal", "quiet"]
    assert lines[4].startswith("quiet *"), "the patient's own profile is starred"
    assert "1/1" in rows["balanced"] and "+0.0 min" in rows["balanced"]
    assert "1/1" in rows["sensitive"] and "-" in rows["sensitive"].split("1/1")[1]
    assert "720 samples" in lines[-1] and "1.0 h of wear" in lines[-1]
    assert "bpm" not in out and "heart" not in out, "counts only, never vital values"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "p1" not in logged, "no patient id in the logs (httpx logs each InfluxDB query)"

    plot = tmp_path / "profiles.png"
    code, out, _ = admin(
        "patient", "profiles", "p1", "--until", UNTIL, "--days", "1", "--json", "--plot", str(plot)
    )
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_size > 5_000
    data = json.loads(out)
    balanced = next(p for p in data["profiles"] if p["profile"] == "balanced")
    assert (balanced["reactions"], balanced["reactions_found"]) == (1, 1)
    assert balanced["median_shift_s"] == 0.0 and data["samples"] == 720
    assert data["first_s"] == samples[0].time_ms / 1000 and opened_s > data["first_s"]


def test_profile_review_errors_are_clear(store: SampleStore, admin) -> None:
    assert admin("patient", "add", "p1")[0] == 0
    code, _, err = admin("patient", "profiles", "nobody", "--until", UNTIL)
    assert code != 0 and "nobody" in err
    code, _, err = admin("patient", "profiles", "p1", "--days", "0")
    assert code != 0 and "--days" in err
    code, _, err = admin("patient", "profiles", "p1", "--until", "last tuesday")
    assert code != 0 and "ISO 8601" in err
    code, out, err = admin("patient", "profiles", "p1", "--until", UNTIL, "--days", "1")
    assert code == 1 and out == "" and "no stored samples of patient p1" in err
    settings = load_settings(None)
    if settings.store.kind == "influx":  # the store read is named, where it is, no credentials
        assert f"InfluxDB store at {settings.influx.url}, database " in err
        assert repr(settings.influx.database) in err
    else:
        assert f"SQLite store {settings.store.sqlite_path}" in err
    assert "FLAREWATCH_STORE__KIND" in err and "--config" in err


def test_detect_compares_profiles_on_a_csv(tmp_path: Path, capsys) -> None:
    samples = make_samples(60, surge_at_min=25, surge_frac=0.3)
    path = tmp_path / "rec.csv"
    pd.DataFrame(
        {
            "time_s": [s.time_ms / 1000 for s in samples],
            "hr_bpm": [s.heart_rate_bpm for s in samples],
        }
    ).to_csv(path, index=False)
    assert main(["detect", "--input", str(path), "--compare-profiles", "--rules-only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:5]] == [
        "sensitive",
        "balanced",
        "personal",
        "quiet",
    ]
    assert all(line.split()[1] == "1" for line in lines[1:5]), lines
    out = tmp_path / "cmp.json"
    assert (
        main(
            [
                "detect",
                "--input",
                str(path),
                "--compare-profiles",
                "--rules-only",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert [p["anaphylaxis"] for p in json.loads(out.read_text())["profiles"]] == [1, 1, 1, 1]
    # a plot is of the comparison: asked for without it, a clear error, not silence
    png = tmp_path / "alone.png"
    assert main(["detect", "--input", str(path), "--rules-only", "--plot", str(png)]) == 1
    assert "add --compare-profiles" in capsys.readouterr().err and not png.exists()


def test_the_store_named_in_messages_never_shows_credentials(monkeypatch) -> None:
    monkeypatch.setenv("FLAREWATCH_CONFIG", "")
    settings = load_settings(
        None,
        influx={"url": "http://reader:hunter2-secret@db.example.org:8086", "database": "fw"},
        store={"kind": "auto"},
    )
    assert (
        describe_store(settings)
        == "the InfluxDB store at http://db.example.org:8086, database 'fw'"
    )


def test_the_service_keeps_writing_alerts_while_a_replay_runs(
    store: SampleStore, admin, service_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay of months takes minutes: the service database must not stay locked meanwhile."""
    assert admin("patient", "add", "p1")[0] == 0
    write(store, "p1", "band-1", make_samples(60, surge_at_min=25, surge_frac=0.3))
    seen: list[bool] = []

    def observed_store(settings: Any) -> SampleStore:
        """The real store, noting at each day read whether the service could write."""
        impl = create_store(settings)
        read = impl.samples

        def samples(**query: Any) -> list[StoredSample]:
            seen.append(service_writes_possible(service_db_url))
            return read(**query)

        monkeypatch.setattr(impl, "samples", samples)
        return impl

    monkeypatch.setattr("service.stores.factory.create_store", observed_store)
    code, out, err = admin("patient", "profiles", "p1", "--until", UNTIL, "--days", "2")
    assert code == 0, err
    assert "720 samples" in out
    assert seen and all(seen), "the service database was locked during the replay"


def test_an_unwritable_plot_is_refused_before_the_replay(
    store: SampleStore, admin, tmp_path: Path
) -> None:
    assert admin("patient", "add", "p1")[0] == 0
    write(store, "p1", "band-1", make_samples(60, surge_at_min=25, surge_frac=0.3))
    for plot in ("/proc/flarewatch-test/alarms.png", str(tmp_path)):  # cannot be made; a folder
        code, out, err = admin(
            "patient", "profiles", "p1", "--until", UNTIL, "--days", "1", "--plot", plot
        )
        assert code == 1 and out == "", err
        assert f"--plot {plot}: cannot write" in err and "Traceback" not in err


def test_an_until_no_clock_can_reach_is_a_clear_error(store: SampleStore, admin) -> None:
    assert admin("patient", "add", "p1")[0] == 0
    for until in ("9999-12-31T23:00", "1969-07-20T20:17"):
        code, out, err = admin("patient", "profiles", "p1", "--until", until)
        assert code == 1 and out == "", err
        assert f"--until {until!r}" in err and "2010" in err


def test_months_of_one_hz_samples_are_not_read_a_day_at_once(tmp_path: Path) -> None:
    """A day of a 1-Hz band is 86,400 samples: held at once, hundreds of MB (per band)."""
    impl = SqliteStore(tmp_path / "samples.sqlite3")
    impl.prepare()
    start_ms = int(T0 * 1000)
    day = [
        Sample(seq=i, time_ms=start_ms + i * 1000, heart_rate_bpm=70.0, skin_temperature_c=33.0)
        for i in range(86_400)
    ]
    with impl:
        write(impl, "p1", "band-1", day)
        tracemalloc.start()
        try:
            read = sum(
                len(batch) for batch in stored_batches(impl, "p1", start_ms, start_ms + DAY_MS)
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert read == len(day)
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB held at once"
