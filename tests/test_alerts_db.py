"""The service database on SQLite and PostgreSQL: migrations match the models, upgrade is
idempotent, constraints hold, writers are serialised and a stuck one gets an error."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from service.alerts.const import DEFAULT_SIGNAL_WINDOW_S
from service.db import Alert, Base, Database, Delivery, Patient
from service.db import session as db_session
from service.db.care_teams import PolicyUpdate, add_contact, add_patient
from service.db.session import alembic_config, make_engine
from tests.alerting_helpers import insert_legacy_patient

OTHER_WRITER_GRACE_S = 0.5
"""How long the second writer gets to (wrongly) commit while the first transaction is open."""
OTHER_WRITER_JOIN_S = 10.0
"""Generous bound for a writer whose lock wait is cut to 0.2 s to give up."""


def add_alert(session: Session) -> Alert:
    """An active warning for patient p1, flushed so it has an id."""
    alert = Alert(
        patient_id="p1",
        kind="flush",
        severity="warning",
        state="active",
        created_s=0.0,
        since_s=0.0,
    )
    session.add(alert)
    session.flush()
    return alert


def test_migrations_create_exactly_the_models(service_db_url):
    db = Database(service_db_url)
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"models changed without a migration: {diff}"
    assert "alembic_version" in inspect(db.engine).get_table_names()
    db.dispose()
    again = Database(service_db_url)  # upgrading twice is a no-op
    again.dispose()


def test_idempotency_key_is_unique(service_db_url):
    db = Database(service_db_url, secret_key="k")
    with db.session() as session:
        add_patient(session, "p1", 0.0, PolicyUpdate())
        contact = add_contact(session, "p1", "ann", ["json://127.0.0.1:9/x"])
        alert = add_alert(session)
        ids = (alert.id, contact.id, contact.channels[0].id)
    row = {"purpose": "notify", "next_attempt_s": 0.0, "created_s": 0.0, "idempotency_key": "k"}
    with db.session() as session:
        session.add(Delivery(alert_id=ids[0], contact_id=ids[1], channel_id=ids[2], **row))
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(Delivery(alert_id=ids[0], contact_id=ids[1], channel_id=ids[2], **row))
    db.dispose()


def test_bad_database_url_is_a_config_error():
    from flarewatch.errors import ConfigError

    with pytest.raises(ConfigError, match="not a database URL"):
        Database("not a url")


def test_a_second_writer_waits_for_the_open_transaction(service_db_url):
    """Writers are serialised on both backends, so a read-modify-write never loses an update.

    The alert code reads rows and writes them back (scheduler, ingest and API threads); SQLite
    serialises writers by itself, PostgreSQL through the service's advisory lock.
    """
    db = Database(service_db_url)
    with db.session() as session:
        add_patient(session, "p1", 0.0, PolicyUpdate())
        alert = add_alert(session)
        alert_id = alert.id
    started, finished = threading.Event(), threading.Event()

    def other_writer() -> None:
        started.set()
        with db.session() as session:
            session.get_one(Alert, alert_id).repeat_count += 1
        finished.set()

    other = threading.Thread(target=other_writer)
    with db.session() as session:
        alert = session.get_one(Alert, alert_id)
        seen = alert.repeat_count
        other.start()
        started.wait()
        # Bounded wait for something that must NOT happen while this transaction is open.
        assert not finished.wait(OTHER_WRITER_GRACE_S), "a second writer ran concurrently"
        alert.repeat_count = seen + 1
    other.join()
    with db.session() as session:
        assert session.get_one(Alert, alert_id).repeat_count == 2, "an update was lost"
    db.dispose()


def test_a_writer_stuck_behind_the_lock_gets_an_error_not_a_hang(service_db_url, monkeypatch):
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    db = Database(service_db_url)
    outcome: list[BaseException | None] = []

    def second_writer() -> None:
        try:
            with db.session() as session:
                session.get(Patient, "p1")
            outcome.append(None)
        except OperationalError as exc:
            outcome.append(exc)

    with db.session() as session:
        add_patient(session, "p1", 0.0, PolicyUpdate())
        other = threading.Thread(target=second_writer)
        other.start()
        other.join(OTHER_WRITER_JOIN_S)
    assert not other.is_alive(), "the second writer hung behind the lock"
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError)
    db.dispose()


def test_migration_gives_existing_patients_the_ten_minute_signal_window(service_db_url):
    engine = make_engine(service_db_url)
    command.upgrade(alembic_config(engine), "0004")  # a database from before the signal window
    with engine.begin() as connection:
        insert_legacy_patient(connection)
    Database(service_db_url).dispose()  # opening migrates to the newest revision
    db = Database(service_db_url)
    with db.session() as session:
        assert session.get_one(Patient, "p1").signal_window_s == DEFAULT_SIGNAL_WINDOW_S
    db.dispose()
    command.downgrade(alembic_config(engine), "0004")
    columns = {c["name"] for c in inspect(engine).get_columns("patients")}
    assert "signal_window_s" not in columns and "detection_profile" in columns
    engine.dispose()
