"""A service database outage is logged once, not once per escalation pass.

The escalation scheduler retries a failed pass every 0.5 s. It used to log every failure with its
stack (49 tracebacks, about 5,700 lines, in a 25-second PostgreSQL restart), and SQLAlchemy's text
of an error, which a traceback ends with, quotes the SQL and its parameters. Here the running
scheduler (its real thread, woken for pass after pass) meets a SQLite database whose file is gone
(with and without a send's result waiting to be recorded), one whose statements fail, and a row
that fails at every pass (set aside alone, ``tests/test_scheduler_bad_rows.py``);
:class:`~service.db.outage_log.OutageLog` is checked on its own with a fake clock, a bug that
fails whole passes too. The alerting hook's episode writes, refused through an outage, are told
the same way.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError, OperationalError

from flarewatch.localservers import PostgresServer
from flarewatch.payloads import DeviceStatus, LinkState
from models.alarm import Severity
from service.db import Delivery, Patient
from service.db import session as db_session
from service.db.outage_log import BUG_REPEAT_S, OUTAGE_REMINDER_S, OutageLog
from service.episodes import AlertingProcessor, EpisodeEngine
from service.processing import IngestCycle
from tests.alerting_helpers import (
    AlertingStack,
    FakeClock,
    GatedReceiver,
    build_stack,
    register_team,
)

SCHEDULER_LOG = "service.alerts.scheduler"
PASSES = 40
"""Failed passes driven in each test: 20 s of an outage at one pass every 0.5 s."""
WAIT_S = 20.0
SQL_MARKERS = ("[SQL:", "[parameters:", "SELECT ", "UPDATE ", "INSERT ")


class EventCounter:
    """Counts an engine event (one that happens once in every pass) and waits for more."""

    def __init__(self, stack: AlertingStack, name: str) -> None:
        self.count = 0
        self._changed = threading.Condition()
        event.listen(stack.db.engine, name, self._seen)

    def _seen(self, *_: Any) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def drive(self, stack: AlertingStack, events: int) -> None:
        """Wake the running scheduler until the event happened ``events`` more times."""
        target = self.count + events
        deadline = time.monotonic() + WAIT_S
        with self._changed:
            while self.count < target:
                assert time.monotonic() < deadline, f"only {self.count} of {target} events"
                stack.scheduler.wake()
                self._changed.wait(0.05)


def scheduler_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == SCHEDULER_LOG]


def full_text(record: logging.LogRecord) -> str:
    """What a log handler would write for the record, stack included."""
    return logging.Formatter().format(record)


@pytest.fixture
def stack(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[AlertingStack]:
    """An alerting stack on SQLite with patient p1 (named Alex) and one caregiver."""
    caplog.set_level(logging.DEBUG, logger=SCHEDULER_LOG)
    built = build_stack(f"sqlite:///{tmp_path}/fw.sqlite3", FakeClock())
    register_team(built.db, "p1", [("ann", ["json://127.0.0.1:9/ann"])])
    yield built
    built.close()


def db_file(stack: AlertingStack) -> Path:
    return Path(stack.db.engine.url.database or "")


def assert_told_once(caplog: pytest.LogCaptureFixture, *, reason: str) -> None:
    """Nothing of the SQL, one warning without a stack for the outage, one line at its end."""
    records = scheduler_records(caplog)
    for record in records:  # DEBUG included: the frames are there, never the error's text
        text = full_text(record)
        assert not any(marker in text for marker in SQL_MARKERS), text
        assert "Alex" not in text and "json://" not in text, text
        if record.levelno >= logging.WARNING:
            assert record.exc_info is None and "Traceback" not in text, text
    loud = [r for r in records if r.levelno >= logging.WARNING]
    assert len(loud) == 1, [r.getMessage() for r in loud]
    assert loud[0].levelno == logging.WARNING
    assert loud[0].getMessage().startswith("escalation passes failing: the service database ")
    assert f"({reason}" in loud[0].getMessage(), loud[0].getMessage()
    resumed = [r.getMessage() for r in records if "resumed" in r.getMessage()]
    assert len(resumed) == 1, resumed
    assert resumed[0].startswith("escalation passes resumed after "), resumed
    assert any(r.levelno == logging.DEBUG and 'File "' in r.getMessage() for r in records)


def take_file_away(stack: AlertingStack) -> None:
    """Move the SQLite file away: "unable to open database file" from now on.

    A link into a folder that does not exist takes its place, so SQLite cannot create a new
    file there either; renaming the file back over the link restores it in one step.
    """
    path = db_file(stack)
    stack.db.engine.dispose()  # every connection closed: the next pass must open the file
    path.rename(f"{path}.away")
    path.symlink_to(path.parent / "gone" / path.name)


def give_file_back(stack: AlertingStack) -> None:
    path = db_file(stack)
    Path(f"{path}.away").rename(path)


def test_a_database_file_gone_is_logged_once_and_its_return_once(
    stack: AlertingStack, caplog: pytest.LogCaptureFixture
) -> None:
    take_file_away(stack)
    connects = EventCounter(stack, "do_connect")  # one connection attempt a pass
    commits = EventCounter(stack, "commit")
    stack.scheduler.start()
    connects.drive(stack, PASSES)

    give_file_back(stack)
    commits.drive(stack, 1)  # a pass went through
    stack.scheduler.stop()  # after that pass, whose end is logged
    assert_told_once(caplog, reason="OperationalError: unable to open database file")


def test_a_postgres_restart_is_logged_once_and_its_end_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reported case: every pass of a PostgreSQL restart logged its stack."""
    caplog.set_level(logging.DEBUG, logger=SCHEDULER_LOG)
    with PostgresServer(tmp_path) as server:  # its own: the test stops it
        stack = build_stack(server.create_database(), FakeClock())
        try:
            register_team(stack.db, "p1", [("ann", ["json://127.0.0.1:9/ann"])])
            connects = EventCounter(stack, "do_connect")  # one connection attempt a pass
            commits = EventCounter(stack, "commit")
            stack.scheduler.start()
            commits.drive(stack, 1)  # running on a pooled connection
            assert server.proc is not None
            server.proc.send_signal(signal.SIGINT)  # a "fast" shutdown, as pg_ctl restart does
            server.proc.wait(WAIT_S)
            connects.drive(stack, PASSES)

            server.start()
            commits.drive(stack, 1)  # a pass went through
            stack.scheduler.stop()  # after that pass, whose end is logged
        finally:
            stack.close()
    assert_told_once(caplog, reason="OperationalError: ")


