"""Engine, sessions and migrations of the service database (SQLite default, PostgreSQL by URL)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from flarewatch.errors import ConfigError
from flarewatch.output_files import replacing_file
from flarewatch.redaction import scrubbed
from service.db.channel_crypto import (
    KEY_ADVICE,
    MIGRATION_CIPHER_KEY,
    SESSION_INFO_KEY,
    ChannelCipher,
)
from service.db.models import Account, Channel
from service.errors import ChannelKeyError

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
"""The ingest and the escalation scheduler write from different threads; SQLite serialises
writers, so a writer waits this long for the lock instead of failing at once (PostgreSQL: the
same bound on the service's write lock)."""
POSTGRES_WRITE_LOCK_KEY: Final = 0x666C_7277
"""Advisory lock id that serialises service transactions on PostgreSQL ("flrw" in ASCII)."""
DATABASE_NETWORK_TIMEOUT_S: Final = 10
"""A PostgreSQL connection attempt, or a query on a connection the network dropped silently,
gives up after this long (libpq's ``connect_timeout`` and ``tcp_user_timeout``) instead of
waiting out TCP's minutes: a scheduler pass or an alarm write then fails fast, is retried and
logged, and a critical alert is not held up by a dead link. Whole seconds (libpq's unit)."""
LIBPQ_DRIVERS: Final = ("psycopg", "psycopg2")
"""SQLAlchemy drivers that connect through libpq and so take its timeout parameters."""


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


def parse_database_url(url: str) -> URL:
    """``url`` parsed, or a :class:`ConfigError` that quotes none of it."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:
        # neither the URL nor the parser's words (they quote a part) are shown: a password in
        # a malformed URL cannot be told apart from the rest
        raise ConfigError(
            "service.database_url is not a database URL (e.g. sqlite:///var/flarewatch.sqlite3 "
            "or postgresql+psycopg://USER:PASSWORD@HOST:5432/DB)"
        ) from exc


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; a SQLite file's directory is created if missing.

    PostgreSQL connections give up on a silent network after ``DATABASE_NETWORK_TIMEOUT_S``.
    """
    parsed = parse_database_url(url)
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
        engine = create_engine(url, pool_pre_ping=True, connect_args=network_timeouts(parsed))
    except ModuleNotFoundError as exc:
        raise missing_driver(exc) from exc
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "begin", _postgres_write_lock)
    return engine


def network_timeouts(parsed: URL) -> dict[str, Any]:
    """Connect arguments bounding a connection's network waits (``DATABASE_NETWORK_TIMEOUT_S``).

    libpq's ``connect_timeout`` (seconds) and ``tcp_user_timeout`` (milliseconds, Linux), for
    drivers built on libpq, unless the URL sets them; none for the others (SQLite has no
    network). ``tcp_user_timeout`` bounds only data sent and not acknowledged: TCP keepalives
    (probes after ``DATABASE_NETWORK_TIMEOUT_S`` of silence, three, that far apart) also find a
    link that died while the connection waited for an answer, in about 40 s instead of the
    system's two hours.
    """
    if parsed.get_driver_name() not in LIBPQ_DRIVERS:
        return {}
    timeouts = {
        "connect_timeout": DATABASE_NETWORK_TIMEOUT_S,
        "tcp_user_timeout": DATABASE_NETWORK_TIMEOUT_S * 1000,
        "keepalives": 1,
        "keepalives_idle": DATABASE_NETWORK_TIMEOUT_S,
        "keepalives_interval": DATABASE_NETWORK_TIMEOUT_S,
        "keepalives_count": 3,
    }
    # one given in the URL (``?connect_timeout=30``) is the operator's choice: kept
    return {name: value for name, value in timeouts.items() if name not in parsed.query}


def missing_driver(exc: ModuleNotFoundError) -> ConfigError:
    """The error for a database URL whose driver is not installed, saying how to install it."""
    return ConfigError(
        f"service.database_url needs the {exc.name} driver: "
        "`pip install 'flarewatch[postgresql]'` for postgresql+psycopg:// URLs"
    )


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


def schema_revision(engine: Engine) -> str | None:
    """The migration revision the database is at (``None``: empty, never migrated)."""
    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(heads) if heads else None


