"""Real receivers for alert tests: an SMTP server (aiosmtpd) and an HTTP receiver on loopback.

Apprise delivers to them for real (``mailto://`` and ``json://``), so the tests see exactly what a
caregiver's mailbox or webhook would get. Also a settable clock and a care-team builder.
"""

from __future__ import annotations

import email
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, make_url, text

from flarewatch.localservers import free_port
from models.alarm import Alarm
from service.alerts.apprise_notifier import AppriseNotifier
from service.alerts.manager import AlertManager
from service.alerts.own_servers import OwnServers
from service.alerts.scheduler import EscalationScheduler
from service.db import Database, Role
from service.db.care_teams import PolicyUpdate, add_contact, add_patient
from service.db.session import POSTGRES_WRITE_LOCK_KEY
from service.episodes import EpisodeEngine

SECRET = "test-secret-key-not-for-production"
BASE_URL = "http://127.0.0.1:9"


class FakeClock:
    """Epoch seconds that only move when the test says so."""

    def __init__(self, start_s: float = 1_764_000_000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass
class Received:
    """One message as the receiver saw it."""

    channel: str
    path_or_rcpt: str
    title: str
    body: str
    at_monotonic: float


@dataclass
class Inbox:
    """Every message received, thread-safe, with waiting helpers."""

    items: list[Received] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)

    def add(self, item: Received) -> None:
        with self.lock:
            self.items.append(item)
            self.lock.notify_all()

    def to(self, who: str) -> list[Received]:
        with self.lock:
            return [i for i in self.items if who in i.path_or_rcpt]

    def wait_for(self, who: str, count: int, timeout_s: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while len([i for i in self.items if who in i.path_or_rcpt]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.lock.wait(left)
        return self.to(who)


class GatedReceiver:
    """A webhook that holds every request until the test releases it, then answers ``status``.

    ``hit`` is set by the first request: the test knows a send is under way and can change the
    world (stop the database, say) before it ends.
    """

    def __init__(self, status: int = 200, hold_s: float = 10.0) -> None:
        self.hit = threading.Event()
        self.release = threading.Event()
        self.received = 0
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                gate.received += 1
                gate.hit.set()
                gate.release.wait(hold_s)
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/gated"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class HttpReceiver:
    """A loopback webhook endpoint, and an ntfy server (a message's path is then its topic).

    Paths containing ``fail`` answer HTTP 500, and so do those in :attr:`refusing` while they are
    there (a channel that breaks and is mended); ``hang-once`` answers its first request after 8 s.
    """

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.hits: dict[str, int] = {}
        self.refusing: set[str] = set()
        self.priorities: dict[str, str | None] = {}
        """The ``X-Priority`` of the last message to each path (ntfy's: ``max`` sounds)."""
        self.on_post: Callable[[], None] | None = None
        """Called as each request arrives, before it is answered."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                receiver.hits[self.path] = receiver.hits.get(self.path, 0) + 1
                if receiver.on_post is not None:
                    receiver.on_post()
                if "fail" in self.path or self.path in receiver.refusing:
                    self.send_response(500)
                    self.end_headers()
                    return
                data: dict[str, Any] = json.loads(raw)
                # ntfy publishes as JSON to the server's root, the topic in the body
                path = f"/{data['topic']}" if "topic" in data else self.path
                receiver.priorities[path] = self.headers.get("X-Priority")
                receiver.inbox.add(
                    Received(
                        "http",
                        path,
                        data.get("title", ""),
                        data.get("message", ""),
                        time.monotonic(),
                    )
                )
                if "hang-once" in self.path and receiver.hits[self.path] == 1:
                    time.sleep(8)  # the sender is killed while it waits for this answer
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on loopback."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email_policy.default)
                body = message.get_body(preferencelist=("plain",))
                text = body.get_content() if body is not None else ""
                for rcpt in envelope.rcpt_tos:
                    receiver.inbox.add(
                        Received("smtp", rcpt, str(message["subject"]), text, time.monotonic())
                    )
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def url(self, to: str) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=flarewatch@example.org&to={to}&mode=insecure"

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def refused_smtp_url() -> str:
    """An SMTP URL whose port nobody listens on (connection refused)."""
    return f"mailto://127.0.0.1:{free_port()}?from=flarewatch@example.org&to=x@example.org&mode=insecure"


@dataclass
class AlertingStack:
    """Database, manager and scheduler wired like the service does, on one clock."""

    db: Database
    manager: AlertManager
    scheduler: EscalationScheduler
    clock: Any = None
    """The :class:`FakeClock` the stack runs on, where a test gives it one."""
    client: Any = None
    """An ``httpx.Client`` of the API, in :func:`served_stack`."""

    def close(self) -> None:
        self.scheduler.stop()
        self.db.dispose()

    @property
    def fake_clock(self) -> FakeClock:
        """The manager's clock, which the test moves."""
        clock = self.manager.clock
        assert isinstance(clock, FakeClock)
        return clock

    def run_until(self, until_s: float, step_s: float = 300.0) -> None:
        """Move the fake clock to ``until_s`` in steps of ``step_s``, a scheduler pass after each
        (timed work due between passes happens at the next one, as in the service)."""
        clock = self.fake_clock
        while clock() < until_s:
            clock.advance(min(step_s, until_s - clock()))
            self.scheduler.run_until_idle()


def insert_legacy_patient(connection: Any) -> None:
    """Patient p1 written as the first schema revisions knew it (for migration tests)."""
    connection.execute(
        text(
            "INSERT INTO patients (id, display_name, timezone, emergency_plan, "
            "cancel_window_s, ack_timeout_s, repeat_interval_s, created_s) "
            "VALUES ('p1', 'Alex', 'UTC', '', 60, 180, 60, 0)"
        )
    )


def build_stack(
    url: str,
    clock: FakeClock | None = None,
    listeners: Any = (),
    servers: OwnServers | None = None,
) -> AlertingStack:
    """The alerting stack on database ``url``; ``servers``: the service's own mail and ntfy."""
    db = Database(url, secret_key=SECRET)
    manager = AlertManager(
        db, clock or time.time, secret_key=SECRET, public_base_url=BASE_URL, listeners=listeners
    )
    return AlertingStack(db, manager, EscalationScheduler(manager, AppriseNotifier(servers)))


def stack_for_ann(url: str, http: HttpReceiver, clock: FakeClock) -> AlertingStack:
    """An alerting stack on ``clock`` where caregiver ann (at the HTTP receiver) looks after p1."""
    stack = build_stack(url, clock)
    register_team(stack.db, "p1", [("ann", [http.url("ann")])])
    return stack


REACTION_PLAN = "Adrenaline auto-injector in the blue bag; call 112; lay flat, legs up."
"""A typical emergency plan, as a care team writes it."""


def patient_policy(name: str = "Alex", plan: str = REACTION_PLAN) -> PolicyUpdate:
    """A patient in Berlin with a short cancel window, timeout and repeat: messages and pages."""
    return PolicyUpdate(
        cancel_window_s=60,
        ack_timeout_s=180,
        repeat_interval_s=60,
        emergency_plan=plan,
        display_name=name,
        timezone="Europe/Berlin",
    )


def register_team(
    db: Database,
    patient_id: str,
    caregivers: list[tuple[str, list[str]]],
    *,
    emergency: tuple[str, list[str]] | None = None,
    wearer: list[str] | None = None,
    policy: PolicyUpdate | None = None,
    now_s: float = 1_764_000_000.0,
) -> dict[str, int]:
    """Register a patient and its care team; returns contact ids by name."""
    ids: dict[str, int] = {}
    with db.session() as session:
        add_patient(
            session,
            patient_id,
            now_s,
            policy
            or PolicyUpdate(
                cancel_window_s=60,
                ack_timeout_s=180,
                repeat_interval_s=60,
                emergency_plan="Give adrenaline auto-injector, call 112.",
                display_name="Alex",
            ),
        )
        for name, urls in caregivers:
            ids[name] = add_contact(session, patient_id, name, urls).id
        if emergency:
            ids[emergency[0]] = add_contact(
                session, patient_id, emergency[0], emergency[1], role=Role.EMERGENCY
            ).id
        if wearer:
            ids["wearer"] = add_contact(session, patient_id, "wearer", wearer, role=Role.PATIENT).id
    return ids


class ApiServer:
    """The real acknowledgement API (uvicorn) on a free loopback port, in a thread."""

    def __init__(
        self,
        manager: AlertManager,
        store: Any = None,
        second_factor_roles: tuple[str, ...] = (),
        notifier: Any = None,
        mail_url: str | None = None,
        channel_offer: Any = None,
    ) -> None:
        import uvicorn

        from service.api import create_app

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(
                manager,
                store,
                second_factor_roles=second_factor_roles,
                notifier=notifier,
                mail_url=mail_url,
                channel_offer=channel_offer,
            ),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.server.started, "API server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()


class SyntheticPatient:
    """A resting wearer at 1 Hz; from ``onset_ms`` the heart rate climbs ~50 % within a minute
    and stays there (anaphylaxis-like surge), with no movement (syncope-like stillness).

    Used where the scenario, not the physiology, is under test (alert latency, the e2e path):
    deterministic from ``seed``, and the real detectors flag it (critical 2-4 min after onset).
    """

    def __init__(
        self, seed: int, *, resting_bpm: float = 65.0, onset_ms: int | None = None
    ) -> None:
        import random

        self.rng = random.Random(seed)
        self.resting_bpm = resting_bpm
        self.onset_ms = onset_ms

    def reading(self, time_ms: int) -> Any:
        from collector.sources.base import Reading

        hr = self.resting_bpm + self.rng.gauss(0.0, 1.2)
        if self.onset_ms is not None and time_ms >= self.onset_ms:
            hr += min(1.0, (time_ms - self.onset_ms) / 60_000) * 0.5 * self.resting_bpm
        return Reading(
            time_ms=time_ms,
            heart_rate_bpm=round(hr, 1),
            skin_temperature_c=round(33.0 + self.rng.gauss(0.0, 0.02), 2),
            acceleration_sd_g=0.008,
            steps=0,
            contact_detected=True,
            battery_percent=80,
        )


def service_writes_possible(url: str) -> bool:
    """Whether a service transaction could start now: the database's one-writer lock is free.

    Every service transaction takes it (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
    PostgreSQL, service/db/session.py); a transaction kept open blocks the service's alerts.
    """
    if url.startswith("sqlite"):
        raw = sqlite3.connect(make_url(url).database or "", timeout=0.2, isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            raw.close()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = text("SELECT pg_try_advisory_xact_lock(:key)")
            return bool(connection.execute(query, {"key": POSTGRES_WRITE_LOCK_KEY}).scalar())
    finally:
        engine.dispose()


@contextmanager
def served_stack(url: str, http: HttpReceiver) -> Iterator[AlertingStack]:
    """Patient p1 with caregiver ann and a wearer (both at ``http``), the API on a real port.

    The stack gets ``clock`` (a :class:`FakeClock`) and ``client`` (an httpx client of the API).
    """
    clock = FakeClock()
    built = build_stack(url, clock)
    register_team(built.db, "p1", [("ann", [http.url("ann")])], wearer=[http.url("wearer")])
    built.clock = clock
    with ApiServer(built.manager) as api, httpx.Client(base_url=api.base_url) as client:
        built.client = client
        yield built
    built.close()


class RecordedEngine(EpisodeEngine):
    """The real episode engine, noting every alarm the processing hands it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alarms: list[Alarm] = []

    def on_alarm(self, alarm: Alarm, vitals: Mapping[str, float] | None = None) -> None:
        self.alarms.append(alarm)
        super().on_alarm(alarm, vitals)
