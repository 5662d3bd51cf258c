"""``flarewatch admin research export``: only consenting patients, nothing that names them, times
moved back by whole weeks, and a folder ``flarewatch evaluate`` reads as it is."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from flarewatch.cli import main
from flarewatch.payloads import Sample, SampleBatch
from models.alarm import Alarm, AlarmKind, Severity
from models.bank import DetectorBank
from models.const import MODEL_VERSION
from models.detector import PatientDetector
from models.labels import REAL_SUBJECT_PREFIX, load_labelled_onsets
from models.study_labels import load_study, study_onsets
from service import research_cli
from service.db import Database
from service.db.models import ResearchExportSubject
from service.episodes import EpisodeEngine
from service.pseudonyms import SHIFT_MIN_WEEKS, SHIFT_SPAN_WEEKS, WEEK_S, pseudonym, time_shift_s
from service.stores.sqlite import SqliteStore
from tests.alerting_helpers import SECRET, FakeClock, build_stack

DAY_S = 86_400.0
T0 = float(int(time.time() // DAY_S) * DAY_S) - 3 * DAY_S
"""Midnight UTC three days ago: the episodes happen on that day."""


@pytest.fixture
def admin(service_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", SECRET)
    monkeypatch.setenv("FLAREWATCH_STORE__SQLITE_PATH", str(tmp_path / "samples.sqlite3"))
    monkeypatch.delenv("FLAREWATCH_INFLUX__URL", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["admin", "--database-url", service_db_url, *argv])
        return code, *_read(run.capsys)

    run.url = service_db_url
    return run


def _read(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.fixture(autouse=True)
def _capsys(admin: Any, capsys: pytest.CaptureFixture[str]) -> None:
    admin.capsys = capsys


def episode(
    url: str,
    patient_id: str,
    onset_s: float,
    minutes: float,
    kind: AlarmKind,
    evidence: dict[str, float] | None = None,
    model_version: str = "fw-test",
) -> None:
    """A closed episode: its onset alarm, then the recovery ``minutes`` later."""
    clock = FakeClock(onset_s)
    stack = build_stack(url, clock)
    try:
        engine = EpisodeEngine(stack.manager)
        engine.on_alarm(
            Alarm(
                patient_id, onset_s, kind, Severity.CRITICAL, model_version, evidence=evidence or {}
            )
        )
        clock.advance(minutes * 60)
        engine.on_alarm(
            Alarm(patient_id, onset_s + minutes * 60, kind, Severity.CRITICAL, "fw-test", True)
        )
    finally:
        stack.close()


def store_day(tmp_path: Path, patient_id: str, device_id: str) -> None:
    """A day of 15-s heart rate and skin temperature from T0."""
    samples = tuple(
        Sample(
            seq=i,
            time_ms=int((T0 + i * 15) * 1000),
            heart_rate_bpm=62.0 + (i % 7),
            skin_temperature_c=32.5,
        )
        for i in range(5760)
    )
    with SqliteStore(tmp_path / "samples.sqlite3") as store:
        store.write(
            [
                SampleBatch(
                    patient_id=patient_id, device_id=device_id, samples=samples[i : i + 1000]
                )
                for i in range(0, len(samples), 1000)
            ]
        )


def read_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode()


def iso(time_s: float) -> str:
    return dt.datetime.fromtimestamp(time_s, dt.UTC).isoformat()


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(read_text(path).splitlines()))


@pytest.fixture
def world(admin: Any, tmp_path: Path) -> Any:
    """Alex consented (a reaction with its first sign, a false alarm and a reaction the
    detectors missed), Bo did not, Cy consented then withdrew."""
    assert (
        admin("patient", "add", "alex", "--name", "Alex Doe", "--research-consent", "yes")[0] == 0
    )
    assert admin("patient", "add", "bo", "--name", "Bo Roe")[0] == 0
    assert admin("patient", "add", "cy", "--research-consent", "yes")[0] == 0
    assert admin("patient", "set", "cy", "--research-consent", "no")[0] == 0
    for patient_id in ("alex", "bo", "cy"):
        assert admin("device", "add", patient_id, f"{patient_id}-band")[0] == 0
        store_day(tmp_path, patient_id, f"{patient_id}-band")
    episode(admin.url, "alex", T0 + 10 * 3600, 20, AlarmKind.ANAPHYLAXIS)  # episode 1
    episode(admin.url, "alex", T0 + 16 * 3600, 10, AlarmKind.FLUSH)  # episode 2
    episode(admin.url, "bo", T0 + 11 * 3600, 20, AlarmKind.ANAPHYLAXIS)  # 3
    episode(admin.url, "cy", T0 + 12 * 3600, 20, AlarmKind.FLUSH)  # 4
    first_sign = iso(T0 + 10 * 3600 - 300)
    assert admin("episode", "label", "1", "--as", "reaction", "--first-sign", first_sign)[0] == 0
    missed = ("--kind", "flush", "--onset", iso(T0 + 20 * 3600))
    assert admin("episode", "add", "alex", *missed, "--by", "Dr Ann")[0] == 0
    assert admin("episode", "label", "2", "--as", "false-alarm")[0] == 0
    assert admin("episode", "label", "3", "--as", "reaction")[0] == 0
    return admin


def test_only_consenting_patients_go_out_under_pseudonyms_and_shifted_times(
    world: Any, tmp_path: Path
) -> None:
    out = tmp_path / "study"
    code, stdout, _ = world("research", "export", "--out", str(out))
    assert code == 0
    assert "3 episodes of 1 consenting patients" in stdout
    assert "2 real reactions in episodes.csv" in stdout
    assert "2 episodes of patients without research consent left out" in stdout

    alex = pseudonym(SECRET, "alex")
    assert sorted(p.name for p in (out / "recordings").iterdir()) == [f"{alex}.csv.gz"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for path in out.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            text = read_text(path)
            for name in ("alex", "Alex", "Doe", "bo", "cy", "band", "fw.sqlite3"):
                assert name not in text, (name, path)

    shift_s = time_shift_s(SECRET, "alex")
    assert shift_s % WEEK_S == 0
    assert SHIFT_MIN_WEEKS * WEEK_S <= shift_s < (SHIFT_MIN_WEEKS + SHIFT_SPAN_WEEKS) * WEEK_S
    recording = rows(out / "recordings" / f"{alex}.csv.gz")
    times = [float(r["time_s"]) for r in recording]
    # 2 h before each episode's first sign, 30 min after its end; the three windows apart
    first_window = (T0 + 7 * 3600 + 55 * 60 - shift_s, T0 + 10 * 3600 + 50 * 60 - shift_s)
    assert times[0] == pytest.approx(first_window[0], abs=15)
    assert max(t for t in times if t < first_window[1] + 60) == pytest.approx(
        first_window[1], abs=15
    )
    assert len(recording) == (175 + 160 + 180) * 4  # minutes of the windows, 4 samples each
    assert set(recording[0]) >= {"time_s", "hr_bpm", "skin_temp_c"}

    reactions = rows(out / "episodes.csv")
    assert reactions == [
        {
            "subject": alex,
            "onset_s": f"{T0 + 10 * 3600 - 300 - shift_s:.3f}",  # the first sign
            "end_s": f"{T0 + 10 * 3600 + 20 * 60 - shift_s:.3f}",
            "kind": "anaphylaxis",
            "onset_from": "first_sign",
        },
        {
            "subject": alex,
            "onset_s": f"{T0 + 20 * 3600 - shift_s:.3f}",
            "end_s": f"{T0 + 20 * 3600 + 30 * 60 - shift_s:.3f}",
            "kind": "flush",
            "onset_from": "added",  # a reaction the detectors missed, added by hand
        },
    ]
    alarms = rows(out / "alarms.csv")
    assert [(a["kind"], a["label"], a["in_episodes_csv"]) for a in alarms] == [
        ("anaphylaxis", "reaction", "1"),
        ("flush", "false_alarm", "0"),
        ("flush", "reaction", "1"),
    ]
    assert [a["alarm_s"] for a in alarms] == [
        f"{T0 + 10 * 3600 - shift_s:.3f}",
        f"{T0 + 16 * 3600 - shift_s:.3f}",
        "",  # the detectors raised no alarm for it
    ]
    assert [a["model_version"] for a in alarms] == ["fw-test", "fw-test", "manual"]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["subjects"] == 1 and manifest["samples"] == len(recording)


def test_the_export_is_what_evaluate_reads(world: Any, tmp_path: Path) -> None:
    out = tmp_path / "study"
    assert world("research", "export", "--out", str(out))[0] == 0
    report = tmp_path / "report"
    code = main(
        [
            "evaluate",
            "--recordings",
            str(out / "recordings"),
            "--episodes",
            str(out / "episodes.csv"),
            "--no-inject",
            "--out",
            str(report),
        ]
    )
    assert code == 0
    result = json.loads((report / "evaluation-own.json").read_text())
    # the real reaction is scored (the synthetic calm signals hold no surge, so it is missed)
    assert result["real"]["anaphylaxis"]["episodes"] == 1
    assert result["real"]["flush"]["episodes"] == 1  # the missed one; a false alarm is not
    assert len(result["recordings"]) == 1


def test_a_withdrawn_consent_is_audited_and_listed(world: Any) -> None:
    out = world("audit", "--patient", "cy")[1]
    assert "research_consent_given" in out and "research_consent_withdrawn" in out
    out = world("patient", "list")[1]
    research = {line.split()[0]: line.split()[-1] for line in out.splitlines()[1:] if line.strip()}
    assert research["alex"] == "yes" and research["bo"] == "no" and research["cy"] == "no"


def test_an_existing_folder_an_unknown_time_and_the_demo_key_are_refused(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    code, _, err = world("research", "export", "--out", str(taken))
    assert code == 1 and "exists and is not an empty folder" in err
    assert (taken / "notes.txt").read_text() == "mine"
    code, _, err = world("research", "export", "--out", str(tmp_path / "x"), "--since", "soon")
    assert code == 1 and "not an ISO 8601 time" in err
    code, _, err = world(
        "research",
        "export",
        "--out",
        str(tmp_path / "x"),
        "--since",
        "2026-11-20",
        "--until",
        "2026-11-01",
    )
    assert code == 1 and "--since must be before --until" in err
    monkeypatch.delenv("FLAREWATCH_SERVICE__SECRET_KEY")
    code, _, err = world("research", "export", "--out", str(tmp_path / "x"))
    assert code == 1 and "secret" in err.lower()
    assert not (tmp_path / "x").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_whole_recordings_give_the_days_between_episodes_too(world: Any, tmp_path: Path) -> None:
    out = tmp_path / "study"
    assert world("research", "export", "--out", str(out), "--whole")[0] == 0
    alex = pseudonym(SECRET, "alex")
    recording = rows(out / "recordings" / f"{alex}.csv.gz")
    assert len(recording) == 5760  # the whole stored day, not the windows around episodes
    shift_s = time_shift_s(SECRET, "alex")
    assert float(recording[0]["time_s"]) == pytest.approx(T0 - shift_s)
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["recordings"] == "each patient's whole recording"
    # a period: the recording is cut to it
    out = tmp_path / "morning"
    period = ("--since", iso(T0 + 6 * 3600), "--until", iso(T0 + 12 * 3600))
    assert world("research", "export", "--out", str(out), "--whole", *period)[0] == 0
    assert len(rows(out / "recordings" / f"{alex}.csv.gz")) == 6 * 3600 // 15


def test_a_whole_export_from_after_a_first_sign_keeps_that_reaction_and_its_start(
    world: Any, tmp_path: Path
) -> None:
    """Episode 1's alarm is in the period, its first sign 5 min before it is not."""
    out = tmp_path / "study"
    since = ("--since", iso(T0 + 10 * 3600 - 60))
    code, stdout, _ = world("research", "export", "--out", str(out), "--whole", *since)
    assert code == 0 and "without stored samples" not in stdout
    alex, shift_s = pseudonym(SECRET, "alex"), time_shift_s(SECRET, "alex")
    onset_s = T0 + 10 * 3600 - 300 - shift_s
    assert rows(out / "episodes.csv")[0]["onset_s"] == f"{onset_s:.3f}"
    recording = rows(out / "recordings" / f"{alex}.csv.gz")
    assert float(recording[0]["time_s"]) == pytest.approx(onset_s)


