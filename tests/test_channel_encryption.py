"""Channel credentials are encrypted at rest, on SQLite and PostgreSQL alike.

The stored rows never hold a channel's token, deliveries still reach the real receivers, an old
plaintext database is encrypted by its migration, and a missing or wrong key stops the service at
start with advice instead of at the first alert.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text

from flarewatch.cli import main
from flarewatch.errors import ConfigError
from models.alarm import Severity
from service.db import AuditEvent, Base, Channel, Database, Patient
from service.db.channel_crypto import SEALED_PREFIX, ChannelCipher
from service.db.session import alembic_config, make_engine
from service.errors import ChannelKeyError
from tests.alerting_helpers import SECRET, FakeClock, build_stack, register_team

TOKEN = "pa55-very-secret-token"


def with_credentials(url: str) -> str:
    """A receiver URL that carries a password, as real channel URLs carry tokens."""
    return url.replace("json://", f"json://ann:{TOKEN}@")


def every_stored_value(db: Database) -> str:
    """Every row of every service table, as text."""
    with db.engine.connect() as connection:
        return repr([connection.execute(select(t)).all() for t in Base.metadata.sorted_tables])


def open_critical_alert(stack) -> None:
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, "p1")
        stack.manager.open_alert(
            txn, patient, kind="anaphylaxis", severity=Severity.CRITICAL, since_s=txn.now_s
        )
    stack.scheduler.run_until_idle()


def test_stored_rows_hold_no_credential_and_delivery_still_works(service_db_url, inbox, http):
    stack = build_stack(service_db_url, FakeClock())
    register_team(stack.db, "p1", [("ann", [with_credentials(http.url("ann"))])])
    open_critical_alert(stack)
    assert len(inbox.to("/ann")) == 1, "the decrypted URL did not reach the receiver"
    with stack.db.engine.connect() as connection:
        [stored] = connection.execute(text("SELECT sealed_url FROM channels")).scalars().all()
    assert stored.startswith(SEALED_PREFIX) and TOKEN not in stored
    assert TOKEN not in every_stored_value(stack.db), "a table holds the token (audit?)"
    stack.close()
    if service_db_url.startswith("sqlite:///"):
        files = Path(service_db_url.removeprefix("sqlite:///")).parent.glob("fw.sqlite3*")
        assert all(TOKEN.encode() not in f.read_bytes() for f in files), "token on disk (WAL?)"


def test_missing_or_wrong_key_refuses_to_open(service_db_url):
    stack = build_stack(service_db_url)
    register_team(stack.db, "p1", [("ann", ["json://127.0.0.1:9/ann"])])
    stack.close()
    with pytest.raises(ConfigError, match="cannot be decrypted with the configured") as wrong:
        Database(service_db_url, secret_key="not-the-key-it-was-stored-with")
    assert "1 of 1 encrypted values" in str(wrong.value) and "admin db rekey" in str(wrong.value)
    with pytest.raises(ChannelKeyError, match=r"no service\.secret_key was given"):
        Database(service_db_url)
    Database(service_db_url, secret_key=SECRET).dispose()


def test_migration_encrypts_plaintext_rows_and_downgrade_restores_them(service_db_url, inbox, http):
    engine = make_engine(service_db_url)
    command.upgrade(alembic_config(engine), "0001")  # a database from before the encryption
    plain = http.url("ann")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO patients (id, display_name, timezone, emergency_plan, "
                "cancel_window_s, ack_timeout_s, repeat_interval_s, created_s) "
                "VALUES ('p1', 'Alex', 'UTC', 'call 112', 60, 180, 60, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO contacts (id, patient_id, name, role, position) "
                "VALUES (1, 'p1', 'ann', 'caregiver', 0)"
            )
        )
        connection.execute(
            text("INSERT INTO channels (contact_id, apprise_url, position) VALUES (1, :u, 0)"),
            {"u": plain},
        )
    with pytest.raises(ChannelKeyError, match="1 channel URLs must be encrypted"):
        Database(service_db_url)
    stack = build_stack(service_db_url, FakeClock())  # opens with the key: migrates
    with stack.db.session() as session:
        [sealed] = session.scalars(select(Channel.sealed_url)).all()
    assert sealed.startswith(SEALED_PREFIX) and plain not in sealed
    open_critical_alert(stack)
    assert len(inbox.to("/ann")) == 1
    stack.close()
    command.downgrade(alembic_config(engine, ChannelCipher(SECRET)), "0001")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT apprise_url FROM channels")).scalar() == plain
    engine.dispose()


def test_channel_stored_under_another_key_falls_through_to_the_next(service_db_url, inbox, http):
    stack = build_stack(service_db_url, FakeClock())
    ids = register_team(stack.db, "p1", [("ann", [http.url("ann-1"), http.url("ann-2")])])
    with stack.db.session() as session:  # e.g. added by an admin command run with another key
        first = session.scalars(select(Channel).where(Channel.contact_id == ids["ann"])).first()
        assert first is not None
        first.sealed_url = ChannelCipher("another-key").seal(http.url("ann-1"))
    open_critical_alert(stack)
    assert inbox.to("/ann-1") == [] and len(inbox.to("/ann-2")) == 1
    with stack.db.session() as session:
        errors = [
            e.detail.get("error")
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "delivery_attempt")
            )
        ]
    assert errors == ["channel URL cannot be decrypted with service.secret_key", None]
    stack.close()


def test_admin_rekey_after_a_key_change(service_db_url, tmp_path, monkeypatch, capsys):
    def admin(*argv: str) -> tuple[int, str]:
        code = main(["admin", "--database-url", service_db_url, *argv])
        return code, capsys.readouterr().err

    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", "old-key-0123456789")
    assert admin("patient", "add", "alex")[0] == 0
    assert admin("caregiver", "add", "alex", "Ann", "--url", f"ntfy://{TOKEN}")[0] == 0
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", "new-key-9876543210")
    code, err = admin("caregiver", "list", "alex")
    assert code == 1 and "cannot be decrypted with the configured service.secret_key" in err
    (tmp_path / "old.key").write_text("wrong-old-key\n")
    code, err = admin("db", "rekey", "--old-key-file", str(tmp_path / "old.key"))
    assert code == 1 and "cannot be decrypted" in err
    (tmp_path / "old.key").write_text("old-key-0123456789\n")
    assert admin("db", "rekey", "--old-key-file", str(tmp_path / "old.key")) == (0, "")
    assert admin("caregiver", "list", "alex")[0] == 0
    db = Database(service_db_url, secret_key="new-key-9876543210")
    assert TOKEN not in every_stored_value(db)
    db.dispose()


def test_key_from_a_file_and_clear_errors_without_quoting_the_key(tmp_path, monkeypatch):
    from flarewatch.settings import load_settings

    key_file = tmp_path / "secret_key"
    key_file.write_text("key-from-a-docker-secret\n")
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", "key-from-the-environment")
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY_FILE", str(key_file))
    settings = load_settings(environment="production")
    assert settings.service.secret_key.get_secret_value() == "key-from-a-docker-secret"
    key_file.write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        load_settings()
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="missing: No such file") as error:
        load_settings()
    assert "key-from-the-environment" not in str(error.value)
