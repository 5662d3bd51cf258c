"""An alert in words, for a frightened person reading a lock screen at 3 am.

The title alone (what a lock screen shows, about 40-60 characters) says which message this is,
who, what and what to do: ``CRITICAL: Alex - possible anaphylaxis - act now``. The body starts
with the action (the patient's emergency plan) and the link, then when it began (the patient's
clock, zone named, and how long ago), the heart rate, and notes. So a channel that cuts a long
message keeps what matters, and a long plan never pushes the link out of the first lines.
Names and plans are typed by people: they are put on one line (no line breaks or control
characters that would fake a line of the message), right-to-left text is isolated so that it
cannot reorder the words around it, and a long name is shortened in the title. This module is the
one home of such text safety: the notifier also takes from it what makes a message safe on chat
services (mass mentions defused, Markdown shown as typed), which only it knows a channel to be.

An SMS has no title and arrives in parts of 153 GSM-7 characters; a phone may show the first part
alone for a while. :attr:`Message.sms` starts with who, what, to act and the link, so they all fit
in that part when the link leaves them room; the title and the rest follow.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from models.alarm import Severity
from service.alerts.const import DRILL, HELP, NAME_IN_TITLE_MAX_CHARS, PLAN_FIRST_LINE_MAX_CHARS
from service.alerts.lifecycle import Purpose
from service.alerts.notifier import Message
from service.const import PAIRING_FIX

WHAT_HAPPENED = {
    "anaphylaxis": "possible anaphylaxis",
    "flush": "possible flush (mast-cell reaction)",
    "no_data": "no data from the band (no heart rate: band or gateway silent)",
    "no_contact": "the band lost skin contact (off the wrist?)",
    "battery_low": "the band's battery is low",
    "help": "asked you for help from the flarewatch app (pressed I need help now)",
    DRILL: "a drill (a practice alert): nothing is wrong",
}
"""What happened, in the body and on the link pages."""

SHORT_WHAT = {
    "anaphylaxis": "possible anaphylaxis",
    "flush": "possible flush reaction",
    "no_data": "no data from the band",
    "no_contact": "band lost skin contact",
    "battery_low": "band battery low",
    "help": "call for help",
    DRILL: "practice alert",
}
"""What happened, in a title (short: it shares the lock screen's line with the name)."""

LOST_SIGNAL = frozenset({"no_data", "no_contact"})
"""Alert kinds about the band, not the patient: the wearer is asked to see to it first."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_BIDI_CONTROLS = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FSI, _PDI = "\u2068", "\u2069"

_MENTION = re.compile(
    r"@(?=[*_]|(?:everyone|here|channel|all|room|stream|topic)\b|[!&]?\d{15,})", re.IGNORECASE
)
"""The ``@`` of a mention that pings many people or one by id: ``@everyone``, ``@here``
(Discord, Mattermost, Rocket.Chat), ``@channel``, ``@all`` (Mattermost, Rocket.Chat), ``@room``
(Matrix), ``@**all**`` and the other Zulip forms, ``<@id>``, ``<@!id>``, ``<@&role>`` (Discord).
Matched inside words too (Discord pings ``x@everyone``); ``sam@example.org`` is left alone."""
_ZERO_WIDTH_SPACE: Final = "\u200b"

_MARKDOWN = re.compile(
    r"(?P<url>(?i:https?)://\S+)|(?P<char>[\\`*_~|\[\]<>#])"
    r"|(?m:^(?P<lead>[ \t]*)(?P<bullet>[-+]|\d+\.)(?=[ \t]))"
)
"""What a Markdown renderer takes as markup, and the URLs to leave as they are (an escape inside
one, e.g. in a token's ``_``, would break the link)."""

GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1), one septet each."""
GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")
"""Its extension table: an escape and the character, two septets each."""

SMS_SEGMENT_SEPTETS: Final = 160
"""GSM-7 characters of a one-part SMS."""
SMS_PART_SEPTETS: Final = 153
"""GSM-7 characters of each part of a multi-part SMS (the rest of 140 bytes is the header that
joins them); a phone may show the first part alone for a while, so it must hold the essentials."""
SMS_NAME_MIN_CHARS: Final = 12
"""A name is cut down to this, no shorter, to make room for the link in an SMS's first part: below
it a caregiver of several patients could not tell who it is."""


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
    escalated: bool = False
    """This person is told because the people told before them have not answered."""
    away: bool = False
    """This person said they are away (:mod:`service.alerts.absence`): told all the same."""
    caregivers_noticed: bool = False
    """A band taken off and silent for long: the caregivers were told of it (off_notice)."""
    band_will_not_pair: bool = False
    """The band is silent because the gateway cannot pair with it (reset, out of pairing mode)."""
    battery_percent: int | None = None
    """The lowest battery its bands last reported (None: none reported one)."""


def one_line(text: str, max_chars: int | None = None) -> str:
    """Untrusted text (a name, a plan line) safe inside a line of a message.

    Line breaks and control characters become spaces (a name must not start a fake line);
    text with right-to-left letters is wrapped in a Unicode isolate (FSI … PDI) and loses its
    own direction marks, so it cannot reorder the words around it. Only such text gets the
    isolate: the marks are not GSM-7 and would halve an SMS's length for everyone else.
    """
    text = " ".join(_CONTROL.sub(" ", text).split())
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 3].rstrip() + "..."
    stripped = _BIDI_CONTROLS.sub("", text)
    if stripped != text or any(unicodedata.bidirectional(c) in ("R", "AL") for c in text):
        return f"{_FSI}{stripped}{_PDI}"
    return text


def defuse_mentions(text: str) -> str:
    """``text`` that pings nobody on a chat service: a zero-width space after a mention's ``@``.

    What discord.py's ``escape_mentions`` does; the mention shows as typed. Apprise sets no
    ``allowed_mentions`` for Discord, so the text is all that stops an ``@everyone`` in a name
    from waking a whole server. Not for SMS: the mark is not GSM-7 and would halve every part.
    """
    return _MENTION.sub("@" + _ZERO_WIDTH_SPACE, text)


def markdown_literal(text: str) -> str:
    """Plain ``text`` that a Markdown renderer shows as typed (backslash escapes), URLs intact.

    For services that show Markdown, also when they are sent plain text (Discord, Mattermost): a
    name like ``[click](http://evil)`` would show a link under other words, and a backtick or
    ``||`` could swallow the acknowledgement link into code or a spoiler. Apprise's own escaping
    of plain text for Markdown escapes inside links too, which breaks them.
    """

    def escape(match: re.Match[str]) -> str:
        if match["url"]:
            return match["url"]
        if match["char"]:
            return "\\" + match["char"]
        bullet = match["bullet"]
        escaped = "\\" + bullet if bullet in "-+" else bullet[:-1] + "\\."
        return match["lead"] + escaped

    return _MARKDOWN.sub(escape, text)


def gsm7_septets(text: str) -> int | None:
    """GSM-7 characters ``text`` takes in an SMS; ``None`` if it needs UCS-2 (70 a part)."""
    if not set(text) <= GSM7_BASIC | GSM7_EXTENSION:
        return None
    return len(text) + sum(c in GSM7_EXTENSION for c in text)


def on_patient_clock(time_s: float, now_s: float, timezone: str) -> str:
    """``03:12 CET (4 min ago)``: the patient's clock, zone named; the day when it is not today.

    A time a minute or more ahead is told as such (``(in 7 hours 5 min)``, an absence's end).

    The one way times are told to caregivers, in messages and on the link pages alike.
    """
    zone = ZoneInfo(timezone)
    at = dt.datetime.fromtimestamp(time_s, zone)
    shown = at.strftime("%H:%M %Z")
    if at.date() != dt.datetime.fromtimestamp(now_s, zone).date():
        shown += at.strftime(" on %a %d %b")
    return f"{shown} ({_ago(now_s - time_s) if time_s < now_s + 60 else _from_now(time_s - now_s)})"


def _from_now(seconds: float) -> str:
    """``in 45 min``, ``in 7 hours 5 min``, ``in 3 days 2 hours``: how far ahead a time is."""
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"in {minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"in {hours} hours {minutes % 60} min"
    return f"in {hours // 24} days {hours % 24} hours"


def _when(time_s: float, facts: AlertFacts) -> str:
    return on_patient_clock(time_s, facts.now_s, facts.timezone)


def _ago(seconds: float) -> str:
    """``4 min ago``, ``2 hours 5 min ago``.

    Hours as a word, which a screen reader says as one (it spelt "h" out as a letter).
    """
    minutes = max(0, int(seconds // 60))
    if minutes < 1:
        return "less than a minute ago"
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} hours {minutes % 60} min ago"


def duration_words(seconds: float) -> str:
    """``4 min``, ``2 hours 5 min``, ``under a minute``."""
    return _ago(seconds).removesuffix(" ago").replace("less than a minute", "under a minute")


def _readings(facts: AlertFacts) -> str:
    """The heart rate; for an alert about the band, its battery (a heart rate would be stale).

    The heart rate is what a caregiver (or a paramedic on the phone) can use. A wrist's skin
    temperature and its movement in g mean nothing without the detector's baseline: left out.
    """
    parts = []
    hr = last_heart_rate(facts.kind, facts.vitals)
    if hr is not None:
        parts.append(f"last heart rate {heart_rate_words(hr)}")
    battery = facts.vitals.get("battery_percent")
    if facts.kind in LOST_SIGNAL and isinstance(battery, int | float):
        parts.append(f"band battery {battery:.0f} %")
    return ("; " + ", ".join(parts)) if parts else ""


HEART_RATE_TIME_KEY: Final = "heart_rate_time_s"
"""Key in an episode's vitals of when its heart rate was measured (epoch s; older episodes lack
it): the acknowledgement page says how old the reading is."""


def heart_rate_words(bpm: float) -> str:
    """``131 beats a minute``: a screen reader spells "bpm" out letter by letter."""
    return f"{bpm:.0f} beats a minute"


def last_heart_rate(kind: str, vitals: Mapping[str, float]) -> float | None:
    """The heart rate worth telling a caregiver: the episode's latest, none for a lost signal.

    For an alert about the band the latest heart rate is from before the signal went: old.
    """
    hr = vitals.get("heart_rate_bpm")
    if kind in LOST_SIGNAL or not isinstance(hr, int | float):
        return None
    return float(hr)


def _title(facts: AlertFacts, purpose: Purpose, name: str) -> str:
    """Which message, who, what, what to do; a drill says so first."""
    title = _alert_title(facts, purpose, name)
    return f"DRILL - {title}" if facts.kind == DRILL else title


def _alert_title(facts: AlertFacts, purpose: Purpose, name: str) -> str:
    """Which message, who, what, what to do: the part a lock screen shows comes first."""
    short = SHORT_WHAT.get(facts.kind, facts.kind.replace("_", " "))
    severity = facts.severity.upper()
    act = "act now" if facts.severity is Severity.CRITICAL else "check on them"
    if purpose is Purpose.OFF_REMINDER:
        return "Your band is still off - flarewatch is not watching over you"
    if purpose is Purpose.BATTERY_LOW:
        level = f" ({facts.battery_percent} %)" if facts.battery_percent is not None else ""
        return f"Charge your band - its battery is low{level}"
    if purpose is Purpose.OFF_NOTICE:
        return f"{name}'s band has been off for long - check in with them"
    if purpose is Purpose.PATIENT_CHECK:
        if facts.kind in LOST_SIGNAL:
            return f"Check your band - {short}"
        return f"Are you OK? {short.capitalize()} - tap I'm OK to cancel"
    if purpose is Purpose.RESOLVED:
        if facts.expired:
            return f"Closed, still raised: {name} - {short} - check on them"
        if facts.kind in LOST_SIGNAL:
            return f"All clear: {name} - the band is back"
        return f"All clear: {name} - {short} is over"
    if purpose is Purpose.REPEAT:
        return f"REPEAT {severity}: {name} - {short} - still no answer"
    if purpose is Purpose.WORSENED:
        return f"WORSE, now {severity}: {name} - {short} - {act}"
    if facts.escalated:  # a NOTIFY to someone after the first: the others did not answer
        return f"{severity}: {name} - {short} - nobody answered, {act}"
    return f"{severity}: {name} - {short} - {act}"


def emergency_plan_lines(plan: str) -> list[str]:
    """The plan's own lines as typed, each made safe by :func:`one_line`; blank ones dropped."""
    return [line for line in (one_line(text) for text in plan.splitlines()) if line]


def _plan_lines(facts: AlertFacts, name: str) -> tuple[list[str], list[str]]:
    """The action, first in the body; and the full plan for the end, if too long to come first.

    A long plan first would push the acknowledgement link out of what a channel keeps.
    """
    plan_lines = emergency_plan_lines(facts.emergency_plan)
    verb = "Act now" if facts.severity is Severity.CRITICAL else "What to do"
    if facts.kind == DRILL:
        verb = "In a real alert"
    if facts.kind in LOST_SIGNAL:  # about the band: the plan for a reaction would alarm for nothing
        return [f"{verb}: check on {name} (call or go): the band cannot watch over them now."], []
    if not plan_lines:
        return [f"{verb}: check on {name}."], []
    if len(plan_lines) == 1 and len(plan_lines[0]) <= PLAN_FIRST_LINE_MAX_CHARS:
        return [f"{verb}: {plan_lines[0]}"], []
    return [f"{verb}: follow {name}'s emergency plan (at the end)."], [
        f"{name}'s emergency plan:",
        *plan_lines,
    ]


def render_message(facts: AlertFacts, purpose: Purpose, link: str | None) -> Message:
    """Render one delivery's message, with its SMS form.

    ``link`` acknowledges (caregiver), cancels (wearer) or, in an all-clear, asks whether it was
    a real reaction (a label for the episode).
    """
    what = WHAT_HAPPENED.get(facts.kind, facts.kind.replace("_", " "))
    name = one_line(facts.patient_name)
    title = _title(facts, purpose, one_line(facts.patient_name, NAME_IN_TITLE_MAX_CHARS))
    since = f"Since {_when(facts.since_s, facts)}{_readings(facts)}."
    notes = []
    if facts.wearer_unanswered and purpose is not Purpose.PATIENT_CHECK:
        notes.append(f"{name} was asked to check the band and has not answered.")
    if not facts.activity_known and facts.kind == "anaphylaxis":
        notes.append(
            "The band reported no steps or motion in the last day, so exercise cannot be ruled"
            " out: ask them."
        )
    if facts.band_will_not_pair and purpose is not Purpose.PATIENT_CHECK:
        notes.append(
            f"The gateway cannot pair with {name}'s band (reset?): it needs its pairing mode, "
            "near the gateway."
        )
    if facts.after_exercise and facts.kind == "anaphylaxis":
        notes.append(
            "It began after exercise: the heart did not slow down once they stopped. Exercise can"
            " trigger a reaction."
        )
    link_line: str | None = None
    if purpose is Purpose.RESOLVED:
        lines = _all_clear(facts, name, what)
        if link:
            lines.append(f"Was it a real reaction? One tap helps the detectors learn: {link}")
        return Message(title=title, body="\n".join(lines), severity=facts.severity)
    if purpose is Purpose.OFF_REMINDER:
        lines = [
            f"You said you took your band off. It still shows {what}. {since}",
            "Until it is back on, flarewatch cannot watch over you and no alert can reach your "
            "caregivers. Put it back on when you can, or check that the gateway is plugged in.",
            "Your caregivers were told that it has been off for long."
            if facts.caregivers_noticed
            else "Your caregivers have not been told.",
        ]
        return Message(title=title, body="\n".join(lines), severity=facts.severity)
    if purpose is Purpose.BATTERY_LOW:
        level = f" ({facts.battery_percent} %)" if facts.battery_percent is not None else ""
        lines = [
            f"Your band's battery is low{level}. Charge it soon, while you are awake.",
            "Once it runs flat, flarewatch cannot watch over you and no alert can reach your "
            "caregivers. Put it back on when it is charged.",
            "Only you are told of this.",
        ]
        return Message(title=title, body="\n".join(lines), severity=facts.severity)
    if purpose is Purpose.OFF_NOTICE:
        lines = [
            f"{name}'s band shows {what}. {since}",
            f"{name} said they took it off, and it has not sent anything since. Until it is "
            f"back on, flarewatch cannot watch over {name} and no alert can reach you.",
            f"Check in with {name}. You are told of this once; the band reporting again ends it.",
        ]
        return Message(title=title, body="\n".join(lines), severity=facts.severity)
    if purpose is Purpose.PATIENT_CHECK and facts.kind in LOST_SIGNAL:
        link_line = f"I took it off: {link}" if link else None
        sms_ask = "Open the link if you took the band off on purpose."
        mend = (
            f"The gateway cannot pair with it: {PAIRING_FIX}."
            if facts.band_will_not_pair
            else "Put it back on, or check that the gateway is plugged in."
        )
        lines = [
            f"Your band: {what}. {mend}",
            "If you took it off on purpose, say so and your caregivers will not be alerted:",
            *([link_line] if link_line else []),
            since,
        ]
    elif purpose is Purpose.PATIENT_CHECK:
        link_line = f"I'm OK: {link}" if link else None
        sms_ask = "Open the link if you are OK: it cancels the alarm."
        lines = [
            f"The band shows {what}. If you are fine, cancel before your caregivers are told:",
            *([link_line] if link_line else []),
            since,
        ]
    else:
        first, plan_at_end = _plan_lines(facts, name)
        lines = []
        if facts.kind == DRILL:
            lines.append(
                "This is a DRILL: nothing is wrong. Answer it as you would a real alert: "
                "I'm on it ends it."
            )
        if purpose is Purpose.WORSENED:
            lines.append(f"It got worse: now {facts.severity.upper()}.")
        elif purpose is Purpose.NOTIFY and facts.away:
            lines.append(
                "You are marked away, but the people alerted before you have not answered."
                if facts.escalated
                else "You are marked away, and so is everyone else on the care team."
            )
        elif facts.escalated and purpose is Purpose.NOTIFY:
            lines.append("The people alerted before you have not answered.")
        if facts.signal_lost:  # the readings below are old: said before anything else
            lines.append(
                "The wearable's signal was LOST during this episode: check on them in person."
            )
        lines += first
        sms_ask = "Open the link if you are on it: it stops the alarm for the others."
        if link:
            link_line = f"I'm on it (stops the alarm for the others): {link}"
            lines.append(link_line)
        lines.append(f"{name}: {what}. {since}")
        lines += notes
        lines += plan_at_end

    sms = None
    if link:
        rest = [title, *(line for line in lines if line != link_line)]
        head = functools.partial(_sms_head, facts, purpose)
        sms = _sms(head, len(name), link, "\n".join([sms_ask, *rest]))
    return Message(title=title, body="\n".join(lines), severity=facts.severity, sms=sms)


def _sms_head(facts: AlertFacts, purpose: Purpose, name_chars: int) -> str:
    """Who, what and what to do, for the first line of an SMS (the link comes next)."""
    short = SHORT_WHAT.get(facts.kind, facts.kind.replace("_", " "))
    if purpose is Purpose.PATIENT_CHECK and facts.kind in LOST_SIGNAL:
        return f"Check your band - {short}"
    if purpose is Purpose.PATIENT_CHECK:
        return f"Are you OK? {short.capitalize()}"
    act = "act now" if facts.severity is Severity.CRITICAL else "check on them"
    drill = "DRILL - " if facts.kind == DRILL else ""
    return f"{drill}{one_line(facts.patient_name, name_chars)}: {short}, {act}"


def _sms(head: Callable[[int], str], name_chars: int, link: str, rest: str) -> str:
    """Who, what and to act, then the link, then ``rest``: the first two in the first part.

    What the link does is said after it (``rest`` starts with that): a label before it would take
    the room of 11 characters of the public URL, and the page the link opens says it too.

    The name is cut (not below :data:`SMS_NAME_MIN_CHARS`) until the head fits the first part.
    A link too long even then still comes right after them and ends in the second part; the name
    is then only cut as in a title, since cutting it further would not bring the link in. A
    message that is not GSM-7 (a name in Arabic, say) goes as UCS-2, 67 characters a part, which
    no link fits; it keeps the same order.
    """
    whole = f"{head(name_chars)}\n{link}\n{rest}"
    septets = gsm7_septets(whole)
    if septets is None or septets <= SMS_SEGMENT_SEPTETS:
        return whole
    for cut in range(name_chars, SMS_NAME_MIN_CHARS - 1, -1):
        first = f"{head(cut)}\n{link}"
        if (gsm7_septets(first) or 0) <= SMS_PART_SEPTETS:
            return f"{first}\n{rest}"
    return f"{head(min(name_chars, NAME_IN_TITLE_MAX_CHARS))}\n{link}\n{rest}"


def _all_clear(facts: AlertFacts, name: str, what: str) -> list[str]:
    """Why it ended, and who (if anyone) was on it: nobody should wonder whether to go."""
    lasted = duration_words(facts.now_s - facts.since_s)
    if facts.expired:
        return [
            f"{name}: {what} - closed after {lasted} without calming down.",
            f"The readings are still raised. They are now taken as {name}'s level, and a further"
            " rise alarms again. Check on them.",
        ]
    if facts.kind == DRILL:
        if facts.acked_by:
            return [f"The drill is over: {one_line(facts.acked_by)} answered (after {lasted})."]
        return [f"The drill is over: nobody answered in {lasted}. Check your channels."]
    if facts.kind in LOST_SIGNAL:
        ended = f"{name}'s band is sending again (after {lasted})."
    elif facts.kind == HELP:
        ended = f"{name}'s call for help is over (after {lasted})."
    else:
        ended = f"{name}: {what} - no longer detected (after {lasted})."
    if facts.acked_by:
        return [ended, f"{one_line(facts.acked_by)} had acknowledged it."]
    return [ended, "Nobody acknowledged it: it ended by itself."]