def upgrade_schema(engine: Engine, cipher: ChannelCipher | None = None) -> tuple[str | None, str]:
    """Bring the schema to the newest migration (idempotent); returns (before, after) revisions.

    A database at a revision this code does not know was migrated by a newer flarewatch (the
    software was downgraded since): it is refused with :class:`ConfigError`, untouched. Alembic
    would fail with a bare "Can't locate revision", and an older service reading a newer schema
    could misread or damage what it does not know about.
    """
    # Alembic narrates every run at INFO; only real migrations are worth a line (ours, below).
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    config = alembic_config(engine, cipher)
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    assert head is not None, "the package ships its migrations"
    known = {revision.revision for revision in script.walk_revisions()}
    before = schema_revision(engine)
    unknown = sorted(set((before or "").split(",")) - known - {""})
    if unknown:
        raise ConfigError(
            f"the service database {engine.url.render_as_string(hide_password=True)} is at "
            f"schema revision {', '.join(unknown)}, newer than this flarewatch knows (its newest "
            f"is {head}): a newer flarewatch has upgraded it. Run that newer version again, or "
            'restore the backup taken before the upgrade (docs/deploy.md, "Backup and '
            'restore"); nothing was changed'
        )
    command.upgrade(config, "head")
    if before is None:
        log.info("service database created at schema revision %s", head)
    elif before != head:
        log.info("service database schema upgraded from revision %s to %s", before, head)
    return before, head


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
        self.schema_before: str | None = None
        """The schema revision found on opening (before migrating), for the operator."""
        self.schema_head: str | None = None
        """The revision the database is at after opening with ``migrate``."""
        try:
            if migrate:
                self.schema_before, self.schema_head = upgrade_schema(self.engine, self.cipher)
                self.check_channel_key()
        except OperationalError as exc:
            self.engine.dispose()
            raise ConfigError(open_failure(url, exc)) from exc
        except BaseException:
            self.engine.dispose()
            raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def check_channel_key(self) -> None:
        """Raise :class:`ChannelKeyError` unless every stored channel URL opens with our key.

        The accounts' second-factor secrets, sealed with the same key, are counted with them.
        """
        with self.session() as session:
            sealed = [
                *session.scalars(select(Channel.sealed_url)),
                *session.scalars(
                    select(Account.totp_secret).where(Account.totp_secret.isnot(None))
                ),
            ]
        if not sealed:
            return
        if self.cipher is None:
            raise ChannelKeyError(
                f"the service database holds {len(sealed)} encrypted values (channel URLs, "
                "second-factor secrets) but no "
                f"service.secret_key was given: {KEY_ADVICE}"
            )
        unreadable = sum(not self.cipher.can_open(value) for value in sealed)
        if unreadable:
            raise ChannelKeyError(
                f"{unreadable} of {len(sealed)} encrypted values (channel URLs, second-factor "
                "secrets) in the service database cannot be "
                f"decrypted with the configured service.secret_key (a different key?): "
                f"{KEY_ADVICE}"
            )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_failure(url: str, exc: DBAPIError) -> str:
    """Why the database at ``url`` could not be opened, with advice and without its password."""
    return (
        f"cannot open the service database {redact_database_url(url)}: {driver_reason(url, exc)} "
        "(check service.database_url: that the server runs and takes connections, the user, "
        "password and database name; for SQLite, that the file's directory is writable)"
    )


def driver_reason(url: str, exc: DBAPIError) -> str:
    """The driver's own words for ``exc`` (first line), without the password of ``url``.

    They say what went wrong: connection refused, password authentication failed, no such
    database, unable to open the file, the server ended the session. SQLAlchemy's text of the
    error is not used: it quotes the SQL statement and its parameters.
    """
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
    return scrubbed(reason, url, hide_user=False)


def backup_database(url: str, out: Path) -> str | None:
    """Copy the SQLite service database at ``url`` to ``out`` while the service runs.

    Returns the copy's schema revision. SQLite's online backup API copies one consistent
    snapshot (in WAL mode the service's writers go on meanwhile); copying the file with ``cp``
    could catch it half-written and miss what is still in the ``-wal`` file. The copy is written
    beside ``out`` (mode 0600: it is health data), checked and synced, then renamed over it
    (:func:`flarewatch.output_files.replacing_file`), so an interrupted backup never leaves a
    damaged file under that name. PostgreSQL has ``pg_dump`` for this. The database is not
    migrated: a backup is taken before an upgrade.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise ConfigError(
            "admin db backup copies a SQLite service database; back up PostgreSQL with "
            'pg_dump (docs/deploy.md, "Backup and restore")'
        )
    source = Path(parsed.database or "")
    if parsed.database in (None, "", ":memory:") or not source.is_file():
        raise ConfigError(f"there is no SQLite service database at {source} to back up")
    try:
        with (
            replacing_file(out, "--out") as partial,
            contextlib.closing(sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_S)) as src,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            src.backup(copy)  # all pages in one step: one snapshot, however busy the service
            if copy.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise ConfigError(f"the copy of {source} does not pass SQLite's quick_check")
            revision = _copied_revision(copy)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot back up {source} to {out}: {exc}") from exc
    return revision


def _copied_revision(copy: sqlite3.Connection) -> str | None:
    try:
        row = copy.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # never migrated
        return None
    return None if row is None else str(row[0])
