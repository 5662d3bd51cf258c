"""Fitting the confirmer: its threshold keeps the promised share of true onsets on wearers the
model was not fitted on, a kind seen on a single wearer keeps the rules alone, and real episodes
labelled by a care team are read back and never learnt to be vetoed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from models.alarm import Alarm, AlarmKind, Severity
from models.confirm import FEATURES
from models.const import CONFIRM_KEEP_POSITIVE_SHARE, MODEL_VERSION
from models.errors import RecordingError
from models.labels import load_labelled_onsets
from models.training import train_confirmer

WEARERS = 6


def candidates(separation: float, seed: int = 0) -> list[tuple[Alarm, int]]:
    """Several wearers' onset candidates; positives' surge evidence is shifted by ``separation``."""
    rng = np.random.default_rng(seed)
    out = []
    for w in range(WEARERS):
        offset = rng.normal(0.0, 0.3)  # wearers differ: out-of-fold is harder than in-sample
        for label, count in ((1, 60), (0, 15)):
            for _ in range(count):
                evidence = {name: float(rng.normal()) for name in FEATURES}
                evidence["surge_score"] = float(rng.normal(offset + separation * label, 1.0))
                alarm = Alarm(
                    f"w{w}", 0.0, AlarmKind.ANAPHYLAXIS, Severity.WARNING, "t", False, evidence
                )
                out.append((alarm, label))
    return out


def kept(confirmer, rows: list[tuple[Alarm, int]], label: int) -> float:
    alarms = [a for a, y in rows if y == label]
    return float(np.mean(confirmer.accept(alarms)))


def test_threshold_keeps_the_promised_share_of_unseen_wearers_positives() -> None:
    confirmer, info = train_confirmer(candidates(1.0), seed=1, version="t")
    fresh = candidates(1.0, seed=2)  # other wearers, same physiology
    assert kept(confirmer, fresh, 1) >= CONFIRM_KEEP_POSITIVE_SHARE - 0.05
    assert info["kinds"]["anaphylaxis"]["positives"] == WEARERS * 60


def test_without_evidence_the_confirmer_vetoes_almost_nothing() -> None:
    noise, _ = train_confirmer(candidates(0.0), seed=1, version="t")
    assert kept(noise, candidates(0.0, seed=3), 1) >= CONFIRM_KEEP_POSITIVE_SHARE - 0.05


def test_one_wearer_is_not_enough_to_set_a_threshold() -> None:
    rows = [(a, y) for a, y in candidates(6.0) if a.patient_id == "w0"]
    confirmer, _ = train_confirmer(rows * 2, seed=1, version="t")
    assert confirmer.models == {}


def real_onsets(count: int, first_subject: int, surge_score: float) -> list[tuple[Alarm, int]]:
    """Real reactions labelled by a care team, which look unlike the injected ones."""
    rng = np.random.default_rng(first_subject)
    out = []
    for i in range(count):
        evidence = {name: float(rng.normal()) for name in FEATURES}
        evidence["surge_score"] = float(rng.normal(surge_score, 0.5))
        subject = f"real:p{first_subject + i % 4}"
        out.append(
            (Alarm(subject, 0.0, AlarmKind.ANAPHYLAXIS, Severity.WARNING, "t", False, evidence), 1)
        )
    return out


def test_real_labelled_reactions_are_not_vetoed_even_if_they_look_unlike_injected_ones() -> None:
    injected = candidates(3.0)  # injected surges: strong evidence, false onsets weak
    real = real_onsets(24, first_subject=0, surge_score=-1.0)  # real ones: weak evidence
    unseen = [a for a, _ in real_onsets(40, first_subject=10, surge_score=-1.0)]
    alone, _ = train_confirmer(injected, seed=1, version="t")
    assert np.mean(alone.accept(unseen)) < 0.5  # taught by injections only, it vetoes them
    both, info = train_confirmer(injected, seed=1, version="t", real=real)
    assert np.mean(both.accept(unseen)) >= CONFIRM_KEEP_POSITIVE_SHARE - 0.05
    stats = info["kinds"]["anaphylaxis"]
    assert stats["real_positives"] == 24 and stats["real_negatives"] == 0
    assert stats["real_kept_positive"] >= CONFIRM_KEEP_POSITIVE_SHARE - 0.05


def test_labelled_export_is_read_with_bad_lines_counted_and_other_rules_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = {
        "episode_id": 3,
        "subject": "9f2c41d0aa7b11e3",
        "label": "reaction",
        "kind": "anaphylaxis",
        "time_s": 1_764_000_000.0,
        "severity": "critical",
        "model_version": f"{MODEL_VERSION}+confirm-20261125@sensitive",
        "evidence": {"surge_score": 71.5, "onset": 1.0, "hr_trend_bpm": 3.2},
    }
    lines = [
        json.dumps(good),
        json.dumps({**good, "label": "false_alarm", "kind": "flush", "severity": "warning"}),
        json.dumps({**good, "model_version": "fw-detect-0.9.0+confirm-1"}),  # other rules
        "{not json",
        json.dumps({**good, "label": "maybe"}),
        json.dumps({**good, "kind": "no_data"}),  # a signal state is no episode
        json.dumps({**good, "evidence": {"surge_score": "NaN"}}),
        json.dumps({**good, "subject": ""}),
        json.dumps([1, 2]),
        "",
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        read = load_labelled_onsets(path)
    assert (read.lines, read.other_rules, read.rejected) == (9, 1, 6)
    assert [(a.kind, y) for a, y in read.candidates] == [
        (AlarmKind.ANAPHYLAXIS, 1),
        (AlarmKind.FLUSH, 0),
    ]
    alarm = read.candidates[0][0]
    assert alarm.patient_id == "real:9f2c41d0aa7b11e3" and alarm.evidence["surge_score"] == 71.5
    assert read.counts() == {"anaphylaxis_reactions": 1, "flush_false_alarms": 1}
    assert "71.5" not in caplog.text  # line numbers are logged, never values
    with pytest.raises(RecordingError, match="cannot read the labelled episodes"):
        load_labelled_onsets(tmp_path / "missing.jsonl")


def test_a_damaged_byte_costs_its_line_not_the_file(tmp_path: Path) -> None:
    """The export is ASCII; bytes that are not UTF-8 damaged one line, the others still count."""
    good = {
        "subject": "9f2c41d0aa7b11e3",
        "label": "reaction",
        "kind": "anaphylaxis",
        "time_s": 1_764_000_000.0,
        "severity": "critical",
        "model_version": MODEL_VERSION,
        "evidence": {"surge_score": 71.5, "onset": 1.0},
    }
    line = json.dumps(good).encode()
    path = tmp_path / "labels.jsonl"
    path.write_bytes(line + b"\n" + line.replace(b"reaction", b"reac\xfftion") + b"\n" + line)
    read = load_labelled_onsets(path)
    assert (read.lines, read.rejected, len(read.candidates)) == (3, 1, 2)
