"""The escalation scheduler: advances due alerts and sends due deliveries, durably.

All state lives in the database (alert clocks, queued deliveries), so a restarted scheduler picks
up where the previous one stopped. Deliveries are claimed (``sending``) in a committed
transaction before the network call and settled afterwards; a delivery found ``sending`` at start
was interrupted by a crash and is sent again (at-least-once for that single message, never a
re-run of the step: steps are deduplicated by idempotency key).

Each alert and each delivery of a pass is worked in a savepoint of its own: a row that raises
(a value no version knows, written by hand or by an older version) is rolled back alone and set
aside (:class:`~service.db.outage_log.SetAside`), and every other patient's alerts go on. A
database outage still fails the whole pass (it is retried, and logged once per outage).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.alerts.absence import end_absences, next_return_s
from service.alerts.audit import record
from service.alerts.away_schedule import next_scheduled_away_s, start_scheduled_absences
from service.alerts.backoff import FailureKind
from service.alerts.care_team import escalation_levels, policy_of
from service.alerts.const import DELIVERY_WORKERS, SCHEDULER_POLL_S, SCHEDULER_STALL_S
from service.alerts.delivery_outcome import apply_result, fail_unprepared
from service.alerts.delivery_prep import (
    UNREADABLE_CHANNEL_REASON,
    ClaimedDelivery,
    prepare_delivery,
)
from service.alerts.drill_schedule import next_scheduled_drill_s, start_due_drills
from service.alerts.drills import end_if_unanswered
from service.alerts.lifecycle import Purpose, plan_alert
from service.alerts.manager import AlertManager, clock_of
from service.alerts.notifier import Notifier, SendResult
from service.alerts.off_reminders import next_reminder_s, send_due_reminders
from service.alerts.transaction import AlertTransaction
from service.db.models import (
    Alert,
    AlertState,
    Delivery,
    DeliveryState,
    Patient,
)
from service.db.outage_log import TRANSIENT_DB_ERRORS, OutageLog, SetAside, error_reason
from service.health import Check

log = logging.getLogger(__name__)

CLAIM_BATCH: Final = 200
"""Deliveries claimed per pass; more wait for the next pass (a few ms later)."""

SET_ASIDE_RETRY_S: Final = 60.0
"""A row set aside is tried again after a minute: one mended by hand goes on within a minute,
and a broken one costs a savepoint a minute, not two a second (``SCHEDULER_POLL_S``)."""

LIVE_STATES: Final = (AlertState.CANCEL_WINDOW, AlertState.ACTIVE)
AFTER_THE_END: Final = (
    Purpose.RESOLVED,
    Purpose.OFF_REMINDER,
    Purpose.OFF_NOTICE,
    Purpose.BATTERY_LOW,
)
"""Messages sent after their alert is over (a battery notice's alert is over from the start)."""
FINISHED_STATES: Final = (AlertState.ACKNOWLEDGED, AlertState.CANCELLED, AlertState.RESOLVED)


@dataclass(slots=True)
class _Timer:
    """Work the scheduler does at a time kept in the database (an absence's end, say)."""

    next_at: Callable[[Session], float | None]
    """The earliest time it is due (None: never)."""
    run: Callable[[AlertTransaction], object]
    """Do what is due; a true result wakes the scheduler at once."""
    next_s: float | None = None
    """:attr:`next_at` as the last pass read it."""

    def read(self, session: Session) -> float | None:
        self.next_s = self.next_at(session)
        return self.next_s


class EscalationScheduler:
    """Runs alert lifecycles and deliveries.

    :meth:`run_due` is one pass (tests call it with a fake clock); :meth:`start` runs passes in
    a thread until :meth:`stop`.
    """

    def __init__(self, manager: AlertManager, notifier: Notifier) -> None:
        self.manager = manager
        self.notifier = notifier
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(DELIVERY_WORKERS, thread_name_prefix="flarewatch-send")
        self._inflight: set[Future[None]] = set()
        self._inflight_lock = threading.Lock()
        self._unsettled: list[tuple[ClaimedDelivery, SendResult]] = []
        """Send results the database refused to record (guarded by ``_inflight_lock``)."""
        self._outage = OutageLog("escalation passes", manager.db.url, log)
        self._timers = (
            _Timer(next_return_s, lambda txn: end_absences(txn.session, txn.now_s)),
            _Timer(next_scheduled_away_s, start_scheduled_absences),
            _Timer(next_reminder_s, send_due_reminders),
            _Timer(next_scheduled_drill_s, lambda txn: start_due_drills(manager, txn)),
        )
        """Absences that end and that begin by schedule, reminders of bands taken off, drills."""
        self._started_s: float | None = None
        self._last_ok_s: float | None = None
        """When the thread started, and when a pass of it last succeeded (monotonic s)."""
        self._alerts_aside = SetAside(log, SET_ASIDE_RETRY_S, manager.clock)
        self._deliveries_aside = SetAside(log, SET_ASIDE_RETRY_S, manager.clock)
        manager.wakers.append(self.wake)
        self.recover()

    # -- thread -------------------------------------------------------------------------------

    def wake(self) -> None:
        """Run a pass now (called after an alert changes)."""
        self._wake.set()

    def start(self) -> None:
        """Run passes in a background thread."""
        self._stop.clear()
        self._started_s = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="flarewatch-escalation")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current pass and release the send pool."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._wake.wait(self._pass())

    def _pass(self) -> float:
        """One pass of the thread; returns the wait before the next.

        A failed pass is retried after ``SCHEDULER_POLL_S`` (one connection attempt, a cheap
        one to a database that is down), and logged once per outage, not once per pass
        (:class:`~service.db.outage_log.OutageLog`).
        """
        try:
            next_s = self.run_due()
        except Exception as exc:  # noqa: BLE001 - keep alerting alive; the pass is retried
            self._outage.failed(exc)
            return SCHEDULER_POLL_S
        self._outage.succeeded()
        self._last_ok_s = time.monotonic()
        if next_s is None:
            return SCHEDULER_POLL_S
        return min(SCHEDULER_POLL_S, max(0.0, next_s - self.manager.clock()))

    def health(self) -> Check:
        """Whether the thread runs and its passes succeed (they need the service database)."""
        name = "escalation"
        if self._thread is None or not self._thread.is_alive() or self._started_s is None:
            return Check(name, False, "the escalation scheduler is not running")
        since_s = time.monotonic() - (self._last_ok_s or self._started_s)
        if since_s > SCHEDULER_STALL_S:
            return Check(
                name,
                False,
                f"no pass succeeded for {since_s:.0f} s: is the service database reachable?",
            )
        return Check(name, True, "passes succeed")

    # -- passes -------------------------------------------------------------------------------

    def recover(self) -> int:
        """Put deliveries interrupted mid-send back in the queue; returns how many."""
        with self.manager.transaction() as txn:
            stuck = txn.session.scalars(
                select(Delivery).where(Delivery.state == DeliveryState.SENDING)
            ).all()
            for delivery in stuck:
                delivery.state = DeliveryState.PENDING
                delivery.next_attempt_s = txn.now_s
                record(
                    txn.session,
                    txn.now_s,
                    "delivery_resumed_after_restart",
                    alert_id=delivery.alert_id,
                    delivery_id=delivery.id,
                )
            return len(stuck)

    def run_due(self, *, wait: bool = False) -> float | None:
        """One pass: advance due alerts, hand due deliveries to the send pool.

        Sends run concurrently and settle on their own, so a channel that hangs until its
        timeout never delays another alert. ``wait`` waits for them (tests, shutdown).
        Returns the next due time.
        """
        self._settle_backlog()
        self._run_timers()
        self._advance_alerts()
        for claimed in self._claim_deliveries():
            future = self._pool.submit(self._deliver, claimed)
            with self._inflight_lock:
                self._inflight.add(future)
            future.add_done_callback(self._forget)
        if wait:
            with self._inflight_lock:
                pending = list(self._inflight)
            futures.wait(pending)
            # Fall-through and forced escalations may be due right away.
            self._advance_alerts()
        return self.next_due_s()

    def _forget(self, future: Future[None]) -> None:
        with self._inflight_lock:
            self._inflight.discard(future)

    def _deliver(self, claimed: ClaimedDelivery) -> None:
        self._record(claimed, self._send(claimed))
        self.wake()

    def _record(self, claimed: ClaimedDelivery, result: SendResult, *, again: bool = False) -> None:
        """Settle one send, or keep it for the next pass if the database refuses.

        Told once per send (``again`` is a later pass's try); the tries after that count as the
        passes' failures, logged once per outage.
        """
        # left "sending", a failed message would not be retried nor passed on until a restart
        try:
            self._settle(claimed, result)
        except Exception as exc:  # noqa: BLE001 - a database error must not lose the outcome
            if not again:
                log.warning(
                    "could not record the result of delivery %s (%s); kept, and tried again at "
                    "every pass",
                    claimed.delivery_id,
                    error_reason(self.manager.db.url, exc),
                )
            self._outage.failed(exc)
            with self._inflight_lock:
                self._unsettled.append((claimed, result))

    def _settle_backlog(self) -> None:
        with self._inflight_lock:
            backlog, self._unsettled = self._unsettled, []
        for claimed, result in backlog:
            self._record(claimed, result, again=True)

    @property
    def rows_set_aside(self) -> int:
        """Alerts and deliveries set aside since the start (rows that raised; each logged once)."""
        return self._alerts_aside.count + self._deliveries_aside.count

    def run_until_idle(self, max_passes: int = 50) -> None:
        """Run passes (waiting for sends) until nothing is due at the current clock."""
        for _ in range(max_passes):
            next_s = self.run_due(wait=True)
            if next_s is None or next_s > self.manager.clock():
                return

    def next_due_s(self) -> float | None:
        """Earliest time an alert, a delivery, an absence's end or a reminder needs the scheduler.

        Rows set aside are left out.
        """
        alerts = select(func.min(Alert.next_action_s)).where(Alert.state.in_(LIVE_STATES))
        if held := self._alerts_aside.held():
            alerts = alerts.where(Alert.id.not_in(held))
        deliveries = select(func.min(Delivery.next_attempt_s)).where(
            Delivery.state == DeliveryState.PENDING
        )
        if held := self._deliveries_aside.held():
            deliveries = deliveries.where(Delivery.id.not_in(held))
        with self.manager.db.session() as session:
            alert_s = session.scalar(alerts)
            delivery_s = session.scalar(deliveries)
            timed = [timer.read(session) for timer in self._timers]
        times = [t for t in (alert_s, delivery_s, *timed) if t is not None]
        return min(times) if times else None

    def _run_timers(self) -> None:
        """Run the timed work whose earliest time, as the last pass read it, has come.

        A pass takes no write transaction of its own for them otherwise.
        """
        for timer in self._timers:
            if timer.next_s is None or timer.next_s > self.manager.clock():
                continue
            with self.manager.transaction() as txn:
                if timer.run(txn):
                    txn.wake = True
            timer.next_s = None  # read again at the end of the pass

    def _advance_alerts(self) -> None:
        query = select(Alert).where(Alert.state.in_(LIVE_STATES)).order_by(Alert.next_action_s)
        if held := self._alerts_aside.held():
            query = query.where(Alert.id.not_in(held))
        with self.manager.transaction() as txn:
            due = txn.session.scalars(query.where(Alert.next_action_s <= txn.now_s)).all()
            for alert in due:
                alert_id, patient_id = alert.id, alert.patient_id  # a rollback expires the row
                try:
                    with txn.savepoint():
                        self._advance(txn, alert)
                except TRANSIENT_DB_ERRORS:
                    raise  # an outage: the whole pass is retried
                except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
                    what = f"alert {alert_id} of patient {patient_id}"
                    if self._alerts_aside.failed(alert_id, what, exc):
                        with txn.savepoint():
                            record(
                                txn.session,
                                txn.now_s,
                                "alert_set_aside",
                                patient_id=patient_id,
                                alert_id=alert_id,
                                error=type(exc).__name__,
                            )
                    continue
                self._alerts_aside.succeeded(alert_id)

    def _advance(self, txn: AlertTransaction, alert: Alert) -> None:
        if end_if_unanswered(self.manager, txn, alert):
            return
        patient = txn.session.get_one(Patient, alert.patient_id)
        levels = len(escalation_levels(txn.session, alert.patient_id))
        plan = plan_alert(clock_of(alert), policy_of(patient), levels, txn.now_s)
        self.manager.apply_plan(txn, alert, plan)

    def _claim_deliveries(self) -> list[ClaimedDelivery]:
        claimed: list[ClaimedDelivery] = []
        query = (
            select(Delivery)
            .where(Delivery.state == DeliveryState.PENDING)
            .order_by(Delivery.next_attempt_s, Delivery.id)
            .limit(CLAIM_BATCH)
        )
        if held := self._deliveries_aside.held():
            query = query.where(Delivery.id.not_in(held))
        with self.manager.transaction() as txn:
            due = txn.session.scalars(query.where(Delivery.next_attempt_s <= txn.now_s)).all()
            for delivery in due:
                delivery_id, alert_id = delivery.id, delivery.alert_id
                try:
                    with txn.savepoint():
                        item = self._claim(txn, delivery)
                except TRANSIENT_DB_ERRORS:
                    raise  # an outage: the whole pass is retried
                except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
                    what = f"delivery {delivery_id} of alert {alert_id}"
                    self._deliveries_aside.failed(delivery_id, what, exc)
                    self._give_up(txn, delivery_id, exc)
                    continue
                self._deliveries_aside.succeeded(delivery_id)
                if item is not None:
                    claimed.append(item)
        return claimed

    def _claim(self, txn: AlertTransaction, delivery: Delivery) -> ClaimedDelivery | None:
        """Mark ``delivery`` as being sent and prepare its message; ``None`` if it is skipped."""
        alert = txn.session.get_one(Alert, delivery.alert_id)
        # an all-clear, a reminder of a band taken off, a battery notice: after their alert
        if alert.state in FINISHED_STATES and delivery.purpose not in AFTER_THE_END:
            delivery.state = DeliveryState.SKIPPED
            record(
                txn.session,
                txn.now_s,
                "delivery_skipped",
                alert_id=alert.id,
                delivery_id=delivery.id,
                alert_state=alert.state,
            )
            return None
        delivery.state = DeliveryState.SENDING
        delivery.attempts += 1
        return prepare_delivery(self.manager, txn, alert, delivery)

    def _give_up(self, txn: AlertTransaction, delivery_id: int, exc: Exception) -> None:
        """A delivery that cannot even be prepared fails, as a channel that refuses it does.

        Trying it again would fail again: it is marked failed (and in the audit trail) and the
        step falls through to the contact's next channel, else past the contact, so the patient
        is not left without anyone told. If even that fails (no next channel can be told from
        its own), it is only marked; if that too fails, it stays set aside and tried again.
        """
        for passed_on in (True, False):
            try:
                with txn.savepoint():
                    fail_unprepared(txn, delivery_id, exc, then_pass_on=passed_on)
            except TRANSIENT_DB_ERRORS:
                raise
            except Exception:  # noqa: BLE001 - the next way, or held and tried again later
                continue
            self._deliveries_aside.settled(delivery_id)
            return

    def _send(self, claimed: ClaimedDelivery) -> SendResult:
        if claimed.url is None:
            return SendResult(False, FailureKind.PERMANENT, UNREADABLE_CHANNEL_REASON)
        try:
            return self.notifier.send(claimed.url, claimed.message)
        except Exception as exc:  # noqa: BLE001 - a notifier bug is a failed attempt, not a crash
            log.warning(
                "notifier raised %s for delivery %s", type(exc).__name__, claimed.delivery_id
            )
            return SendResult(False, FailureKind.TRANSIENT, f"notifier error {type(exc).__name__}")

    def _settle(self, item: ClaimedDelivery, result: SendResult) -> None:
        with self.manager.transaction() as txn:
            apply_result(txn, item, result)
