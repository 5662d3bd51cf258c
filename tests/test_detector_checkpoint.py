"""Detector baselines survive a service restart (and a damaged checkpoint never stops it)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from flarewatch.payloads import Sample, SampleBatch
from flarewatch.settings import Settings, load_settings
from models.alarm import Alarm, AlarmKind, Severity
from models.artifacts import default_bank
from service.alerts.runtime import AlertingRuntime, detector_state_path
from service.episodes.checkpoint import (
    DEVICES_KEY,
    ERASURES_KEY,
    HELD_KEY,
    SILENCES_KEY,
    DetectorCheckpoint,
    HeldBack,
)
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


def _runtime_settings(tmp_path: Path, state_path: Path) -> Settings:
    return load_settings(
        service={
            "database_url": f"sqlite:///{tmp_path}/service.sqlite3",
            "detector_state_path": str(state_path),
        },
        mqtt={"url": None},
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\0" * 4096,
        b'{"model_version": "fw-detect-1.11.1", "patients": {"p1": {"trac',
        b"\xff\xfe{",
    ],
    ids=["empty", "zeroed-by-power-cut", "truncated", "not-utf8"],
)
def test_service_starts_afresh_over_a_checkpoint_a_crash_left_damaged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "detector-state.json"
    path.write_bytes(content)
    runtime = AlertingRuntime(_runtime_settings(tmp_path, path), serve_api=False)
    try:
        assert runtime.processor.bank.state_dict()["patients"] == {}
        runtime.processor.process(resting_cycle("p1", T0_MS, 1))
    finally:
        runtime.stop()
    assert (tmp_path / "detector-state.json.damaged").read_bytes() == content
    assert "starts afresh" in caplog.text
    assert "p1" in json.loads(path.read_text())["patients"]  # the next save is a good one


def test_a_damaged_checkpoint_that_cannot_be_moved_aside_does_not_stop_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "detector-state.json"
    path.write_text('{"patients": ')
    blocked = tmp_path / "detector-state.json.damaged"  # stands in for a read-only folder
    blocked.mkdir()
    (blocked / "x").write_text("x")
    runtime = AlertingRuntime(_runtime_settings(tmp_path, path), serve_api=False)
    try:
        assert runtime.processor.bank.state_dict()["patients"] == {}
        runtime.processor.process(resting_cycle("p1", T0_MS, 1))
    finally:
        runtime.stop()
    assert "could not be moved aside" in caplog.text
    assert "p1" in json.loads(path.read_text())["patients"]  # overwritten by the next save


def test_a_full_disk_is_warned_of_once_and_neither_stops_processing_nor_shutdown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = tmp_path / "detector-state.json"
    tmp = tmp_path / "detector-state.json.tmp"
    runtime = AlertingRuntime(_runtime_settings(tmp_path, path), serve_api=False)
    try:
        for minute in range(0, 6, 2):  # three saves due, each into a full disk
            tmp.symlink_to("/dev/full")  # every write there fails with ENOSPC
            runtime.processor.process(resting_cycle("p1", T0_MS + minute * 60_000, 2))
            assert not tmp.is_symlink(), "a partial file is left behind"
        assert not path.exists()
        runtime.processor.process(resting_cycle("p1", T0_MS + 6 * 60_000, 2))  # room again
        saved = path.read_text()
        assert "p1" in json.loads(saved)["patients"]
        tmp.symlink_to("/dev/full")
    finally:
        runtime.stop()  # the save at shutdown fails too: no exception, the rest stops
    assert path.read_text() == saved  # the previous checkpoint is kept
    failures = [r for r in caplog.records if "cannot save the detector checkpoint" in r.message]
    assert len(failures) == 2  # once per outage, not once per cycle
    assert all(r.levelno == logging.ERROR for r in failures)
    assert "No space left on device" in failures[0].message
    assert "saved again" in caplog.text


def _learned_state(patient_id: str) -> dict[str, Any]:
    """The saved state of a patient's detector after 20 min of resting data."""
    learned = default_bank()
    cycle = resting_cycle(patient_id, T0_MS, 20)
    learned.update([(b.patient_id, b.samples) for b in cycle.batches])
    state: dict[str, Any] = learned.state_dict()["patients"][patient_id]
    return state


