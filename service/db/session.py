"""Engine, sessions and migrations of the service database (SQLite default, PostgreSQL by URL)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from flarewatch.errors import ConfigError
from flarewatch.redaction import scrubbed
from service.db.channel_crypto import (
    KEY_ADVICE,
    MIGRATION_CIPHER_KEY,
    SESSION_INFO_KEY,
    ChannelCipher,
)
from service.db.models import Channel
from service.errors import ChannelKeyError

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
"""The ingest and the escalation scheduler write from different threads; SQLite serialises
writers, so a writer waits this long for the lock instead of failing at once (PostgreSQL: the
same bound on the service's write lock)."""
POSTGRES_WRITE_LOCK_KEY: Final = 0x666C_7277
"""Advisory lock id that serialises service transactions on PostgreSQL ("flrw" in ASCII)."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (API, admin CLI) run while the scheduler writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    # The ingest thread (episodes) and the scheduler write the same alert rows. A deferred
    # transaction that read first and then writes fails at once with SQLITE_BUSY when another
    # writer committed meanwhile (WAL snapshot); taking the write lock up front makes it wait
    # (busy timeout) instead, so no alarm is lost to a lock conflict.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _postgres_write_lock(connection: Any) -> None:
    # The alert code is written for serialised writers, which SQLite gives (BEGIN IMMEDIATE
    # above): the scheduler, the ingest and the API read an alert and write it back. Under
    # PostgreSQL's READ COMMITTED, an acknowledgement committed between that read and write
    # would be overwritten (a lost update). A transaction-scoped advisory lock gives every
    # transaction the same one-writer-at-a-time guarantee, across processes too (two services
    # or an admin command on one database); it is released at commit or rollback. Like SQLite's
    # busy timeout, the wait is bounded: a stuck holder gives an error, not a hung service.
    connection.exec_driver_sql(
        f"SET LOCAL lock_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}"  # milliseconds
    )
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_WRITE_LOCK_KEY})")


def redact_database_url(url: str) -> str:
    """``url`` fit for an error message or a log: its password replaced by ``***``.

    A string that does not parse as a URL is not shown at all: where its password is is unknown.
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(not a URL)"


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; a SQLite file's directory is created if missing."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        # neither the URL nor the parser's words (they quote a part) are shown: a password in
        # a malformed URL cannot be told apart from the rest
        raise ConfigError(
            "service.database_url is not a database URL (e.g. sqlite:///var/flarewatch.sqlite3 "
            "or postgresql+psycopg://USER:PASSWORD@HOST:5432/DB)"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create {folder} for the SQLite service database: {exc.strerror}; "
                    "point service.database_url at a writable directory"
                ) from exc
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"service.database_url needs the {exc.name} driver: "
            "`pip install 'flarewatch[postgresql]'` for postgresql+psycopg:// URLs"
        ) from exc
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "begin", _postgres_write_lock)
    return engine


def alembic_config(engine: Engine, cipher: ChannelCipher | None = None) -> Config:
    """An Alembic configuration that works from the installed package (no alembic.ini needed).

    ``cipher`` is handed to the migrations that encrypt stored channel URLs.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    config.attributes[MIGRATION_CIPHER_KEY] = cipher
    return config


def upgrade_schema(engine: Engine, cipher: ChannelCipher | None = None) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    # Alembic narrates every run at INFO; only real migrations are worth a line.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    command.upgrade(alembic_config(engine, cipher), "head")


class Database:
    """The service database: one engine and its session factory, shared by every component.

    ``secret_key`` (the operator's ``service.secret_key``) encrypts the channel URLs; opening a
    database whose channels were stored under another key, or under a key when none is given,
    raises :class:`ChannelKeyError` at once instead of at the first alert.
    """

    def __init__(self, url: str, *, secret_key: str | None = None, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.cipher = ChannelCipher(secret_key) if secret_key else None
        info = {SESSION_INFO_KEY: self.cipher} if self.cipher is not None else {}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        try:
            if migrate:
                upgrade_schema(self.engine, self.cipher)
                self.check_channel_key()
        except OperationalError as exc:
            self.engine.dispose()
            raise ConfigError(_open_failure(url, exc)) from exc
        except BaseException:
            self.engine.dispose()
            raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def check_channel_key(self) -> None:
        """Raise :class:`ChannelKeyError` unless every stored channel URL opens with our key."""
        with self.session() as session:
            sealed = session.scalars(select(Channel.sealed_url)).all()
        if not sealed:
            return
        if self.cipher is None:
            raise ChannelKeyError(
                f"the service database holds {len(sealed)} encrypted channel URLs but no "
                f"service.secret_key was given: {KEY_ADVICE}"
            )
        unreadable = sum(not self.cipher.can_open(value) for value in sealed)
        if unreadable:
            raise ChannelKeyError(
                f"{unreadable} of {len(sealed)} channel URLs in the service database cannot be "
                f"decrypted with the configured service.secret_key (a different key?): "
                f"{KEY_ADVICE}"
            )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _open_failure(url: str, exc: OperationalError) -> str:
    """Why the database at ``url`` could not be opened, with advice and without its password.

    The driver's own words (first line) say what went wrong: connection refused, password
    authentication failed, no such database, unable to open the file. SQLAlchemy's text of the
    error is not used: it quotes the SQL statement and its parameters.
    """
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
    reason = scrubbed(reason, url, hide_user=False)
    return (
        f"cannot open the service database {redact_database_url(url)}: {reason} "
        "(check service.database_url: that the server runs and takes connections, the user, "
        "password and database name; for SQLite, that the file's directory is writable)"
    )
