"""Each patient's detection profile, carried from the service database into the detector bank.

A care team chooses the profile with ``flarewatch admin patient set --detection-profile``, in
another process. The running service applies what the database says at start (after the
checkpoint restore, so learned baselines are kept) and again every ``PROFILE_REFRESH_S``.
The periodic refresh runs inside the alerting hook, on the ingest worker thread: that is the only
thread that calls the bank, so a profile never changes under a running ``update``.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from models.profiles import DetectionProfile
from service.const import PROFILE_REFRESH_S
from service.db.models import Patient
from service.db.session import Database
from service.episodes.checkpoint import DetectorCheckpoint
from service.episodes.engine import EpisodeEngine
from service.episodes.processor import AlarmSource, AlertingProcessor
from service.processing import IngestCycle

log = logging.getLogger(__name__)


@runtime_checkable
class ProfiledBank(Protocol):
    """A detector bank whose per-patient profile can be switched (``DetectorBank`` fits)."""

    def set_profile(self, patient_id: str, profile: DetectionProfile) -> bool:
        """Use ``profile`` for the patient from now on; returns whether anything changed."""
        ...


class ProfileSync:
    """Reads ``patient id -> detection profile`` from the database and applies it to the bank.

    Not thread-safe by itself: call it from the thread that calls the bank (or before that
    thread starts).
    """

    def __init__(
        self, db: Database, bank: ProfiledBank, interval_s: float = PROFILE_REFRESH_S
    ) -> None:
        self.db = db
        self.bank = bank
        self.interval_s = interval_s
        self._applied: dict[str, DetectionProfile] = {}
        self._last_refresh_s: float | None = None
        self._warned: set[tuple[str, str]] = set()

    def read(self) -> dict[str, DetectionProfile]:
        """Every patient's profile as stored; an unknown stored value counts as balanced."""
        with self.db.session() as session:
            rows = session.execute(select(Patient.id, Patient.detection_profile)).all()
        profiles: dict[str, DetectionProfile] = {}
        for patient_id, value in rows:
            try:
                profiles[patient_id] = DetectionProfile(value)
            except ValueError:
                # Only written by hand past `admin patient set`; warn once, not every minute.
                if (patient_id, value) not in self._warned:
                    self._warned.add((patient_id, value))
                    log.warning(
                        "patient %s has an unknown detection profile %r in the database; "
                        "using balanced (fix it with `flarewatch admin patient set`)",
                        patient_id,
                        value,
                    )
                profiles[patient_id] = DetectionProfile.BALANCED
        return profiles

    def refresh(self) -> int:
        """Apply the stored profiles now; returns how many patients changed profile.

        A patient removed from the database goes back to balanced.
        """
        wanted = self.read()
        changed = 0
        for patient_id in sorted(wanted.keys() | self._applied.keys()):
            profile = wanted.get(patient_id, DetectionProfile.BALANCED)
            if self.bank.set_profile(patient_id, profile):
                changed += 1
                log.info("patient %s: detection profile %s", patient_id, profile)
        self._applied = {
            pid: profile
            for pid, profile in wanted.items()
            if profile is not DetectionProfile.BALANCED
        }
        return changed

    def maybe_refresh(self, now_s: float) -> bool:
        """Refresh when ``interval_s`` has passed on the caller's clock; returns whether it ran.

        A database error is logged and retried at the next interval: detection goes on with the
        profiles it has.
        """
        last = self._last_refresh_s
        if last is not None and 0.0 <= now_s - last < self.interval_s:
            return False
        self._last_refresh_s = now_s
        try:
            self.refresh()
        except SQLAlchemyError as exc:
            log.warning(
                "could not read the detection profiles (%s); retrying later", type(exc).__name__
            )
        return True


class ProfiledAlertingProcessor(AlertingProcessor):
    """The alerting hook that first brings detection profiles up to date, on the same thread."""

    def __init__(
        self,
        bank: AlarmSource,
        engine: EpisodeEngine,
        checkpoint: DetectorCheckpoint | None = None,
        profiles: ProfileSync | None = None,
    ) -> None:
        super().__init__(bank, engine, checkpoint)
        self.profiles = profiles

    def process(self, cycle: IngestCycle) -> None:
        """Refresh the profiles when due (ingest clock), then score the cycle."""
        if self.profiles is not None:
            self.profiles.maybe_refresh(cycle.now_ms / 1000.0)
        super().process(cycle)