def delivery_states(stack: AlertingStack) -> list[str]:
    with stack.db.session() as session:
        return list(session.scalars(select(Delivery.state)))


def test_a_send_result_held_through_an_outage_is_told_once_not_at_every_pass(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=SCHEDULER_LOG)
    gated = GatedReceiver(hold_s=WAIT_S)
    stack = build_stack(f"sqlite:///{tmp_path}/fw.sqlite3", FakeClock())
    try:
        register_team(stack.db, "p1", [("ann", [gated.url])])
        with stack.manager.transaction() as txn:
            patient = txn.session.get_one(Patient, "p1")
            stack.manager.open_alert(
                txn, patient, kind="anaphylaxis", severity=Severity.CRITICAL, since_s=txn.now_s
            )
        stack.scheduler.run_due()  # the caregiver's message is now on its way
        assert gated.hit.wait(WAIT_S)
        take_file_away(stack)
        gated.release.set()  # it arrives; its result cannot be recorded
        deadline = time.monotonic() + WAIT_S
        while "could not record the result" not in caplog.text:
            assert time.monotonic() < deadline, "the result was recorded without a database"
            time.sleep(0.01)
        connects = EventCounter(stack, "do_connect")
        stack.scheduler.start()
        connects.drive(stack, 2 * PASSES)  # the held result, then the pass: two tries a pass

        give_file_back(stack)
        deadline = time.monotonic() + WAIT_S
        while delivery_states(stack) != ["sent"]:  # the held result is recorded at last
            assert time.monotonic() < deadline, delivery_states(stack)
            stack.scheduler.wake()
            time.sleep(0.01)
        stack.scheduler.stop()  # after that pass, whose end is logged
        assert gated.received == 1
    finally:
        gated.close()
        stack.close()
    records = scheduler_records(caplog)
    held = [r for r in records if "could not record the result" in r.getMessage()]
    assert len(held) == 1 and held[0].levelno == logging.WARNING, held
    assert "(OperationalError: unable to open database file)" in held[0].getMessage()
    caplog.records.remove(held[0])
    assert_told_once(caplog, reason="OperationalError: unable to open database file")


