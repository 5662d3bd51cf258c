"""What the service database says of each patient, carried into the running detector bank.

Two things change in another process, through ``flarewatch admin``: a patient's detection
profile (``patient set --detection-profile``) and a patient's erasure (``patient erase``), after
which nothing learnt about them may stay in the detectors (their baselines are health data, and
the next checkpoint would keep them). The running service applies what the database says at start
(after the checkpoint restore, so learned baselines are kept) and follows changes: a background
thread reads the database every ``PROFILE_REFRESH_S`` (database I/O stays off the ingest path),
and the alerting hook applies what it found at the start of the next cycle, on the ingest worker
thread: the only thread that calls the bank, so a profile never changes under a running
``update``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from models.profiles import DetectionProfile
from service.const import PROFILE_REFRESH_S
from service.db.erasure import Erasure, erasures_since
from service.db.models import Patient
from service.db.session import Database
from service.episodes.checkpoint import DetectorCheckpoint
from service.episodes.engine import EpisodeEngine
from service.episodes.processor import AlarmSource, AlertingProcessor
from service.processing import IngestCycle

log = logging.getLogger(__name__)

ERASURE_ID_LAG: Final = 1000
"""How far before the newest erasure read the next read looks again. PostgreSQL hands out audit
ids when a row is inserted, not when it commits: an erasure whose transaction commits after a
later event was read has a smaller id. A thousand ids outlast any transaction of an admin
command, and the look-back is a primary-key range."""


@runtime_checkable
class ProfiledBank(Protocol):
    """A detector bank whose per-patient profile can be switched (``DetectorBank`` fits)."""

    def set_profile(self, patient_id: str, profile: DetectionProfile) -> bool:
        """Use ``profile`` for the patient from now on; returns whether anything changed."""
        ...

    def forget(self, patient_id: str) -> bool:
        """Drop everything learnt about the patient; returns whether there was anything."""
        ...


@dataclass(slots=True)
class PatientChanges:
    """One read of the database: every patient's profile, and the erasures since the last read."""

    profiles: dict[str, DetectionProfile]
    erasures: list[Erasure] = field(default_factory=list)
    """Erasures to apply: their patients are forgotten."""
    settled: list[int] = field(default_factory=list)
    """Erasures (audit ids) the restored state already reflects: recorded, not applied again."""


class ProfileSync:
    """Reads the patients' detection profiles and erasures from the database; applies them.

    :meth:`refresh` reads and applies at once (at start, before ingest runs). While the service
    runs, :meth:`start` polls the database in a thread (:meth:`poll`) and the ingest thread calls
    :meth:`apply_pending`, which does no I/O. An erased patient is forgotten by the bank, then by
    every ``on_erased`` callback (e.g. the MQTT bridge's retained alert state), on that thread.
    """

    def __init__(
        self,
        db: Database,
        bank: ProfiledBank,
        interval_s: float = PROFILE_REFRESH_S,
        on_erased: Sequence[Callable[[str], None]] = (),
        checkpoint: DetectorCheckpoint | None = None,
    ) -> None:
        self.db = db
        self.bank = bank
        self.interval_s = interval_s
        self.on_erased = list(on_erased)
        self.checkpoint = checkpoint
        """Where the bank's state was restored from; it records the erasures applied to it."""
        self._applied: dict[str, DetectionProfile] = {}
        self._warned: set[tuple[str, str]] = set()
        self._pending: PatientChanges | None = None
        self._erasures_read: set[int] = set()
        """Audit ids of the erasures read so far (only the reading thread touches it)."""
        self._started = False
        """Whether the first read (at start, over the restored checkpoint) was done."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self) -> PatientChanges:
        """Every patient's profile as stored, and the erasures not read before.

        An unknown stored profile counts as balanced. Erasures are looked for a little before
        the newest one read (``ERASURE_ID_LAG``): on PostgreSQL an erasure may commit after a
        later audit event was read.

        The first read, at start, leaves out the erasures the restored checkpoint says it
        reflects: what it holds of a patient registered again since was learnt after their
        erasure. Every other erasure is applied, the patient registered again or not: the
        checkpoint was saved before it was applied (the service stopped, or not polled yet), so
        it holds what was learnt before. A checkpoint of a version that did not record its
        erasures is trusted for the patients registered again, as that version did. Every later
        read applies them all: the bank learnt of the patient before the erasure, and a
        re-registration within the poll interval (``admin patient add`` again, or an alarm of
        the detector not yet forgotten registering them anew) must not keep that.
        """
        after = max(self._erasures_read, default=0) - ERASURE_ID_LAG
        with self.db.session() as session:
            rows = session.execute(select(Patient.id, Patient.detection_profile)).all()
            erasures = [
                e for e in erasures_since(session, after) if e.event_id not in self._erasures_read
            ]
        self._erasures_read.update(e.event_id for e in erasures)
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
        first, self._started = not self._started, True
        if not first:
            return PatientChanges(profiles, erasures)
        settled = self._settled_at_start(erasures)
        return PatientChanges(
            profiles, [e for e in erasures if e.event_id not in settled], sorted(settled)
        )

    def _settled_at_start(self, erasures: list[Erasure]) -> set[int]:
        """The erasures the restored state already reflects (see :meth:`read`)."""
        known = self.checkpoint.erasures_applied if self.checkpoint is not None else None
        if known is None:
            return {e.event_id for e in erasures if e.registered_again}
        return {e.event_id for e in erasures if e.event_id in known}

    def refresh(self) -> int:
        """Read and apply the database now; returns how many patients changed profile."""
        return self._apply(self.read())

    def poll(self) -> bool:
        """Read the database for the next :meth:`apply_pending` (any thread).

        A database error is logged and the poll retried at the next interval: detection goes on
        with the profiles it has. Returns whether the read succeeded.
        """
        try:
            changes = self.read()
        except SQLAlchemyError as exc:
            log.warning(
                "could not read the detection profiles (%s); retrying later", type(exc).__name__
            )
            return False
        with self._lock:
            if self._pending is not None:  # not applied yet: its erasures must not be lost
                changes.erasures[:0] = self._pending.erasures
                changes.settled[:0] = self._pending.settled
            self._pending = changes
        return True

    def apply_pending(self) -> int:
        """Apply what the last :meth:`poll` read, if anything (the bank's thread; no I/O)."""
        with self._lock:
            changes, self._pending = self._pending, None
        return 0 if changes is None else self._apply(changes)

    def _apply(self, changes: PatientChanges) -> int:
        """Forget the erased patients; a patient no longer stored goes back to balanced."""
        for erasure in changes.erasures:
            self.bank.forget(erasure.patient_id)
            if self.checkpoint is not None:  # samples it kept for another device, not yet lined up
                self.checkpoint.forget(erasure.patient_id)
            for forget in self.on_erased:
                forget(erasure.patient_id)
            log.info("patient %s erased: their detector state is dropped", erasure.patient_id)
        if self.checkpoint is not None:
            self.checkpoint.note_erasures(
                [*changes.settled, *(e.event_id for e in changes.erasures)]
            )
        wanted = changes.profiles
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
        if profiles is not None:
            profiles.on_erased.append(self.forget)

    def process(self, cycle: IngestCycle) -> None:
        """Apply profile changes read since the last cycle, then score the cycle."""
        if self.profiles is not None:
            self.profiles.apply_pending()
        super().process(cycle)
