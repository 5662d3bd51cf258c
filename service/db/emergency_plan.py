"""A patient's emergency plan, changed by the patient or their care team; every change audited.

The plan is what every alert about the patient tells first ("Act now: …"), rendered when each
message is sent, so a change reaches the next message of an alert already going on. Whoever keeps
it current (the patient after an allergist's visit, a caregiver who moved the auto-injector) can
change it from the web app; the administrator still can with ``admin patient set --plan``.

Two people editing at once must not silently undo each other: a change names the plan it was
made on (:func:`plan_digest`), and one made on a plan that changed since is refused
(:class:`PlanConflict`). The patient's page says who changed it last and when; the audit trail
has every change, from where and how long it is, never its text.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from service.alerts.audit import record
from service.const import EMERGENCY_PLAN_MAX_CHARS
from service.db.models import Patient

PLAN_CHANGED: Final = "emergency_plan_changed"
"""The audit action of a change."""

_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters but tab and line feed: PostgreSQL refuses NUL in text, and none of them
means anything in a plan."""


class PlanConflict(ConfigError):
    """The plan changed since the form was loaded: the change was made on an older one."""


def plan_digest(plan: str) -> str:
    """A short fingerprint of a plan, for a form to say which plan it changes."""
    return hashlib.sha256(plan.encode()).hexdigest()[:16]


def tidy_plan(text: str) -> str:
    """The plan as stored: lines ended by line feeds, no control characters, no trailing spaces.

    Too long: :class:`ConfigError`.
    """
    lines = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
    plan = "\n".join(line.rstrip() for line in lines).strip()
    if len(plan) > EMERGENCY_PLAN_MAX_CHARS:
        raise ConfigError(
            f"the plan is {len(plan)} characters long; at most {EMERGENCY_PLAN_MAX_CHARS} fit"
        )
    return plan


def change_plan(
    session: Session,
    patient: Patient,
    text: str,
    *,
    was: str | None,
    by: str,
    now_s: float,
    via: str,
) -> bool:
    """Set the patient's plan to ``text`` (:func:`tidy_plan`); returns whether it changed.

    ``was``: the :func:`plan_digest` of the plan the change was made on (``None``: no check, as
    for the administrator's command). Made on a plan changed since: :class:`PlanConflict`. The
    patient row keeps who changed it last and when; the audit trail every change, with ``by``
    and ``via``.
    """
    plan = tidy_plan(text)
    if was is not None and was != plan_digest(patient.emergency_plan):
        raise PlanConflict("the plan was changed by someone else since you opened the page")
    if plan == patient.emergency_plan:
        return False
    patient.emergency_plan = plan
    patient.plan_changed_s, patient.plan_changed_by = now_s, by[:200]
    record(session, now_s, PLAN_CHANGED, patient_id=patient.id, by=by, via=via, chars=len(plan))
    return True