def test_a_reaction_added_by_mistake_and_withdrawn_is_not_exported(
    world: Any, tmp_path: Path
) -> None:
    """Labelled no reaction after all, it is no false alarm either: nothing raised an alarm."""
    code, out, err = world(
        "episode", "add", "alex", "--kind", "flush", "--onset", iso(T0 + 22 * 3600)
    )
    assert code == 0, err
    assert world("episode", "label", out.split()[1], "--as", "false-alarm")[0] == 0
    study = tmp_path / "study"
    code, stdout, _ = world("research", "export", "--out", str(study))
    assert code == 0 and "3 episodes of 1 consenting patients" in stdout
    assert [a["model_version"] for a in rows(study / "alarms.csv")] == [
        "fw-test",
        "fw-test",
        "manual",
    ]


def subject_rows(url: str) -> list[tuple[str, str, str | None, float | None]]:
    """The register's rows: (export, subject, patient id, recalled_s)."""
    db = Database(url, secret_key=SECRET)
    try:
        with db.session() as session:
            return [
                (r.export_id, r.subject, r.patient_id, r.recalled_s)
                for r in session.scalars(select(ResearchExportSubject))
            ]
    finally:
        db.dispose()


def exported(world: Any, out: Path) -> tuple[Path, str]:
    """A research export written to ``out``; the folder and its export id."""
    assert world("research", "export", "--out", str(out))[0] == 0
    return out, json.loads((out / "export.json").read_text())["export_id"]


