"""The episode engine: detector alarms become episodes, signal states stay apart.

One episode per physiological event: the first flush/anaphylaxis alarm opens it, worse alarms
escalate it (kind and severity only ever rise), the detector's ``resolved`` alarm closes it.
Signal states (no data, no contact, gateway offline, battery low) are tracked per patient and
never open an episode; a signal lost *while* an episode is open makes that episode critical.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import select

from flarewatch.payloads import DeviceStatus
from models.alarm import Alarm, AlarmKind, Severity
from service.alerts.audit import record
from service.alerts.battery_notices import tell_battery_low
from service.alerts.const import (
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_CANCEL_WINDOW_S,
    DEFAULT_OFF_NOTICE_S,
    DEFAULT_OFF_REMINDER_S,
    DEFAULT_REPEAT_INTERVAL_S,
    DEFAULT_SIGNAL_WINDOW_S,
    VITALS_REFRESH_S,
)
from service.alerts.manager import AlertManager
from service.alerts.off_reminders import stop_reminders
from service.alerts.transaction import AlertTransaction
from service.const import EPISODE_LOST_AFTER_S
from service.db.device_links import record_link
from service.db.models import (
    OPEN_ALERT_STATES,
    Alert,
    Episode,
    EpisodeState,
    Patient,
    SignalState,
)
from service.episodes.ranking import KIND_RANK, worse_kind, worse_severity
from service.episodes.signals import ALERT_KIND_OF_SIGNAL, SIGNAL_LOSS, SignalKind

log = logging.getLogger(__name__)

MAX_EVIDENCE_ITEMS: Final = 50
"""Alarms kept in an episode summary; a long episode keeps its first and latest ones."""


class EpisodeEngine:
    """Turns alarms and signal changes into episodes and alerts.

    Thread-safe: each call is one database transaction.
    """

    def __init__(self, alerts: AlertManager) -> None:
        self.alerts = alerts
        self._vitals_saved_s: dict[str, float] = {}
        with alerts.db.session() as session:
            # patient -> time of their open episode's newest alarm (s)
            self._open_patients: dict[str, float] = {
                episode.patient_id: _latest_alarm_s(episode)
                for episode in session.scalars(
                    select(Episode).where(Episode.state == EpisodeState.OPEN)
                )
            }

    # -- helpers ------------------------------------------------------------------------------

    def _patient(self, txn: AlertTransaction, patient_id: str) -> Patient:
        patient = txn.session.get(Patient, patient_id)
        if patient is None:
            # Data from an unregistered patient is still watched; alerts reach nobody until a
            # care team is added (the audit trail and the MQTT alert topic show them).
            patient = Patient(
                id=patient_id,
                display_name=patient_id,
                cancel_window_s=DEFAULT_CANCEL_WINDOW_S,
                signal_window_s=DEFAULT_SIGNAL_WINDOW_S,
                off_reminder_s=DEFAULT_OFF_REMINDER_S,
                off_notice_s=DEFAULT_OFF_NOTICE_S,
                ack_timeout_s=DEFAULT_ACK_TIMEOUT_S,
                repeat_interval_s=DEFAULT_REPEAT_INTERVAL_S,
                created_s=txn.now_s,
            )
            txn.session.add(patient)
            txn.session.flush()
            record(txn.session, txn.now_s, "patient_auto_registered", patient_id=patient_id)
            log.warning("patient %s is not registered: alerts will reach nobody", patient_id)
        return patient

    @staticmethod
    def open_episode(txn: AlertTransaction, patient_id: str) -> Episode | None:
        """The patient's open episode, if any."""
        return txn.session.scalars(
            select(Episode)
            .where(Episode.patient_id == patient_id, Episode.state == EpisodeState.OPEN)
            .order_by(Episode.id.desc())
        ).first()

    @staticmethod
    def _episode_alert(txn: AlertTransaction, episode: Episode) -> Alert | None:
        return txn.session.scalars(
            select(Alert).where(Alert.episode_id == episode.id).order_by(Alert.id.desc())
        ).first()

    # -- alarms -------------------------------------------------------------------------------

    def on_alarm(self, alarm: Alarm, vitals: Mapping[str, float] | None = None) -> None:
        """Apply one detector alarm; ``vitals`` are the latest readings for the messages."""
        if alarm.kind is AlarmKind.NO_DATA:
            self.on_signal(alarm.patient_id, SignalKind.NO_DATA, not alarm.resolved, alarm.time_s)
            return
        if alarm.kind is AlarmKind.NO_CONTACT:
            self.on_signal(
                alarm.patient_id, SignalKind.NO_CONTACT, not alarm.resolved, alarm.time_s
            )
            return
        with self.alerts.transaction() as txn:
            patient = self._patient(txn, alarm.patient_id)
            episode = self.open_episode(txn, patient.id)
            if alarm.resolved:
                if (
                    episode is not None
                    and KIND_RANK[alarm.kind] >= KIND_RANK[AlarmKind(episode.kind)]
                ):
                    self._close(txn, episode, alarm)
                return
            entry: dict[str, Any] = {
                "time_s": alarm.time_s,
                "kind": str(alarm.kind),
                "severity": str(alarm.severity),
                "model_version": alarm.model_version,
                "evidence": dict(alarm.evidence),
            }
            if episode is None:
                self._open(txn, patient, alarm, entry, vitals)
            else:
                self._update(txn, episode, alarm, entry, vitals)

    def _open(
        self,
        txn: AlertTransaction,
        patient: Patient,
        alarm: Alarm,
        entry: dict[str, Any],
        vitals: Mapping[str, float] | None,
    ) -> None:
        episode = Episode(
            patient_id=patient.id,
            kind=str(alarm.kind),
            severity=str(alarm.severity),
            state=EpisodeState.OPEN,
            opened_s=alarm.time_s,
            model_version=alarm.model_version,
            signal_lost=False,
            summary={"alarms": [entry], "vitals": dict(vitals or {}), "peak": dict(alarm.evidence)},
        )
        txn.session.add(episode)
        txn.session.flush()
        record(
            txn.session,
            txn.now_s,
            "episode_opened",
            patient_id=patient.id,
            episode_id=episode.id,
            kind=episode.kind,
            severity=episode.severity,
            model_version=alarm.model_version,
        )
        self.alerts.open_alert(
            txn,
            patient,
            kind=episode.kind,
            severity=alarm.severity,
            since_s=alarm.time_s,
            episode_id=episode.id,
        )
        self._vitals_saved_s[patient.id] = txn.now_s
        self._open_patients[patient.id] = alarm.time_s

    def _update(
        self,
        txn: AlertTransaction,
        episode: Episode,
        alarm: Alarm,
        entry: dict[str, Any],
        vitals: Mapping[str, float] | None,
    ) -> None:
        summary = dict(episode.summary)
        alarms = list(summary.get("alarms", []))
        alarms.append(entry)
        if len(alarms) > MAX_EVIDENCE_ITEMS:
            alarms = alarms[:1] + alarms[-(MAX_EVIDENCE_ITEMS - 1) :]
        peak = dict(summary.get("peak", {}))
        for key, value in alarm.evidence.items():
            peak[key] = max(value, peak.get(key, value))
        summary.update(alarms=alarms, peak=peak)
        self._open_patients[episode.patient_id] = max(
            alarm.time_s, self._open_patients.get(episode.patient_id, alarm.time_s)
        )
        if vitals:
            summary["vitals"] = dict(vitals)
        episode.summary = summary
        kind = worse_kind(episode.kind, alarm.kind)
        severity = worse_severity(episode.severity, alarm.severity)
        if kind == episode.kind and severity == episode.severity:
            return
        episode.kind = kind
        episode.severity = severity
        episode.escalated_s = alarm.time_s
        record(
            txn.session,
            txn.now_s,
            "episode_escalated",
            patient_id=episode.patient_id,
            episode_id=episode.id,
            kind=kind,
            severity=str(severity),
            model_version=alarm.model_version,
        )
        self._worsen_alert(txn, episode, severity, "episode_escalated")

    def _worsen_alert(
        self, txn: AlertTransaction, episode: Episode, severity: Severity, reason: str
    ) -> None:
        alert = self._episode_alert(txn, episode)
        if alert is None:
            patient = txn.session.get_one(Patient, episode.patient_id)
            self.alerts.open_alert(
                txn,
                patient,
                kind=episode.kind,
                severity=severity,
                since_s=episode.opened_s,
                episode_id=episode.id,
            )
            return
        alert.kind = episode.kind
        self.alerts.worsen_alert(txn, alert, severity, reason)

    def _close(self, txn: AlertTransaction, episode: Episode, alarm: Alarm) -> None:
        episode.state = EpisodeState.CLOSED
        episode.closed_s = alarm.time_s
        # the detectors close an episode that never calmed down after 2 h ("expired"): the
        # readings are still raised, so its end must not read as an all-clear
        expired = alarm.evidence.get("expired") == 1.0
        if expired:
            episode.summary = {**episode.summary, "expired": True}
        self._open_patients.pop(episode.patient_id, None)
        record(
            txn.session,
            txn.now_s,
            "episode_closed",
            patient_id=episode.patient_id,
            episode_id=episode.id,
            duration_s=round(alarm.time_s - episode.opened_s, 1),
            expired=expired,
        )
        alert = self._episode_alert(txn, episode)
        if alert is not None:
            self.alerts.resolve_alert(txn, alert, "episode_closed")

    def is_lost(self, patient_id: str, data_s: float) -> bool:
        """Whether the patient's open episode is no detector's any more at data time ``data_s``."""
        latest = self._open_patients.get(patient_id)
        return latest is not None and data_s - latest >= EPISODE_LOST_AFTER_S

    def close_lost(self, patient_id: str, data_s: float) -> None:
        """Close, as expired, an open episode no detector follows any more (see the constant).

        ``data_s`` is the patient's newest sample time: data time, like the detectors, so an
        outage (no data) or a late replay never closes an episode early.
        """
        latest = self._open_patients.get(patient_id)
        if latest is None or not self.is_lost(patient_id, data_s):
            return
        try:
            with self.alerts.transaction() as txn:
                self._open_patients.pop(patient_id, None)
                episode = self.open_episode(txn, patient_id)
                if episode is None:
                    return
                log.warning(
                    "episode %d of patient %s: no detector alarm for %.0f s of data, the "
                    "detectors lost it (restart); closed as expired",
                    episode.id,
                    patient_id,
                    data_s - latest,
                )
                kind, severity = AlarmKind(episode.kind), Severity(episode.severity)
                evidence = {"expired": 1.0}
                end = Alarm(
                    patient_id, data_s, kind, severity, episode.model_version, True, evidence
                )
                self._close(txn, episode, end)
        except Exception:
            self._open_patients[patient_id] = latest  # not closed: tried again (processor)
            raise

    # -- bands --------------------------------------------------------------------------------

    def on_device_statuses(self, statuses: Sequence[DeviceStatus]) -> None:
        """Keep what the gateways reported of registered bands (their link, battery, contact)."""
        with self.alerts.transaction() as txn:
            for status in statuses:
                record_link(txn.session, status)

    # -- signals ------------------------------------------------------------------------------

    def on_signal(
        self, patient_id: str, signal: SignalKind, active: bool, time_s: float, detail: str = ""
    ) -> None:
        """Record a signal change; raise or resolve its alert, escalate an open episode."""
        with self.alerts.transaction() as txn:
            state = txn.session.get(SignalState, (patient_id, str(signal)))
            if state is not None and state.active == active:
                if active:  # still lost, perhaps for another reason (the band now will not pair)
                    state.detail = detail[:200]
                return  # retained status re-delivered, or a repeated detector verdict
            if state is None and not active:
                # nothing was lost: no patient to register (a retained "online" status of an
                # erased patient's band, read again at every start, must not bring them back)
                return
            patient = self._patient(txn, patient_id)
            if state is None:
                state = SignalState(patient_id=patient_id, signal=str(signal))
                txn.session.add(state)
            # a gateway minutes behind may bring readings from before the silence was raised
            # for (data time): restored then, never before it was lost
            restored_before = not active and state.since_s is not None and time_s < state.since_s
            state.active = active
            state.since_s = state.since_s if restored_before else time_s
            state.detail = detail[:200]
            record(
                txn.session,
                txn.now_s,
                "signal_lost" if active else "signal_restored",
                patient_id=patient_id,
                signal=str(signal),
            )
            alert_kind = ALERT_KIND_OF_SIGNAL[signal]
            if signal is SignalKind.BATTERY_LOW:
                if active:  # the wearer's to charge: told once per low spell, nobody else
                    tell_battery_low(txn, patient, time_s)
            elif active:
                self._signal_lost(txn, patient, signal, alert_kind, time_s)
            elif alert_kind is not None:
                self._signal_restored(txn, patient_id, alert_kind)

    def _signal_lost(
        self,
        txn: AlertTransaction,
        patient: Patient,
        signal: SignalKind,
        alert_kind: str | None,
        time_s: float,
    ) -> None:
        episode = self.open_episode(txn, patient.id)
        if episode is not None and signal in SIGNAL_LOSS:
            if not episode.signal_lost:
                episode.signal_lost = True
                episode.severity = Severity.CRITICAL
                episode.escalated_s = time_s
                self._worsen_alert(txn, episode, Severity.CRITICAL, f"signal_lost:{signal}")
            return
        if alert_kind is None or self._signal_alert(txn, patient.id, alert_kind) is not None:
            return
        self.alerts.open_alert(
            txn,
            patient,
            kind=alert_kind,
            severity=Severity.WARNING,
            since_s=time_s,
            signal=str(signal),
        )

    def _signal_restored(self, txn: AlertTransaction, patient_id: str, alert_kind: str) -> None:
        group = [s for s, k in ALERT_KIND_OF_SIGNAL.items() if k == alert_kind]
        still_lost = txn.session.scalars(
            select(SignalState).where(
                SignalState.patient_id == patient_id,
                SignalState.signal.in_([str(s) for s in group]),
                SignalState.active.is_(True),
            )
        ).first()
        alert = self._signal_alert(txn, patient_id, alert_kind)
        if still_lost is None:
            stop_reminders(txn.session, patient_id, alert_kind)  # the band is back
            if alert is not None:
                self.alerts.resolve_alert(txn, alert, "signal_restored")

    @staticmethod
    def _signal_alert(txn: AlertTransaction, patient_id: str, alert_kind: str) -> Alert | None:
        return txn.session.scalars(
            select(Alert).where(
                Alert.patient_id == patient_id,
                Alert.kind == alert_kind,
                Alert.episode_id.is_(None),
                Alert.state.in_(OPEN_ALERT_STATES),
            )
        ).first()

    # -- vitals -------------------------------------------------------------------------------

    def note_vitals(self, patient_id: str, vitals: Mapping[str, float]) -> None:
        """Keep the open episode's latest vitals fresh for messages (at most every few s)."""
        if patient_id not in self._open_patients:
            return
        now_s = self.alerts.clock()
        if now_s - self._vitals_saved_s.get(patient_id, float("-inf")) < VITALS_REFRESH_S:
            return
        self._vitals_saved_s[patient_id] = now_s
        with self.alerts.transaction() as txn:
            episode = self.open_episode(txn, patient_id)
            if episode is not None:
                episode.summary = {**episode.summary, "vitals": dict(vitals)}


def _latest_alarm_s(episode: Episode) -> float:
    """Time of an episode's newest alarm (its summary keeps the first and latest ones)."""
    alarms = episode.summary.get("alarms") or [{}]
    return max(float(alarms[-1].get("time_s", episode.opened_s)), episode.opened_s)
