"""A care world for the web app tests: three patients, their teams, accounts, one server."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from flarewatch.payloads import Sample, SampleBatch
from models.alarm import Alarm, AlarmKind, Severity
from service.alerts.channel_changes import ChannelOffer
from service.db.accounts import add_account, link_contact
from service.db.care_teams import add_contact, get_patient, set_research_consent
from service.db.models import AccountRole
from service.episodes import EpisodeEngine
from service.stores.base import SampleStore
from tests.alerting_helpers import (
    AlertingStack,
    ApiServer,
    FakeClock,
    HttpReceiver,
    build_stack,
    patient_policy,
    register_team,
)

RECEIVER = "json://127.0.0.1:9"
"""Where the care teams' messages go in the tests that do not read them (nothing listens)."""
PASSWORD = "correct horse battery staple"
"""Everyone's password in these tests (long enough, not the username)."""
VITALS = {"heart_rate_bpm": 131.0, "skin_temperature_c": 35.4}


@dataclass
class CareWorld:
    """Alex (p1: caregiver Ann), Bo (p2: caregiver Ben, consents to research), Cy (p3: nobody's).

    Accounts: ``ann`` and ``ben`` (caregivers), ``bo`` (patient p2), ``rita`` (researcher).
    """

    stack: AlertingStack
    clock: FakeClock
    api: ApiServer
    contacts: dict[str, int]
    engine: EpisodeEngine
    store: SampleStore | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self) -> httpx.Client:
        """A browser-like client of the app (cookies kept, redirects not followed)."""
        client = httpx.Client(base_url=self.api.base_url, follow_redirects=False, timeout=10)
        self.clients.append(client)
        return client

    def signed_in(self, username: str, password: str = PASSWORD) -> httpx.Client:
        """A client signed in as ``username``."""
        client = self.client()
        answer = client.post("/app/login", data={"username": username, "password": password})
        assert answer.status_code == 303, answer.text
        return client

    def episode(self, patient_id: str, kind: AlarmKind = AlarmKind.FLUSH) -> int:
        """Raise an alarm for the patient (an episode and its alert); the episode's id."""
        severity = Severity.CRITICAL if kind is AlarmKind.ANAPHYLAXIS else Severity.WARNING
        alarm = Alarm(patient_id, self.clock(), kind, severity, "fw-test", evidence={"onset": 1.0})
        self.engine.on_alarm(alarm, VITALS)
        self.stack.scheduler.run_until_idle()
        from service.db.models import Episode

        with self.stack.db.session() as session:
            return max(e.id for e in session.query(Episode).filter_by(patient_id=patient_id))

    def record_vitals(
        self, patient_id: str, minutes: range, heart_rate: Callable[[int], float]
    ) -> None:
        """Write 1-Hz samples of the patient's band to the store, ``minutes`` before now.

        ``heart_rate`` gives the rate of each minute (counted back from now, 0 the latest); the
        skin is 33 °C, 1 °C warmer where the rate is over 100.
        """
        assert self.store is not None
        now_ms = int(self.clock() * 1000)
        samples = []
        for minute in sorted(minutes, reverse=True):
            rate = heart_rate(minute)
            for second in range(0, 60):
                time_ms = now_ms - minute * 60_000 - (60 - second) * 1000
                samples.append(
                    Sample(
                        seq=time_ms // 1000,  # one numbering across calls
                        time_ms=time_ms,
                        heart_rate_bpm=rate,
                        skin_temperature_c=34.0 if rate > 100 else 33.0,
                    )
                )
        for start in range(0, len(samples), 500):
            batch = SampleBatch(
                patient_id=patient_id,
                device_id=f"band-{patient_id}",
                samples=tuple(samples[start : start + 500]),
            )
            self.store.write([batch])


@contextmanager
def care_world(
    url: str,
    receiver_url: str,
    store: SampleStore | None = None,
    second_factor_roles: tuple[str, ...] = (),
    mail_url: str | None = None,
    channel_offer: ChannelOffer | None = None,
) -> Iterator[CareWorld]:
    """The world of :class:`CareWorld` on database ``url`` (messages go to ``receiver_url``).

    ``second_factor_roles``: the roles that must turn on two-step sign-in; ``mail_url``: where
    links to set a new password are sent from (none: no such links); ``channel_offer``: the
    channels people may add themselves (none: not offered).
    """
    clock = FakeClock()
    stack = build_stack(url, clock, servers=channel_offer.servers if channel_offer else None)
    contacts = {}
    for patient_id, name, caregiver in (
        ("p1", "Alex", "Ann"),
        ("p2", "Bo", "Ben"),
        ("p3", "Cy", "Cid"),
    ):
        ids = register_team(
            stack.db,
            patient_id,
            [(caregiver, [f"{receiver_url}/{caregiver.lower()}"])],
            policy=patient_policy(name),
        )
        contacts.update(ids)
    with stack.db.session() as session:
        set_research_consent(session, get_patient(session, "p2"), True, clock())
        now_s = clock()
        for username, role, patient_id in (
            ("ann", AccountRole.CAREGIVER, None),
            ("ben", AccountRole.CAREGIVER, None),
            ("bo", AccountRole.PATIENT, "p2"),
            ("rita", AccountRole.RESEARCHER, None),
        ):
            account = add_account(
                session,
                username,
                PASSWORD,
                role,
                now_s,
                patient_id=patient_id,
                display_name=username.title(),
            )
            if username in ("ann", "ben"):
                link_contact(session, account, contacts[username.title()], now_s)
    with ApiServer(
        stack.manager,
        store,
        second_factor_roles,
        stack.scheduler.notifier,
        mail_url,
        channel_offer,
    ) as api:
        built = CareWorld(stack, clock, api, contacts, EpisodeEngine(stack.manager), store)
        try:
            yield built
        finally:
            for client in built.clients:
                client.close()
    stack.close()


@contextmanager
def world_with_dee(
    folder: Path, receiver: HttpReceiver, store: SampleStore | None = None
) -> Iterator[CareWorld]:
    """The care world on SQLite in ``folder``, delivering to ``receiver``; Dee after Ann on Alex's
    team. ``store``: where the band's readings are (none: no chart).
    """
    url = f"sqlite:///{folder / 'service.sqlite3'}"
    with care_world(url, receiver.url(""), store) as built:
        with built.stack.db.session() as session:
            add_contact(session, "p1", "Dee", [receiver.url("dee")], now_s=built.clock())
        yield built


@pytest.fixture
def world(service_db_url: str) -> Iterator[CareWorld]:
    """The care world on SQLite and on PostgreSQL (``service_db_url``), messages unread."""
    with care_world(service_db_url, RECEIVER) as built:
        yield built


def form_token(page: str) -> str:
    """The session's form token in a page of the app."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None, page
    return found.group(1)


def words(page: str) -> str:
    """A page's text as a reader sees it (tags dropped, entities read)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))
