"""The ingest's processing hook that runs the detectors and feeds the episode engine.

Per ingest cycle: the new samples of every patient, lined up in time across the patient's
devices (``alignment``), go to the detector bank in one call (batch scoring across patients),
``tick`` raises "no data" for silent patients, each alarm goes to the episode engine with the
patient's latest vitals, and device/gateway status messages become signal states (device
offline, gateway offline by retained status or Last Will, battery low).
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from flarewatch.payloads import DeviceStatus, GatewayStatus, LinkState, Sample, SampleBatch
from models.alarm import Alarm
from service.alerts.render import HEART_RATE_TIME_KEY
from service.db.outage_log import TRANSIENT_DB_ERRORS, OutageLog
from service.episodes.alignment import DeviceAlignment
from service.episodes.checkpoint import Checkpointable, DetectorCheckpoint, HeldBack
from service.episodes.engine import EpisodeEngine
from service.episodes.signals import (
    SignalKind,
    active_signals,
    devices_of_patients,
    patients_of_devices,
)
from service.episodes.silences import HeldSilences
from service.processing import IngestCycle, Processor

log = logging.getLogger(__name__)

BATTERY_LOW_PERCENT: Final = 15
"""Below this the band may die within hours; the wearer is told to charge it (no caregiver)."""
BATTERY_CHARGED_PERCENT: Final = 30
"""From this up the low spell is over. Between the two a low battery stays low: a reading that
wavers around 15 % (14, 15, 14…) must not tell the wearer again and again."""

BAND_STATUSES_HELD: Final = 64
"""A band's statuses held for one write while the database is away (a link flapping for hours
keeps its last 64 changes)."""

RECEIVING_GRACE_S: Final = 60.0
"""A patient whose batches arrived within this time is not silent, even if the samples are old:
a gateway replaying its outbox after an outage is catching up, and the detector's "no data"
(which looks at sample times) must not wake anyone meanwhile."""

VITAL_FIELDS: Final = (
    "heart_rate_bpm",
    "skin_temperature_c",
    "acceleration_sd_g",
    "battery_percent",
)
"""Sample fields quoted as "latest vitals" in caregiver messages."""


class AlarmSource(Checkpointable, Protocol):
    """What the hook needs of a detector bank (``models.bank.DetectorBank`` fits)."""

    def update(self, items: Sequence[tuple[str, Sequence[Sample]]]) -> list[Alarm]:
        """Fold in new samples per patient; return alarms."""
        ...

    def tick(self, now_s: float) -> list[Alarm]:
        """Alarms that only the passing of time raises (no data)."""
        ...

    @property
    def model_version(self) -> str:
        """The detectors' version, stamped on every alarm they raise."""
        ...


