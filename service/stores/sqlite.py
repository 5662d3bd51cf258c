"""Embedded sample store in one SQLite file: the default when no InfluxDB is configured.

WAL journal (readers never block the ingest's writes), one row per sample with
``PRIMARY KEY (device_id, seq)`` and ``INSERT OR IGNORE``: writing a sample again changes nothing.
One connection shared under a lock makes the store usable from the ingest worker and a live view.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from flarewatch.payloads import Sample, SampleBatch
from service.const import SQLITE_BUSY_TIMEOUT_MS
from service.errors import StoreError
from service.stores.base import (
    LATEST_VITAL_FIELDS,
    SAMPLE_FIELDS,
    EncodedWrite,
    IntervalMeans,
    Reading,
    SampleStore,
    StoredSample,
)
from service.stores.lineprotocol import RR_FIELD, rr_from_field, rr_to_field

T = TypeVar("T")

_PERMANENT_ERRORS: Final = (
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
    sqlite3.NotSupportedError,
)

_COLUMN_TYPES: Final = {
    "heart_rate_bpm": "REAL",
    "rr_intervals_s": "TEXT",
    "skin_temperature_c": "REAL",
    "steps": "INTEGER",
    "acceleration_g": "REAL",
    "acceleration_sd_g": "REAL",
    "energy_expended_kj": "INTEGER",
    "contact_detected": "INTEGER",
    "battery_percent": "INTEGER",
}
assert set(_COLUMN_TYPES) == set(SAMPLE_FIELDS), "every contract field needs a column"

_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS samples (
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    patient_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    {", ".join(f"{name} {kind}" for name, kind in _COLUMN_TYPES.items())},
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_patient_time ON samples (patient_id, time_ms);
"""