def test_a_checkpoint_of_an_older_model_is_migrated_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    saved = _learned_state("p1")
    for newer in ("calibration", "skin_trend", "flush_trend_since_s"):  # fields of later versions
        saved.pop(newer)
    path = tmp_path / "detector-state.json"
    path.write_text(json.dumps({"model_version": "fw-detect-1.5.0", "patients": {"p1": saved}}))
    bank = default_bank()
    assert DetectorCheckpoint(path).restore(bank) == 1
    restored = bank.state_dict()["patients"]["p1"]
    assert restored["tracker"] == saved["tracker"]  # the baseline is kept
    assert (
        f"saved by model fw-detect-1.5.0, these detectors are {bank.model_version}" in caplog.text
    )


def test_a_checkpoint_of_a_newer_model_starts_afresh_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    saved = _learned_state("p1")
    saved["pulse_wave"] = {"lag_s": 0.2}  # what a later version learns and this one does not know
    path = tmp_path / "detector-state.json"
    path.write_text(json.dumps({"model_version": "fw-detect-9.0.0", "patients": {"p1": saved}}))
    bank = default_bank()
    assert DetectorCheckpoint(path).restore(bank) == 0
    assert bank.state_dict()["patients"] == {}
    assert "fw-detect-9.0.0" in caplog.text and "'p1'" in caplog.text


# -- any value anywhere in a snapshot -----------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def leaf_paths(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path into a JSON value, containers included."""
    if isinstance(value, dict):
        children = [leaf_paths(v, (*path, k)) for k, v in value.items()]
    elif isinstance(value, list):
        children = [leaf_paths(v, (*path, i)) for i, v in enumerate(value)]
    else:
        children = []
    return [path, *(p for c in children for p in c)]


def replaced(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    return [replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A service's snapshot with every part: a patient's baselines, held samples and silences,
    lined-up devices, the erasures it reflects."""
    folder = tmp_path_factory.mktemp("snapshot")
    settings = load_settings(
        service={"database_url": f"sqlite:///{folder}/service.sqlite3"}, mqtt={"url": None}
    )
    runtime = AlertingRuntime(settings, serve_api=False)
    cycle = resting_cycle("p1", T0_MS, 20)
    runtime.processor.process(cycle)
    silence = Alarm("p1", T0_MS / 1000 + 300, AlarmKind.NO_DATA, Severity.WARNING, "v1")
    held = HeldBack(cycle.batches[:1], [silence], {"p1": ["p1-band", "p1-thermo"]})
    assert runtime.processor.checkpoint is not None
    runtime.processor.checkpoint.save(runtime.processor.bank, held)
    state: dict[str, Any] = json.loads(detector_state_path(settings).read_text())
    runtime.stop()
    return {**state, ERASURES_KEY: [1, 2]}


@hypothesis_settings(
    max_examples=int(os.environ.get("FLAREWATCH_SNAPSHOT_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    part=st.sampled_from(
        ["model_version", "patients", ERASURES_KEY, HELD_KEY, SILENCES_KEY, DEVICES_KEY]
    ),
    where=st.integers(0, 10**6),
    value=JSON_VALUES,
)
def test_any_value_anywhere_in_a_snapshot_never_stops_the_service(
    tmp_path: Path, snapshot: dict[str, Any], part: str, where: int, value: Any
) -> None:
    """A snapshot edited by hand, or written by a buggy version: the service starts, scores the
    next samples, and saves a snapshot it can read back; a part that does not fit starts
    afresh or is left out."""
    paths = leaf_paths(snapshot[part], (part,))
    damaged = replaced(snapshot, paths[where % len(paths)], value)
    path = tmp_path / f"state-{where}.json"
    path.write_text(json.dumps(damaged))
    settings = load_settings(
        service={
            "database_url": f"sqlite:///{tmp_path}/service-{where}.sqlite3",
            "detector_state_path": str(path),
        },
        mqtt={"url": None},
    )
    runtime = AlertingRuntime(settings, serve_api=False)
    try:
        runtime.processor.process(resting_cycle("p1", T0_MS + 20 * 60_000, 2))
        runtime.processor.process(IngestCycle(T0_MS + 40 * 60_000))  # 'no data' at the latest
    finally:
        runtime.stop()
    restored = DetectorCheckpoint(path)
    restored.restore(default_bank())
    assert "p1" in json.loads(path.read_text())["patients"]
