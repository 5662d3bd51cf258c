"""Episode labels: a caregiver or clinician says whether an episode was a real reaction.

Labelled real episodes are the only data from which the detectors' learned confirmer
(``models/confirm.py``) can learn what a wearer's real reactions look like. The export gives
one record per alarm that opened an episode (its evidence is what the confirmer sees), under a
keyed pseudonym of the patient so that the raw patient id never leaves the service while one
patient's episodes stay together (validation is split by patient), with their times moved as
the research export moves them (:mod:`service.pseudonyms`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from models.alarm import AlarmKind, Severity
from models.const import EVAL_LABELLED_DEFAULT_LENGTH_S
from models.labels import ReviewedEpisode
from service.alerts.audit import record
from service.db.care_teams import fits_column
from service.db.models import Episode, EpisodeLabel, EpisodeState, Patient
from service.pseudonyms import episode_key, pseudonym, time_shift_s

if TYPE_CHECKING:
    from service.alerts.manager import AlertManager

MANUAL_MODEL_VERSION: Final = "manual"
"""``model_version`` of an episode added by hand: no detector raised it."""
FIRST_SIGN_MAX_LEAD_S: Final = 6 * 3600.0
"""How long before its alarm a reaction's first sign may be: mast-cell reactions unfold within
minutes to a few hours (a late-phase reaction is a reaction of its own)."""
EPISODE_KINDS: Final = (AlarmKind.FLUSH, AlarmKind.ANAPHYLAXIS)
ONSET_FLAG: Final = "onset"
"""Evidence key the detector sets to 1.0 on the alarm that opened an episode of its kind."""


def parse_label(value: str) -> EpisodeLabel:
    """The label named ``value`` ("reaction", "false-alarm" or "false_alarm")."""
    try:
        return EpisodeLabel(value.strip().replace("-", "_"))
    except ValueError:
        raise ConfigError(
            f"unknown episode label {value!r}: choose reaction or false-alarm"
        ) from None


def set_label(
    session: Session,
    episode_id: int,
    label: EpisodeLabel,
    by: str,
    now_s: float,
    *,
    via: str = "admin",
    first_sign_s: float | None = None,
) -> Episode:
    """Label one episode (the latest label wins) and audit it; unknown ids are a ConfigError.

    ``via`` says how the label came (the admin command, a link in a message, the API).
    ``first_sign_s``, for a real reaction, is when it really began, if before the alarm.
    """
    _check_labeller(by)
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise ConfigError(
            f"no episode with id {episode_id} (see `flarewatch admin episodes --unlabelled`)"
        )
    if first_sign_s is not None:
        if label is not EpisodeLabel.REACTION:
            raise ConfigError("--first-sign is for a real reaction (--as reaction)")
        _check_first_sign(first_sign_s, episode.opened_s)
        added = _overlapping(
            session,
            episode.patient_id,
            first_sign_s,
            episode.opened_s,
            now_s,
            besides=episode.id,
            added_only=True,
        )
        if added is not None:
            raise ConfigError(
                f"episode {added.id} ({added.kind}), added by hand as a reaction the detectors "
                "missed, lies between that first sign and this alarm: it is this reaction. "
                f"Withdraw it first (`admin episode label {added.id} --as false-alarm`)"
            )
        episode.first_sign_s = first_sign_s
    elif label is not EpisodeLabel.REACTION and episode.model_version != MANUAL_MODEL_VERSION:
        episode.first_sign_s = None  # a false alarm has no first sign
    if (
        label is EpisodeLabel.REACTION
        and episode.model_version == MANUAL_MODEL_VERSION
        and episode.label != str(EpisodeLabel.REACTION)
    ):  # an addition withdrawn comes back: as if added again
        _refuse_overlap(
            session,
            episode.patient_id,
            episode.opened_s,
            episode.closed_s or episode.opened_s,
            now_s,
            besides=episode.id,
        )
    previous = episode.label
    episode.label = str(label)
    episode.labelled_by = by
    episode.labelled_s = now_s
    record(
        session,
        now_s,
        "episode_labelled",
        patient_id=episode.patient_id,
        episode_id=episode.id,
        label=str(label),
        previous_label=previous,
        labelled_by=by,
        via=via,
        first_sign_s=first_sign_s,
    )
    return episode


def add_missed_reaction(
    session: Session,
    patient_id: str,
    kind: AlarmKind,
    first_sign_s: float,
    end_s: float | None,
    by: str,
    now_s: float,
) -> Episode:
    """Record a real reaction the detectors raised no alarm for, as a closed, labelled episode.

    Only such episodes let a comparison of profiles or an evaluation count what was missed. One
    that overlaps an episode of the patient is refused, naming it: that is the same reaction,
    to be labelled (with its first sign) instead of counted twice.
    """
    _check_labeller(by)
    if kind not in EPISODE_KINDS:
        raise ConfigError(f"an episode is a flush or anaphylaxis, not {kind}")
    if session.get(Patient, patient_id) is None:
        raise ConfigError(f"patient {patient_id!r} is not registered")
    if first_sign_s > now_s:
        raise ConfigError("--onset is in the future")
    # a reaction recorded while it lasts ends now by default, not in the future
    end = min(first_sign_s + EVAL_LABELLED_DEFAULT_LENGTH_S, now_s) if end_s is None else end_s
    if not first_sign_s < end <= now_s:
        raise ConfigError("--end must be after --onset and not in the future")
    _refuse_overlap(session, patient_id, first_sign_s, end, now_s)
    episode = Episode(
        patient_id=patient_id,
        kind=str(kind),
        severity=str(Severity.CRITICAL if kind is AlarmKind.ANAPHYLAXIS else Severity.WARNING),
        state=EpisodeState.CLOSED,
        opened_s=first_sign_s,
        closed_s=end,
        model_version=MANUAL_MODEL_VERSION,
        summary={"alarms": []},
        label=str(EpisodeLabel.REACTION),
        labelled_by=by,
        labelled_s=now_s,
        first_sign_s=first_sign_s,
    )
    session.add(episode)
    session.flush()
    record(
        session,
        now_s,
        "episode_added",
        patient_id=patient_id,
        episode_id=episode.id,
        kind=str(kind),
        labelled_by=by,
    )
    return episode


def _refuse_overlap(
    session: Session,
    patient_id: str,
    start_s: float,
    end_s: float,
    now_s: float,
    besides: int | None = None,
) -> None:
    """A reaction added by hand over another episode is that one: refused, naming it."""
    clash = _overlapping(session, patient_id, start_s, end_s, now_s, besides=besides)
    if clash is not None:
        raise ConfigError(
            f"episode {clash.id} ({clash.kind}) of {patient_id} covers that time: it is the same "
            f"reaction; label it instead (`admin episode label {clash.id} --as reaction "
            "--first-sign TIME`)"
        )


def _overlapping(
    session: Session,
    patient_id: str,
    start_s: float,
    end_s: float,
    now_s: float,
    *,
    besides: int | None = None,
    added_only: bool = False,
) -> Episode | None:
    """The patient's first episode that covers part of ``[start_s, end_s)``, if any.

    An episode covers its reaction from its first sign, where recorded, to its end (now, while
    it is open). A withdrawn addition (:func:`withdrawn_addition`) covers nothing.
    ``added_only`` looks at episodes added by hand only.
    """
    query = select(Episode).where(
        Episode.patient_id == patient_id,
        func.coalesce(Episode.first_sign_s, Episode.opened_s) < end_s,
        func.coalesce(Episode.closed_s, now_s) > start_s,
        ~withdrawn_addition(),
    )
    if besides is not None:
        query = query.where(Episode.id != besides)
    if added_only:
        query = query.where(Episode.model_version == MANUAL_MODEL_VERSION)
    return session.scalars(query.order_by(Episode.opened_s)).first()


def withdrawn_addition() -> ColumnElement[bool]:
    """Episodes added by hand as a missed reaction, then labelled not one (a mistake withdrawn).

    Nothing raised an alarm there, so it is no false alarm either: comparisons, research
    exports and the overlap check leave it out (the audit trail keeps both steps).
    """
    return (Episode.model_version == MANUAL_MODEL_VERSION) & (
        Episode.label != str(EpisodeLabel.REACTION)
    )


def _check_labeller(by: str) -> None:
    if not by.strip():
        raise ConfigError("say who labelled the episode (--by NAME)")
    fits_column(by, Episode.labelled_by, "the labeller's name")


def _check_first_sign(first_sign_s: float, alarm_s: float) -> None:
    """A first sign comes before the alarm, and not so long before that it is another event."""
    if first_sign_s > alarm_s:
        raise ConfigError("--first-sign is after the alarm that opened the episode")
    if alarm_s - first_sign_s > FIRST_SIGN_MAX_LEAD_S:
        raise ConfigError(
            f"--first-sign is more than {FIRST_SIGN_MAX_LEAD_S / 3600:g} h before the alarm: "
            "record that reaction on its own (`admin episode add`)"
        )


@dataclass(frozen=True, slots=True)
class LinkLabel:
    """What a label link did: the episode, its label now, and who gave it."""

    episode_id: int
    label: str
    labelled_by: str


def label_by_link(manager: AlertManager, token: str, label: EpisodeLabel, via: str) -> LinkLabel:
    """Label the episode of the alert a label token was sent about, as the person it was sent to.

    The token's signature, expiry and action are checked by the manager; a token of a lost-signal
    alert (nothing to label) raises :class:`~service.alerts.errors.NothingToLabelError`.
    """
    episode_id, holder = manager.episode_to_label(token)
    by = _labeller(holder)
    with manager.db.session() as session:
        episode = set_label(session, episode_id, label, by, manager.clock(), via=via)
        return LinkLabel(episode.id, str(episode.label), by)


def _labeller(holder: str) -> str:
    """A link holder's name as the labeller: contact names may be longer than that column."""
    limit = Episode.labelled_by.type.length
    return holder if len(holder) <= limit else holder[: limit - 1] + "…"