def test_every_export_is_registered_and_listed(world: Any, tmp_path: Path) -> None:
    first, second = tmp_path / "study", tmp_path / "whole"
    code, stdout, _ = world("research", "export", "--out", str(first))
    assert code == 0
    export_id = json.loads((first / "export.json").read_text())["export_id"]
    assert f"registered as export {export_id}" in stdout
    assert world("research", "export", "--out", str(second), "--whole")[0] == 0
    second_id = json.loads((second / "export.json").read_text())["export_id"]
    assert second_id != export_id

    code, listing, _ = world("research", "exports")
    assert code == 0
    header, *lines = listing.splitlines()
    assert header.split()[:4] == ["export", "time", "period", "subjects"]
    assert [line.split()[0] for line in lines] == [export_id, second_id]
    assert lines[0].endswith(str(first)) and "windows" in lines[0]
    assert lines[1].endswith(str(second)) and "whole" in lines[1]
    assert " 1 " in lines[0] and " 3 " in lines[0]  # one subject, three episodes
    alex = pseudonym(SECRET, "alex")
    assert subject_rows(world.url) == [
        (export_id, alex, "alex", None),
        (second_id, alex, "alex", None),
    ]

    audit = world("audit")[1]
    assert "research_exported" in audit
    trail = world("audit", "--patient", "alex")[1]  # their copy shows whom their data went to
    assert "research_export_included" in trail and export_id in trail
    assert "research_export" not in world("audit", "--patient", "cy")[1]


