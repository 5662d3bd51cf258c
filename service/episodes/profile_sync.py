"""Each patient's detection profile, carried from the service database into the detector bank.

A care team chooses the profile with ``flarewatch admin patient set --detection-profile``, in
another process. The running service applies what the database says at start (after the
checkpoint restore, so learned baselines are kept) and follows changes: a background thread reads
the database every ``PROFILE_REFRESH_S`` (database I/O stays off the ingest path), and the
alerting hook applies what it found at the start of the next cycle, on the ingest worker thread:
the only thread that calls the bank, so a profile never changes under a running ``update``.
"""

from __future__ import annotations

import logging
import threading
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

    :meth:`refresh` reads and applies at once (at start, before ingest runs). While the service
    runs, :meth:`start` polls the database in a thread (:meth:`poll`) and the ingest thread calls
    :meth:`apply_pending`, which does no I/O.
    """

    def __init__(
        self, db: Database, bank: ProfiledBank, interval_s: float = PROFILE_REFRESH_S
    ) -> None:
        self.db = db
        self.bank = bank
        self.interval_s = interval_s
        self._applied: dict[str, DetectionProfile] = {}
        self._warned: set[tuple[str, str]] = set()
        self._pending: dict[str, DetectionProfile] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        """Read and apply the stored profiles now; returns how many patients changed profile."""
        return self._apply(self.read())

    def poll(self) -> bool:
        """Read the stored profiles for the next :meth:`apply_pending` (any thread).

        A database error is logged and the poll retried at the next interval: detection goes on
        with the profiles it has. Returns whether the read succeeded.
        """
        try:
            wanted = self.read()
        except SQLAlchemyError as exc:
            log.warning(
                "could not read the detection profiles (%s); retrying later", type(exc).__name__
            )
            return False
        with self._lock:
            self._pending = wanted
        return True

    def apply_pending(self) -> int:
        """Apply what the last :meth:`poll` read, if anything (the bank's thread; no I/O)."""
        with self._lock:
            wanted, self._pending = self._pending, None
        return 0 if wanted is None else self._apply(wanted)

    def _apply(self, wanted: dict[str, DetectionProfile]) -> int:
        """A patient no longer stored goes back to balanced."""
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

    def start(self) -> None:
        """Poll the database every ``interval_s`` in a daemon thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="flarewatch-profiles", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def stop(self) -> None:
        """Stop polling (an ongoing read finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class ProfiledAlertingProcessor(AlertingProcessor):
    """The alerting hook that first applies detection profile changes, on the same thread."""

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
        """Apply profile changes read since the last cycle, then score the cycle."""
        if self.profiles is not None:
            self.profiles.apply_pending()
        super().process(cycle)
