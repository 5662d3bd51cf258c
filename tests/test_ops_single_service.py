"""One ``flarewatch serve`` per service database: a second one started by mistake is refused.

Two services on one database would both run the escalation scheduler: the second's start-up puts
every delivery the first is sending back in the queue ("interrupted by a crash"), so caregivers
get messages twice, both write the same detector checkpoint, and with the same instance name they
throw each other off the broker. The second start must fail at once with a clear message, the
first must go on, and a service that crashed (SIGKILL) must not block its own restart.

On PostgreSQL the lock lives in a database session, which can end under a running service (a
server restart, ``pg_terminate_backend``, a network failure): the service must take its lock again,
ride out a database that is down meanwhile, and stop if another service took the lock first.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from flarewatch.errors import ConfigError
from flarewatch.localservers import MosquittoServer, PostgresServer, free_port
from service.db.service_lock import (
    POSTGRES_SERVICE_LOCK_KEY,
    SERVICE_LOCK_CHECK_INTERVAL_S,
    SERVICE_LOCK_RETRY_MAX_S,
    LockStatus,
    ServiceLock,
    lock_retry_delay_s,
)
from tests.alerting_helpers import SECRET

READY_S = 60.0
"""Generous bound for a ``serve`` to import, migrate and connect on a busy machine."""
LOCK_RETAKEN_S = 20.0
"""Generous bound for a running ``serve`` to notice its lock's session is gone and act on it."""
LOST = "lost this service's lock on the service database"
RETAKEN = "took the lock on the service database again"

AdminConnection = psycopg.Connection[tuple[object, ...]]


class ServeProcess:
    """A ``flarewatch serve`` child whose output a thread collects, so that a test waits for a
    line with a timeout instead of blocking on a read that may never come."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        command = [sys.executable, "-m", "flarewatch.cli", "--log-level", "INFO", "serve"]
        self.process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, text: str, timeout_s: float = READY_S) -> None:
        """Wait until ``text`` is in the output, or fail quoting the output."""
        with self._changed:
            if not self._changed.wait_for(lambda: text in "".join(self._lines), timeout_s):
                raise AssertionError(f"no {text!r} in the output:\n{''.join(self._lines)[-3000:]}")

    def wait_exit(self, timeout_s: float = READY_S) -> int:
        """The exit code of a process that ends by itself within ``timeout_s``."""
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve went on:\n{self.output[-3000:]}") from None
        self._reader.join(10)
        return self.process.returncode

    def stop(self) -> int:
        """SIGTERM (a clean stop), SIGKILL if that hangs; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.process.returncode


@contextmanager
def running(env: dict[str, str], cwd: Path) -> Iterator[ServeProcess]:
    """A ``serve`` that has started serving (it holds the lock by then), stopped at the end."""
    served = ServeProcess(env, cwd)
    try:
        served.wait_for("serving: broker")
        yield served
    finally:
        served.stop()


def refused_serve(env: dict[str, str], cwd: Path) -> str:
    """Start a second ``serve``, which must be refused at once; its output."""
    second = ServeProcess(env, cwd)
    try:
        code = second.wait_exit()
    finally:
        second.stop()
    out = second.output
    assert code == 1, out[-3000:]
    assert "another flarewatch serve" in out and "Traceback" not in out, out[-3000:]
    return out


