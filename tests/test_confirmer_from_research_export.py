"""``flarewatch evaluate --train --labels STUDY``: a research export's recordings, replayed through
these rules, teach the confirmer what the care teams labelled, and nothing they did not.

The export is built at test time in its documented layout (docs/research.md) from two held-out
stress-predict sessions: S02 raises one real flush alarm 48 min in, S04 raises nothing.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flarewatch.cli import main
from models.alarm import AlarmKind
from models.bank import DetectorBank
from models.const import MODEL_VERSION
from models.datasets import load_stress_predict
from models.detector import PatientDetector
from models.errors import RecordingError
from models.injection import Episode, inject
from models.labels import REAL_SUBJECT_PREFIX
from models.study_labels import load_study, study_onsets
from tests.test_evaluate import LABELLED_ONSET

SURGE = Episode(AlarmKind.ANAPHYLAXIS, 0.0, 90.0, 15 * 60.0, 300.0, 0.5, 0.0, None)
"""A +50 % surge at rest (onset set below), no syncope."""

ALARM_HEADER = "subject,onset_s,end_s,kind,severity,label,model_version,alarm_s,in_episodes_csv\n"


def sessions() -> dict[str, pd.DataFrame]:
    return {
        r.subject: r.frame.drop(columns="phase")
        for r in load_stress_predict(split="holdout", limit=2)
    }


def at(frame: pd.DataFrame, minutes: float) -> float:
    return float(frame["time_s"].iloc[0]) + minutes * 60.0


def build_export(folder: Path) -> dict[str, float]:
    """Four subjects: a refuted alarm, a found reaction, an unreviewed alarm, an unseen
    reaction. Returns the times used."""
    s02, s04 = sessions()["S02"], sessions()["S04"]
    surge_at = at(s04, 25)
    surged = inject(s04, [replace(SURGE, onset_s=surge_at)], np.random.default_rng(0))
    recordings = folder / "recordings"
    recordings.mkdir(parents=True)
    for subject, frame in (("a", s02), ("b", surged), ("c", s02), ("d", s04)):
        with gzip.open(recordings / f"{subject}.csv.gz", "wt", newline="") as out:
            frame.to_csv(out, index=False)
    times = {"refuted": at(s02, 45), "surge": surge_at, "quiet": at(s04, 30)}
    (folder / "episodes.csv").write_text(
        "subject,onset_s,end_s,kind\n"
        f"b,{surge_at},{surge_at + 1200},anaphylaxis\n"
        f"d,{times['quiet']},{times['quiet'] + 1200},anaphylaxis\n"
    )
    (folder / "alarms.csv").write_text(
        ALARM_HEADER
        + f"a,{times['refuted']},{times['refuted'] + 900},flush,warning,false_alarm,v,,0\n"
        + f"b,{surge_at},{surge_at + 1200},anaphylaxis,critical,reaction,v,{surge_at},1\n"
        + f"c,{times['refuted']},{times['refuted'] + 900},flush,warning,,v,,0\n"
        + "a,not-a-time,1,flush,warning,false_alarm,v,,0\n"
        + f"zz,{times['refuted']},{times['refuted'] + 60},flush,warning,false_alarm,v,,0\n"
    )
    return times


def rules_only() -> DetectorBank:
    return DetectorBank(PatientDetector())


def test_only_what_the_care_team_labelled_becomes_a_training_example(tmp_path: Path) -> None:
    times = build_export(tmp_path / "study")
    replayed: list[int] = []
    study = study_onsets(load_study(tmp_path / "study"), rules_only, progress=replayed.append)

    labelled = {(a.patient_id, a.kind, label) for a, label in study.candidates}
    assert labelled == {
        (REAL_SUBJECT_PREFIX + "b", AlarmKind.ANAPHYLAXIS, 1),  # the reaction the rules found
        (REAL_SUBJECT_PREFIX + "a", AlarmKind.FLUSH, 0),  # the alarm refuted by the care team
    }
    [(positive, _)] = [(a, y) for a, y in study.candidates if y == 1]
    assert times["surge"] <= positive.time_s <= times["surge"] + 1200
    assert all(a.model_version.startswith(MODEL_VERSION) for a, _ in study.candidates)
    counts = study.counts()
    assert counts["reactions_listed"] == 2
    assert counts["reactions_without_onset"] == 1  # d: nothing raised on its quiet data
    assert counts["false_alarm_episodes"] == 1
    assert counts["unreviewed_onsets_left_out"] == 1  # c: the same alarm, never labelled
    assert counts["rejected_lines"] == 2  # a time that is not one; a subject not recorded
    assert counts["subjects"] == 4
    assert sum(replayed) == sum(
        len(pd.read_csv(p)) for p in (tmp_path / "study" / "recordings").iterdir()
    )


def test_train_pools_a_research_export_and_a_label_export_on_the_model_card(
    tmp_path: Path,
) -> None:
    build_export(tmp_path / "study")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps(LABELLED_ONSET) + "\n")
    model = tmp_path / "model" / "confirmer.skops"
    args = ["evaluate", "--split", "holdout", "--max-sessions", "2", "--max-fitbit-days", "2"]
    code = main(
        [
            *args,
            "--train",
            "--labels",
            str(tmp_path / "study"),
            "--labels",
            str(labels),
            "--model",
            str(model),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    card = (model.parent / "MODEL_CARD.md").read_text()
    assert "`study` (`flarewatch admin research export`, replayed through these rules): 2" in card
    assert "1 onsets nobody reviewed" in card
    assert "`labels.jsonl` (`flarewatch admin episode export-labels`): 1 onsets used" in card
    report = json.loads((tmp_path / "out" / "evaluation-holdout.json").read_text())
    assert re.search(r"\+confirm-\d+-labelled-[0-9a-f]{12}$", report["model_version"])


def test_a_folder_that_is_not_a_research_export_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_export(tmp_path / "study")
    (tmp_path / "study" / "episodes.csv").write_text("subject,onset_s,end_s,kind\nb,x,1,flush\n")
    with pytest.raises(RecordingError, match="line 2"):
        load_study(tmp_path / "study")
    code = main(
        [
            "evaluate",
            "--train",
            "--labels",
            str(tmp_path / "study"),
            "--model",
            str(tmp_path / "m.skops"),
            "--max-sessions",
            "2",
            "--max-fitbit-days",
            "2",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code != 0
    err = capsys.readouterr().err
    assert "episodes.csv" in err and "Traceback" not in err
    assert not (tmp_path / "m.skops").exists()
    (tmp_path / "study" / "episodes.csv").unlink()  # a folder of recordings, not an export
    assert main(["evaluate", "--train", "--labels", str(tmp_path / "study"), "--model", "m"]) != 0
    assert "is not a research export" in capsys.readouterr().err
