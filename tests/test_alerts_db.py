"""The service database: migrations match the models, upgrade is idempotent, constraints hold."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from service.db import Base, Database, Delivery
from service.db.care_teams import PolicyUpdate, add_contact, add_patient

OTHER_WRITER_GRACE_S = 0.5
"""How long the second writer gets to (wrongly) commit while the first transaction is open."""


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
        from service.db import Alert

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
    from service.db import Alert

    db = Database(service_db_url)
    with db.session() as session:
        add_patient(session, "p1", 0.0, PolicyUpdate())
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