def serve_env(database_url: str, mosquitto: MosquittoServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAREWATCH_")}
    return env | {
        "FLAREWATCH_SERVICE__SECRET_KEY": SECRET,
        "FLAREWATCH_SERVICE__DATABASE_URL": database_url,
        "FLAREWATCH_SERVICE__API_PORT": str(free_port()),
        "FLAREWATCH_MQTT__URL": mosquitto.url,
        "FLAREWATCH_STORE__KIND": "sqlite",
        "FLAREWATCH_STORE__SQLITE_PATH": str(tmp_path / "samples.sqlite3"),
    }


def test_a_second_serve_on_the_same_database_is_refused_and_a_killed_one_restarts(
    service_db_url: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    env = serve_env(service_db_url, mosquitto, tmp_path)
    with running(env, tmp_path) as first:
        out = refused_serve(env, tmp_path)
        assert f"pid {first.process.pid}" in out
        assert SECRET not in out
        assert first.process.poll() is None, "the first service must go on"

        first.process.send_signal(signal.SIGKILL)  # a crash: the lock must not outlive it
        first.process.wait(10)
        with running(env, tmp_path) as third:
            pass
        assert third.process.returncode == 0, third.output[-3000:]


# -- PostgreSQL: the lock's session ends under a running service -----------------------------


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database on the session's PostgreSQL server."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url.rsplit("/", 1)[1])


@contextmanager
def pg_admin(database_url: str) -> Iterator[AdminConnection]:
    """A plain connection of the test's own to the service database (autocommit)."""
    plain = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as admin:
        yield admin


def lock_holder_pid(admin: AdminConnection) -> int | None:
    """The server process id of the session holding the service lock, if any."""
    row = admin.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 "
        "AND objid = %s AND objsubid = 1 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (POSTGRES_SERVICE_LOCK_KEY,),
    ).fetchone()
    if row is None:
        return None
    assert isinstance(row[0], int)
    return row[0]


def kill_lock_session(admin: AdminConnection) -> int:
    """End the session holding the lock, as a network failure would; returns its pid.

    ``pg_terminate_backend(pid, timeout)`` returns once the session is gone, its lock with it.
    """
    pid = lock_holder_pid(admin)
    assert pid is not None, "nobody holds the service lock"
    assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone() == (True,)
    return pid


def wait_until(condition: Callable[[], bool], timeout_s: float, failure: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.05)


def test_serve_takes_its_lock_again_when_its_database_session_is_killed(
    pg_url: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    env = serve_env(pg_url, mosquitto, tmp_path)
    with running(env, tmp_path) as first, pg_admin(pg_url) as admin:
        killed = kill_lock_session(admin)
        wait_until(
            lambda: lock_holder_pid(admin) not in (None, killed),
            LOCK_RETAKEN_S,
            "the running serve did not take its lock again after its session was killed: a "
            "second serve can start beside it now, and every alert would be sent twice",
        )
        first.wait_for(RETAKEN)  # a second serve is refused again (see the first test)
        assert first.process.poll() is None, "the first service must go on"
    assert first.process.returncode == 0, first.output[-3000:]
    assert first.output.count(LOST) == 1
    assert "Traceback" not in first.output


def test_serve_stops_when_another_took_its_lock_while_its_session_was_lost(
    pg_url: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    env = serve_env(pg_url, mosquitto, tmp_path)
    other = ServiceLock(pg_url)
    with running(env, tmp_path) as first, pg_admin(pg_url) as admin:
        # another service starts in the seconds before the first checks its lock again; the
        # first may win that race now and then (it checks every 2 s): then kill it again
        for _ in range(5):
            kill_lock_session(admin)
            try:
                other.acquire()
                break
            except ConfigError:
                continue
        else:
            raise AssertionError("the first serve won every race for its lost lock")
        try:
            code = first.wait_exit(LOCK_RETAKEN_S)
            assert other.check() is LockStatus.HELD
        finally:
            other.release()
        assert code == 1, first.output[-3000:]
    out = first.output
    assert f"another flarewatch serve took the service database {pg_url}" in out
    assert f"flarewatch serve pid {os.getpid()}" in out, "the message names the new holder"
    assert "stopped: " in out and "Traceback" not in out and SECRET not in out


def test_serve_rides_out_a_postgres_restart_and_takes_its_lock_again(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    (tmp_path / "postgres").mkdir()
    with PostgresServer(tmp_path / "postgres") as server:  # its own: the test stops it
        url = server.create_database()
        env = serve_env(url, mosquitto, tmp_path)
        with running(env, tmp_path) as first:
            assert server.proc is not None
            server.proc.send_signal(signal.SIGINT)  # a "fast" shutdown, as pg_ctl restart does
            server.proc.wait(20)
            first.wait_for(LOST, LOCK_RETAKEN_S)
            server.start()
            first.wait_for(RETAKEN, LOCK_RETAKEN_S)
            assert first.process.poll() is None, "the service goes on through the outage"
            with pg_admin(url) as admin:
                assert lock_holder_pid(admin) is not None
        assert first.process.returncode == 0, first.output[-3000:]
        assert first.output.count(LOST) == 1, "the outage is logged once, not every retry"


def test_a_lock_killed_and_taken_by_another_is_reported_lost_naming_the_holder(
    pg_url: str,
) -> None:
    with ServiceLock(pg_url) as first, pg_admin(pg_url) as admin:
        assert first.check() is LockStatus.HELD
        kill_lock_session(admin)
        assert first.check() is LockStatus.HELD  # taken again on a new session
        assert first.lost_to is None
        kill_lock_session(admin)
        with ServiceLock(pg_url) as second:
            assert first.check() is LockStatus.TAKEN
            assert first.lost_to is not None and f"pid {os.getpid()}" in first.lost_to
            assert second.check() is LockStatus.HELD


def test_a_lock_lost_while_its_database_refuses_connections_is_retried_and_logged_once(
    pg_url: str, postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.db.service_lock")
    # a database that refuses new sessions, on the server the other tests share
    closed = f'ALTER DATABASE "{make_url(pg_url).database}" ALLOW_CONNECTIONS '
    password = "not-for-the-logs-4711"  # the test cluster trusts loopback: any password will do
    url = make_url(pg_url).set(password=password).render_as_string(hide_password=False)
    with ServiceLock(url) as lock, pg_admin(pg_url) as admin, pg_admin(postgres.url) as server:
        server.execute(closed + "false")
        try:
            kill_lock_session(admin)
            assert [lock.check() for _ in range(3)] == [LockStatus.UNREACHABLE] * 3
        finally:
            server.execute(closed + "true")
        assert lock.check() is LockStatus.HELD
        assert lock_holder_pid(admin) is not None
    lines = [record.getMessage() for record in caplog.records]
    assert sum(LOST in line for line in lines) == 1, lines
    assert sum(RETAKEN in line for line in lines) == 1, lines
    assert "terminating connection due to administrator command" in lines[0]
    assert ":***@" in lines[0] and not any(password in line for line in lines)


def test_a_deleted_sqlite_lock_file_is_locked_again_or_reported_taken(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fw.sqlite3"
    lock_file = tmp_path / "fw.sqlite3.serve-lock"
    with ServiceLock(url) as first:
        lock_file.unlink()  # "a stale lock file": a second service would lock a new one
        assert first.check() is LockStatus.HELD
        with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
            ServiceLock(url).acquire()

        lock_file.unlink()
        with ServiceLock(url) as second:  # before the first checked again
            assert first.check() is LockStatus.TAKEN
            assert first.lost_to is not None and f"pid {os.getpid()}" in first.lost_to
            assert second.check() is LockStatus.HELD


@pytest.mark.parametrize(
    ("failures", "delay_s"),
    [
        (0, SERVICE_LOCK_CHECK_INTERVAL_S),
        (1, 0.5),
        (2, 1.0),
        (4, 4.0),
        (5, SERVICE_LOCK_RETRY_MAX_S),
        (50, SERVICE_LOCK_RETRY_MAX_S),
    ],
)
def test_lock_retry_delay_backs_off_to_a_cap(failures: int, delay_s: float) -> None:
    assert lock_retry_delay_s(failures) == delay_s
