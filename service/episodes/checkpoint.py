"""Detector baselines saved to disk, so that a restarted service does not go blind.

Each patient's detector needs ~10-15 min of wear to learn a personal baseline before it judges
anyone (``models.const.WARMUP_S``); without a checkpoint every restart or upgrade of the service
would open that blind spot for every patient at once. The bank's ``state_dict`` is written
atomically (temporary file, fsync, rename) every ``CHECKPOINT_INTERVAL_S`` and on shutdown, and
loaded at start-up. A damaged file is moved aside and the detectors start afresh: never a crash.
A checkpoint that cannot be written (disk full, read-only volume) is logged when it starts and
when it ends, never stops the alerts, and leaves the previous file as it was.

A snapshot also keeps the samples the processing holds back for a patient's other device at that
moment (``service.episodes.alignment``): they were acknowledged, so the broker will not deliver
them again, and scored at the stop they would make that other device's samples, delivered after
the restart, too old for the detector. The restarted processing lines them up again. So does it
keep the "no data" held while a patient's gateway catches up (``service.episodes.silences``): the
detector raises it once, so lost at a stop it was never told, and the patient was unwatched.
And it keeps the devices each patient is lined up across: one never registered, learnt from its
data, was forgotten at a stop, and its next minute skipped.

A snapshot also lists the patient erasures (their ``patient_erased`` audit ids) whose forgetting
it reflects, so that at start an erasure made while the service was stopped, or before the
running one applied it, is applied to the restored state: even when the patient was registered
again since (their new detector state was learnt after the erasure only if the snapshot says
so).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from pydantic import ValidationError

from flarewatch.payloads import SampleBatch
from models.alarm import Alarm, AlarmKind, alarm_from_record, alarm_record

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S: Final = 60.0
"""At most a minute of baseline learning is lost on a crash; baselines move over many minutes."""

ERASURES_KEY: Final = "erasures_applied"
"""The snapshot's list of the erasures (audit event ids) its state reflects."""

HELD_KEY: Final = "held_samples"
"""The snapshot's batches held back for a patient's other device when it was taken."""

SILENCES_KEY: Final = "held_silences"
"""The snapshot's "no data" alarms held back while their patient's gateway caught up."""

DEVICES_KEY: Final = "aligned_devices"
"""The snapshot's devices each patient of several was lined up across (patient: device ids)."""


@dataclass(frozen=True, slots=True)
class HeldBack:
    """What the processing holds back at a snapshot, acknowledged but not yet told or scored."""

    samples: Sequence[SampleBatch] = ()
    """Batches waiting for the patient's other device (``service.episodes.alignment``)."""
    silences: Sequence[Alarm] = ()
    """"No data" waiting for the patient's gateway to catch up (``service.episodes.silences``)."""
    devices: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """The devices each patient of several is lined up across, registered or learnt from their
    data (``service.episodes.alignment``): expected again after the restart."""

    def __add__(self, other: HeldBack) -> HeldBack:
        """Both together (what a restored snapshot held, not taken yet, and what is held now)."""
        return HeldBack(
            [*self.samples, *other.samples],
            [*self.silences, *other.silences],
            {**self.devices, **other.devices},
        )

    def without(self, patient_id: str) -> HeldBack:
        """The same without anything of the patient (their erasure)."""
        return HeldBack(
            [batch for batch in self.samples if batch.patient_id != patient_id],
            [alarm for alarm in self.silences if alarm.patient_id != patient_id],
            {pid: ids for pid, ids in self.devices.items() if pid != patient_id},
        )