def test_withdrawing_consent_names_the_exports_and_the_subject_to_recall(
    world: Any, tmp_path: Path
) -> None:
    out, export_id = exported(world, tmp_path / "study")
    alex = pseudonym(SECRET, "alex")

    code, stdout, _ = world("patient", "set", "alex", "--research-consent", "no")
    assert code == 0
    assert "research consent withdrawn: patient alex was in 1 research export(s)" in stdout
    assert f"delete subject {alex}" in stdout
    assert f"export {export_id} of " in stdout and str(out) in stdout
    [(_, _, patient_id, recalled_s)] = subject_rows(world.url)
    assert patient_id == "alex" and recalled_s is not None  # still a patient: found by id
    trail = world("audit", "--patient", "alex")[1]
    assert "research_recall" in trail and "consent_withdrawn" in trail
    assert "1 (1 recalled)" in world("research", "exports")[1]

    # no change, no recall; consenting again and withdrawing again names it again, as asked
    stdout = world("patient", "set", "alex", "--research-consent", "no")[1]
    assert "research export" not in stdout
    assert world("patient", "set", "alex", "--research-consent", "yes")[0] == 0
    stdout = world("patient", "set", "alex", "--research-consent", "no")[1]
    assert f"export {export_id}" in stdout and "recall asked before" in stdout
    # a patient in no export: nothing to recall
    assert "research export" not in world("patient", "set", "bo", "--research-consent", "no")[1]