@dataclass(frozen=True)
class LabelExport:
    """Training records of the labelled episodes, and what could not be exported."""

    records: list[dict[str, Any]] = field(default_factory=list)
    episodes: int = 0
    """Labelled episodes that gave at least one record."""
    skipped_episodes: int = 0
    """Labelled episodes without an onset alarm in their summary (none is expected)."""


def _onsets(alarms: Iterable[Any]) -> list[Mapping[str, Any]]:
    """The summary entries of alarms that opened an episode of their kind."""
    return [
        entry
        for entry in alarms
        if isinstance(entry, Mapping)
        and isinstance(entry.get("evidence"), Mapping)
        and entry["evidence"].get(ONSET_FLAG) == 1.0
    ]


def export_labels(session: Session, secret_key: str, patient_id: str | None = None) -> LabelExport:
    """One record per onset alarm of every labelled episode (of ``patient_id``).

    Pseudonymised as the research export is (:mod:`service.pseudonyms`): the patient's subject,
    their times moved back by their time shift, the episode by its keyed export key (the
    database's ids count up across patients). Records go subject by subject, oldest first: an
    order across subjects would tell whose episode came first. The confirmer learns from the
    evidence; it reads no date, and the time of day and weekday stay.
    """
    query = select(Episode).where(Episode.label.is_not(None))
    if patient_id is not None:
        if session.get(Patient, patient_id) is None:
            raise ConfigError(f"patient {patient_id!r} is not registered")
        query = query.where(Episode.patient_id == patient_id)
    records: list[dict[str, Any]] = []
    exported = skipped = 0
    for episode in session.scalars(query.order_by(Episode.opened_s, Episode.id)):
        onsets = _onsets(episode.summary.get("alarms", []))
        if not onsets:
            skipped += 1
            continue
        exported += 1
        subject = pseudonym(secret_key, episode.patient_id)
        shift_s = time_shift_s(secret_key, episode.patient_id)
        key = episode_key(secret_key, episode.id)
        records.extend(
            {
                "episode": key,
                "subject": subject,
                "label": episode.label,
                "kind": str(entry.get("kind", episode.kind)),
                "time_s": float(entry.get("time_s", episode.opened_s)) - shift_s,
                "severity": str(entry.get("severity", episode.severity)),
                "model_version": str(entry.get("model_version", episode.model_version)),
                "evidence": dict(entry["evidence"]),
            }
            for entry in onsets
        )
    records.sort(key=lambda r: (r["subject"], r["time_s"], r["episode"]))
    return LabelExport(records=records, episodes=exported, skipped_episodes=skipped)


