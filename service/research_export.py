"""Research exports: consenting patients' episodes and the recordings around them, pseudonymised.

What a research group needs to study real reactions, and what nobody else has: the signals
around each episode the service raised, with the care team's label (a real reaction or a false
alarm). Only patients who consented (``admin patient set ID --research-consent yes``) are in it,
and nothing in it names them:

* each patient is a ``subject``, the keyed pseudonym the label export uses too
  (:func:`service.pseudonyms.pseudonym`);
* every time of a subject is moved back by a whole number of weeks (1 to 10 years) drawn from
  the service key and the patient (:func:`service.pseudonyms.time_shift_s`, the label export's
  shift too), so that dates cannot be matched with a diary or a hospital
  record, while the time of day and the day of the week (what physiology follows) stay;
* no name, device, care team, emergency plan, message or alert goes out; only the vitals.

The folder is laid out for ``flarewatch evaluate --recordings OUT/recordings --episodes
OUT/episodes.csv``: one recording per subject (the windows around their episodes), and the
episodes labelled a real reaction. ``alarms.csv`` lists every exported episode with its label.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flarewatch.output_files import building_folder, owner_only_file
from flarewatch.payloads import Sample
from models.const import EVAL_MATCH_AFTER_END_S
from models.episodes_file import ONSET_ADDED, ONSET_ALARM, ONSET_FIRST_SIGN
from models.recording_writer import write_recording
from service.db.models import Episode, EpisodeLabel, EpisodeState, Patient
from service.episodes.labels import MANUAL_MODEL_VERSION, withdrawn_addition
from service.pseudonyms import pseudonym, time_shift_s
from service.stores.base import SampleStore
from service.stores.reading import stored_batches

DEFAULT_BEFORE_S: Final = 2 * 3600.0
"""Recording before each episode: the detectors need 15-30 min to learn a baseline, and a study
of what led up to a reaction wants the hour or two before it."""
DEFAULT_AFTER_S: Final = 30 * 60.0
"""Recording after each episode's end: the recovery."""

EPISODE_COLUMNS: Final = ("subject", "onset_s", "end_s", "kind", "onset_from")
"""``episodes.csv``: the columns ``flarewatch evaluate --episodes`` reads (``onset_from``: where
``onset_s`` came from, so that delays are measured only from real onsets)."""
ALARM_COLUMNS: Final = (
    *("subject", "onset_s", "end_s", "kind", "severity", "label", "model_version"),
    *("alarm_s", "in_episodes_csv"),
)
"""``alarms.csv``: ``onset_s`` is the first sign where the care team recorded it, else the alarm;
``alarm_s`` is when the alarm opened the episode (empty for a reaction added by hand)."""


@dataclass(frozen=True, slots=True)
class PlannedEpisode:
    """One closed episode of a consenting patient, on the true clock (not written as such)."""

    patient_id: str
    onset_s: float
    """The first sign where the care team recorded it, else the alarm that opened it."""
    alarm_s: float | None
    """When the detectors' alarm opened it (None: a missed reaction added by hand)."""
    end_s: float
    kind: str
    severity: str
    label: str | None
    model_version: str

    @property
    def onset_from(self) -> str:
        """Where ``onset_s`` came from: a first sign, a reaction added by hand, or the alarm."""
        if self.alarm_s is None:
            return ONSET_ADDED
        return ONSET_ALARM if self.onset_s == self.alarm_s else ONSET_FIRST_SIGN


@dataclass(slots=True)
class ResearchPlan:
    """What an export will hold, read from the service database in one short transaction."""

    episodes: list[PlannedEpisode]
    consenting: list[str]
    """Every consenting patient, with episodes in the period or not."""
    since_s: float
    until_s: float
    without_consent: int
    """Closed episodes in the period of patients who did not consent (left out)."""
    still_open: int
    """Episodes of consenting patients still going on (left out: they have no end yet)."""

    def windows(self, before_s: float, after_s: float) -> dict[str, list[tuple[float, float]]]:
        """Each patient's recording windows around their episodes, overlapping ones merged."""
        spans: dict[str, list[tuple[float, float]]] = {}
        for episode in sorted(self.episodes, key=lambda e: (e.patient_id, e.onset_s)):
            start, end = episode.onset_s - before_s, episode.end_s + after_s
            merged = spans.setdefault(episode.patient_id, [])
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return spans

    def whole(self, store: SampleStore) -> dict[str, list[tuple[float, float]]]:
        """Each consenting patient's whole recording in the period, episodes or not.

        What a false-alarm rate needs: the windows around episodes hold more alarms than a
        patient's days do. The period picks episodes by their alarm: a recording starts earlier
        where an exported reaction's first sign came before the period.
        """
        onsets: dict[str, float] = {}
        for episode in self.episodes:
            onsets[episode.patient_id] = min(
                onsets.get(episode.patient_id, episode.onset_s), episode.onset_s
            )
        spans: dict[str, list[tuple[float, float]]] = {}
        for patient_id in self.consenting:
            found = store.time_span_ms(patient_id)
            if found is not None:
                # the last sample included, the period's end not (as for episodes: [since, until))
                since_s = min(self.since_s, onsets.get(patient_id, self.since_s))
                start = max(found[0] / 1000, since_s)
                end = min((found[1] + 1) / 1000, self.until_s)
                if start < end:
                    spans[patient_id] = [(start, end)]
        return spans


