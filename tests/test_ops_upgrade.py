"""Upgrading flarewatch over a service database in use: nothing is lost, open alerts go on.

An operator upgrades the software months after the first start, so the database the new code
meets was written by an older migration head, with real data in it: patients, caregivers with
encrypted channels, an open critical alert half-way through its escalation, episodes and labels.
``flarewatch admin db upgrade`` (or the start of ``serve``) must bring it to the newest schema
without losing any of it, and the open alert must keep repeating and escalating. A database
*newer* than the code (the software was downgraded) is refused with advice, not half-used.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from flarewatch.cli import main
from models.alarm import Alarm, AlarmKind, Severity
from service.db import Alert, AlertState, Contact, Database, Episode, Patient
from service.db.channel_crypto import ChannelCipher, open_url
from service.db.session import alembic_config, make_engine
from service.episodes import EpisodeEngine
from service.episodes.labels import parse_label, set_label
from tests.alerting_helpers import (
    SECRET,
    FakeClock,
    HttpReceiver,
    Inbox,
    build_stack,
    register_team,
)

T0 = 1_764_000_000.0


def revisions() -> list[str]:
    """Every migration revision, oldest first."""
    engine = make_engine("sqlite://")
    try:
        script = ScriptDirectory.from_config(alembic_config(engine))
        return [r.revision for r in reversed(list(script.walk_revisions()))]
    finally:
        engine.dispose()


HEAD = revisions()[-1]
OLDER = revisions()[:-1]

AdminRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def admin(service_db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch) -> AdminRun:
    """``flarewatch admin`` in-process on the test database, with the deployment's key."""
    monkeypatch.delenv("FLAREWATCH_CONFIG", raising=False)
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", SECRET)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(["admin", "--database-url", service_db_url, *argv])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def alarm(kind: AlarmKind, severity: Severity, t: float, *, resolved: bool = False) -> Alarm:
    evidence = {"hr_rise_bpm": 30.0, **({} if resolved else {"onset": 1.0})}
    return Alarm("p1", t, kind, severity, "fw-old-1", resolved=resolved, evidence=evidence)


def populate(url: str, http: HttpReceiver, clock: FakeClock) -> dict[str, int]:
    """A database in use: a team of two, a closed labelled episode, an open critical alert."""
    stack = build_stack(url, clock)
    try:
        ids = register_team(
            stack.db, "p1", [("ann", [http.url("ann")]), ("bob", [http.url("bob")])]
        )
        engine = EpisodeEngine(stack.manager)
        engine.on_alarm(alarm(AlarmKind.FLUSH, Severity.WARNING, T0 - 3600))
        engine.on_alarm(alarm(AlarmKind.FLUSH, Severity.WARNING, T0 - 3000, resolved=True))
        with stack.db.session() as session:
            closed = session.scalars(select(Episode.id)).one()
            set_label(session, closed, parse_label("reaction"), "dr-kim", T0 - 2000)
        engine.on_alarm(
            alarm(AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, T0), {"heart_rate_bpm": 140.0}
        )
        stack.scheduler.run_until_idle()
        with stack.db.session() as session:
            open_alert = session.scalars(
                select(Alert.id).where(Alert.state == AlertState.ACTIVE)
            ).one()
        return {**ids, "closed_episode": closed, "open_alert": open_alert}
    finally:
        stack.close()


@pytest.mark.parametrize("revision", OLDER)
def test_upgrade_from_an_older_head_keeps_everything_and_the_alert_escalates(
    service_db_url: str, admin: AdminRun, http: HttpReceiver, inbox: Inbox, revision: str
) -> None:
    clock = FakeClock(T0)
    ids = populate(service_db_url, http, clock)
    assert [m.path_or_rcpt for m in inbox.items] == ["/ann"]
    engine = make_engine(service_db_url)
    command.downgrade(alembic_config(engine, ChannelCipher(SECRET)), revision)  # the older code's
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == revision
        )
    engine.dispose()

    code, out, err = admin("db", "upgrade")
    assert code == 0, err
    assert f"from revision {revision} to {HEAD}" in out

    stack = build_stack(service_db_url, clock)
    try:
        with stack.db.session() as session:
            assert session.scalars(select(Patient.id)).all() == ["p1"]
            team = session.scalars(select(Contact).order_by(Contact.position)).all()
            assert [c.name for c in team] == ["ann", "bob"]
            assert [open_url(session, c.channels[0]) for c in team] == [
                http.url("ann"),
                http.url("bob"),
            ]
            episodes = session.scalars(select(Episode).order_by(Episode.id)).all()
            assert len(episodes) == 2
            if revision >= "0004":  # labels exist since 0004; an older head never had them
                assert episodes[0].label == "reaction"
            alert = session.get_one(Alert, ids["open_alert"])
            assert alert.state == AlertState.ACTIVE
        clock.advance(60)  # the critical alert repeats to ann ...
        stack.scheduler.run_until_idle()
        assert [m.path_or_rcpt for m in inbox.items] == ["/ann", "/ann"]
        clock.advance(180)  # ... and, unacknowledged, escalates to bob
        stack.scheduler.run_until_idle()
        assert "/bob" in [m.path_or_rcpt for m in inbox.items]
    finally:
        stack.close()


def test_upgrade_of_a_current_database_says_there_was_nothing_to_do(admin: AdminRun) -> None:
    assert admin("patient", "add", "p1")[0] == 0
    code, out, _ = admin("db", "upgrade")
    assert code == 0 and out.strip() == f"database schema is up to date (revision {HEAD})"


def test_a_database_newer_than_the_code_is_refused_with_advice(
    service_db_url: str, admin: AdminRun
) -> None:
    assert admin("patient", "add", "p1")[0] == 0
    engine = make_engine(service_db_url)
    with engine.begin() as connection:  # what a newer flarewatch's migration leaves behind
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for argv in (("db", "upgrade"), ("patient", "list")):
        code, out, err = admin(*argv)
        assert code != 0 and out == ""
        assert "Traceback" not in err
        assert "revision 9999" in err and "newer" in err and HEAD in err
    with engine.connect() as connection:  # untouched
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"
        )
        assert connection.execute(text("SELECT id FROM patients")).scalars().all() == ["p1"]
    engine.dispose()
    with pytest.raises(Exception, match="newer"):
        Database(service_db_url, secret_key=SECRET)
