"""The service database: migrations match the models, upgrade is idempotent, constraints hold."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from service.db import Base, Database, Delivery
from service.db.care_teams import PolicyUpdate, add_contact, add_patient


def test_migrations_create_exactly_the_models(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/a.sqlite3")
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"models changed without a migration: {diff}"
    assert "alembic_version" in inspect(db.engine).get_table_names()
    db.dispose()
    again = Database(f"sqlite:///{tmp_path}/a.sqlite3")  # upgrading twice is a no-op
    again.dispose()


def test_idempotency_key_is_unique(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/b.sqlite3")
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
