"""At most one ``flarewatch serve`` per service database: the lock, taken at start and watched.

Two services on one database would both run the escalation scheduler: the second one's start-up
puts every delivery the first is sending back in the queue (as if a crash had interrupted it), so
caregivers are told twice; both would write one detector checkpoint, and with one instance name
throw each other off the broker every second. So ``serve`` takes :class:`ServiceLock` before
anything else and a second one is refused, naming the holder.

On PostgreSQL the lock is a session advisory lock, and a session can end under a running service
(a server restart, ``pg_terminate_backend``, a network failure): the lock goes with it, and a
second ``serve`` could start. So the running service checks its lock every
``SERVICE_LOCK_CHECK_INTERVAL_S`` (:meth:`ServiceLock.watch`), takes it again on a new session
when it was lost, and stops if another service took it meanwhile. The same for SQLite's lock
file, should someone delete it.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from flarewatch.errors import ConfigError
from service.db.session import (
    driver_reason,
    missing_driver,
    network_timeouts,
    open_failure,
    parse_database_url,
    redact_database_url,
)

log = logging.getLogger(__name__)

POSTGRES_SERVICE_LOCK_KEY: Final = 0x666C_7273
"""Session advisory lock id a running ``flarewatch serve`` holds on PostgreSQL ("flrs")."""
SQLITE_SERVICE_LOCK_SUFFIX: Final = ".serve-lock"
"""The file beside a SQLite service database that a running ``flarewatch serve`` locks."""
SERVICE_LOCK_CHECK_INTERVAL_S: Final = 2.0
"""How often a running service checks it still holds its lock. It bounds how long a second
service started after the lock was lost can run beside this one before this one notices and
stops; the check is one query of ``pg_locks`` on the lock's own idle connection (a ``stat`` of
the lock file on SQLite), nothing to the server every 2 s."""
SERVICE_LOCK_RETRY_FIRST_S: Final = 0.5
"""First wait before taking a lost lock again while the database is unreachable; doubles."""
SERVICE_LOCK_RETRY_MAX_S: Final = 5.0
"""Longest wait between those attempts: a restarted PostgreSQL is noticed within 5 s, which
leaves a second service little time to take the lock first."""


class LockStatus(enum.Enum):
    """What :meth:`ServiceLock.check` found."""

    HELD = "held"
    """This process holds the lock (taken again if its session had been lost)."""
    UNREACHABLE = "unreachable"
    """The lock was lost and the database cannot be reached to take it again: retry later."""
    TAKEN = "taken"
    """The lock was lost and another service holds it now: this one must stop."""


def lock_retry_delay_s(failures: int) -> float:
    """The wait before the next check after ``failures`` attempts in a row found no database."""
    if failures <= 0:
        return SERVICE_LOCK_CHECK_INTERVAL_S
    return min(SERVICE_LOCK_RETRY_FIRST_S * 2.0 ** (failures - 1), SERVICE_LOCK_RETRY_MAX_S)


class ServiceLock:
    """At most one ``flarewatch serve`` per service database, held for the process's lifetime.

    SQLite: an exclusive ``flock`` on ``<database>.serve-lock`` (a SQLite lock cannot be held
    without blocking the service's own writers); it works across containers sharing the volume
    on one host. PostgreSQL: a session advisory lock on a connection of its own. Either is
    released by the kernel or the server when the process dies, so a crash never blocks the
    restart. Either can also be lost while the process runs (its session ends, or the lock file
    is deleted, after which a second service would lock a new file): :meth:`watch` keeps
    checking. Admin commands do not take it: they are meant to run beside the service.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.lost_to: str | None = None
        """Who took the lock after this process lost it (set by :meth:`check`): it must stop."""
        self._name = _holder_name()  # "since" the service started, also on a lock taken again
        self._path: Path | None = None
        """SQLite: the lock file (``_file`` is its descriptor while locked)."""
        self._file: int | None = None
        self._engine: Engine | None = None
        """PostgreSQL: the engine of the lock's session (``_connection`` while connected)."""
        self._connection: Connection | None = None
        self._lost_since: float | None = None
        self._stop_watching = threading.Event()
        self._watcher: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`ConfigError` saying who holds it."""
        parsed = parse_database_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                self._path = Path(parsed.database + SQLITE_SERVICE_LOCK_SUFFIX)
        elif parsed.get_backend_name() == "postgresql":
            self._engine = _lock_engine(self.url)
        try:
            holder = self._take()
        except OperationalError as exc:
            self.release()
            raise ConfigError(open_failure(self.url, exc)) from exc
        except BaseException:
            self.release()
            raise
        if holder is not None:
            self.release()
            raise ConfigError(self._refusal(holder))

    def release(self) -> None:
        """Stop watching and give the lock up (idempotent)."""
        self._stop_watching.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join()
        self._watcher = None
        self._close_file()  # closing the descriptor releases the flock
        self._drop_connection()  # ends the session, and its advisory lock with it
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._path = None

    def __enter__(self) -> ServiceLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def watch(self, on_lost: Callable[[], None]) -> None:
        """Call :meth:`check` every ``SERVICE_LOCK_CHECK_INTERVAL_S`` in a thread until released.

        While the lock cannot be taken again (the database is unreachable) the service goes on
        (its other parts wait for the database too) and the lock is retried with a backoff
        (:func:`lock_retry_delay_s`). ``on_lost`` is called once, from that thread, if another
        service took the lock meanwhile: the caller stops.
        """
        if (self._path is None and self._engine is None) or self._watcher is not None:
            return  # nothing locked (an in-memory database)
        self._stop_watching.clear()
        self._watcher = threading.Thread(
            target=self._watch, args=(on_lost,), name="flarewatch-service-lock", daemon=True
        )
        self._watcher.start()

    def check(self) -> LockStatus:
        """Whether this process still holds the lock, taking it again if it was lost.

        The loss is logged once (a warning with the reason) however many attempts it takes to
        get the lock back, and once more when it is back; a lock another service took is logged
        as an error naming it, and :attr:`lost_to` says who. Not thread-safe: once
        :meth:`watch` runs, only its thread calls this.
        """
        reason = self._why_lost()
        if reason is None:
            return LockStatus.HELD
        if self._lost_since is None:
            self._lost_since = time.monotonic()
            log.warning(
                "lost this service's lock on the service database %s (%s): taking it again, "
                "and retrying while that fails; the service goes on meanwhile",
                redact_database_url(self.url),
                reason,
            )
        try:
            holder = self._take()
        except (SQLAlchemyError, ConfigError):
            return LockStatus.UNREACHABLE  # logged once above, not at every attempt
        if holder is not None:
            self.lost_to = holder
            log.error(
                "another flarewatch serve took the service database %s while this one had lost "
                "its lock (%s): stopping this one, or both would send every alert twice",
                redact_database_url(self.url),
                holder,
            )
            return LockStatus.TAKEN
        log.info(
            "took the lock on the service database again after %.1f s",
            time.monotonic() - self._lost_since,
        )
        self._lost_since = None
        return LockStatus.HELD

    def _watch(self, on_lost: Callable[[], None]) -> None:
        failures = 0
        while not self._stop_watching.wait(lock_retry_delay_s(failures)):
            try:
                status = self.check()
            except Exception:  # a bug here must not end the watching; logged with its stack
                log.exception("checking the service database lock failed; retrying")
                status = LockStatus.UNREACHABLE
            if status is LockStatus.TAKEN:
                on_lost()
                return
            failures = failures + 1 if status is LockStatus.UNREACHABLE else 0

    def _why_lost(self) -> str | None:
        """``None`` while the lock is held, else why it is not (what is left of it is dropped)."""
        if self._path is not None:
            return self._why_file_lost(self._path)
        if self._engine is not None:
            return self._why_session_lost()
        return None

    def _why_file_lost(self, path: Path) -> str | None:
        if self._file is None:
            return "its lock file could not be created"
        try:
            on_disk = path.stat()
        except FileNotFoundError:  # deleted: a second service would lock a new file
            on_disk = None
        except OSError:
            return None  # cannot tell (an I/O error): keep the flock this process has
        ours = os.fstat(self._file)
        if on_disk is not None and on_disk.st_ino == ours.st_ino and on_disk.st_dev == ours.st_dev:
            return None
        self._close_file()
        return f"its lock file {path} was deleted or replaced"

    def _why_session_lost(self) -> str | None:
        if self._connection is None:
            return "it could not be taken again yet"
        try:
            if self._holds(self._connection):
                return None
            reason = "its session no longer holds it"
        except DBAPIError as exc:
            reason = driver_reason(self.url, exc)
        except SQLAlchemyError as exc:
            reason = type(exc).__name__
        self._drop_connection()
        return reason

    def _take(self) -> str | None:
        """Take the lock: ``None`` when taken, else who holds it."""
        if self._path is not None:
            return self._take_file(self._path)
        if self._engine is not None:
            return self._take_postgres(self._engine)
        return None

    def _take_file(self, path: Path) -> str | None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot create {path}, the lock that keeps a second service off the database: "
                f"{exc.strerror}; the service database's directory must be writable"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            return holder
        self._file = fd
        with contextlib.suppress(OSError):  # who holds it, for a refusal; not worth failing for
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self._name}\n".encode(), 0)
        return None

    def _take_postgres(self, engine: Engine) -> str | None:
        connection = engine.connect()
        try:
            # the holder's name, for a second service's refusal (pg_stat_activity shows it)
            name = text("SELECT set_config('application_name', :name, false)")
            connection.execute(name, {"name": self._name[:63]})
            query = text("SELECT pg_try_advisory_lock(:key)")
            holder = None
            for _ in range(2):  # a holder may let go between the two queries: then try again
                if connection.execute(query, {"key": POSTGRES_SERVICE_LOCK_KEY}).scalar():
                    self._connection = connection
                    return None
                holder = _postgres_holder(connection)
                if holder is not None:
                    break
        except BaseException:
            connection.close()
            raise
        connection.close()
        return holder or "unknown"

    @staticmethod
    def _holds(connection: Connection) -> bool:
        query = text(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = pg_backend_pid() "
            "AND locktype = 'advisory' AND granted AND classid = 0 AND objid = :key "
            "AND objsubid = 1)"
        )
        return bool(connection.execute(query, {"key": POSTGRES_SERVICE_LOCK_KEY}).scalar())

    def _close_file(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):  # a lost session has nothing to close
                self._connection.close()
            self._connection = None

    def _refusal(self, holder: str) -> str:
        return (
            f"another flarewatch serve is already running on the service database "
            f"{redact_database_url(self.url)} ({holder}): two services on one database would "
            "send every alert twice. Stop the other one first, or give this one a database of "
            "its own (service.database_url)"
        )


def _lock_engine(url: str) -> Engine:
    """The engine of the lock's one connection.

    Not :func:`service.db.session.make_engine`'s: its transactions wait for the service's write
    lock, and a check must not queue behind the writers. Autocommit, so the idle connection is
    never left inside a transaction; no pool, so a lost session is closed, not kept; and the
    same network timeouts as the service's other connections (``network_timeouts``).
    """
    connect_args = network_timeouts(parse_database_url(url))
    try:
        return create_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args
        )
    except ModuleNotFoundError as exc:
        raise missing_driver(exc) from exc


def _postgres_holder(connection: Connection) -> str | None:
    """Who holds the lock on this database, as ``pg_stat_activity`` knows them, if anyone."""
    row = connection.execute(
        text(
            "SELECT a.application_name, a.client_addr FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.classid = 0 AND l.objid = :key "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"key": POSTGRES_SERVICE_LOCK_KEY},
    ).first()
    if row is None:
        return None
    return f"{row.application_name or 'a client'}, connected from {row.client_addr or 'a socket'}"


def _holder_name() -> str:
    """Who holds a :class:`ServiceLock`, as a second service's refusal names it."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"flarewatch serve pid {os.getpid()} on {socket.gethostname()} since {stamp}"
