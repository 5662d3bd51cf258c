"""All patients' detectors behind one object: what the service and the replay CLI both call.

Rules run per patient and per sample (microseconds); a candidate alarm is then confirmed by the
learned model, scored in one batch across every patient of the call (scikit-learn costs tens of
microseconds per row in a batch but milliseconds per call, so never row by row). Each patient's
samples are folded in up to their next candidate before the batch is scored, so that a vetoed
episode is silenced from its onset on, whatever the size of the call.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from flarewatch.payloads import Sample
from models.alarm import UNCONFIRMED, Alarm, is_onset
from models.confirm import Confirmer, from_recovery_path
from models.detector import PatientDetector
from models.errors import ModelError
from models.profiles import DetectionProfile, profile_params, profile_version

PatientBatch = tuple[str, Sequence[Sample]]

log = logging.getLogger(__name__)


class DetectorBank:
    """Per-patient detectors cloned from ``template``, with optional batch confirmation.

    ``update`` folds in new samples of many patients and returns their alarms in time order per
    patient; ``tick`` raises ``no_data`` for patients gone silent. ``state_dict`` snapshots every
    patient so a restarted service resumes with its baselines.
    """

    def __init__(
        self, template: PatientDetector | None = None, confirmer: Confirmer | None = None
    ) -> None:
        self.template = template
        self.confirmer = confirmer

    @property
    def model_version(self) -> str:
        """Version stamped on the alarms (rules version, plus the confirmer's when present)."""
        base = (self.template or PatientDetector()).model_version
        return base if self.confirmer is None else f"{base}+{self.confirmer.version}"

    @property
    def detectors(self) -> dict[str, PatientDetector]:
        """The per-patient detectors created so far, by patient id."""
        if "_detectors" not in vars(self):
            self._detectors: dict[str, PatientDetector] = {}
        return self._detectors

    @property
    def profiles(self) -> dict[str, DetectionProfile]:
        """Patients whose detection profile is not the default, by patient id."""
        if "_profiles" not in vars(self):
            self._profiles: dict[str, DetectionProfile] = {}
        return self._profiles

    def detector(self, patient_id: str) -> PatientDetector:
        """The detector of ``patient_id``, created from the template on first use."""
        found = self.detectors.get(patient_id)
        if found is None:
            found = self._new_detector(patient_id)
            self.detectors[patient_id] = found
        return found

    def _new_detector(self, patient_id: str) -> PatientDetector:
        template = self.template or PatientDetector()
        profile = self.profiles.get(patient_id, DetectionProfile.BALANCED)
        params = {} if profile is DetectionProfile.BALANCED else profile_params(profile)
        version = profile_version(self.model_version, profile)
        return template.clone(patient_id=patient_id, model_version=version, **params)

    def set_profile(self, patient_id: str, profile: DetectionProfile) -> bool:
        """Use ``profile`` for this patient from now on, keeping what was learnt about them.

        Returns whether anything changed. The balanced profile is the template's own setting.
        """
        if self.profiles.get(patient_id, DetectionProfile.BALANCED) is profile:
            return False
        if profile is DetectionProfile.BALANCED:
            del self.profiles[patient_id]
        else:
            self.profiles[patient_id] = profile
        old = self.detectors.get(patient_id)
        if old is not None:
            new = self._new_detector(patient_id)
            new.load_state_dict(old.state_dict())
            self.detectors[patient_id] = new
        return True

    def forget(self, patient_id: str) -> bool:
        """Drop everything learnt about the patient (their erasure); returns whether it had any.

        Their next samples, if any come, start a detector from the template, as for a new
        patient, and the next :meth:`state_dict` no longer holds them.
        """
        self.profiles.pop(patient_id, None)
        return self.detectors.pop(patient_id, None) is not None

    def update(self, items: Sequence[PatientBatch]) -> list[Alarm]:
        """Fold in each patient's new samples; return the confirmed alarms.

        A patient's samples of one call may come from several devices, each device's batch in
        turn (a chest strap's and a thermometer's of the same minutes): they are folded in
        oldest first. Samples older than those of an earlier call are skipped (and counted).

        With a confirmer, each patient's samples are folded in up to the next onset it may
        judge; the onsets of all patients are then scored together, and a vetoed episode is
        silenced at once, before the samples after its onset. So the alarms are the same
        however the samples are cut into calls. (Before, the whole call was folded in first: in
        a gateway's backlog of an hour a still wrist minutes after a vetoed surge, the heart
        back at rest, became a critical onset that 5-min batches never raised.)
        """
        streams = _per_patient(items)
        if self.confirmer is None:
            return [
                alarm
                for pid, samples in streams.items()
                for alarm in self._guarded(pid, _updating(samples))
            ]
        alarms: dict[str, list[Alarm]] = {pid: [] for pid in streams}
        positions = dict.fromkeys(streams, 0)
        while positions:
            candidates: list[Alarm] = []
            for pid, start in list(positions.items()):
                step = _until_candidate(streams[pid], start, positions, pid)
                found = self._guarded(pid, step)
                if pid not in self.detectors:  # it failed: the rest of its samples are lost
                    positions.pop(pid, None)
                alarms[pid] += found
                candidates += [a for a in found if _judged(a)]
            vetoed = self._vetoed(candidates)
            if vetoed is None:  # the confirmer failed: its version is on alarms it never judged
                for alarm in candidates:
                    found = alarms[alarm.patient_id]
                    at = next(i for i, kept in enumerate(found) if kept is alarm)
                    found[at] = _unconfirmed(alarm)
                vetoed = []
            for alarm in vetoed:
                found = alarms[alarm.patient_id]
                found[:] = [a for a in found if a is not alarm]
                detector = self.detectors.get(alarm.patient_id)
                if detector is not None:
                    detector.retract(alarm.kind, int(alarm.evidence["episode_no"]))
        return [alarm for found in alarms.values() for alarm in found]

    def _vetoed(self, candidates: list[Alarm]) -> list[Alarm] | None:
        """The onsets the confirmer rejects, scored in one batch (None if it fails)."""
        if not candidates or self.confirmer is None:
            return []
        try:
            accepted = self.confirmer.accept(candidates)
        except Exception as exc:  # noqa: BLE001 - a failing model must not silence the rules
            log.error("confirmer failed (%s); the rules' alarms go out unconfirmed", _kind(exc))
            return None
        return [alarm for alarm, ok in zip(candidates, accepted, strict=True) if not ok]

    def tick(self, now_s: float) -> list[Alarm]:
        """``no_data`` alarms for patients whose last sample is older than the silence limit."""
        return [
            alarm
            for pid in list(self.detectors)
            for alarm in self._guarded(pid, lambda det: det.check_silence(now_s))
        ]

    def _guarded(
        self, patient_id: str, step: Callable[[PatientDetector], list[Alarm]]
    ) -> list[Alarm]:
        """One patient's step; a detector that fails starts afresh instead of failing everyone.

        The service runs every patient in one call per cycle: an unforeseen error in one
        patient's detector (a bug, a state no check caught) would otherwise drop every patient's
        alarms of the cycle, and of every cycle after it. Logged by id and error type only.
        """
        try:
            return step(self.detector(patient_id))
        except Exception as exc:  # noqa: BLE001 - one patient's fault must not blind the others
            log.error(
                "detector of patient %s failed (%s); it starts afresh", patient_id, _kind(exc)
            )
            self.detectors.pop(patient_id, None)
            return []

    def state_dict(self) -> dict[str, Any]:
        """Every patient's learned state, JSON-able, tagged with the model version."""
        return {
            "model_version": self.model_version,
            "patients": {pid: det.state_dict() for pid, det in self.detectors.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> int:
        """Restore a :meth:`state_dict` snapshot; returns how many patients had to start afresh.

        A patient whose saved state does not fit these detectors (another version, damaged
        snapshot: wrong types, list lengths, non-finite numbers) is logged (id only) and starts
        with empty baselines instead of failing all, or later in live use. A snapshot that is
        not one at all raises ModelError.
        """
        patients = state.get("patients", {}) if isinstance(state, dict) else None
        if not isinstance(patients, dict):
            raise ModelError("not a detector bank snapshot: no 'patients' mapping")
        afresh = 0
        for pid, patient_state in patients.items():
            try:
                self.detector(pid).load_state_dict(patient_state)
            except ModelError as exc:
                log.warning("%s", exc)
                self.detectors.pop(pid, None)
                afresh += 1
        return afresh


def _in_time_order(samples: Sequence[Sample]) -> Sequence[Sample]:
    """The samples oldest first, one per millisecond (each field's first present value).

    In the order the service gives them (one device's batch, then another's of the same
    minutes) the detector skipped every reading older than the other device's newest: most of
    a thermometer's, or of the heart rate, and a surge in a gateway's backlog alarmed minutes
    late. A stream already in order (one device, a recording) is returned as it is.
    """
    if all(a.time_ms < b.time_ms for a, b in pairwise(samples)):
        return samples
    merged: list[Sample] = []
    for sample in sorted(samples, key=lambda s: s.time_ms):
        if merged and merged[-1].time_ms == sample.time_ms:
            kept = merged[-1]
            extra = {k: v for k, v in sample if v is not None and getattr(kept, k) is None}
            if extra:
                merged[-1] = kept.model_copy(update=extra)
        else:
            merged.append(sample)
    return merged


def _judged(alarm: Alarm) -> bool:
    """An onset the confirmer judges.

    Not a surge followed by a motionless wrist (syncope), nor a heart that does not slow down
    after exercise: those are never vetoed.
    """
    return is_onset(alarm) and alarm.evidence.get("still") != 1.0 and not from_recovery_path(alarm)


def _per_patient(items: Sequence[PatientBatch]) -> dict[str, Sequence[Sample]]:
    """Each patient's samples of the call, oldest first per item, items in their order."""
    streams: dict[str, Sequence[Sample]] = {}
    for pid, samples in items:
        ordered = _in_time_order(samples)
        streams[pid] = [*streams[pid], *ordered] if pid in streams else ordered
    return streams


def _until_candidate(
    samples: Sequence[Sample], start: int, positions: dict[str, int], patient_id: str
) -> Callable[[PatientDetector], list[Alarm]]:
    """The step folding ``samples[start:]`` in up to the first onset the confirmer judges.

    It leaves in ``positions`` where the patient's next step starts, or drops the patient once
    every sample is in.
    """

    def step(detector: PatientDetector) -> list[Alarm]:
        found, stop = detector.update_until(samples, start, _judged)
        if stop < len(samples):
            positions[patient_id] = stop
        else:
            positions.pop(patient_id, None)
        return found

    return step


def _kind(exc: BaseException) -> str:
    """An error's type only: its text may quote a vital value."""
    return type(exc).__name__


def _updating(samples: Sequence[Sample]) -> Callable[[PatientDetector], list[Alarm]]:
    """The step folding all of ``samples`` into a patient's detector (in time order already)."""
    return lambda detector: detector.update(samples)


def _unconfirmed(alarm: Alarm) -> Alarm:
    """``alarm`` saying that the confirmer its version names never judged it (UNCONFIRMED)."""
    return dataclasses.replace(alarm, evidence={**alarm.evidence, UNCONFIRMED: 1.0})
