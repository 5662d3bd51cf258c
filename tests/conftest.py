"""Fixtures shared by every test: real Mosquitto, InfluxDB and PostgreSQL on free loopback ports,
and the local push receivers (HTTP and SMTP) that alert deliveries reach for real."""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from collector.ble.bumble_backend import close_central
from collector.virtual.world import VirtualWorld
from flarewatch.localservers import InfluxServer, MosquittoServer, PostgresServer
from service.broker_auth import DeviceRoute, new_password
from tests.alerting_helpers import HttpReceiver, Inbox, SmtpReceiver
from tests.publisher_helpers import ALLOWED, GATEWAY, SERVICE, write_auth

if TYPE_CHECKING:
    from tests.delivery_helpers import World
    from tests.test_publisher import Recorder


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A fresh real Mosquitto broker (persistence on, no queue limits) for one test."""
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"))
    with server:
        yield server


@pytest.fixture
def recorder(mosquitto: MosquittoServer) -> Iterator[Recorder]:
    """A subscriber recording every flarewatch message on the ``mosquitto`` broker."""
    from tests.test_publisher import Recorder

    rec = Recorder(mosquitto.url)
    time.sleep(0.2)  # subscribed before anything is published
    yield rec
    rec.close()


@pytest.fixture
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A fresh real InfluxDB 1.x server for one test."""
    server = InfluxServer(tmp_path_factory.mktemp("influxdb"))
    with server:
        yield server


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; each test takes its own database from it
    (``create_database()``, ~50 ms) instead of paying for a cluster (~0.5 s) per test."""
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    with server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def service_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty service database, once on SQLite (the default) and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fw.sqlite3"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database()
    yield url
    server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
async def world() -> AsyncIterator[VirtualWorld]:
    """A virtual Bluetooth world (Bumble controller, HCI server) for the BLE tests."""
    world = VirtualWorld()
    await world.start_hci_server()
    yield world
    await close_central(world.hci_transport)
    await world.close()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[MosquittoServer, dict[str, str]]]:
    """Mosquitto with broker-auth's files whose ACL lets the gateway publish for band-1 only."""
    passwords = {SERVICE: new_password(), GATEWAY: new_password()}
    write_auth(tmp_path, passwords, [DeviceRoute(*ALLOWED)])
    data = tmp_path / "data"
    data.mkdir()
    extra = (
        f"allow_anonymous false\npassword_file {tmp_path / 'passwords'}\n"
        f"acl_file {tmp_path / 'acl'}"
    )
    with MosquittoServer(data, extra_config=extra) as server:
        yield server, passwords


@pytest.fixture(scope="module")
def delivery_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The service database and sample store a module's delivery examples share."""
    from tests.alerting_helpers import FakeClock, build_stack
    from tests.delivery_helpers import START_S, World

    folder = tmp_path_factory.mktemp("delivery")
    stack = build_stack(f"sqlite:///{folder}/fw.sqlite3", FakeClock(START_S))
    yield World(folder, stack)
    stack.close()


@pytest.fixture
def inbox() -> Inbox:
    """Every push delivery received by the local HTTP and SMTP receivers, in arrival order."""
    return Inbox()


@pytest.fixture
def http(inbox: Inbox) -> Iterator[HttpReceiver]:
    """A local HTTP receiver (Apprise ``json://``) on a free port."""
    with HttpReceiver(inbox) as receiver:
        yield receiver


@pytest.fixture
def smtp(inbox: Inbox) -> Iterator[SmtpReceiver]:
    """A local SMTP server (aiosmtpd) on a free port."""
    with SmtpReceiver(inbox) as receiver:
        yield receiver


LINGERING_THREAD_GRACE_S = 30.0


def _release_library_pools() -> None:
    """Shut down the worker pools Apprise (2.x) keeps for the whole process.

    Their idle threads are not leaks: Python's exit handler for ``concurrent.futures`` stops
    them in a real process. Here, before the interpreter exits, they would look like one.
    """
    apprise_module = sys.modules.get("apprise.apprise")
    for name in ("_shared_executor", "_coordinator_executor"):
        pool = getattr(apprise_module, name, None)
        if pool is not None:
            pool.shutdown(wait=False)  # a hung send must not hang the run: the check below waits


def pytest_unconfigure(config: pytest.Config) -> None:
    """Never hang after the summary: a thread a failed test left running is reported, then exit.

    A non-daemon thread still alive here would keep the interpreter (and CI) waiting forever.
    """
    _release_library_pools()
    deadline = time.monotonic() + LINGERING_THREAD_GRACE_S
    while time.monotonic() < deadline:
        lingering = [
            t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()
        ]
        if not lingering:
            return
        time.sleep(0.1)
    frames = sys._current_frames()
    for thread in lingering:
        stack = "".join(traceback.format_stack(frames[thread.ident])) if thread.ident else ""
        sys.stderr.write(f"thread {thread.name!r} still running after the session:\n{stack}\n")
    sys.stderr.flush()
    os._exit(1)  # a leaked thread is a defect even when every test passed