@dataclass(slots=True)
class ExportSummary:
    """What an export wrote."""

    subjects: int = 0
    episodes: int = 0
    reactions: int = 0
    samples: int = 0
    without_samples: int = 0
    """Exported episodes with no stored sample at their onset (not in ``episodes.csv``)."""
    merged: int = 0
    """Reactions merged into the one before (closer than the evaluation's matching window)."""
    files: list[str] = field(default_factory=list)
    included: dict[str, str] = field(default_factory=dict)
    """Every patient in the export (a recording or an episode), and their subject: for the
    register of exports (:mod:`service.db.research_register`), never written out."""


def plan_export(session: Session, since_s: float, until_s: float) -> ResearchPlan:
    """The closed episodes opened in ``[since_s, until_s)`` of every consenting patient."""
    consenting = Patient.research_consent_s.is_not(None)
    in_period = (Episode.opened_s >= since_s) & (Episode.opened_s < until_s)
    rows = session.scalars(
        select(Episode)
        .join(Patient, Patient.id == Episode.patient_id)
        .where(consenting, in_period, Episode.state == EpisodeState.CLOSED, ~withdrawn_addition())
        .order_by(Episode.patient_id, Episode.opened_s)
    ).all()
    episodes = sorted(
        (
            PlannedEpisode(
                patient_id=e.patient_id,
                onset_s=e.first_sign_s if e.first_sign_s is not None else e.opened_s,
                alarm_s=None if e.model_version == MANUAL_MODEL_VERSION else e.opened_s,
                end_s=max(e.closed_s or e.opened_s, e.opened_s),
                kind=e.kind,
                severity=e.severity,
                label=e.label,
                model_version=e.model_version,
            )
            for e in rows
        ),
        key=lambda e: (e.patient_id, e.onset_s),
    )
    without_consent = session.scalar(
        select(func.count(Episode.id))
        .join(Patient, Patient.id == Episode.patient_id)
        .where(~consenting, in_period, Episode.state == EpisodeState.CLOSED)
    )
    still_open = session.scalar(
        select(func.count(Episode.id))
        .join(Patient, Patient.id == Episode.patient_id)
        .where(consenting, in_period, Episode.state == EpisodeState.OPEN)
    )
    consenting_ids = session.scalars(select(Patient.id).where(consenting).order_by(Patient.id))
    return ResearchPlan(
        episodes=episodes,
        consenting=list(consenting_ids),
        since_s=since_s,
        until_s=until_s,
        without_consent=int(without_consent or 0),
        still_open=int(still_open or 0),
    )


def write_export(
    plan: ResearchPlan,
    store: SampleStore,
    secret_key: str,
    out: Path,
    windows: dict[str, list[tuple[float, float]]],
    recorded: str,
    export_id: str,
    on_written: Callable[[ExportSummary], None],
    on_span: Callable[[], None] | None = None,
) -> ExportSummary:
    """Write the export folder ``out`` (which must not exist, or be empty) whole or not at all.

    ``windows`` are each patient's recording windows (:meth:`ResearchPlan.windows` or
    :meth:`ResearchPlan.whole`), which ``recorded`` describes in the manifest, with
    ``export_id``. The folder is built owner-only beside ``out`` and renamed to it once
    complete, so an interrupted export leaves no half folder under that name. ``on_written``
    registers it before that rename: an export that fails to register is not left behind, so
    none goes out unrecorded. ``on_span`` is called after each hour of samples read (a progress
    bar).
    """
    summary = ExportSummary()
    with building_folder(out, "--out") as folder:
        (folder / "recordings").mkdir(mode=0o700)
        spans: dict[str, tuple[float, float]] = {}
        for patient_id, patient_windows in windows.items():
            subject = pseudonym(secret_key, patient_id)
            shift_s = time_shift_s(secret_key, patient_id)
            written = write_recording(
                folder / "recordings" / f"{subject}.csv.gz",
                _windowed_samples(store, patient_id, patient_windows, shift_s, on_span),
            )
            if written is not None:
                spans[patient_id] = (written.first_s, written.last_s)
                summary.samples += written.samples
                summary.subjects += 1
                summary.included[patient_id] = subject
        _write_episodes(folder, plan, spans, secret_key, summary)
        _write_manifest(folder, plan, recorded, export_id, summary)
        on_written(summary)
    return summary