class Checkpointable(Protocol):
    """What a detector bank offers for checkpoints (``models.bank.DetectorBank`` fits)."""

    @property
    def model_version(self) -> str:
        """The detectors' version, stamped on each snapshot."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Every patient's learned state, JSON-able."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> int:
        """Restore a snapshot; returns how many patients had to start afresh."""
        ...


class DetectorCheckpoint:
    """Loads and periodically saves a detector bank's state at ``path``."""

    def __init__(self, path: Path, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self.path = path
        self.interval_s = interval_s
        self._last_save_s: float | None = None
        self._failing: str | None = None
        """Why the last save failed (None: it worked), so that an outage is logged once."""
        self.erasures_applied: set[int] | None = set()
        """The erasures whose forgetting the bank's state reflects (audit event ids): those of
        the restored snapshot, then those applied since (:meth:`note_erasures`). None: the
        restored snapshot is from a version that did not record them."""
        self.held = HeldBack()
        """What the processing held back when the restored snapshot was taken."""

    def restore(self, bank: Checkpointable) -> int:
        """Load the saved state into ``bank``; returns the number of patients restored.

        Never raises: a file that is not a snapshot at all is moved aside and every detector starts
        afresh; a patient whose part cannot be loaded starts afresh alone (logged by id).
        """
        self.erasures_applied = set()
        self.held = HeldBack()
        if not self.path.exists():
            return 0
        try:
            raw = self.path.read_bytes()
        except OSError as exc:  # not damaged, maybe: left in place, replaced by the next save
            log.error(
                "cannot read the detector checkpoint %s (%s); every patient's detector starts "
                "afresh",
                self.path,
                exc.strerror,
            )
            return 0
        try:
            state = json.loads(raw)  # bytes: invalid UTF-8 is a ValueError here too
            patients = _patients_of(state)
        except (ValueError, TypeError) as exc:
            self._move_aside(exc)
            return 0
        saved_by = state.get("model_version")
        if saved_by != bank.model_version:
            log.info(
                "detector checkpoint %s was saved by model %s, these detectors are %s: each "
                "patient's state is checked; one that does not fit starts afresh",
                self.path,
                saved_by,
                bank.model_version,
            )
        self.erasures_applied = _erasures_of(state)
        self.held = HeldBack(
            _held_samples_of(state), _held_silences_of(state), _aligned_devices_of(state)
        )
        afresh = sum(_load_patient(bank, state, pid, saved) for pid, saved in patients.items())
        restored = len(patients) - afresh
        log.info("restored the baselines of %d patient(s) from %s", restored, self.path)
        return restored

    def forget(self, patient_id: str) -> None:
        """Drop what the restored snapshot held for the patient (their erasure, at start too)."""
        self.held = self.held.without(patient_id)

    def note_erasures(self, event_ids: Iterable[int]) -> None:
        """Record erasures now reflected by the bank's state (their patients forgotten)."""
        self.erasures_applied = (self.erasures_applied or set()) | set(event_ids)

    def _move_aside(self, reason: Exception) -> None:
        aside = self.path.with_suffix(self.path.suffix + ".damaged")
        try:
            self.path.replace(aside)
        except OSError as exc:
            log.error(
                "detector checkpoint %s is damaged (%s) and could not be moved aside (%s); "
                "every patient's detector starts afresh, and the next save replaces it",
                self.path,
                reason,
                exc.strerror,
            )
            return
        log.error(
            "detector checkpoint %s is damaged (%s), moved to %s; every patient's detector "
            "starts afresh",
            self.path,
            reason,
            aside,
        )

    def maybe_save(
        self,
        bank: Checkpointable,
        now_s: float,
        held: Callable[[], HeldBack] | None = None,
    ) -> bool:
        """Save when the interval has passed since the last try; returns whether it saved.

        A failed save is tried again after the interval too, not at every cycle. ``held`` gives
        what the processing holds back, if anything (read only when saving).
        """
        if self._last_save_s is not None and now_s - self._last_save_s < self.interval_s:
            return False
        self._last_save_s = now_s
        return self.save(bank, held() if held is not None else HeldBack())

    def save(self, bank: Checkpointable, held: HeldBack | None = None) -> bool:
        """Write the bank's state (and what is ``held`` back) atomically; whether it was.

        A crash mid-write leaves the previous file. A write that fails (disk full, read-only
        volume) never raises: the previous file stays, the partial one is removed, and the
        failure is logged once until a save works again.
        """
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w") as out:
                json.dump(self._snapshot(bank, held or HeldBack()), out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a partial file holds the space a full disk lacks
                tmp.unlink(missing_ok=True)
            self._save_failed(exc.strerror or type(exc).__name__)
            return False
        if self._failing is not None:
            log.warning("detector checkpoint %s saved again", self.path)
            self._failing = None
        return True

    def _snapshot(self, bank: Checkpointable, held: HeldBack) -> dict[str, Any]:
        state = bank.state_dict()
        if self.erasures_applied is not None:
            state[ERASURES_KEY] = sorted(self.erasures_applied)
        if held.samples:
            state[HELD_KEY] = [
                batch.model_dump(mode="json", exclude_none=True) for batch in held.samples
            ]
        if held.silences:
            state[SILENCES_KEY] = [alarm_record(alarm) for alarm in held.silences]
        if held.devices:
            state[DEVICES_KEY] = {pid: list(ids) for pid, ids in held.devices.items()}
        return state

    def _save_failed(self, reason: str) -> None:
        if self._failing == reason:
            return
        self._failing = reason
        log.error(
            "cannot save the detector checkpoint %s (%s): the baselines learnt since the last "
            "save would be lost by a restart (free space or make the folder writable; tried "
            "again every %.0f s)",
            self.path,
            reason,
            self.interval_s,
        )


def _patients_of(state: Any) -> dict[str, Any]:
    """The per-patient part of a snapshot; TypeError if the file is not a snapshot at all."""
    if not isinstance(state, dict):
        raise TypeError("not a JSON object")
    patients = state.get("patients", {})
    if not isinstance(patients, dict):
        raise TypeError("'patients' is not a JSON object")
    return patients


def _erasures_of(state: dict[str, Any]) -> set[int] | None:
    """The erasures a snapshot reflects; None if it does not say (or says it unreadably)."""
    ids = state.get(ERASURES_KEY)
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        return None
    return set(ids)


def _held_samples_of(state: dict[str, Any]) -> list[SampleBatch]:
    """The held batches of a snapshot; none if it has none or they are damaged (logged)."""
    found = state.get(HELD_KEY, [])
    try:
        if not isinstance(found, list):
            raise TypeError(f"{HELD_KEY!r} is not a list")
        # as received: the wire contract's models are strict about Python input (tuples)
        return [SampleBatch.model_validate_json(json.dumps(batch)) for batch in found]
    except (TypeError, ValidationError) as exc:
        # the type only: the validation error quotes the (health) data
        log.warning(
            "samples held for another device in the detector checkpoint are unusable (%s); "
            "they are left out",
            type(exc).__name__,
        )
        return []


def _held_silences_of(state: dict[str, Any]) -> list[Alarm]:
    """The held "no data" of a snapshot; none if it has none or they are damaged (logged)."""
    found = state.get(SILENCES_KEY, [])
    try:
        if not isinstance(found, list):
            raise TypeError(f"{SILENCES_KEY!r} is not a list")
        return [_silence(alarm_from_record(record)) for record in found]
    except (TypeError, KeyError, ValueError) as exc:
        log.warning(
            "the 'no data' held in the detector checkpoint are unusable (%s); they are left out "
            "(the detectors raise 'no data' again once the heart rate has come back and gone)",
            type(exc).__name__,
        )
        return []


def _aligned_devices_of(state: dict[str, Any]) -> dict[str, list[str]]:
    """The lined-up devices of a snapshot; none if it has none or they are damaged (logged)."""
    found = state.get(DEVICES_KEY, {})
    if isinstance(found, dict) and all(
        isinstance(pid, str) and isinstance(ids, list) and all(isinstance(i, str) for i in ids)
        for pid, ids in found.items()
    ):
        return found
    log.warning(
        "the devices lined up per patient in the detector checkpoint are unusable; they are left "
        "out (a patient's devices not registered are waited for once they report again)"
    )
    return {}


def _silence(alarm: Alarm) -> Alarm:
    """``alarm`` if it is a held "no data" (an onset, not its end); ValueError if not."""
    if alarm.kind is not AlarmKind.NO_DATA or alarm.resolved:
        raise ValueError("not the start of a 'no data'")
    return alarm


def _load_patient(bank: Checkpointable, state: dict[str, Any], pid: str, saved: Any) -> int:
    """Load one patient's saved state; returns 1 if that patient starts afresh, else 0."""
    if not isinstance(saved, dict):
        log.warning("saved detector state of patient %r is not a JSON object; starts afresh", pid)
        return 1
    try:
        return bank.load_state_dict({**state, "patients": {pid: saved}})
    except Exception as exc:  # noqa: BLE001 - one damaged patient must not stop the service
        # the type only: the message of an unexpected error may quote the saved (health) data
        log.warning("saved detector state of patient %r unusable (%s)", pid, type(exc).__name__)
        return 1
