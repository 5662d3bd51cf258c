"""Alerts in the database: open, worsen, resolve, acknowledge, cancel, and link tokens.

Every change happens inside an :class:`~service.alerts.transaction.AlertTransaction`; listeners
(MQTT publishing) and the scheduler's wake-up run only after it commits, so nobody hears of an
alert that was rolled back. The messages a change calls for are queued by
:mod:`service.alerts.delivery_queue`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.alarm import Severity
from service.alerts.audit import Clock, record
from service.alerts.care_team import policy_of
from service.alerts.clock_step import follow_clock_step
from service.alerts.const import ACK_TOKEN_TTL_S, DRILL, LABEL_TOKEN_TTL_S
from service.alerts.delivery_queue import enqueue, enqueue_all_clear
from service.alerts.errors import (
    AlertNotFoundError,
    CancelNotAllowedError,
    NothingToLabelError,
    TokenError,
)
from service.alerts.events import AlertListener, event_of
from service.alerts.lifecycle import AlertClock, Plan, Purpose, Send, worsen
from service.alerts.off_reminders import start_reminders, stop_reminders
from service.alerts.policy import quiet_until_s
from service.alerts.render import LOST_SIGNAL
from service.alerts.tokens import TokenAction, TokenClaim, alert_key, sign_token, verify_token
from service.alerts.transaction import AlertTransaction
from service.db.models import Alert, AlertState, Contact, Patient
from service.db.session import Database

log = logging.getLogger(__name__)


def clock_of(alert: Alert) -> AlertClock:
    """The lifecycle view of an alert row."""
    return AlertClock(
        state=AlertState(alert.state),
        severity=Severity(alert.severity),
        level=alert.level,
        repeat_count=alert.repeat_count,
        level_notified_s=alert.level_notified_s,
        cancel_until_s=alert.cancel_until_s,
    )


def apply_clock(alert: Alert, clock: AlertClock) -> None:
    """Copy a lifecycle view back onto the row."""
    alert.state = clock.state
    alert.severity = clock.severity
    alert.level = clock.level
    alert.repeat_count = clock.repeat_count
    alert.level_notified_s = clock.level_notified_s
    alert.cancel_until_s = clock.cancel_until_s


class AlertManager:
    """Creates and changes alerts and queues their deliveries; the scheduler sends them."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        secret_key: str,
        public_base_url: str,
        listeners: Sequence[AlertListener] = (),
    ) -> None:
        self.db = db
        self.clock = clock
        self.secret_key = secret_key
        self.public_base_url = public_base_url.rstrip("/")
        self.listeners: list[AlertListener] = list(listeners)
        self.wakers: list[Callable[[], None]] = []
        self._last_now_s: float | None = None
        """The clock of the last transaction: one ahead of the clock now means it went back."""

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[AlertTransaction]:
        """A unit of work; events are announced and the scheduler woken after the commit.

        The first one to find the clock stepped back moves the alert timers back with it
        (:mod:`service.alerts.clock_step`) before anything is written at the new time. Writers
        are serialised (``service.db.session``), so the clock of the last one tells the step.
        """
        previous = self._last_now_s
        try:
            with self.db.session() as session:
                txn = AlertTransaction(session, self.clock())
                previous = self._last_now_s
                follow_clock_step(txn, previous)
                self._last_now_s = txn.now_s
                yield txn
        except BaseException:
            self._last_now_s = previous  # not committed: a step it moved is moved again
            raise
        for event in txn.events:
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:  # a siren bridge must not break alerting
                    log.exception("alert listener failed for alert %s", event.alert_id)
        if txn.wake:
            for wake in self.wakers:
                wake()

    def apply_plan(self, txn: AlertTransaction, alert: Alert, plan: Plan) -> None:
        """Store a lifecycle decision: new clock, next wake-up, queued messages, audit."""
        before = alert.state
        apply_clock(alert, plan.clock)
        alert.next_action_s = plan.next_action_s
        for send in plan.sends:
            enqueue(txn, alert, send)
        if plan.note:
            record(
                txn.session,
                txn.now_s,
                plan.note,
                patient_id=alert.patient_id,
                alert_id=alert.id,
                level=alert.level,
            )
        if before != alert.state:
            txn.events.append(event_of(alert, alert.state, txn.now_s))
        elif plan.note == "escalated":
            txn.events.append(event_of(alert, "escalated", txn.now_s))

    # -- lifecycle entry points ---------------------------------------------------------------

    def open_alert(
        self,
        txn: AlertTransaction,
        patient: Patient,
        *,
        kind: str,
        severity: Severity,
        since_s: float,
        episode_id: int | None = None,
        signal: str | None = None,
    ) -> Alert:
        """Raise a new alert: warnings wait out the wearer's window, critical ones don't.

        A lost signal (a :data:`~service.alerts.render.LOST_SIGNAL` kind) gives the wearer the
        longer ``signal_window_s``: bands come off every day, and the wearer is the one who
        knows why. In quiet hours the wearer is asked only when they end (a band charging
        overnight wakes nobody), and the window runs from then; if the band is back by then,
        nobody hears of it.
        """
        lost_signal = kind in LOST_SIGNAL
        window = patient.signal_window_s if lost_signal else patient.cancel_window_s
        window = window if severity is Severity.WARNING else 0.0
        asked_s = txn.now_s
        if lost_signal and window > 0:
            asked_s = quiet_until_s(policy_of(patient), txn.now_s) or txn.now_s
        alert = Alert(
            patient_id=patient.id,
            episode_id=episode_id,
            signal=signal,
            kind=kind,
            severity=severity,
            state=AlertState.CANCEL_WINDOW if window > 0 else AlertState.ACTIVE,
            created_s=txn.now_s,
            since_s=since_s,
            cancel_until_s=asked_s + window if window > 0 else None,
            round=0,
            level=-1,
            repeat_count=0,
            next_action_s=asked_s + window,
        )
        if kind != DRILL:
            self._stop_drills(txn, patient.id)
        if lost_signal:  # asked anew: an earlier "I took it off" is not reminded of any more
            stop_reminders(txn.session, patient.id, kind)
        txn.session.add(alert)
        txn.session.flush()
        record(
            txn.session,
            txn.now_s,
            "alert_opened",
            patient_id=patient.id,
            alert_id=alert.id,
            kind=kind,
            severity=str(severity),
            episode_id=episode_id,
            signal=signal,
        )
        if window > 0:
            enqueue(txn, alert, Send(Purpose.PATIENT_CHECK, 0, 0, True), at_s=asked_s)
        txn.events.append(event_of(alert, "opened", txn.now_s))
        txn.wake = True
        return alert

    def _stop_drills(self, txn: AlertTransaction, patient_id: str) -> None:
        """A real alert stops the patient's drill at once, without an all-clear beside it.

        Its repeats and escalation stop (its unsent messages are skipped as for any cancelled
        alert); nothing must stand beside, or be taken for, the real one.
        """
        drills = txn.session.scalars(
            select(Alert).where(
                Alert.patient_id == patient_id,
                Alert.kind == DRILL,
                Alert.state.in_((AlertState.CANCEL_WINDOW, AlertState.ACTIVE)),
            )
        ).all()
        for drill in drills:
            drill.state = AlertState.CANCELLED
            drill.closed_s = txn.now_s
            drill.next_action_s = None
            record(
                txn.session,
                txn.now_s,
                "drill_interrupted",
                patient_id=patient_id,
                alert_id=drill.id,
            )
            txn.events.append(event_of(drill, "cancelled", txn.now_s))

    def worsen_alert(
        self, txn: AlertTransaction, alert: Alert, severity: Severity, reason: str
    ) -> None:
        """The episode got worse: re-arm the alert even if it was acknowledged or cancelled."""
        alert.round += 1
        plan = worsen(clock_of(alert), severity, txn.now_s)
        apply_clock(alert, plan.clock)
        alert.acked_s = None
        alert.acked_by = None
        alert.next_action_s = plan.next_action_s
        for send in plan.sends:
            enqueue(txn, alert, send)
        record(
            txn.session,
            txn.now_s,
            "alert_worsened",
            patient_id=alert.patient_id,
            alert_id=alert.id,
            severity=str(severity),
            reason=reason,
            round=alert.round,
        )
        txn.events.append(event_of(alert, "worsened", txn.now_s))
        txn.wake = True

    def resolve_alert(self, txn: AlertTransaction, alert: Alert, reason: str) -> None:
        """The episode ended or the signal came back: stop everything, tell who was told.

        Who was told is who a message of the alert reached, not its level: see
        :func:`~service.alerts.delivery_queue.enqueue_all_clear`.
        """
        if alert.state in (AlertState.RESOLVED, AlertState.CANCELLED):
            return
        alert.state = AlertState.RESOLVED
        alert.closed_s = txn.now_s
        alert.next_action_s = None
        enqueue_all_clear(txn, alert)
        record(
            txn.session,
            txn.now_s,
            "alert_resolved",
            patient_id=alert.patient_id,
            alert_id=alert.id,
            reason=reason,
        )
        txn.events.append(event_of(alert, "resolved", txn.now_s))

    def acknowledge(self, alert_id: int, *, by: str, via: str) -> Alert:
        """Someone is on it: stop repeats and escalation until the episode worsens."""
        with self.transaction() as txn:
            alert = txn.session.get(Alert, alert_id)
            if alert is None:
                raise AlertNotFoundError(alert_id)
            if alert.state not in (AlertState.CANCEL_WINDOW, AlertState.ACTIVE):
                record(
                    txn.session,
                    txn.now_s,
                    "ack_ignored",
                    patient_id=alert.patient_id,
                    alert_id=alert.id,
                    via=via,
                    by=by,
                    state=alert.state,
                )
                return alert
            alert.state = AlertState.ACKNOWLEDGED
            alert.acked_s = txn.now_s
            alert.acked_by = by
            alert.next_action_s = None
            record(
                txn.session,
                txn.now_s,
                "acknowledged",
                patient_id=alert.patient_id,
                alert_id=alert.id,
                via=via,
                by=by,
            )
            txn.events.append(event_of(alert, "acknowledged", txn.now_s))
            if alert.kind == DRILL:  # the first answer ends a drill (service.alerts.drills)
                self.resolve_alert(txn, alert, "drill_answered")
            return alert

    def cancel(self, alert_id: int, *, via: str) -> Alert:
        """The wearer's "I'm OK": allowed for warnings inside the cancel window only."""
        with self.transaction() as txn:
            alert = txn.session.get(Alert, alert_id)
            if alert is None:
                raise AlertNotFoundError(alert_id)
            allowed = alert.state == AlertState.CANCEL_WINDOW and (
                alert.cancel_until_s is None or txn.now_s < alert.cancel_until_s
            )
            if allowed:
                alert.state = AlertState.CANCELLED
                alert.closed_s = txn.now_s
                alert.next_action_s = None
                txn.events.append(event_of(alert, "cancelled", txn.now_s))
                if alert.kind in LOST_SIGNAL:  # "I took it off": reminded while it stays off
                    patient = txn.session.get_one(Patient, alert.patient_id)
                    start_reminders(patient, alert, txn.now_s)
            # The refusal is audited too: committed before the error is raised.
            record(
                txn.session,
                txn.now_s,
                "cancelled_by_wearer" if allowed else "cancel_refused",
                patient_id=alert.patient_id,
                alert_id=alert.id,
                via=via,
                state=alert.state,
            )
        if not allowed:
            raise CancelNotAllowedError(alert.id, alert.state, alert.severity)
        return alert

    # -- tokens -------------------------------------------------------------------------------

    def link(self, action: TokenAction, alert: Alert, contact_id: int) -> str:
        """A signed link that acknowledges, cancels (wearer) or labels one alert's episode."""
        ttl = LABEL_TOKEN_TTL_S if action is TokenAction.LABEL else ACK_TOKEN_TTL_S
        claim = TokenClaim(
            action,
            alert.id,
            contact_id,
            int(self.clock() + ttl),
            alert_key(alert.patient_id, alert.created_s),
        )
        return f"{self.public_base_url}/{_LINK_PATHS[action]}/{sign_token(self.secret_key, claim)}"

    def _claim(self, token: str, action: TokenAction) -> TokenClaim:
        claim = verify_token(self.secret_key, token, self.clock())
        if claim.action is not action:
            raise TokenError("wrong_action")
        with self.db.session() as session:
            alert = session.get(Alert, claim.alert_id)
            holder = session.get(Contact, claim.contact_id)
            if (
                claim.alert_key is not None
                and alert is not None
                and (
                    claim.alert_key != alert_key(alert.patient_id, alert.created_s)
                    or (holder is not None and holder.patient_id != alert.patient_id)
                )
            ):
                raise TokenError("other_alert")
            if holder is not None and holder.removed_s is not None:
                # taken off the care team: their links stop at once, so that they can no longer
                # acknowledge (and so stop) the escalation of an alert meant for the others
                raise TokenError("revoked")
        return claim

    def inspect(self, token: str, action: TokenAction) -> Alert:
        """The alert a valid token points at, without acting on it (link preview pages)."""
        claim = self._claim(token, action)
        with self.db.session() as session:
            alert = session.get(Alert, claim.alert_id)
            if alert is None:
                raise AlertNotFoundError(claim.alert_id)
            return alert

    def redeem(self, token: str, action: TokenAction, *, via: str) -> Alert:
        """Acknowledge or cancel with a link token; raise :class:`TokenError` if it is unusable."""
        claim = self._claim(token, action)
        if action is TokenAction.CANCEL:
            return self.cancel(claim.alert_id, via=via)
        with self.db.session() as session:
            name = _holder(session, claim)
        return self.acknowledge(claim.alert_id, by=name, via=via)

    def episode_to_label(self, token: str) -> tuple[int, str]:
        """The episode a label token is for, and the name of the person it was sent to."""
        claim = self._claim(token, TokenAction.LABEL)
        with self.db.session() as session:
            alert = session.get(Alert, claim.alert_id)
            if alert is None:
                raise AlertNotFoundError(claim.alert_id)
            if alert.episode_id is None or alert.kind in LOST_SIGNAL:
                raise NothingToLabelError(alert.id)
            return alert.episode_id, _holder(session, claim)


_LINK_PATHS = {TokenAction.ACK: "ack", TokenAction.CANCEL: "im-ok", TokenAction.LABEL: "label"}
"""Where each kind of link points (the pages in ``service.api.routes.links``)."""


def _holder(session: Session, claim: TokenClaim) -> str:
    """The name of the person a token was sent to (their contact may have been removed since)."""
    contact = session.get(Contact, claim.contact_id)
    if contact is None or not contact.name.strip():
        return f"contact {claim.contact_id}"
    return contact.name