def test_failing_statements_are_logged_without_their_sql_or_parameters(
    stack: AlertingStack, caplog: pytest.LogCaptureFixture
) -> None:
    # a statement refused by the database: SQLAlchemy's text of it quotes the SQL and parameters
    outside = sqlite3.connect(db_file(stack), isolation_level=None)
    outside.execute("ALTER TABLE alerts RENAME TO alerts_away")
    counter = EventCounter(stack, "handle_error")
    commits = EventCounter(stack, "commit")
    stack.scheduler.start()
    counter.drive(stack, PASSES)

    outside.execute("ALTER TABLE alerts_away RENAME TO alerts")
    outside.close()
    commits.drive(stack, 1)  # a pass went through
    stack.scheduler.stop()  # after that pass, whose end is logged
    assert_told_once(caplog, reason="OperationalError: no such table: alerts")


def test_a_row_that_fails_at_every_pass_is_set_aside_and_logged_once_with_where(
    stack: AlertingStack, caplog: pytest.LogCaptureFixture
) -> None:
    """It used to fail every pass (nobody's alerts went on): now it alone is set aside."""
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, "p1")
        alert = stack.manager.open_alert(
            txn, patient, kind="flush", severity=Severity.WARNING, since_s=txn.now_s
        )
        alert.severity = "bogus"  # no such severity: reading it back raises, at every pass
        alert.next_action_s = txn.now_s
    commits = EventCounter(stack, "commit")
    stack.scheduler.start()
    commits.drive(stack, PASSES)  # the passes go through
    stack.scheduler.stop()

    errors = [r for r in scheduler_records(caplog) if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].levelno == logging.ERROR
    text = full_text(errors[0])
    assert f"alert {alert.id} of patient p1 set aside (ValueError: a bug" in text, text
    assert 'File "' in text and "clock_of" in text, text  # where it happened
    assert "bogus" not in text, text  # not the message: it may quote a row


def outage(exc_type: type[Exception] = OperationalError) -> Exception:
    """A database error as SQLAlchemy raises it, its text quoting SQL and a parameter."""
    statement, parameters = "UPDATE patients SET display_name=?", ("Alex",)
    try:
        raise exc_type(statement, parameters, sqlite3.OperationalError("gone"))
    except exc_type as exc:
        return exc