class AlertingProcessor(Processor):
    """Detectors → episodes → alerts, run on the ingest worker thread."""

    def __init__(
        self,
        bank: AlarmSource,
        engine: EpisodeEngine,
        checkpoint: DetectorCheckpoint | None = None,
    ) -> None:
        self.bank = bank
        self.engine = engine
        self.checkpoint = checkpoint
        self.alignment = DeviceAlignment()
        """Lines up each patient's devices in sample time for the detectors."""
        self._restored = checkpoint is not None
        """Whether what the stopped service held back (checkpoint: samples, "no data", lined-up
        devices) is still to be taken up: at the first cycle, after the erasures read at start."""
        self._aligned: set[str] = set()
        """Patients whose registered devices the alignment was told of."""
        self._signals: dict[tuple[str, SignalKind], tuple[bool, str | None]] = dict.fromkeys(
            active_signals(engine.alerts.db), (True, None)
        )
        """Whether each signal is lost, and why (None: not known since the start)."""
        self._gateway_patients: dict[str, set[str]] = defaultdict(set)
        self._device_patient: dict[str, str] = {}
        self._links: defaultdict[str, dict[str, list[DeviceStatus]]] = defaultdict(dict)
        """Per patient and band, the statuses not written yet: the first of each link state (its
        since) and the newest; one write for all of an outage's."""
        self._received_s: dict[str, float] = {}
        self._silences = HeldSilences()
        """Held "no data" of patients whose batches are arriving (told once it is clear)."""
        self._vitals: dict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
        """Each patient's newest reading of each vital field: (sample time in ms, value)."""
        self._undelivered: deque[tuple[str, Callable[[], None]]] = deque()
        """Calls the episode engine has not taken yet, oldest first, each with its patient."""
        self._waiting: set[tuple[str, str]] = set()
        """Refreshes (what, patient) in line already: an outage must not pile up one a cycle."""
        self._data_s: dict[str, float] = {}
        """Each patient's newest sample time (s)."""
        self.alarms_seen = 0
        self.deliveries_failed = 0
        """Attempts the episode engine refused (each kept for the next cycle if transient)."""
        self.deliveries_dropped = 0
        """Alarms or signal changes given up after a non-transient error (logged)."""
        self._now_s = 0.0
        """The ingest clock of the current cycle (s): the outage log's clock."""
        self._outage = OutageLog(
            "episode writes", engine.alerts.db.url, log, clock=lambda: self._now_s
        )
        """Writes refused through an outage: told when it begins, every 5 min, when it ends."""

    def process(self, cycle: IngestCycle) -> None:
        """Score the cycle's samples, apply alarms and status changes."""
        now_s = self._now_s = cycle.now_ms / 1000.0
        per_patient: dict[str, list[Sample]] = defaultdict(list)
        for batch in cycle.batches:
            per_patient[batch.patient_id].extend(batch.samples)
            newest_s = max(sample.time_ms for sample in batch.samples) / 1000.0
            self._data_s[batch.patient_id] = max(newest_s, self._data_s.get(batch.patient_id, 0))
            self._received_s[batch.patient_id] = now_s
            self._device_patient[batch.device_id] = batch.patient_id
            if batch.gateway_id:
                self._gateway_patients[batch.gateway_id].add(batch.patient_id)
        newer = [pid for pid, samples in per_patient.items() if self._fold_vitals(pid, samples)]
        batches = [*self._resume(now_s), *cycle.batches]
        self._expect_registered({batch.patient_id for batch in batches})
        for status in cycle.device_statuses:
            if status.state is LinkState.ONLINE:
                self.alignment.announce(status.patient_id, status.device_id)
        self.alignment.add(batches, now_s)
        alarms = self._silences.settle(
            self._score(self.alignment.release(now_s)),
            self.bank.tick(now_s),
            self._receiving(now_s),
        )
        self.alarms_seen += len(alarms)
        for alarm in alarms:
            self._deliver_alarm(alarm)
        for patient_id in newer:
            self._refresh("vitals", patient_id, self._note_vitals)
        for patient_id in per_patient:
            if self.engine.is_lost(patient_id, self._data_s[patient_id]):  # after the alarms
                self._refresh("lost", patient_id, self._close_lost)
        for status in cycle.device_statuses:
            self._device_status(status)
        for gateway in cycle.gateway_statuses:
            self._gateway_status(gateway, now_s)
        self._flush()
        if self.checkpoint is not None and not self._undelivered:
            self.checkpoint.maybe_save(self.bank, now_s, self._held_back)

    def _held_back(self) -> HeldBack:
        """What is held back now, for the checkpoint."""
        return HeldBack(self.alignment.held(), self._silences.alarms(), self.alignment.devices())

    def _resume(self, now_s: float) -> Sequence[SampleBatch]:
        """Take up what the stopped service held back (at the first cycle); its held samples.

        Its held "no data" wait again, the gateway given its grace again; its lined-up devices
        are expected again, registered or not.
        """
        restored = self._take_restored()
        for alarm in restored.silences:
            self._received_s.setdefault(alarm.patient_id, now_s)
        self._silences.restore(restored.silences)
        for patient_id, device_ids in restored.devices.items():
            self.alignment.expect(patient_id, device_ids)
        return restored.samples

    def _take_restored(self) -> HeldBack:
        """What was held back at the last stop, once (see ``close``)."""
        if not self._restored or self.checkpoint is None:
            return HeldBack()
        self._restored = False
        held, self.checkpoint.held = self.checkpoint.held, HeldBack()
        return held

    def _receiving(self, now_s: float) -> Callable[[str], bool]:
        """Whether a patient's batches arrived within ``RECEIVING_GRACE_S`` (catching up)."""
        return lambda pid: now_s - self._received_s.get(pid, float("-inf")) <= RECEIVING_GRACE_S

    def close(self) -> None:
        """Save the detectors' baselines for the next start, unless alarms are still waiting.

        The detectors raise an onset once. Saved after an onset the episode database never took,
        their state would say the episode is known and running, and the restarted service would
        never raise it: the last checkpoint taken with nothing waiting is kept instead (so is it
        while the database is down), and the restarted detectors raise it again. Samples held
        for a patient's other device go into the checkpoint, to be lined up with that device's
        after the restart (scored now, they made its samples of the same minutes, delivered after
        the restart, too old for the detector: skipped). Without a checkpoint they are scored.
        """
        if self.checkpoint is None:
            for alarm in self._score(self.alignment.release_all()):
                self._deliver_alarm(alarm)
        self._flush()
        if self._undelivered:
            log.error(
                "stopping with %d alarm(s)/update(s) the episode database has not taken; the "
                "detector checkpoint is left as it was, so that they are raised again",
                len(self._undelivered),
            )
            return
        if self.checkpoint is not None:
            self.checkpoint.save(self.bank, self._take_restored() + self._held_back())

    def _expect_registered(self, patient_ids: set[str]) -> None:
        """Tell the alignment the registered devices of patients it meets for the first time."""
        new = patient_ids - self._aligned
        if not new:
            return
        self._aligned |= new
        try:
            registered = devices_of_patients(self.engine.alerts.db, new)
        except TRANSIENT_DB_ERRORS as exc:  # the devices still line up once they report
            log.warning("registered devices unreadable (%s); not waited for", type(exc).__name__)
            return
        for patient_id, device_ids in registered.items():
            self.alignment.expect(patient_id, device_ids)

    def _score(self, items: Sequence[tuple[str, Sequence[Sample]]]) -> list[Alarm]:
        return self.bank.update(items) if items else []

    def _fold_vitals(self, patient_id: str, samples: Sequence[Sample]) -> bool:
        """Keep the patient's newest reading of each vital; whether any of ``samples`` was newer.

        By sample time, not arrival: a gateway replaying its outbox after an outage sends
        readings an hour old among the live ones, and caregivers must not read those as latest.
        """
        newest = self._vitals[patient_id]
        changed = False
        for sample in samples:
            for name in VITAL_FIELDS:
                value = getattr(sample, name)
                if value is not None and sample.time_ms >= newest.get(name, (-1, 0.0))[0]:
                    newest[name] = (sample.time_ms, float(value))
                    changed = True
        return changed

    def _latest_vitals(self, patient_id: str) -> dict[str, float] | None:
        """The patient's newest value of each vital field, None before any.

        With when the heart rate was measured (``HEART_RATE_TIME_KEY``): a caregiver is told how
        old it is.
        """
        newest = self._vitals.get(patient_id)
        if not newest:
            return None
        vitals = {name: value for name, (_, value) in newest.items()}
        if "heart_rate_bpm" in newest:
            vitals[HEART_RATE_TIME_KEY] = newest["heart_rate_bpm"][0] / 1000.0
        return vitals

    @property
    def undelivered(self) -> int:
        """Alarms, signal changes and vitals waiting for the episode engine to accept them."""
        return len(self._undelivered)

    def forget(self, patient_id: str) -> None:
        """Drop everything held about an erased patient (``ProfileSync`` calls it).

        Their latest vitals, signal states, devices and samples waiting to be lined up, and the
        calls for them the episode engine has not taken yet: an onset queued while the database
        was busy would register them again after their erasure and open an episode.
        """
        self._vitals.pop(patient_id, None)
        self._data_s.pop(patient_id, None)
        self._received_s.pop(patient_id, None)
        self._aligned.discard(patient_id)
        self.alignment.forget(patient_id)
        if self.checkpoint is not None:
            self.checkpoint.forget(patient_id)
        self._silences.forget(patient_id)
        self._signals = {key: on for key, on in self._signals.items() if key[0] != patient_id}
        self._device_patient = {
            device: patient
            for device, patient in self._device_patient.items()
            if patient != patient_id
        }
        for patients in self._gateway_patients.values():
            patients.discard(patient_id)
        self._links.pop(patient_id, None)
        self._undelivered = deque(call for call in self._undelivered if call[0] != patient_id)
        self._waiting = {key for key in self._waiting if key[1] != patient_id}

    def _deliver(self, patient_id: str, call: Callable[..., None], *args: object) -> None:
        """Queue one call about the patient to the engine (:meth:`_flush` makes them in order)."""
        self._undelivered.append((patient_id, functools.partial(call, *args)))

    def _deliver_alarm(self, alarm: Alarm) -> None:
        vitals = self._latest_vitals(alarm.patient_id)
        self._deliver(alarm.patient_id, self.engine.on_alarm, alarm, vitals)

    def _refresh(self, what: str, patient_id: str, call: Callable[[str], None]) -> None:
        """Queue ``call(patient_id)`` unless it waits in line already.

        The call reads the newest state when it runs, so one call in line stands for every
        cycle of an outage.
        """
        key = (what, patient_id)
        if key not in self._waiting:
            self._waiting.add(key)
            self._deliver(patient_id, self._refreshing, key, call)

    def _refreshing(self, key: tuple[str, str], call: Callable[[str], None]) -> None:
        transient = False
        try:
            call(key[1])
        except TRANSIENT_DB_ERRORS:
            transient = True  # kept first in line by _flush: still waiting
            raise
        finally:
            if not transient:
                self._waiting.discard(key)

    def _note_vitals(self, patient_id: str) -> None:
        self.engine.note_vitals(patient_id, self._latest_vitals(patient_id) or {})

    def _note_bands(self, patient_id: str) -> None:
        runs = self._links[patient_id].values()
        self.engine.on_device_statuses([status for run in runs for status in run])
        self._links.pop(patient_id, None)

    def _close_lost(self, patient_id: str) -> None:
        self.engine.close_lost(patient_id, self._data_s[patient_id])

    def _flush(self) -> None:
        """Hand the queued calls to the episode engine, oldest first.

        The detectors raise an onset once, so an alarm the engine could not store (its database
        locked or restarting) must not be dropped: it stays first in line, and everything after
        it waits behind it, so that a patient's episode never sees its resolution before its
        onset. A call that fails for any other reason would fail again: it is logged and
        dropped, so that it cannot hold up every patient's alarms.

        An outage is tried at every cycle (about once a second) and logged once when it begins,
        every 5 min while it lasts and once when a write goes through again
        (:class:`~service.db.outage_log.OutageLog`), not at every try.
        """
        while self._undelivered:
            try:
                self._undelivered[0][1]()
            except TRANSIENT_DB_ERRORS as exc:
                self.deliveries_failed += 1
                self._outage.failed(exc)
                return
            except Exception as exc:  # noqa: BLE001 - logged, dropped: it must not block others
                self.deliveries_failed += 1
                self.deliveries_dropped += 1
                # the type only: a database error's text quotes the row, vitals included
                log.error(
                    "episode engine failed on an alarm or update (%s); dropped",
                    type(exc).__name__,
                )
                where = "".join(traceback.format_tb(exc.__traceback__))  # not the message
                log.debug("episode engine failure at:\n%s", where)
            else:
                self._outage.succeeded()
            self._undelivered.popleft()

    def _signal(
        self, patient_id: str, signal: SignalKind, active: bool, time_s: float, detail: str = ""
    ) -> None:
        key = (patient_id, signal)
        seen = (active, detail if active else "")
        if self._signals.get(key, (False, "")) == seen:
            return
        self._signals[key] = seen
        self._deliver(
            patient_id, self.engine.on_signal, patient_id, signal, active, time_s, seen[1]
        )

    def _device_status(self, status: DeviceStatus) -> None:
        self._device_patient[status.device_id] = status.patient_id
        run = self._links[status.patient_id].setdefault(status.device_id, [])
        if len(run) >= 2 and run[-1].state is status.state and run[-2].state is status.state:
            run[-1] = status  # the same link still: its first status (since when) and the newest
        else:
            run.append(status)
        del run[:-BAND_STATUSES_HELD]
        self._refresh("bands", status.patient_id, self._note_bands)
        if status.gateway_id:
            self._gateway_patients[status.gateway_id].add(status.patient_id)
        time_s = status.time_ms / 1000.0
        self._signal(
            status.patient_id,
            SignalKind.DEVICE_OFFLINE,
            status.state is LinkState.OFFLINE,
            time_s,
            status.reason or "",  # why the gateway lost it: "pairing" is the wearer's to mend
        )
        if status.battery_percent is not None:
            was_low = self._signals.get((status.patient_id, SignalKind.BATTERY_LOW), (False,))[0]
            limit = BATTERY_CHARGED_PERCENT if was_low else BATTERY_LOW_PERCENT
            low = status.battery_percent < limit
            self._signal(status.patient_id, SignalKind.BATTERY_LOW, low, time_s)

    def _gateway_status(self, status: GatewayStatus, now_s: float) -> None:
        patients = self._gateway_patients[status.gateway_id]
        patients.update(
            self._device_patient[d] for d in status.devices if d in self._device_patient
        )
        unknown = [d for d in status.devices if d not in self._device_patient]
        patients.update(patients_of_devices(self.engine.alerts.db, unknown))
        # The Last Will carries no time (the broker sends it): use the ingest clock.
        time_s = status.time_ms / 1000.0 if status.time_ms is not None else now_s
        offline = status.state is LinkState.OFFLINE
        for patient_id in sorted(patients):
            self._signal(patient_id, SignalKind.GATEWAY_OFFLINE, offline, time_s)
