"""Detector baselines saved to disk, so that a restarted service does not go blind.

Each patient's detector needs ~10-15 min of wear to learn a personal baseline before it judges
anyone (``models.const.WARMUP_S``); without a checkpoint every restart or upgrade of the service
would open that blind spot for every patient at once. The bank's ``state_dict`` is written
atomically (temporary file, fsync, rename) every ``CHECKPOINT_INTERVAL_S`` and on shutdown, and
loaded at start-up. A damaged file is moved aside and the detectors start afresh: never a crash.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Final, Protocol

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S: Final = 60.0
"""At most a minute of baseline learning is lost on a crash; baselines move over many minutes."""


class Checkpointable(Protocol):
    """What a detector bank offers for checkpoints (``models.bank.DetectorBank`` fits)."""

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

    def restore(self, bank: Checkpointable) -> int:
        """Load the saved state into ``bank``; returns the number of patients restored.

        Never raises: a file that is not a snapshot at all is moved aside and every detector starts
        afresh; a patient whose part cannot be loaded starts afresh alone (logged by id).
        """
        if not self.path.exists():
            return 0
        try:
            state = json.loads(self.path.read_text())
            patients = _patients_of(state)
        except (OSError, ValueError, TypeError) as exc:
            self._move_aside(exc)
            return 0
        afresh = sum(_load_patient(bank, state, pid, saved) for pid, saved in patients.items())
        restored = len(patients) - afresh
        log.info("restored the baselines of %d patient(s) from %s", restored, self.path)
        return restored

    def _move_aside(self, reason: Exception) -> None:
        aside = self.path.with_suffix(self.path.suffix + ".damaged")
        log.error("detector checkpoint %s unreadable (%s); moved to %s", self.path, reason, aside)
        self.path.replace(aside)

    def maybe_save(self, bank: Checkpointable, now_s: float) -> bool:
        """Save when the interval has passed since the last save; returns whether it saved."""
        if self._last_save_s is not None and now_s - self._last_save_s < self.interval_s:
            return False
        self.save(bank)
        self._last_save_s = now_s
        return True

    def save(self, bank: Checkpointable) -> None:
        """Write the bank's state atomically (a crash mid-write leaves the previous file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w") as out:
            json.dump(bank.state_dict(), out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)


def _patients_of(state: Any) -> dict[str, Any]:
    """The per-patient part of a snapshot; TypeError if the file is not a snapshot at all."""
    if not isinstance(state, dict):
        raise TypeError("not a JSON object")
    patients = state.get("patients", {})
    if not isinstance(patients, dict):
        raise TypeError("'patients' is not a JSON object")
    return patients


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
