"""An alert in words: what happened, how severe, since when, latest vitals, what to do."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from models.alarm import Severity
from service.alerts.lifecycle import Purpose
from service.alerts.notifier import Message

WHAT_HAPPENED = {
    "anaphylaxis": "possible anaphylaxis",
    "flush": "possible flush / mast-cell reaction",
    "no_data": "no data from the wearable (no heart rate: band or gateway silent)",
    "no_contact": "the band lost skin contact (off the wrist?)",
    "battery_low": "the band's battery is low",
}

LOST_SIGNAL = frozenset({"no_data", "no_contact"})
"""Alert kinds about the band, not the patient: the wearer is asked to see to it first."""

VITAL_LABELS = {
    "heart_rate_bpm": ("heart rate", "{:.0f} bpm"),
    "hr_rise_bpm": ("heart-rate rise", "+{:.0f} bpm"),
    "skin_temperature_c": ("skin temperature", "{:.1f} °C"),
    "skin_temp_rise_c": ("skin warming", "+{:.1f} °C"),
    "acceleration_sd_g": ("movement", "{:.2f} g"),
    "battery_percent": ("battery", "{:.0f} %"),
}


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """Everything a message may say about one alert, gathered by the scheduler at send time."""

    patient_name: str
    timezone: str
    emergency_plan: str
    kind: str
    severity: Severity
    since_s: float
    now_s: float
    vitals: Mapping[str, float]
    signal_lost: bool = False
    acked_by: str | None = None
    activity_known: bool = True
    after_exercise: bool = False
    """The surge was found because the heart did not slow down after exercise (rules 1.6)."""
    expired: bool = False
    """The episode was closed after hours without calming down, not because it calmed down."""
    wearer_unanswered: bool = False
    """The wearer was asked to check their band (a lost signal) and has not answered."""


def _local(time_s: float, zone: str) -> str:
    return dt.datetime.fromtimestamp(time_s, ZoneInfo(zone)).strftime("%H:%M:%S %Z (%Y-%m-%d)")


def format_vitals(vitals: Mapping[str, float]) -> str:
    """The known vitals in a fixed, readable order; unknown keys are left out."""
    parts = [
        f"{label} {fmt.format(vitals[key])}"
        for key, (label, fmt) in VITAL_LABELS.items()
        if isinstance(vitals.get(key), int | float)
    ]
    return ", ".join(parts) if parts else "not available"


def render_message(facts: AlertFacts, purpose: Purpose, link: str | None) -> Message:
    """Render one delivery's message.

    ``link`` acknowledges (caregiver), cancels (wearer) or, in an all-clear, asks whether it was
    a real reaction (a label for the episode).
    """
    what = WHAT_HAPPENED.get(facts.kind, facts.kind.replace("_", " "))
    name = facts.patient_name
    severity = facts.severity.upper()
    minutes = max(0, int((facts.now_s - facts.since_s) // 60))
    prefix = {
        Purpose.NOTIFY: "",
        Purpose.REPEAT: "REPEAT - not yet acknowledged - ",
        Purpose.WORSENED: "WORSE - ",
        Purpose.RESOLVED: "All clear - ",
        Purpose.PATIENT_CHECK: "Are you OK? - ",
    }[purpose]
    if purpose is Purpose.RESOLVED and facts.expired:
        prefix = "Closed, still raised - "
    if purpose is Purpose.PATIENT_CHECK and facts.kind in LOST_SIGNAL:
        prefix = "Check your band - "
    title = f"{prefix}{severity}: {name} - {what}"
    lines = [
        f"{name}: {what}.",
        f"Severity: {severity}. Since {_local(facts.since_s, facts.timezone)} ({minutes} min).",
        f"Latest vitals: {format_vitals(facts.vitals)}.",
    ]
    if facts.signal_lost:
        lines.append("The wearable's signal was LOST during this episode: check on them in person.")
    if facts.wearer_unanswered and purpose is not Purpose.PATIENT_CHECK:
        lines.append(f"{name} was asked to check the band and has not answered.")
    if not facts.activity_known and facts.kind == "anaphylaxis":
        lines.append(
            "The band reported no steps or motion in the last day, so exercise cannot be ruled"
            " out: ask them."
        )
    if facts.after_exercise and facts.kind == "anaphylaxis":
        lines.append(
            "It began after exercise: the heart did not slow down once they stopped. Exercise can"
            " trigger a reaction."
        )
    if purpose is Purpose.RESOLVED and facts.expired:
        lines = [
            f"{name}: {what} - closed after {minutes} min without calming down.",
            f"The readings are still raised. They are now taken as {name}'s level, and a further"
            " rise alarms again. Check on them.",
        ]
    elif purpose is Purpose.RESOLVED:
        lines = [f"{name}: {what} - no longer detected (after {minutes} min)."]
    elif purpose is Purpose.PATIENT_CHECK and facts.kind in LOST_SIGNAL:
        lines.append(
            "Put the band back on, or check that the gateway is plugged in. If you took it off"
            " on purpose, say so and your caregivers will not be alerted:"
        )
        if link:
            lines.append(f"I took it off: {link}")
    elif purpose is Purpose.PATIENT_CHECK:
        lines.append("If you are fine, cancel before your caregivers are alerted:")
        if link:
            lines.append(f"I'm OK: {link}")
    else:
        if facts.emergency_plan:
            lines.append(f"What to do: {facts.emergency_plan}")
        if link:
            lines.append(f"Acknowledge (I'm on it): {link}")
    if purpose is Purpose.RESOLVED and link:
        lines.append(f"Was it a real reaction? One tap helps the detectors learn: {link}")
    return Message(title=title, body="\n".join(lines), severity=facts.severity)
