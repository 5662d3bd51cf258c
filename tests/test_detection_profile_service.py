"""Detection profiles in the service: stored per patient, set by the admin CLI, applied by the
running service at start and when changed meanwhile, and stamped on the stored episodes."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from flarewatch.cli import main
from flarewatch.errors import ConfigError
from flarewatch.payloads import SampleBatch
from flarewatch.settings import Settings, load_settings
from models.bank import DetectorBank
from models.detector import PatientDetector
from models.profiles import DetectionProfile
from service.alerts.runtime import AlertingRuntime
from service.db import Database
from service.db.care_teams import PolicyUpdate, add_patient
from service.db.models import Episode, Patient
from service.db.session import alembic_config, make_engine
from service.episodes.profile_sync import ProfileSync
from service.processing import IngestCycle
from tests.alerting_helpers import insert_legacy_patient
from tests.test_models_detector import T0, make_samples

T0_MS = int(T0 * 1000)


def admin(url: str, *argv: str) -> int:
    """Run ``flarewatch admin`` on ``url`` (as the separate admin process would)."""
    return main(["admin", "--database-url", url, *argv])


def runtime_settings(url: str, tmp_path: Path) -> Settings:
    return load_settings(
        service={"database_url": url, "detector_state_path": str(tmp_path / "state.json")},
        mqtt={"url": None},
    )


def register(url: str, **profiles: str) -> None:
    db = Database(url)
    with db.session() as session:
        for patient_id, profile in profiles.items():
            add_patient(session, patient_id, T0, PolicyUpdate(detection_profile=profile))
    db.dispose()


def stored_profiles(url: str) -> dict[str, str]:
    db = Database(url)
    with db.session() as session:
        rows = {
            pid: profile
            for pid, profile in session.execute(select(Patient.id, Patient.detection_profile))
        }
    db.dispose()
    return rows


def test_migration_gives_existing_patients_the_balanced_profile(service_db_url):
    engine = make_engine(service_db_url)
    command.upgrade(alembic_config(engine), "0002")  # a database from before the profiles
    with engine.begin() as connection:
        insert_legacy_patient(connection)
    Database(service_db_url).dispose()  # opening migrates to the newest revision
    assert stored_profiles(service_db_url) == {"p1": "balanced"}
    command.downgrade(alembic_config(engine), "0002")
    columns = {c["name"] for c in inspect(engine).get_columns("patients")}
    assert "detection_profile" not in columns and "display_name" in columns
    with engine.connect() as connection:  # the patient itself survives the downgrade
        assert connection.execute(text("SELECT id FROM patients")).scalars().all() == ["p1"]
    engine.dispose()


def test_admin_cli_sets_lists_and_refuses_profiles(service_db_url, capsys):
    url = service_db_url
    assert admin(url, "patient", "add", "alex", "--detection-profile", "sensitive") == 0
    assert admin(url, "patient", "add", "bo") == 0
    capsys.readouterr()
    assert admin(url, "patient", "list") == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split()[-2:] == ["profile", "research"]
    assert {row.split()[0]: row.split()[-2] for row in rows} == {
        "alex": "sensitive",
        "bo": "balanced",
    }
    assert admin(url, "patient", "set", "bo", "--detection-profile", "quiet") == 0
    assert admin(url, "patient", "add", "di", "--detection-profile", "personal") == 0
    assert admin(url, "patient", "set", "alex", "--detection-profile", "loud") == 1
    err = capsys.readouterr().err
    assert "unknown detection profile 'loud'" in err
    assert "sensitive, balanced, personal, quiet" in err
    assert admin(url, "patient", "add", "cy", "--detection-profile", "Sensitive ") == 1
    assert stored_profiles(url) == {"alex": "sensitive", "bo": "quiet", "di": "personal"}


def test_runtime_applies_profiles_at_start_and_follows_changes(service_db_url, tmp_path, caplog):
    url = service_db_url
    register(url, p1="sensitive", p2="balanced")
    bank = DetectorBank(PatientDetector())
    caplog.set_level(logging.INFO, logger="service.episodes.profile_sync")
    runtime = AlertingRuntime(runtime_settings(url, tmp_path), bank=bank, serve_api=False)
    try:
        assert runtime.profiles is not None
        assert bank.profiles == {"p1": DetectionProfile.SENSITIVE}
        assert "patient p1: detection profile sensitive" in caplog.messages
        runtime.processor.process(IngestCycle(now_ms=T0_MS))
        assert admin(url, "patient", "set", "p2", "--detection-profile", "quiet") == 0
        assert admin(url, "patient", "set", "p1", "--detection-profile", "balanced") == 0
        # nothing polled yet: the running detectors are unchanged
        runtime.processor.process(IngestCycle(now_ms=T0_MS + 1000))
        assert bank.profiles == {"p1": DetectionProfile.SENSITIVE}
        # the poller reads the database (its thread does this every PROFILE_REFRESH_S) ...
        assert runtime.profiles.poll()
        assert bank.profiles == {"p1": DetectionProfile.SENSITIVE}  # ... and changes nothing
        # ... the ingest thread applies it at the start of its next cycle
        runtime.processor.process(IngestCycle(now_ms=T0_MS + 2000))
        assert bank.profiles == {"p2": DetectionProfile.QUIET}
        assert "patient p2: detection profile quiet" in caplog.messages
        assert "patient p1: detection profile balanced" in caplog.messages
    finally:
        runtime.stop()


def test_poller_thread_reads_changes_until_stopped(service_db_url):
    url = service_db_url
    register(url, p1="balanced")
    db = Database(url)
    bank = DetectorBank(PatientDetector())
    sync = ProfileSync(db, bank, interval_s=0.02)
    sync.start()
    try:
        assert admin(url, "patient", "set", "p1", "--detection-profile", "quiet") == 0
        deadline = time.monotonic() + 10.0
        while not bank.profiles and time.monotonic() < deadline:
            sync.apply_pending()  # what each ingest cycle does
            time.sleep(0.01)
        assert bank.profiles == {"p1": DetectionProfile.QUIET}
    finally:
        sync.stop()
        db.dispose()
    assert not any(t.name == "flarewatch-profiles" for t in threading.enumerate())


def test_sensitive_patient_episode_carries_the_profile_version(service_db_url, tmp_path):
    url = service_db_url
    register(url, p1="sensitive", p2="balanced")
    bank = DetectorBank(PatientDetector())
    runtime = AlertingRuntime(runtime_settings(url, tmp_path), bank=bank, serve_api=False)
    try:
        samples = make_samples(75, surge_at_min=40, surge_frac=0.30, surge_rise_min=3.0)
        batches = tuple(
            SampleBatch(
                patient_id=pid, device_id=f"{pid}-band", samples=tuple(samples[i : i + 300])
            )
            for pid in ("p1", "p2")
            for i in range(0, len(samples), 300)
        )
        runtime.processor.process(IngestCycle(now_ms=samples[-1].time_ms, batches=batches))
        with runtime.db.session() as session:
            versions = {e.patient_id: e.model_version for e in session.scalars(select(Episode))}
    finally:
        runtime.stop()
    assert versions == {"p1": f"{bank.model_version}@sensitive", "p2": bank.model_version}


def test_bad_profile_is_a_config_error_and_stores_nothing(service_db_url):
    db = Database(service_db_url)
    try:
        for bad in ("loud", "", "BALANCED"):
            with pytest.raises(ConfigError, match="unknown detection profile"), db.session() as s:
                add_patient(s, "p1", T0, PolicyUpdate(detection_profile=bad))
        with db.session() as session:
            assert session.get(Patient, "p1") is None
    finally:
        db.dispose()


def test_restart_keeps_the_baseline_and_the_profile(service_db_url, tmp_path):
    url = service_db_url
    register(url, p1="sensitive")
    settings = runtime_settings(url, tmp_path)
    samples = tuple(make_samples(20))
    first_bank = DetectorBank(PatientDetector())
    first = AlertingRuntime(settings, bank=first_bank, serve_api=False)
    batches = tuple(
        SampleBatch(patient_id="p1", device_id="p1-band", samples=samples[i : i + 300])
        for i in range(0, len(samples), 300)
    )
    first.processor.process(IngestCycle(now_ms=samples[-1].time_ms, batches=batches))
    learned = first_bank.detector("p1").state_dict()
    first.stop()  # saves the checkpoint

    bank = DetectorBank(PatientDetector())
    second = AlertingRuntime(settings, bank=bank, serve_api=False)
    try:
        assert bank.detector("p1").state_dict() == learned
        assert bank.detector("p1").model_version == f"{bank.model_version}@sensitive"
    finally:
        second.stop()
