"""A PostgreSQL server that does not answer fails a connection fast, not after TCP's minutes.

The service's engine (``service.db.session.make_engine``) set no ``connect_timeout``: when the
network dropped silently, a scheduler pass or an alarm write hung for the operating system's TCP
timeout (about 2 min, more on some systems) before it could fail, be retried or be logged. Here
the "server" is a loopback socket that takes connections and never says a word (the kernel
completes the handshake for a listening socket that never accepts), as a server behind a dead
link looks to libpq. The real engine is used, with the timeout shortened for the test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from flarewatch.localservers import PostgresServer
from service.db import session as db_session
from service.db.session import make_engine

SHORT_TIMEOUT_S = 2
"""libpq's smallest ``connect_timeout`` (it takes any smaller value as 2 s)."""
SLACK_S = 3.0
"""Allowed beyond the timeout (a slow, shared machine); TCP's own wait is minutes."""


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never answers; yields the port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # never accept(): the handshake completes, nothing is ever sent back
    yield listener.getsockname()[1]
    listener.close()  # resets what is still queued, so a connection left hanging ends too


def test_the_service_engine_gives_up_on_a_silent_server_within_its_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_session, "DATABASE_NETWORK_TIMEOUT_S", SHORT_TIMEOUT_S)
    engine = make_engine(f"postgresql+psycopg://flarewatch:pw@127.0.0.1:{silent_server}/fw")
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            with engine.connect():
                outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(SHORT_TIMEOUT_S + SLACK_S)
    took_s = time.monotonic() - started
    try:
        assert outcome, f"still connecting after {took_s:.1f} s: no connect timeout"
        assert isinstance(outcome[0], OperationalError), outcome
        assert "timeout" in str(outcome[0].orig).lower(), outcome[0].orig
        assert took_s >= SHORT_TIMEOUT_S - 0.5, took_s  # it was the timeout that ended it
    finally:
        engine.dispose()


def libpq_parameters(url: str) -> dict[str, str]:
    """The libpq parameters of a connection of the service's engine, as psycopg reports them."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            return dict(raw.info.get_parameters())
    finally:
        engine.dispose()


def test_the_service_engine_bounds_a_silently_dropped_connection(
    postgres: PostgresServer,
) -> None:
    """libpq's ``tcp_user_timeout`` is set too (a query sent on a dead link fails in 10 s); a
    timeout the operator put in the URL is kept."""
    url = postgres.create_database()
    try:
        seconds = db_session.DATABASE_NETWORK_TIMEOUT_S
        parameters = libpq_parameters(url)
        assert parameters.get("connect_timeout") == str(seconds), parameters
        assert parameters.get("tcp_user_timeout") == str(seconds * 1000), parameters
        # a link that dies while the connection waits for an answer: keepalive probes find it
        assert parameters.get("keepalives") == "1", parameters
        assert parameters.get("keepalives_idle") == str(seconds), parameters
        assert parameters.get("keepalives_count") == "3", parameters
        parameters = libpq_parameters(f"{url}?connect_timeout=30")
        assert parameters.get("connect_timeout") == "30", parameters
        assert parameters.get("tcp_user_timeout") == str(seconds * 1000), parameters
    finally:
        postgres.drop_database(url.rsplit("/", 1)[1])