def test_erasing_a_patient_names_the_exports_and_keeps_only_the_subject(
    world: Any, tmp_path: Path
) -> None:
    _, export_id = exported(world, tmp_path / "study")
    alex = pseudonym(SECRET, "alex")

    code, stdout, _ = world("patient", "erase", "alex")  # what it would do
    assert code == 0 and f"export {export_id}" in stdout and f"subject {alex}" in stdout
    assert subject_rows(world.url) == [(export_id, alex, "alex", None)]

    code, stdout, err = world("patient", "erase", "alex", "--yes")
    assert code == 0, err
    assert "erased: patient alex was in 1 research export(s)" in stdout
    assert f"delete subject {alex}" in stdout and f"export {export_id}" in stdout
    [(_, subject, patient_id, recalled_s)] = subject_rows(world.url)
    assert (subject, patient_id) == (alex, None) and recalled_s is not None
    assert "1 (1 recalled)" in world("research", "exports")[1]
    audit = world("audit")[1]
    recall = [line for line in audit.splitlines() if "research_recall" in line]
    assert len(recall) == 1 and "alex" not in recall[0] and alex in recall[0]
    # registered again, the id finds none of the old exports
    assert world("patient", "add", "alex", "--research-consent", "yes")[0] == 0
    assert "research export" not in world("patient", "set", "alex", "--research-consent", "no")[1]


def test_an_export_that_cannot_be_registered_is_not_left_behind(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails as the export is registered (a scripted failure: the real one cannot
    be timed between the samples read and the rename)."""

    def refuse(*_: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(research_cli, "register_export", refuse)
    out = tmp_path / "study"
    code, _, err = world("research", "export", "--out", str(out))
    assert code == 1 and "could not be registered" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.glob(".study*")) == []
    assert subject_rows(world.url) == []


def test_a_label_export_handed_over_with_it_gives_no_shift_away(world: Any, tmp_path: Path) -> None:
    """The label export moves each patient's times by their research shift, keys episodes by
    no database id, and lists no order across patients; the trainer reads it as before."""
    assert world("patient", "set", "bo", "--research-consent", "yes")[0] == 0
    onset = {"onset": 1.0, "surge_score": 80.0, "hr_trend_bpm": 20.0}
    episode(world.url, "alex", T0 + 14 * 3600, 10, AlarmKind.ANAPHYLAXIS, onset, MODEL_VERSION)
    episode(world.url, "bo", T0 + 15 * 3600, 10, AlarmKind.FLUSH, onset, MODEL_VERSION)
    assert world("episode", "label", "6", "--as", "reaction")[0] == 0
    assert world("episode", "label", "7", "--as", "false-alarm")[0] == 0
    study, labels = tmp_path / "study", tmp_path / "labels.jsonl"
    assert world("research", "export", "--out", str(study))[0] == 0
    code, stdout, _ = world("episode", "export-labels", "--out", str(labels))
    assert code == 0 and stdout.startswith("2 onset alarms of 2 labelled episodes")

    records = [json.loads(line) for line in labels.read_text().splitlines()]
    subjects = {pseudonym(SECRET, p): p for p in ("alex", "bo")}
    assert [r["subject"] for r in records] == sorted(subjects)
    alarms = {(a["subject"], a["kind"]): a["alarm_s"] for a in rows(study / "alarms.csv")}
    for record in records:
        patient_id = subjects[record["subject"]]
        true_s = T0 + (14 if patient_id == "alex" else 15) * 3600
        assert record["time_s"] == pytest.approx(true_s - time_shift_s(SECRET, patient_id))
        assert f"{record['time_s']:.3f}" == alarms[(record["subject"], record["kind"])]
        assert "episode_id" not in record and len(record["episode"]) == 16
    assert records[0]["episode"] != records[1]["episode"]

    read = load_labelled_onsets(labels)
    assert (read.lines, read.rejected, len(read.candidates)) == (2, 0, 2)
    assert {a.patient_id for a, _ in read.candidates} == {REAL_SUBJECT_PREFIX + s for s in subjects}
    assert sorted(label for _, label in read.candidates) == [0, 1]


def test_the_export_is_what_the_confirmer_learns_from(world: Any, tmp_path: Path) -> None:
    """``evaluate --train --labels STUDY`` reads the export as written: its reactions and the
    episode labelled a false alarm, every line usable."""
    out = tmp_path / "study"
    assert world("research", "export", "--out", str(out))[0] == 0
    counts = study_onsets(load_study(out), lambda: DetectorBank(PatientDetector())).counts()
    assert counts["subjects"] == 1
    assert counts["reactions_listed"] == 2  # with its first sign, and the missed one
    assert counts["false_alarm_episodes"] == 1
    assert counts["rejected_lines"] == 0
    # the synthetic calm signals hold no surge: nothing for the confirmer to judge
    assert counts["reactions_without_onset"] == 2