def test_outage_log_reminds_while_an_outage_lasts_and_repeats_a_bug_after_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="test.outage")
    clock = FakeClock(0.0)
    told = OutageLog("things", "sqlite:///x.db", logging.getLogger("test.outage"), clock)

    def lines() -> list[str]:
        out = [r.getMessage() for r in caplog.records]
        caplog.clear()
        return out

    told.failed(outage())
    assert lines() == [
        "things failing: the service database sqlite:///x.db is unavailable (OperationalError: "
        "gone); retrying, quiet until it works again but for a reminder every 5 min"
    ]
    for _ in range(599):  # 0.5 s apart, just short of a reminder
        clock.advance(OUTAGE_REMINDER_S / 600)
        told.failed(outage())
    assert lines() == []
    clock.advance(OUTAGE_REMINDER_S / 600)
    told.failed(outage())
    assert lines() == [
        "things still failing after 300 s (601 attempts failed; OperationalError: gone); retrying"
    ]
    clock.advance(12.5)
    told.succeeded()
    told.succeeded()
    assert lines() == [
        "things resumed after 312.5 s (601 failed while the service database was unavailable)"
    ]

    told.failed(outage(IntegrityError))  # not an outage: a bug, with where
    first = lines()
    assert len(first) == 1 and first[0].startswith(
        "things failed with IntegrityError, not a database outage (a bug?); retrying. At:\n"
    )
    assert "Alex" not in first[0] and "UPDATE" not in first[0]
    for _ in range(3):
        clock.advance(BUG_REPEAT_S / 4)
        told.failed(outage(IntegrityError))
    told.failed(outage(KeyError))  # another class: told at once
    assert [line.split(". At:")[0] for line in lines()] == [
        "things failed with KeyError, not a database outage (a bug?); retrying"
    ]
    clock.advance(BUG_REPEAT_S / 4)
    told.failed(outage(IntegrityError))
    assert [line.split(". At:")[0] for line in lines()] == [
        "things failed with IntegrityError, not a database outage (a bug?); retrying "
        "(3 more since the last report)"
    ]


PROCESSOR_LOG = "service.episodes.processor"


class NoAlarms:
    """Detectors that see nothing: the line is held by a signal change."""

    def update(self, items: object) -> list[object]:
        return []

    def tick(self, now_s: float) -> list[object]:
        return []


def test_episode_writes_refused_through_an_outage_are_told_once_and_their_end_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alerting hook logged an ERROR at the first refused write and every 10th, for ever."""
    caplog.set_level(logging.DEBUG, logger=PROCESSOR_LOG)
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.1)  # wait 0.1 s for the lock
    clock = FakeClock()
    stack = build_stack(f"sqlite:///{tmp_path}/fw.sqlite3", clock)
    register_team(stack.db, "p1", [("ann", ["json://127.0.0.1:9/ann"])])
    processor = AlertingProcessor(NoAlarms(), EpisodeEngine(stack.manager))  # type: ignore[arg-type]
    holder = stack.db.engine.connect()
    held = holder.begin()  # another writer holds the database's write lock
    t0_ms = int(clock() * 1000)
    try:
        offline = DeviceStatus(
            patient_id="p1", device_id="band-1", time_ms=t0_ms, state=LinkState.OFFLINE
        )
        processor.process(IngestCycle(t0_ms, device_statuses=[offline]))
        for second in range(1, 31):  # a cycle a second: the write is tried at each
            processor.process(IngestCycle(t0_ms + second * 1000))
        processor.process(IngestCycle(t0_ms + 301_000))  # five minutes on: a reminder
        # the signal change waits, and the band's status behind it
        assert processor.deliveries_failed == 32 and processor.undelivered == 2
    finally:
        held.rollback()
        holder.close()
    processor.process(IngestCycle(t0_ms + 302_500))
    assert processor.undelivered == 0 and processor.deliveries_dropped == 0
    stack.close()

    records = [r for r in caplog.records if r.name == PROCESSOR_LOG]
    for record in records:  # DEBUG included: the frames, never the SQL or its parameters
        text = full_text(record)
        assert not any(marker in text for marker in SQL_MARKERS), text
    told = [r.getMessage() for r in records if r.levelno >= logging.INFO]
    assert told == [
        "episode writes failing: the service database "
        f"sqlite:///{tmp_path}/fw.sqlite3 is unavailable (OperationalError: database is "
        "locked); retrying, quiet until it works again but for a reminder every 5 min",
        "episode writes still failing after 301 s (32 attempts failed; OperationalError: "
        "database is locked); retrying",
        "episode writes resumed after 302.5 s (32 failed while the service database was "
        "unavailable)",
    ], told
    assert all(r.levelno == logging.WARNING for r in records if "failing" in r.getMessage())
