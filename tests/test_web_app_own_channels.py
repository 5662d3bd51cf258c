"""People set up their own channels on their account page, delivered for real.

The service offers an e-mail address (sent through its mail server: a local SMTP server here)
and a private ntfy topic (on its ntfy server: the local HTTP receiver, which takes ntfy's JSON
publications). Ann stands on Alex's team (a push channel at the receiver) and on Cy's. She adds
her e-mail address, a topic for both patients, takes a broken channel off while an alert waits
on it, and cannot take off her last one; Bo, a patient, gets a channel of his own for the
messages about his band. What is not offered, not theirs or not well formed is refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from flarewatch.errors import ConfigError
from flarewatch.localservers import free_port
from flarewatch.settings import load_settings
from models.alarm import AlarmKind, Severity
from service.alerts.apprise_notifier import AppriseNotifier
from service.alerts.channel_changes import LIVE_CHANNELS_MAX, ChannelOffer
from service.alerts.notifier import Message
from service.alerts.own_servers import OwnServers, mail_channel
from service.alerts.runtime import AlertingRuntime
from service.db.accounts import add_account, get_account, link_contact
from service.db.care_teams import add_contact
from service.db.models import AccountRole, AuditEvent, Contact, Delivery, Role
from tests.alerting_helpers import SECRET, HttpReceiver, Inbox, SmtpReceiver, register_team
from tests.web_app_helpers import PASSWORD, CareWorld, care_world, form_token, words


def _offer(smtp: SmtpReceiver, http: HttpReceiver, *, any_url: bool = False) -> ChannelOffer:
    servers = OwnServers(smtp.url("nobody@example.org"), f"http://127.0.0.1:{http.port}")
    return ChannelOffer(servers, any_url=any_url)


@pytest.fixture
def world(tmp_path, http: HttpReceiver, smtp: SmtpReceiver) -> Iterator[CareWorld]:
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with care_world(url, http.url(""), channel_offer=_offer(smtp, http)) as built:
        with built.stack.db.session() as session:
            contact = add_contact(session, "p3", "Ann", [http.url("ann-for-cy")])
            link_contact(session, get_account(session, "ann"), contact.id, built.clock())
        yield built


def _add(client: httpx.Client, **form: str) -> httpx.Response:
    token = form_token(client.get("/app/account").text)
    return client.post("/app/account/channels", data={"csrf": token, **form})


def _audit(world: CareWorld, action: str) -> list[AuditEvent]:
    with world.stack.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _test_message(world: CareWorld, client: httpx.Client) -> str:
    world.clock.advance(61)  # one test a minute
    token = form_token(client.get("/app/account").text)
    answer = client.post("/app/account/test-message", data={"csrf": token})
    assert answer.status_code == 200, answer.text
    return words(answer.text)


def test_an_e_mail_address_of_her_own_takes_the_alert_her_push_channel_cannot(
    world: CareWorld, http: HttpReceiver, inbox: Inbox
) -> None:
    ann = world.signed_in("ann")
    page = words(ann.get("/app/account").text)
    assert "Add this e-mail address" in page and "Get a private ntfy topic" in page
    assert "Add this URL" not in page, "any URL only where the operator allows it"

    added = _add(ann, kind="email", value=" Ann@Example.org ", **{"for": "all"})
    assert added.status_code == 200, added.text
    said = words(added.text)
    assert "Added: e-mail to ann@example.org, for Alex, Cy, after your other channels" in said
    account = words(ann.get("/app/account").text)
    alex = account.split("About Alex: ")[1].split("About Cy")[0]
    assert alex.index("json://127.0.0.1") < alex.index("e-mail to ann@example.org")
    assert "Take off e-mail to ann@example.org" in alex

    tested = _test_message(world, ann)
    assert "Sent through 4 channels" in tested, tested
    mails = inbox.wait_for("ann@example.org", 2)
    assert len(mails) == 2 and all(m.title == "flarewatch test" for m in mails)
    assert sorted(m.body.split(": ")[1].split(".")[0] for m in mails) == [
        "alerts about Alex reach you here",
        "alerts about Cy reach you here",
    ]

    # her push channel breaks: the alert goes on to her address, through the service's server
    http.refusing.add("/ann")
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    for _ in range(20):
        world.clock.advance(30)
        world.stack.scheduler.run_until_idle()
        if len(inbox.to("ann@example.org")) > 2:
            break
    alerts = inbox.wait_for("ann@example.org", 3)[2:]
    assert alerts and "Alex" in alerts[0].title + alerts[0].body

    events = _audit(world, "channel_added")
    assert [(e.patient_id, e.detail["kind"], e.detail["by"]) for e in events] == [
        ("p1", "email", "ann"),
        ("p3", "email", "ann"),
    ]
    assert "example.org" not in str([e.detail for e in events]), "no address in the trail"


def test_a_private_ntfy_topic_rings_at_the_highest_priority(
    world: CareWorld, http: HttpReceiver, inbox: Inbox
) -> None:
    ann = world.signed_in("ann")
    added = _add(ann, kind="ntfy", **{"for": "all"})
    assert added.status_code == 200
    said = words(added.text)
    topic = said.split("type the topic ")[1].split(",")[0]
    assert topic.startswith("fw-") and len(topic) == 27, topic
    assert f"type the topic {topic}, tick Use another server and type http://127.0.0.1:" in said
    again = words(_add(ann, kind="ntfy", value="my-topic", **{"for": "all"}).text)
    assert topic not in again, "each topic is new, whatever is typed"

    account = words(ann.get("/app/account").text)
    assert account.count(f"Take off ntfy topic {topic}") == 2, "one topic for both patients"
    _test_message(world, ann)
    messages = inbox.wait_for(f"/{topic}", 2)
    assert len(messages) == 2 and http.priorities[f"/{topic}"] == "max"
    with world.stack.db.session() as session:
        sealed = [c.sealed_url for c in session.scalars(select(Contact)) for c in c.channels]
    assert not any(topic in value for value in sealed), "stored encrypted"


def test_a_channel_taken_off_passes_its_waiting_alert_to_the_next(
    world: CareWorld, http: HttpReceiver, inbox: Inbox
) -> None:
    ann = world.signed_in("ann")
    _add(ann, kind="email", value="ann@example.org", **{"for": str(_ann_for(world, "p1"))})
    http.refusing.add("/ann")
    world.episode("p1", AlarmKind.ANAPHYLAXIS)  # the push fails once: a retry waits on it
    ann_for_alex = _ann_for(world, "p1")
    with world.stack.db.session() as session:
        waiting = session.scalars(select(Delivery).where(Delivery.state == "pending")).all()
        assert [d.contact_id for d in waiting] == [ann_for_alex]
    page = ann.get("/app/account").text
    push = page.split("/app/account/channels/")[1].split("/remove")[0]
    taken = ann.post(f"/app/account/channels/{push}/remove", data={"csrf": form_token(page)})
    assert taken.status_code == 303
    world.stack.scheduler.run_until_idle()
    assert inbox.wait_for("ann@example.org", 1), "the alert went on to her address at once"
    assert http.hits["/ann"] == 1, "nothing more to the channel taken off"
    removed = _audit(world, "channel_removed")
    assert [(e.detail["kind"], e.detail["moved_on"]) for e in removed] == [("apprise:json", 1)]
    skipped = _audit(world, "delivery_skipped")
    assert [e.detail["reason"] for e in skipped] == ["channel_removed"]

    account = words(ann.get("/app/account").text)
    alex = account.split("About Alex: ")[1].split("About Cy")[0]
    assert "json://" not in alex and "Take off" not in alex, "her last channel stays"
    with world.stack.db.session() as session:
        mail = session.get_one(Contact, ann_for_alex).live_channels[0].id
    token = form_token(ann.get("/app/account").text)
    last = ann.post(f"/app/account/channels/{mail}/remove", data={"csrf": token})
    assert last.status_code == 409
    assert "the only channel alerts reach them by" in words(last.text)


def test_bo_gets_a_channel_of_his_own_for_his_bands_messages(
    world: CareWorld, inbox: Inbox
) -> None:
    bo = world.signed_in("bo")
    page = words(bo.get("/app/account").text)
    assert "Your messages" in page and "No message of flarewatch reaches you yet" in page
    added = _add(bo, kind="email", value="bo@example.org")
    assert "Added: e-mail to bo@example.org, for Bo" in words(added.text)
    with world.stack.db.session() as session:
        own = session.scalars(
            select(Contact).where(Contact.patient_id == "p2", Contact.role == Role.PATIENT)
        ).one()
        assert own.name == "Bo" and len(own.live_channels) == 1
    tested = _test_message(world, bo)
    assert "Sent through 1 channel" in tested
    (message,) = inbox.wait_for("bo@example.org", 1)
    assert "flarewatch's messages about your band reach you here" in message.body
    page = words(bo.get("/app/account").text)
    assert "Messages about your band" in page and "e-mail to bo@example.org" in page


def test_what_is_not_offered_not_theirs_or_malformed_is_refused(
    world: CareWorld, http: HttpReceiver, inbox: Inbox
) -> None:
    ann = world.signed_in("ann")
    url = _add(ann, kind="url", value=http.url("ann-elsewhere"))
    assert url.status_code == 422 and "does not offer url channels" in words(url.text)
    bad = _add(ann, kind="email", value="not an address")
    assert bad.status_code == 422 and "is not an e-mail address" in words(bad.text)
    odd = _add(ann, kind="pigeon", value="x")
    assert odd.status_code == 422
    other = _add(ann, kind="email", value="ann@example.org", **{"for": "999"})
    assert other.status_code == 404
    # Cid's channel is not Ann's to take off
    with world.stack.db.session() as session:
        cids = session.scalars(select(Contact).where(Contact.name == "Cid")).one().channels[0].id
    token = form_token(ann.get("/app/account").text)
    assert ann.post(f"/app/account/channels/{cids}/remove", data={"csrf": token}).status_code == 404
    assert ann.post("/app/account/channels", data={"kind": "ntfy"}).status_code == 403
    rita = world.signed_in("rita")
    assert "Add a channel" not in rita.get("/app/account").text
    assert _add(rita, kind="email", value="rita@example.org").status_code == 404
    for _ in range(LIVE_CHANNELS_MAX - 1):
        assert _add(ann, kind="ntfy", **{"for": str(_ann_for(world, "p1"))}).status_code == 200
    full = _add(ann, kind="ntfy", **{"for": str(_ann_for(world, "p1"))})
    assert full.status_code == 422 and f"{LIVE_CHANNELS_MAX} channels is the most" in words(
        full.text
    )
    assert not _audit(world, "channel_added")[LIVE_CHANNELS_MAX - 1 :]
    assert inbox.items == []


def test_any_apprise_url_where_the_operator_allows_it(
    tmp_path, http: HttpReceiver, smtp: SmtpReceiver, inbox: Inbox
) -> None:
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    offer = _offer(smtp, http, any_url=True)
    with care_world(url, http.url(""), channel_offer=offer) as world:
        ann = world.signed_in("ann")
        added = _add(ann, kind="url", value=http.url("ann-elsewhere"))
        assert added.status_code == 200 and "Added: json://127.0.0.1 #" in words(added.text)
        assert http.url("ann-elsewhere") not in ann.get("/app/account").text, "redacted"
        _test_message(world, ann)
        assert inbox.wait_for("/ann-elsewhere", 1)
        for value in ("nothing://at-all", mail_channel("x@example.org"), "removed://"):
            refused = _add(ann, kind="url", value=value)
            assert refused.status_code == 422, value


def test_an_own_channel_whose_server_is_gone_fails_and_says_why(smtp: SmtpReceiver) -> None:
    message = Message("flarewatch test", "Nothing is wrong.", Severity.WARNING)
    without = AppriseNotifier(OwnServers())
    result = without.send(mail_channel("ann@example.org"), message)
    assert not result.ok and "no mail server (service.mail_url)" in result.reason
    assert without.validate("flarewatch-ntfy://fw-abc") is not None
    assert without.redact(mail_channel("ann@example.org")).startswith(
        "flarewatch-mail://example.org #"
    )
    served = AppriseNotifier(OwnServers(smtp.url("nobody@example.org")))
    assert served.validate(mail_channel("ann@example.org")) is None
    assert served.send(mail_channel("ann@example.org"), message).ok


def _ann_for(world: CareWorld, patient_id: str) -> int:
    with world.stack.db.session() as session:
        return session.scalars(
            select(Contact.id).where(Contact.patient_id == patient_id, Contact.name == "Ann")
        ).one()


def test_the_running_service_offers_what_its_settings_name(
    tmp_path, http: HttpReceiver, smtp: SmtpReceiver, inbox: Inbox
) -> None:
    port = free_port()
    settings = load_settings(
        store={"kind": "sqlite", "sqlite_path": tmp_path / "samples.sqlite3"},
        service={
            "database_url": f"sqlite:///{tmp_path}/service.sqlite3",
            "public_base_url": f"http://127.0.0.1:{port}",
            "api_port": port,
            "secret_key": SECRET,
            "mail_url": smtp.url("nobody@example.org"),
            "ntfy_url": f"http://127.0.0.1:{http.port}",
        },
    )
    runtime = AlertingRuntime(settings, serve_api=True)
    ids = register_team(runtime.db, "p1", [("Ann", [http.url("ann")])])
    with runtime.db.session() as session:
        ann = add_account(session, "ann", PASSWORD, AccountRole.CAREGIVER, time.time())
        link_contact(session, ann, ids["Ann"], time.time())
    runtime.start()
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        client.post("/app/login", data={"username": "ann", "password": PASSWORD})
        page = words(client.get("/app/account").text)
        assert "Get a private ntfy topic" in page and "Add this URL" not in page
        assert _add(client, kind="email", value="ann@example.org").status_code == 200
        _test_message_now(client)
        assert inbox.wait_for("ann@example.org", 1)
        client.close()
    finally:
        runtime.stop()


def _test_message_now(client: httpx.Client) -> None:
    token = form_token(client.get("/app/account").text)
    assert client.post("/app/account/test-message", data={"csrf": token}).status_code == 200


@pytest.mark.parametrize(
    "url", ["ftp://ntfy.example.org", "https://u:hunter22@ntfy.example.org/alerts", "ntfy.sh"]
)
def test_an_ntfy_server_the_service_cannot_use_stops_it_at_start(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(service={"ntfy_url": url})
    assert "service.ntfy_url must be http(s)://host" in str(refused.value)
    assert "hunter22" not in str(refused.value)


def test_an_empty_ntfy_server_is_none() -> None:
    assert load_settings(service={"ntfy_url": ""}).service.ntfy_url is None
