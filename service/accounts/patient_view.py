"""What the web app shows of one patient: read in one transaction, no channel, no vital series.

A caregiver opening the app wants first whether anything is going on (an open episode, an alert
nobody took on, a band that went quiet), then the emergency plan, then the history they may
label. The care team is named, never its channels (their URLs hold credentials).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from flarewatch.payloads import OFFLINE_PAIRING
from service.accounts.access import visible_patient, visible_patient_ids
from service.accounts.channel_health import channel_states, failing_since
from service.accounts.response_times import ResponseTimes, response_times
from service.alerts.away_schedule import schedule_of
from service.alerts.care_team import team_members
from service.alerts.const import DEFAULT_OFF_NOTICE_S, DEFAULT_OFF_REMINDER_S
from service.alerts.drill_schedule import DrillSchedule, drill_schedule_of
from service.alerts.drills import DrillResult, last_drill
from service.alerts.render import HEART_RATE_TIME_KEY, last_heart_rate
from service.const import DIARY_SHOWN
from service.db.diary import entries_of
from service.db.models import (
    OPEN_ALERT_STATES,
    Account,
    Alert,
    AlertState,
    Device,
    DiaryEntry,
    Episode,
    EpisodeState,
    Patient,
    SignalState,
)
from service.episodes.labels import withdrawn_addition
from service.episodes.signals import ALERT_KIND_OF_SIGNAL, SignalKind

HISTORY_EPISODES: Final = 50
"""Episodes listed on a patient's page, newest first: months of a patient with a few a week."""


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    """One episode as the app lists it."""

    id: int
    kind: str
    severity: str
    state: str
    opened_s: float
    closed_s: float | None
    label: str | None
    labelled_by: str | None
    acked_by: str | None
    """Who took the episode's alert on (None: nobody, or no alert)."""
    heart_rate: float | None
    heart_rate_s: float | None


@dataclass(frozen=True, slots=True)
class OpenAlertRow:
    """An alert not over: waiting, or taken on by someone."""

    id: int
    kind: str
    severity: str
    state: str
    since_s: float
    acked_by: str | None


@dataclass(frozen=True, slots=True)
class BandRow:
    """One of the patient's bands, as its gateway last reported it (all None: never)."""

    id: str
    link_state: str | None
    """``online``, ``connecting`` or ``offline``."""
    link_reason: str | None
    """Why, in the gateway's words (``pairing``: it cannot pair with the band)."""
    link_since_s: float | None
    reported_s: float | None
    battery_percent: int | None
    contact_detected: bool | None


@dataclass(frozen=True, slots=True)
class DiaryRow:
    """One diary entry as the app lists it."""

    id: int
    time_s: float
    kind: str
    text: str
    written_by: str


@dataclass(frozen=True, slots=True)
class TeamMember:
    """One person on the care team, as the patient's page shows them."""

    contact_id: int
    name: str
    role: str
    away_until_s: float | None
    """Until when they are away (passed over until then), None if available."""
    failing_since_s: float | None = None
    """When the last message of one of their channels failed, if it did (none got through on
    that channel since: it may be broken)."""
    away_every: str | None = None
    """Their weekly absence in words ("Mon, Tue from 08:00 to 17:00"), None if none."""
    reachable: bool = True
    """Whether they have a channel: invited, no alert reaches them until they add one."""


@dataclass(frozen=True, slots=True)
class PatientView:
    """One patient's page (or line on the home page)."""

    id: str
    name: str
    timezone: str
    plan: str
    detection_profile: str
    open_alerts: list[OpenAlertRow]
    lost_signals: list[tuple[str, float]]
    """(signal kind, since) of each signal lost now."""
    episodes: list[EpisodeRow]
    care_team: list[TeamMember]
    """In their order: caregivers, then emergency contacts (those away are passed over)."""
    quiet_hours: str | None
    """"22:00-07:00" on the patient's clock (warnings wait for their end), None: none."""
    devices: list[str]
    bands: list[BandRow]
    """The same bands, with what their gateways last reported of them."""
    diary: list[DiaryRow]
    """The newest entries first."""
    plan_changed: tuple[str, float] | None = None
    """Who changed the emergency plan last and when (epoch s), if known."""
    last_drill: DrillResult | None = None
    """How the patient's latest drill went (None: no drill yet)."""
    drill_schedule: DrillSchedule | None = None
    """When drills come by themselves (None: only when someone starts one)."""
    answering: ResponseTimes | None = None
    """How fast the care team took on alerts and drills lately (None: not read, on a list)."""
    research_consent: bool = False
    """Whether the patient shares their pseudonymised episodes with researchers."""
    taken_off: frozenset[str] = frozenset()
    """The lost signals the wearer said they took the band off for ("I took it off")."""
    band_will_not_pair: bool = False
    """The gateway reports that it cannot pair with the band (reset, out of its pairing mode)."""
    off_reminder_s: float = DEFAULT_OFF_REMINDER_S
    """After "I took it off", when the wearer is reminded the band is still off (0: never)."""
    off_notice_s: float = DEFAULT_OFF_NOTICE_S
    """A band taken off and silent this long: the caregivers are told once (0: never)."""

    @property
    def open_episode(self) -> EpisodeRow | None:
        """The episode going on, if any."""
        return next((e for e in self.episodes if e.state == EpisodeState.OPEN), None)