_COLUMNS: Final = ("device_id", "seq", "patient_id", "time_ms", *SAMPLE_FIELDS)
_INSERT: Final = (
    f"INSERT OR IGNORE INTO samples ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


def _row(batch: SampleBatch, sample: Sample) -> tuple[Any, ...]:
    values: list[Any] = [batch.device_id, sample.seq, batch.patient_id, sample.time_ms]
    for name in SAMPLE_FIELDS:
        value = getattr(sample, name)
        if name == RR_FIELD and value is not None:
            value = rr_to_field(value)
        values.append(value)
    return tuple(values)


def _where(**filters: Any) -> tuple[str, list[Any]]:
    ops = {"start_ms": "time_ms >= ?", "end_ms": "time_ms < ?"}
    terms, params = [], []
    for key, value in filters.items():
        if value is not None:
            terms.append(ops.get(key, f"{key} = ?"))
            params.append(value)
    return (f" WHERE {' AND '.join(terms)}" if terms else ""), params


class SqliteStore(SampleStore):
    """Samples in a local SQLite file (demo, single-machine installs, tests)."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _run(self, action: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                if self._db is None:
                    self._db = self._connect()
                return action(self._db)
            except sqlite3.Error as exc:
                # Locked, disk full, I/O errors: the environment, which an operator can fix while
                # the ingest keeps the messages unacknowledged. Misuse of the API cannot heal.
                environmental = not isinstance(exc, _PERMANENT_ERRORS)
                raise StoreError(
                    f"{self.path}: {exc} (check that the directory exists, is writable and the "
                    "disk is not full)",
                    store=self.name,
                    retryable=environmental,
                ) from exc
            except OverflowError as exc:  # an integer beyond 64 bits: the request cannot succeed
                raise StoreError(
                    f"{self.path}: a value does not fit an SQLite INTEGER (64-bit)",
                    store=self.name,
                    retryable=False,
                ) from exc

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
        )
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives a process crash (what manual MQTT
        # acks rely on); only an OS crash or power loss may drop the newest commits.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def prepare(self) -> None:
        """Create the file, directory and table if needed."""
        try:
            self._run(lambda db: None)
        except OSError as exc:
            raise StoreError(
                f"cannot create {self.path}: {exc}", store=self.name, retryable=False
            ) from exc

    def encode(self, batches: Sequence[SampleBatch]) -> EncodedWrite:
        """The rows to insert, ready for :meth:`write_encoded`."""
        rows = [_row(batch, sample) for batch in batches for sample in batch.samples]
        return EncodedWrite(tuple(batches), len(rows), rows)

    def write(self, batches: Sequence[SampleBatch]) -> int:
        """Insert every sample in one transaction; samples already stored are ignored."""
        return self.write_encoded(self.encode(batches))

    def write_encoded(self, encoded: EncodedWrite) -> int:
        """Insert prepared rows in one transaction; samples already stored are ignored."""
        rows = encoded.payload

        def insert(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(_INSERT, rows)

        try:
            self._run(insert)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: {exc} (check the directory and the disk)",
                store=self.name,
                retryable=True,
            ) from exc
        return len(rows)

    def samples(
        self,
        *,
        patient_id: str | None = None,
        device_id: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        seq: int | None = None,
    ) -> list[StoredSample]:
        """Samples matching every filter, by device then time."""
        where, params = _where(
            patient_id=patient_id, device_id=device_id, start_ms=start_ms, end_ms=end_ms, seq=seq
        )
        sql = f"SELECT {', '.join(_COLUMNS)} FROM samples{where} ORDER BY device_id, time_ms"
        rows = self._run(lambda db: db.execute(sql, params).fetchall())
        found = []
        for row in rows:
            values = {c: v for c, v in zip(_COLUMNS[3:], row[3:], strict=True) if v is not None}
            values["seq"] = row[1]
            if RR_FIELD in values:
                values[RR_FIELD] = rr_from_field(values[RR_FIELD])
            if "contact_detected" in values:
                values["contact_detected"] = bool(values["contact_detected"])
            found.append(StoredSample(row[2], row[0], Sample.model_validate(values, strict=False)))
        return found

    def interval_means(
        self, patient_id: str, start_ms: int, end_ms: int, interval_ms: int = 60_000
    ) -> list[IntervalMeans]:
        """Means per interval, grouped by SQLite on the patient-time index."""
        sql = (
            "SELECT time_ms - time_ms % :step AS interval, avg(heart_rate_bpm), "
            "avg(skin_temperature_c) FROM samples "
            "WHERE patient_id = :patient AND time_ms >= :start AND time_ms < :end "
            "GROUP BY interval HAVING count(heart_rate_bpm) + count(skin_temperature_c) > 0 "
            "ORDER BY interval"
        )
        values = {"step": interval_ms, "patient": patient_id, "start": start_ms, "end": end_ms}
        rows = self._run(lambda db: db.execute(sql, values).fetchall())
        return [IntervalMeans(int(start), hr, temp) for start, hr, temp in rows]

    def count(self, *, patient_id: str | None = None, device_id: str | None = None) -> int:
        """Number of stored samples."""
        where, params = _where(patient_id=patient_id, device_id=device_id)
        return int(
            self._run(
                lambda db: db.execute(f"SELECT count(*) FROM samples{where}", params)
            ).fetchone()[0]
        )

    def time_span_ms(self, patient_id: str) -> tuple[int, int] | None:
        """The patient's first and last sample times (the patient-time index answers it)."""
        low, high = self._run(
            lambda db: db.execute(
                "SELECT min(time_ms), max(time_ms) FROM samples WHERE patient_id = ?",
                (patient_id,),
            ).fetchone()
        )
        return None if low is None else (int(low), int(high))

    def erase_patient(self, patient_id: str) -> int:
        """Delete the patient's samples in one transaction; returns how many there were."""

        def delete(db: sqlite3.Connection) -> int:
            with db:
                return db.execute(
                    "DELETE FROM samples WHERE patient_id = ?", (patient_id,)
                ).rowcount

        return self._run(delete)

    def last_seqs(self) -> dict[str, int]:
        """Highest ``seq`` per device."""
        rows = self._run(
            lambda db: db.execute(
                "SELECT device_id, max(seq) FROM samples GROUP BY device_id"
            ).fetchall()
        )
        return {device: int(seq) for device, seq in rows}

    def recent_seqs(self, per_device: int) -> dict[str, list[int]]:
        """The ``per_device`` highest ``seq`` numbers per device (ascending), read along the key."""

        def top(db: sqlite3.Connection) -> dict[str, list[int]]:
            found: dict[str, list[int]] = {}
            device = db.execute("SELECT min(device_id) FROM samples").fetchone()[0]
            while device is not None:  # device by device through the primary key's index
                rows = db.execute(
                    "SELECT seq FROM samples WHERE device_id = ? ORDER BY seq DESC LIMIT ?",
                    (device, per_device),
                ).fetchall()
                found[device] = [int(row[0]) for row in reversed(rows)]
                device = db.execute(
                    "SELECT min(device_id) FROM samples WHERE device_id > ?", (device,)
                ).fetchone()[0]
            return found

        return self._run(top)

    def latest_vitals(self, patient_id: str) -> Mapping[str, Reading]:
        """Newest non-missing value of each vital field."""

        def newest(db: sqlite3.Connection) -> dict[str, Reading]:
            latest = {}
            for name in LATEST_VITAL_FIELDS:
                row = db.execute(
                    f"SELECT time_ms, {name} FROM samples WHERE patient_id = ? "
                    f"AND {name} IS NOT NULL ORDER BY time_ms DESC LIMIT 1",
                    (patient_id,),
                ).fetchone()
                if row is not None:
                    value = bool(row[1]) if name == "contact_detected" else row[1]
                    latest[name] = Reading(int(row[0]), value)
            return latest

        return self._run(newest)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
