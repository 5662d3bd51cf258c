"""One episode as its page shows it: what was detected, and what the service did about it.

Labelling an episode ("was it a reaction?") days later, or going over it with the allergist,
needs more than its line in the list: the readings around it (the page's chart) and the course
of its alert, in order. Who was told and when, who was reminded, whose message did not arrive,
who took it on, when it got worse and when it was over. Names only: channels stay on the
caregivers' own account pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.patient_view import DiaryRow, EpisodeRow, diary_row, episode_row
from service.alerts.lifecycle import Purpose
from service.alerts.render import SHORT_WHAT
from service.db.diary import entries_of
from service.db.models import (
    Alert,
    AlertState,
    Contact,
    Delivery,
    DeliveryState,
    Episode,
    EpisodeState,
    Patient,
    Role,
)
from service.episodes.labels import MANUAL_MODEL_VERSION, withdrawn_addition

AROUND_S: Final = 30 * 60.0
"""The chart of an episode starts half an hour before its first sign and goes on half an hour
after its end (until now, for one going on): the resting level it rose from and the recovery."""
CHART_MAX_S: Final = 7 * 86_400.0
"""An episode's chart covers a week at most, from its start (the onset is what tells a reaction):
as long as a patient page's longest chart, and as costly to read."""

_TOLD: Final = {
    Purpose.NOTIFY: "was told",
    Purpose.WORSENED: "was told it got worse",
    Purpose.RESOLVED: "got the all-clear",
    Purpose.PATIENT_CHECK: "was asked whether they are OK",
}


@dataclass(frozen=True, slots=True)
class CourseStep:
    """One thing that happened to the episode or its alert, on the patient's clock."""

    time_s: float
    what: str
    """In words, names included (never a channel)."""
    failed: bool = False
    """A message that did not arrive: shown as such."""


@dataclass(frozen=True, slots=True)
class EpisodeView:
    """An episode's page: the episode, when its chart starts and ends, and its course."""

    patient_id: str
    patient_name: str
    timezone: str
    episode: EpisodeRow
    first_sign_s: float | None
    """When the reaction really began, as the care team recorded it (None: not known)."""
    model_version: str
    expired: bool
    """Closed after hours without calming down (not an all-clear)."""
    course: list[CourseStep]
    chart_start_s: float
    chart_end_s: float
    diary: list[DiaryRow]
    """The diary between the chart's start and end, newest first: what tells a reaction from a
    false alarm."""


def load_episode_view(
    session: Session, patient: Patient, episode_id: int, now_s: float
) -> EpisodeView | None:
    """The episode of ``patient`` with that id (None: none, or a withdrawn addition)."""
    episode = session.scalars(
        select(Episode).where(
            Episode.id == episode_id, Episode.patient_id == patient.id, ~withdrawn_addition()
        )
    ).first()
    if episode is None:
        return None
    alerts = session.scalars(
        select(Alert).where(Alert.episode_id == episode.id).order_by(Alert.created_s)
    ).all()
    acked_by = next((a.acked_by for a in alerts if a.acked_by), None)
    began_s = min(episode.first_sign_s or episode.opened_s, episode.opened_s)
    ended_s = episode.closed_s if episode.closed_s is not None else now_s
    start_s = began_s - AROUND_S
    end_s = min(now_s, ended_s + AROUND_S, start_s + CHART_MAX_S)
    diary = entries_of(session, patient.id, between=(start_s, end_s))
    return EpisodeView(
        patient_id=patient.id,
        patient_name=patient.display_name or patient.id,
        timezone=patient.timezone,
        episode=episode_row(episode, acked_by),
        first_sign_s=episode.first_sign_s,
        model_version=episode.model_version,
        expired=bool(episode.summary.get("expired")),
        course=_course(session, episode, alerts),
        chart_start_s=start_s,
        chart_end_s=end_s,
        diary=[diary_row(d) for d in diary],
    )


def _course(session: Session, episode: Episode, alerts: Sequence[Alert]) -> list[CourseStep]:
    what = SHORT_WHAT.get(episode.kind, episode.kind.replace("_", " "))
    raised = "Added by the care team" if episode.model_version == MANUAL_MODEL_VERSION else "Alarm"
    steps = [CourseStep(episode.opened_s, f"{raised}: {what} ({episode.severity})")]
    if episode.first_sign_s is not None and episode.first_sign_s < episode.opened_s:
        steps.append(CourseStep(episode.first_sign_s, "First sign, as the care team recorded it"))
    if episode.escalated_s is not None:
        steps.append(CourseStep(episode.escalated_s, "It got worse: now critical"))
    for alert in alerts:
        steps += _alert_steps(session, alert)
    if episode.state != EpisodeState.OPEN and episode.closed_s is not None:
        ended = (
            "Closed, still raised (no all-clear): the readings stayed up"
            if episode.summary.get("expired")
            else "Over: no longer detected"
        )
        steps.append(CourseStep(episode.closed_s, ended))
    return sorted(steps, key=lambda step: step.time_s)


def _alert_steps(session: Session, alert: Alert) -> list[CourseStep]:
    """Each message sent or failed (repeats counted, one line per person), the answer, the end."""
    rows = session.execute(
        select(Delivery.purpose, Delivery.state, Delivery.sent_s, Delivery.next_attempt_s,
               Contact.name, Contact.role)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(
            Delivery.alert_id == alert.id,
            Delivery.state.in_((DeliveryState.SENT, DeliveryState.FAILED)),
        )
        .order_by(Delivery.id)
    ).all()  # fmt: skip
    steps = []
    repeats: dict[str, list[float]] = {}
    failures: dict[str, list[float]] = {}
    for purpose, state, sent_s, tried_s, name, role in rows:
        who = f"{name} (the patient)" if role == Role.PATIENT else name
        if state == DeliveryState.FAILED:
            failures.setdefault(who, []).append(tried_s)
        elif sent_s is None:  # never: a message sent has its time
            continue
        elif purpose == Purpose.REPEAT:
            repeats.setdefault(who, []).append(sent_s)
        elif purpose in _TOLD:
            steps.append(CourseStep(sent_s, f"{who} {_TOLD[Purpose(purpose)]}"))
    for who, times in repeats.items():  # a repeat a minute: one line each
        count = f"{len(times)} time{'' if len(times) == 1 else 's'}"
        steps.append(CourseStep(min(times), f"{who} was told again, {count}"))
    for who, times in failures.items():
        lost = "A message" if len(times) == 1 else f"{len(times)} messages"
        steps.append(CourseStep(min(times), f"{lost} to {who} did not arrive", failed=True))
    if alert.acked_s is not None and alert.acked_by:
        steps.append(CourseStep(alert.acked_s, f"{alert.acked_by} is on it (acknowledged)"))
    if alert.state == AlertState.CANCELLED and alert.closed_s is not None:
        steps.append(CourseStep(alert.closed_s, "The patient said they are OK: cancelled"))
    return steps