def _windowed_samples(
    store: SampleStore,
    patient_id: str,
    windows: list[tuple[float, float]],
    shift_s: float,
    on_span: Callable[[], None] | None,
) -> Iterator[Sample]:
    """The patient's samples in their windows, oldest first, with times moved back by the shift."""
    shift_ms = round(shift_s * 1000)
    for start_s, end_s in windows:
        start_ms, end_ms = round(start_s * 1000), round(end_s * 1000)
        for batch in stored_batches(store, patient_id, start_ms, end_ms, on_span):
            for sample in batch:
                yield sample.model_copy(update={"time_ms": sample.time_ms - shift_ms})


def _write_episodes(
    folder: Path,
    plan: ResearchPlan,
    spans: dict[str, tuple[float, float]],
    secret_key: str,
    summary: ExportSummary,
) -> None:
    """``alarms.csv`` (every episode) and ``episodes.csv`` (the reactions, for ``evaluate``)."""
    reactions: list[list[str]] = []
    last_window: dict[str, float] = {}
    with (
        owner_only_file(folder / "alarms.csv").open(
            "w", encoding="utf-8", newline=""
        ) as alarms_file,
        owner_only_file(folder / "episodes.csv").open("w", encoding="utf-8", newline="") as ep_file,
    ):
        alarms, episodes = csv.writer(alarms_file), csv.writer(ep_file)
        alarms.writerow(ALARM_COLUMNS)
        episodes.writerow(EPISODE_COLUMNS)
        for episode in plan.episodes:
            subject = pseudonym(secret_key, episode.patient_id)
            summary.included[episode.patient_id] = subject
            shift_s = time_shift_s(secret_key, episode.patient_id)
            onset, end = episode.onset_s - shift_s, episode.end_s - shift_s
            span = spans.get(episode.patient_id)
            recorded = span is not None and span[0] <= onset <= span[1]
            listed = False
            if episode.label == EpisodeLabel.REACTION and not recorded:
                summary.without_samples += 1
            elif episode.label == EpisodeLabel.REACTION:
                previous_end = last_window.get(subject)
                if previous_end is not None and onset <= previous_end:
                    # one alarm would count for both (evaluate refuses that): one longer episode
                    reactions[-1][2] = f"{max(float(reactions[-1][2]), end):.3f}"
                    if episode.kind == "anaphylaxis":
                        reactions[-1][3] = "anaphylaxis"
                    summary.merged += 1
                else:
                    reactions.append(
                        [subject, f"{onset:.3f}", f"{end:.3f}", episode.kind, episode.onset_from]
                    )
                listed = True
                last_window[subject] = float(reactions[-1][2]) + EVAL_MATCH_AFTER_END_S
            alarms.writerow(
                [
                    subject,
                    f"{onset:.3f}",
                    f"{end:.3f}",
                    episode.kind,
                    episode.severity,
                    episode.label or "",
                    episode.model_version,
                    "" if episode.alarm_s is None else f"{episode.alarm_s - shift_s:.3f}",
                    int(listed),
                ]
            )
            summary.episodes += 1
        episodes.writerows(reactions)
        summary.reactions = len(reactions)


def _write_manifest(
    folder: Path, plan: ResearchPlan, recorded: str, export_id: str, summary: ExportSummary
) -> None:
    manifest = {
        "format": "flarewatch research export 1",
        "export_id": export_id,
        "recall": "a subject whose patient withdraws or is erased is to be deleted when asked, "
        "by export_id and subject",
        "subjects": summary.subjects,
        "episodes": summary.episodes,
        "reactions_in_episodes_csv": summary.reactions,
        "samples": summary.samples,
        "recordings": recorded,
        "model_versions": sorted({e.model_version for e in plan.episodes}),
        "times": "epoch seconds, each subject's moved back by a whole number of weeks",
        "onset_s": "the first sign where the care team recorded it, else the alarm (alarm_s)",
        "evaluate": "flarewatch evaluate --recordings recordings --episodes episodes.csv",
    }
    with owner_only_file(folder / "export.json").open("w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2, sort_keys=True)
        out.write("\n")
    summary.files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
