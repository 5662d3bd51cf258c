"""Detector baselines survive a service restart (and a damaged checkpoint never stops it)."""

from __future__ import annotations

import json
from pathlib import Path

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