def load_patient_view(
    session: Session,
    patient: Patient,
    now_s: float,
    *,
    history: int = HISTORY_EPISODES,
    diary: int = DIARY_SHOWN,
    answering: bool = True,
) -> PatientView:
    """Read everything :class:`PatientView` holds for ``patient`` at ``now_s``.

    At most ``history`` episodes and ``diary`` entries, the newest.
    """
    alerts = session.scalars(
        select(Alert)
        .where(Alert.patient_id == patient.id, Alert.state.in_(OPEN_ALERT_STATES))
        .order_by(Alert.since_s)
    ).all()
    episodes = session.scalars(
        select(Episode)
        .where(Episode.patient_id == patient.id, ~withdrawn_addition())
        .order_by(Episode.opened_s.desc(), Episode.id.desc())
        .limit(history)
    ).all()
    acked = {
        alert.episode_id: alert.acked_by
        for alert in session.scalars(
            select(Alert)
            .where(Alert.episode_id.in_([e.id for e in episodes]), Alert.acked_by.is_not(None))
            .order_by(Alert.acked_s)
        )
    }
    signals = session.scalars(
        select(SignalState)
        .where(SignalState.patient_id == patient.id, SignalState.active.is_(True))
        .order_by(SignalState.since_s)
    ).all()
    bands = session.scalars(
        select(Device).where(Device.patient_id == patient.id).order_by(Device.id)
    ).all()
    team = team_members(session, patient.id)
    states = channel_states(session, [c.id for c in team], now_s)
    return PatientView(
        id=patient.id,
        name=patient.display_name or patient.id,
        timezone=patient.timezone,
        plan=patient.emergency_plan,
        plan_changed=(
            (patient.plan_changed_by or "", patient.plan_changed_s)
            if patient.plan_changed_s is not None
            else None
        ),
        detection_profile=patient.detection_profile,
        open_alerts=[
            OpenAlertRow(a.id, a.kind, a.severity, a.state, a.since_s, a.acked_by) for a in alerts
        ],
        lost_signals=[(s.signal, s.since_s) for s in signals],
        taken_off=_taken_off(session, patient.id, signals),
        band_will_not_pair=any(s.detail == OFFLINE_PAIRING for s in signals),
        off_reminder_s=patient.off_reminder_s,
        off_notice_s=patient.off_notice_s,
        episodes=[episode_row(e, acked.get(e.id)) for e in episodes],
        care_team=[
            TeamMember(
                c.id,
                c.name,
                c.role,
                c.away_until_s,
                failing_since(states, c.live_channels),
                schedule.words() if (schedule := schedule_of(c)) else None,
                reachable=bool(c.live_channels),
            )
            for c in team
        ],
        last_drill=last_drill(session, patient.id),
        drill_schedule=drill_schedule_of(patient),
        answering=response_times(session, patient.id, now_s) if answering else None,
        quiet_hours=(f"{patient.quiet_start}-{patient.quiet_end}" if patient.quiet_start else None),
        devices=[band.id for band in bands],
        bands=[
            BandRow(
                b.id,
                b.link_state,
                b.link_reason,
                b.link_since_s,
                b.reported_s,
                b.battery_percent,
                b.contact_detected,
            )
            for b in bands
        ],
        diary=[
            diary_row(d) for d in (entries_of(session, patient.id, limit=diary) if diary else ())
        ],
        research_consent=patient.research_consent_s is not None,
    )


def _taken_off(session: Session, patient_id: str, signals: Sequence[SignalState]) -> frozenset[str]:
    """The lost signals whose latest alert the wearer answered "I took it off" (cancelled)."""
    taken = set()
    for signal in signals:
        kind = ALERT_KIND_OF_SIGNAL.get(SignalKind(signal.signal))
        if kind is None:
            continue
        latest = session.scalars(
            select(Alert)
            .where(Alert.patient_id == patient_id, Alert.kind == kind, Alert.episode_id.is_(None))
            .order_by(Alert.created_s.desc(), Alert.id.desc())
            .limit(1)
        ).first()
        # raised for this loss (a gateway's readings arrive up to a minute late), then answered
        if (
            latest is not None
            and latest.state == AlertState.CANCELLED
            and latest.created_s >= signal.since_s - 60
        ):
            taken.add(signal.signal)
    return frozenset(taken)


def diary_row(entry: DiaryEntry) -> DiaryRow:
    """A diary entry as the app lists it."""
    return DiaryRow(entry.id, entry.time_s, entry.kind, entry.text, entry.written_by)


def episode_row(episode: Episode, acked_by: str | None) -> EpisodeRow:
    """An episode as the app lists it; ``acked_by``: who took its alert on."""
    vitals = episode.summary.get("vitals") or {}
    hr_time = vitals.get(HEART_RATE_TIME_KEY)
    return EpisodeRow(
        id=episode.id,
        kind=episode.kind,
        severity=episode.severity,
        state=episode.state,
        opened_s=episode.opened_s,
        closed_s=episode.closed_s,
        label=episode.label,
        labelled_by=episode.labelled_by,
        acked_by=acked_by,
        heart_rate=last_heart_rate(episode.kind, vitals) if isinstance(vitals, dict) else None,
        heart_rate_s=float(hr_time) if isinstance(hr_time, int | float) else None,
    )


def visible_views(session: Session, account: Account, now_s: float) -> list[PatientView]:
    """A line's worth of every patient ``account`` sees (what is going on, the latest episode)."""
    views = []
    for patient_id in visible_patient_ids(session, account):
        patient = visible_patient(session, account, patient_id)
        if patient is not None:
            views.append(
                load_patient_view(session, patient, now_s, history=1, diary=0, answering=False)
            )
    return views
