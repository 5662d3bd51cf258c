"""Durable outbox: every reading is stored in SQLite (WAL) before it is published.

Rows leave the outbox only when the broker acknowledged them (PUBACK). Per-device sequence numbers
are assigned here and the counter is stored in the same transaction as the rows, so after a crash
or restart numbering continues where it stopped and nothing already appended is lost.

A new device's first ``seq`` is the clock in epoch milliseconds at the time it is first seen, not
0: should the outbox file ever be deleted, the numbers still only grow (a 1 Hz device adds 1 per
second while the clock adds 1000), so receivers that drop duplicates by (device, seq) do not
mistake fresh samples for old ones.

While the broker is unreachable rows accumulate up to a disk budget. Past
``OUTBOX_WARN_FRACTION`` of it a warning is logged; past the budget the *oldest* rows are dropped
(counted in :attr:`OutboxStats.dropped_over_budget` and logged), because for alarms the newest data
matters most.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from pydantic import ValidationError

from collector.const import (
    OUTBOX_BUSY_TIMEOUT_MS,
    OUTBOX_DISK_BUDGET_BYTES,
    OUTBOX_ROW_OVERHEAD_BYTES,
    OUTBOX_SYNCHRONOUS,
    OUTBOX_WARN_FRACTION,
)
from collector.errors import OutboxError
from collector.sources.base import Reading
from flarewatch.errors import describe_validation_error
from flarewatch.log_throttle import LogThrottle
from flarewatch.payloads import Sample

log = logging.getLogger(__name__)

DeviceGroup = tuple[str, str, Sequence[Reading]]
"""``(patient_id, device_id, readings)`` of one device, as passed to :meth:`Outbox.append_many`."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order; never reused, so cursors stay valid
    patient_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL                      -- the contract Sample as JSON, seq included
);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    next_seq INTEGER NOT NULL,
    last_time_ms INTEGER
);
"""


def wall_clock_ms() -> int:
    """Current UTC time in epoch milliseconds (the default clock)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class PendingRow:
    """A stored sample not yet acknowledged by the broker."""

    row_id: int
    patient_id: str
    device_id: str
    seq: int
    body: str
    """The contract ``Sample`` serialized as a JSON object."""


@dataclass(frozen=True, slots=True)
class DeviceCursor:
    """What the outbox remembers of a device: its patient, next ``seq`` and newest sample time."""

    device_id: str
    patient_id: str
    next_seq: int
    last_time_ms: int | None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of one append: how many readings were stored and how many rejected as invalid."""

    accepted: int
    rejected: int


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters of an outbox since it was opened (``pending*`` are current totals)."""

    pending: int
    pending_bytes: int
    budget_bytes: int
    appended: int
    acked: int
    rejected: int
    dropped_over_budget: int


