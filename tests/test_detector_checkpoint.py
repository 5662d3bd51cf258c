"""Detector baselines survive a service restart (and a damaged checkpoint never stops it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flarewatch.payloads import Sample, SampleBatch
from flarewatch.settings import load_settings
from models.artifacts import default_bank
from service.alerts.runtime import AlertingRuntime, detector_state_path
from service.episodes.checkpoint import DetectorCheckpoint
from service.processing import IngestCycle

T0_MS = 1_764_081_600_000


def resting_cycle(patient_id: str, start_ms: int, minutes: int) -> IngestCycle:
    samples = tuple(
        Sample(
            seq=i,
            time_ms=start_ms + i * 1000,
            heart_rate_bpm=62.0 + (i % 7) * 0.3,
            skin_temperature_c=33.0,
            acceleration_sd_g=0.005,
            steps=0,
            contact_detected=True,
        )
        for i in range(minutes * 60)
    )
    batches = tuple(
        SampleBatch(
            patient_id=patient_id, device_id=f"{patient_id}-band", samples=samples[i : i + 600]
        )
        for i in range(0, len(samples), 600)
    )
    return IngestCycle(now_ms=samples[-1].time_ms, batches=batches)


def test_baselines_are_restored_after_a_restart(tmp_path: Path) -> None:
    settings = load_settings(
        service={"database_url": f"sqlite:///{tmp_path}/service.sqlite3"}, mqtt={"url": None}
    )
    assert detector_state_path(settings) == tmp_path / "detector-state.json"
    first = AlertingRuntime(settings, serve_api=False)
    first.processor.process(resting_cycle("p1", T0_MS, 20))
    learned = first.processor.bank.state_dict()
    assert "p1" in learned["patients"]
    first.stop()  # saves
    assert (tmp_path / "detector-state.json").exists()

    second = AlertingRuntime(settings, serve_api=False)
    try:
        assert second.processor.bank.state_dict() == learned
    finally:
        second.stop()


def test_periodic_saves_follow_the_interval(tmp_path: Path) -> None:
    checkpoint = DetectorCheckpoint(tmp_path / "state.json", interval_s=60)
    bank = default_bank()
    assert checkpoint.maybe_save(bank, 1000.0)
    assert not checkpoint.maybe_save(bank, 1030.0)
    assert checkpoint.maybe_save(bank, 1061.0)
    assert json.loads((tmp_path / "state.json").read_text())["model_version"] == bank.model_version


def test_damaged_checkpoint_is_moved_aside_and_detectors_start_afresh(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"patients": {"p1": ')  # cut short by a full disk, say
    bank = default_bank()
    assert DetectorCheckpoint(path).restore(bank) == 0
    assert not path.exists()
    assert (tmp_path / "state.json.damaged").exists()
    assert bank.state_dict()["patients"] == {}


@pytest.mark.parametrize(
    "damaged",
    ['{"patients": []}', '{"patients": "x"}', "[]", '"patients"'],
    ids=["patients-list", "patients-string", "top-list", "top-string"],
)
def test_valid_json_that_is_no_snapshot_is_moved_aside(tmp_path: Path, damaged: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(damaged)
    bank = default_bank()
    assert DetectorCheckpoint(path).restore(bank) == 0
    assert not path.exists()
    assert (tmp_path / "state.json.damaged").read_text() == damaged
    assert bank.state_dict()["patients"] == {}


def test_a_damaged_patient_starts_afresh_and_the_others_are_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    learned = default_bank()
    learned.update([(b.patient_id, b.samples) for b in resting_cycle("p2", T0_MS, 20).batches])
    good = learned.state_dict()["patients"]["p2"]
    path = tmp_path / "state.json"
    damaged = {"p1": "x", "p3": {"tracker": [36.6]}, "p4": [72.5], "p2": good}
    path.write_text(json.dumps({"patients": damaged}))

    bank = default_bank()
    assert DetectorCheckpoint(path).restore(bank) == 1
    assert bank.state_dict()["patients"]["p2"] == good
    assert "p1" not in bank.state_dict()["patients"]
    assert "36.6" not in caplog.text and "72.5" not in caplog.text  # ids only, no health data
    assert "'p1'" in caplog.text


def test_service_starts_over_a_damaged_checkpoint(tmp_path: Path) -> None:
    settings = load_settings(
        service={"database_url": f"sqlite:///{tmp_path}/service.sqlite3"}, mqtt={"url": None}
    )
    detector_state_path(settings).write_text('{"patients": {"p1": "x"}}')
    runtime = AlertingRuntime(settings, serve_api=False)
    try:
        runtime.processor.process(resting_cycle("p1", T0_MS, 1))
        assert "p1" in runtime.processor.bank.state_dict()["patients"]
    finally:
        runtime.stop()