def reviewed_episodes(
    session: Session, patient_id: str, since_s: float, until_s: float
) -> list[ReviewedEpisode]:
    """The patient's labelled flush and anaphylaxis-like episodes opened in ``[since_s, until_s)``.

    What a comparison of detection profiles is scored on (:mod:`models.profile_comparison`).
    An episode is compared with the patient's own alarm of its kind: one that opened as a flush
    and became anaphylaxis-like, with the anaphylaxis-like onset, not the flush before it.
    """
    kinds = EPISODE_KINDS
    query = (
        select(Episode)
        .where(
            Episode.patient_id == patient_id,
            Episode.label.is_not(None),
            Episode.kind.in_([str(k) for k in kinds]),
            Episode.opened_s >= since_s,
            Episode.opened_s < until_s,
            ~withdrawn_addition(),
        )
        .order_by(Episode.opened_s, Episode.id)
    )
    return [
        ReviewedEpisode(
            kind=AlarmKind(episode.kind),
            opened_s=_onset_s(episode),
            closed_s=episode.closed_s,
            reaction=episode.label == EpisodeLabel.REACTION,
        )
        for episode in session.scalars(query)
    ]


def _onset_s(episode: Episode) -> float:
    """When the onset alarm of the episode's kind came (its opening, if the summary lacks it)."""
    times = [
        float(entry["time_s"])
        for entry in _onsets(episode.summary.get("alarms", []))
        if entry.get("kind") == episode.kind and isinstance(entry.get("time_s"), int | float)
    ]
    return min(times, default=episode.opened_s)