class Outbox:
    """SQLite-backed queue of samples per device; thread-safe (one connection behind a lock)."""

    def __init__(
        self,
        path: Path,
        *,
        disk_budget_bytes: int = OUTBOX_DISK_BUDGET_BYTES,
        synchronous: str = OUTBOX_SYNCHRONOUS,
        clock_ms: Callable[[], int] = wall_clock_ms,
        busy_timeout_ms: int = OUTBOX_BUSY_TIMEOUT_MS,
    ) -> None:
        if disk_budget_bytes <= 0:
            raise OutboxError("disk budget must be a positive number of bytes", path=path)
        if synchronous.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise OutboxError(f"synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = path
        self.disk_budget_bytes = disk_budget_bytes
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"SQLite refused WAL mode (got {mode})", path=path)
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.executescript(_SCHEMA)
            count, size = self._db.execute(
                "SELECT count(*), coalesce(sum(length(body)), 0) FROM samples"
            ).fetchone()
            self._devices = {
                row[0]: DeviceCursor(*row)
                for row in self._db.execute(
                    "SELECT device_id, patient_id, next_seq, last_time_ms FROM devices"
                )
            }
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(
                f"cannot open the outbox: {exc}; check the path and disk", path=path
            ) from exc
        self._pending = int(count)
        self._pending_bytes = int(size) + self._pending * OUTBOX_ROW_OVERHEAD_BYTES
        self._appended = self._acked = self._rejected = self._dropped = 0
        self._log_throttle = LogThrottle()
        self._warned = self._dropping = False
        if self._pending:
            log.info("outbox %s holds %d samples from before; they are sent first", path, count)

    # --- writing ---------------------------------------------------------------------------------

    def append(self, patient_id: str, device_id: str, readings: Sequence[Reading]) -> AppendResult:
        """Store readings of one device with the next sequence numbers, in one transaction."""
        return self.append_many([(patient_id, device_id, readings)])

    def append_many(self, groups: Iterable[DeviceGroup]) -> AppendResult:
        """Store readings of several devices in one transaction (the fast path for many devices).

        Readings breaking the contract (out of range, NaN) are rejected, counted and logged
        without their values; the others are stored. Returns once the transaction is committed.
        """
        groups = list(groups)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    rows, cursors, rejected = self._numbered(groups)
                    added_bytes, dropped, dropped_bytes = (
                        self._insert(rows, cursors) if rows else (0, 0, 0)
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot store samples: {exc}", path=self.path) from exc
            self._rejected += rejected
            if rows:
                self._devices.update(cursors)
                self._appended += len(rows)
                self._pending += len(rows) - dropped
                self._pending_bytes += added_bytes - dropped_bytes
                self._dropped += dropped
                self._warn_if_filling()
            return AppendResult(accepted=len(rows), rejected=rejected)

    def _numbered(
        self, groups: list[DeviceGroup]
    ) -> tuple[list[tuple[str, str, int, str]], dict[str, DeviceCursor], int]:
        """Inside the write transaction: rows with their seq, the devices' new cursors, rejects.

        Numbering continues from the file, not from memory, so that another process writing this
        outbox (a second gateway started by mistake) never makes us reuse its seqs.
        """
        stored = {
            row[0]: DeviceCursor(*row)
            for row in self._db.execute(
                "SELECT device_id, patient_id, next_seq, last_time_ms FROM devices "
                "WHERE device_id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted({device_id for _, device_id, _ in groups})),),
            )
        }
        rows: list[tuple[str, str, int, str]] = []
        cursors: dict[str, DeviceCursor] = {}
        rejected = 0
        for patient_id, device_id, readings in groups:
            cursor = cursors.get(device_id) or stored.get(device_id)
            next_seq = self._clock_ms() if cursor is None else cursor.next_seq
            last_time_ms = None if cursor is None else cursor.last_time_ms
            for reading in readings:
                body = self._validated_body(device_id, next_seq, reading)
                if body is None:
                    rejected += 1
                    continue
                rows.append((patient_id, device_id, next_seq, body))
                next_seq += 1
                last_time_ms = reading.time_ms
            cursors[device_id] = DeviceCursor(device_id, patient_id, next_seq, last_time_ms)
        return rows, cursors, rejected

    def _validated_body(self, device_id: str, seq: int, reading: Reading) -> str | None:
        try:
            return Sample(seq=seq, **reading.fields()).model_dump_json(exclude_none=True)
        except (ValidationError, TypeError) as exc:
            bad = exc if isinstance(exc, ValidationError) else None
            detail = describe_validation_error(bad, limit=3) if bad else type(exc).__name__
            held = self._log_throttle.allow((device_id, detail))
            if held is not None:  # e.g. every reading while the clock is unset: once a minute
                more = f"; {held} more like it since the last such line" if held else ""
                log.warning(
                    "outbox: rejected a reading of device %s (%s)%s", device_id, detail, more
                )
            return None

    def _insert(
        self, rows: list[tuple[str, str, int, str]], cursors: dict[str, DeviceCursor]
    ) -> tuple[int, int, int]:
        """Inside the write transaction: store rows and cursors, then hold the disk budget.

        Returns the bytes added and the rows and bytes dropped to stay within the budget.
        """
        added_bytes = sum(len(r[3]) for r in rows) + len(rows) * OUTBOX_ROW_OVERHEAD_BYTES
        self._db.executemany(
            "INSERT INTO samples (patient_id, device_id, seq, body) VALUES (?, ?, ?, ?)", rows
        )
        self._db.executemany(
            "INSERT INTO devices (device_id, patient_id, next_seq, last_time_ms) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET "
            "patient_id=excluded.patient_id, next_seq=excluded.next_seq, "
            "last_time_ms=excluded.last_time_ms",
            [(c.device_id, c.patient_id, c.next_seq, c.last_time_ms) for c in cursors.values()],
        )
        return (added_bytes, *self._drop_over_budget(added_bytes))

    def _drop_over_budget(self, added_bytes: int) -> tuple[int, int]:
        """Inside the write transaction: delete the oldest rows until the budget holds."""
        excess = self._pending_bytes + added_bytes - self.disk_budget_bytes
        dropped = dropped_bytes = 0
        while excess > 0:
            victims = self._db.execute(
                "SELECT id, length(body) FROM samples ORDER BY id LIMIT 1000"
            ).fetchall()
            if not victims:
                break
            chosen = []
            for row_id, size in victims:
                chosen.append((row_id,))
                freed = int(size) + OUTBOX_ROW_OVERHEAD_BYTES
                dropped_bytes += freed
                excess -= freed
                if excess <= 0:
                    break
            self._db.executemany("DELETE FROM samples WHERE id = ?", chosen)
            dropped += len(chosen)
        if dropped and not self._dropping:
            log.error(
                "outbox over its disk budget of %d bytes: dropped the %d oldest unsent samples "
                "and keeps dropping the oldest while it stays full (broker unreachable for "
                "long: fix the link or raise the outbox disk budget); see outbox stats",
                self.disk_budget_bytes,
                dropped,
            )
        self._dropping = dropped > 0
        return dropped, dropped_bytes

    def _warn_if_filling(self) -> None:
        filling = self._pending_bytes >= OUTBOX_WARN_FRACTION * self.disk_budget_bytes
        if filling and not self._warned:
            log.warning(
                "outbox %s is %.0f%% full (%d samples waiting): is the broker reachable?",
                self.path,
                100 * self._pending_bytes / self.disk_budget_bytes,
                self._pending,
            )
        self._warned = filling

    # --- reading and acknowledging ---------------------------------------------------------------

    def read(self, after_row_id: int = 0, limit: int = 1000) -> list[PendingRow]:
        """Pending rows with ``row_id > after_row_id`` in insertion (hence per-device seq) order."""
        with self._lock:
            try:
                return [
                    PendingRow(*row)
                    for row in self._db.execute(
                        "SELECT id, patient_id, device_id, seq, body FROM samples "
                        "WHERE id > ? ORDER BY id LIMIT ?",
                        (after_row_id, limit),
                    )
                ]
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot read pending samples: {exc}", path=self.path) from exc

    def ack(self, row_ids: Iterable[int]) -> int:
        """Delete acknowledged rows in one transaction; returns how many were still pending."""
        ids = list(row_ids)
        if not ids:
            return 0
        with self._lock:
            try:
                sizes = [
                    int(size)
                    for (size,) in self._db.execute(
                        "DELETE FROM samples WHERE id IN (SELECT value FROM json_each(?)) "
                        "RETURNING length(body)",
                        (json.dumps(ids),),
                    )
                ]
            except sqlite3.Error as exc:
                raise OutboxError(
                    f"cannot delete acknowledged samples: {exc}", path=self.path
                ) from exc
            deleted = len(sizes)
            self._acked += deleted
            self._pending -= deleted
            self._pending_bytes -= sum(sizes) + deleted * OUTBOX_ROW_OVERHEAD_BYTES
            self._warn_if_filling()
            return deleted

    # --- state -----------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Samples stored but not yet acknowledged (the gateway status ``outbox_pending``)."""
        return self._pending

    def stats(self) -> OutboxStats:
        """Counters for status messages, progress displays and benchmarks."""
        with self._lock:
            return OutboxStats(
                pending=self._pending,
                pending_bytes=self._pending_bytes,
                budget_bytes=self.disk_budget_bytes,
                appended=self._appended,
                acked=self._acked,
                rejected=self._rejected,
                dropped_over_budget=self._dropped,
            )

    def device(self, device_id: str) -> DeviceCursor | None:
        """What the outbox remembers of a device (next seq, newest time), or ``None`` if unknown."""
        with self._lock:
            return self._devices.get(device_id)

    def devices(self) -> list[DeviceCursor]:
        """Every device the outbox has numbered samples for."""
        with self._lock:
            return list(self._devices.values())

    def close(self) -> None:
        """Close the database (committed data is already safe)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
