"""A patient builds their own care team from their page, delivered for real.

Bo (patient p2, whose team is Ben) invites Kim, who has no account: a real SMTP server gets the
invitation, Kim chooses her password from it and sees Bo's page, but no alert reaches her, and
escalation passes her by, until she adds her e-mail address as a channel; an alert nobody was
left to tell then reaches her at once. Bo invites Ann, who has an account: Bo is added to it.
Bo takes Kim off after being asked once more. What is not Bo's to do, or malformed, is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from models.alarm import AlarmKind
from service.accounts.password_reset import set_email
from service.accounts.team_invites import INVITES_PER_DAY
from service.alerts.channel_changes import ChannelOffer
from service.alerts.own_servers import OwnServers
from service.db.accounts import get_account
from service.db.care_teams import add_contact
from service.db.models import AuditEvent, Contact, Delivery, Role
from tests.alerting_helpers import HttpReceiver, Inbox, SmtpReceiver, refused_smtp_url
from tests.web_app_helpers import RECEIVER, CareWorld, care_world, form_token, words

CHOSEN = "a passphrase of my own choosing"


@pytest.fixture
def world(tmp_path, smtp: SmtpReceiver) -> Iterator[CareWorld]:
    mail = smtp.url("nobody@example.org")
    offer = ChannelOffer(OwnServers(mail), any_url=False)
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with care_world(url, RECEIVER, mail_url=mail, channel_offer=offer) as built:
        with built.stack.db.session() as session:
            set_email(session, get_account(session, "ann"), "ann@example.org", built.clock())
        yield built


def _invite(client: httpx.Client, name: str, email: str, patient: str = "p2") -> httpx.Response:
    token = form_token(client.get("/app/account").text)
    return client.post(
        f"/app/patients/{patient}/team/invite",
        data={"csrf": token, "name": name, "email": email},
    )


def _kims_contact(world: CareWorld) -> int:
    with world.stack.db.session() as session:
        return session.scalars(select(Contact.id).where(Contact.name == "Kim")).one()


def _pass_time(world: CareWorld, minutes: int) -> None:
    for _ in range(minutes * 2):
        world.clock.advance(30)
        world.stack.scheduler.run_until_idle()


def test_kim_is_invited_joins_and_hears_of_alerts_once_she_adds_a_channel(
    world: CareWorld, inbox: Inbox
) -> None:
    bo = world.signed_in("bo")
    page = words(bo.get("/app/patients/p2").text)
    assert "Invite someone to your care team" in page
    invited = _invite(bo, " Kim ", "Kim@Example.org")
    assert invited.status_code == 200, invited.text
    said = words(invited.text)
    assert "Kim is on your care team" in said and "An e-mail tells Kim how to join" in said
    (mail,) = inbox.wait_for("kim@example.org", 1)
    assert mail.title == "flarewatch: Bo asks you onto their care team"
    assert "An account was made for you: kim@example.org" in mail.body
    team = words(bo.get("/app/patients/p2").text).split("Care team")[1]
    assert "Kim (caregiver). Invited: no channel yet, so no alert reaches them" in team

    # an alert while Kim has no channel: Ben is told, Kim never, and nobody waits on her
    world.episode("p2", AlarmKind.ANAPHYLAXIS)
    _pass_time(world, 10)
    kim = _kims_contact(world)
    with world.stack.db.session() as session:
        told = {d.contact_id for d in session.scalars(select(Delivery))}
    assert told == {world.contacts["Ben"]}

    path = re.search(r"https?://[^/\s]+(/app/reset/[A-Za-z0-9_-]+)", mail.body)
    assert path is not None
    client = world.client()
    assert "An account was made for you: kim@example.org" in words(client.get(path[1]).text)
    assert client.post(path[1], data={"new": CHOSEN, "again": CHOSEN}).status_code == 303
    kim_client = world.signed_in("kim@example.org", CHOSEN)
    home = words(kim_client.get("/app").text)
    assert "No alert about Bo reaches you yet: add where it should" in home
    assert kim_client.get("/app/patients/p2").status_code == 200
    account = words(kim_client.get("/app/account").text)
    assert "About Bo: no channel: add one below" in account
    token = form_token(kim_client.get("/app/account").text)
    added = kim_client.post(
        "/app/account/channels",
        data={"csrf": token, "kind": "email", "value": "kim@example.org"},
    )
    assert added.status_code == 200
    world.clock.advance(1)
    world.stack.scheduler.run_until_idle()
    alert = inbox.wait_for("kim@example.org", 2)[1:]
    assert alert and "Bo" in alert[0].title, "the alert Ben left unanswered reaches her at once"
    team = words(bo.get("/app/patients/p2").text).split("Care team")[1]
    assert "Invited" not in team
    assert "reaches you yet" not in words(kim_client.get("/app").text)
    with world.stack.db.session() as session:
        invites = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "team_invited")
        ).all()
    assert [(e.detail["contact_id"], e.detail["by"], e.detail["new_account"]) for e in invites] == [
        (kim, "bo", True)
    ]
    assert "example.org" not in str(invites[0].detail)


def test_ann_who_has_an_account_gets_bo_on_it(world: CareWorld, inbox: Inbox) -> None:
    bo = world.signed_in("bo")
    invited = _invite(bo, "Ann", "ANN@example.org")
    assert "Ann is on your care team" in words(invited.text)
    (mail,) = inbox.wait_for("ann@example.org", 1)
    assert "put you on their care team on flarewatch (ann)" in mail.body
    assert "/app/account" in mail.body and "/app/reset/" not in mail.body
    ann = world.signed_in("ann")
    assert ann.get("/app/patients/p2").status_code == 200
    again = _invite(bo, "Ann", "ann@example.org")
    assert again.status_code == 422 and "on the care team already" in words(again.text)


def test_bo_takes_kim_off_after_being_asked_once_more(world: CareWorld) -> None:
    bo = world.signed_in("bo")
    _invite(bo, "Kim", "kim@example.org")
    kim = _kims_contact(world)
    page = bo.get("/app/patients/p2").text
    assert "Take Kim off" in words(page)
    asked = bo.post(f"/app/patients/p2/team/{kim}/remove", data={"csrf": form_token(page)})
    assert asked.status_code == 200 and "Take Kim off the care team" in words(asked.text)
    assert "would reach nobody" not in words(asked.text), "Ben is still reached"
    ben = world.contacts["Ben"]
    alone = bo.post(f"/app/patients/p2/team/{ben}/remove", data={"csrf": form_token(page)})
    assert "Nobody else on the team can be reached: your alerts would reach nobody" in words(
        alone.text
    ), "Kim has no channel: Ben is the only one reached"
    assert "Kim (caregiver)" in words(bo.get("/app/patients/p2").text), "not yet"
    done = bo.post(
        f"/app/patients/p2/team/{kim}/remove",
        data={"csrf": form_token(page), "confirm": "yes"},
    )
    assert done.status_code == 303
    assert "Kim (caregiver)" not in words(bo.get("/app/patients/p2").text)
    with world.stack.db.session() as session:
        (removed,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "contact_removed")
        ).all()
    assert (removed.detail["by"], removed.detail["via"]) == ("bo", "web")
    gone = bo.post(
        f"/app/patients/p2/team/{kim}/remove",
        data={"csrf": form_token(page), "confirm": "yes"},
    )
    assert gone.status_code == 404


def test_only_the_patient_builds_their_team_and_bad_requests_are_refused(
    world: CareWorld, inbox: Inbox
) -> None:
    ann = world.signed_in("ann")
    assert "Invite someone" not in words(ann.get("/app/patients/p1").text)
    assert _invite(ann, "Kim", "kim@example.org", "p1").status_code == 403
    assert _invite(ann, "Kim", "kim@example.org", "p2").status_code == 404
    ben = world.contacts["Ben"]
    token = form_token(ann.get("/app/account").text)
    refused = ann.post(f"/app/patients/p1/team/{ben}/remove", data={"csrf": token})
    assert refused.status_code == 403

    bo = world.signed_in("bo")
    assert bo.post("/app/patients/p2/team/invite", data={"name": "K"}).status_code == 403
    for name, email, why in (
        ("", "kim@example.org", "give their name"),
        ("Kim", "not an address", "is not an e-mail address"),
    ):
        answer = _invite(bo, name, email)
        assert answer.status_code == 422 and why in words(answer.text), name
    # the address of a researcher's account: nothing tells Bo so, she gets a caregiver account
    with world.stack.db.session() as session:
        set_email(session, get_account(session, "rita"), "rita@example.org", 0.0)
    rita = _invite(bo, "Rita", "rita@example.org")
    assert rita.status_code == 200 and "Rita is on your care team" in words(rita.text)
    assert "/app/reset/" in inbox.wait_for("rita@example.org", 1)[0].body
    with world.stack.db.session() as session:
        assert get_account(session, "rita").role == "researcher", "her account is untouched"
        assert get_account(session, "rita@example.org").role == "caregiver"
    for n in range(INVITES_PER_DAY - 1):
        assert _invite(bo, f"Friend {n}", f"friend{n}@example.org").status_code == 200
    over = _invite(bo, "One more", "more@example.org")
    assert over.status_code == 422 and "invitations a day is the most" in words(over.text)
    world.clock.advance(86_401)
    bo = world.signed_in("bo")  # a day later: signed out meanwhile
    assert _invite(bo, "One more", "more@example.org").status_code == 200
    ben_page = world.signed_in("ben").get("/app/patients/p2").text
    assert "Take " not in words(ben_page).split("Care team")[1].split("Answering")[0]


def test_no_invitations_where_nobody_could_add_a_channel(tmp_path) -> None:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER) as world:
        bo = world.signed_in("bo")
        page = bo.get("/app/patients/p2").text
        assert "Invite someone" not in words(page) and "Take Ben off" in words(page)
        refused = _invite(bo, "Kim", "kim@example.org")
        assert refused.status_code == 404 and "could not join" in words(refused.text)


def test_ann_leaves_a_team_after_being_told_nobody_else_would_be_reached(world: CareWorld) -> None:
    ann = world.signed_in("ann")
    page = ann.get("/app/account").text
    assert "Leave Alex's care team" in words(page)
    ann_for_alex = world.contacts["Ann"]
    asked = ann.post(f"/app/account/teams/{ann_for_alex}/leave", data={"csrf": form_token(page)})
    said = words(asked.text)
    assert asked.status_code == 200 and "alerts about Alex would reach nobody" in said
    assert ann.get("/app/patients/p1").status_code == 200, "not yet"
    left = ann.post(
        f"/app/account/teams/{ann_for_alex}/leave",
        data={"csrf": form_token(page), "confirm": "yes"},
    )
    assert left.status_code == 303
    assert ann.get("/app/patients/p1").status_code == 404
    assert "You are on no care team" in words(ann.get("/app/account").text)
    with world.stack.db.session() as session:
        (removed,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "contact_removed")
        ).all()
    assert (removed.patient_id, removed.detail["by"], removed.detail["via"]) == ("p1", "ann", "web")
    ben = world.contacts["Ben"]
    token = form_token(ann.get("/app/account").text)
    refused = ann.post(f"/app/account/teams/{ben}/leave", data={"csrf": token, "confirm": "yes"})
    assert refused.status_code == 404, "only one's own place"
    bo = world.signed_in("bo")
    assert "Leave" not in words(bo.get("/app/account").text)


def test_bo_reminds_kim_when_her_link_ran_out_and_when_she_added_no_channel(
    world: CareWorld, inbox: Inbox
) -> None:
    bo = world.signed_in("bo")
    _invite(bo, "Kim", "kim@example.org")
    (first,) = inbox.wait_for("kim@example.org", 1)
    kim = _kims_contact(world)
    world.clock.advance(8 * 86_400)  # the invitation's 7 days are over
    bo = world.signed_in("bo")
    page = bo.get("/app/patients/p2").text
    assert "Remind Kim" in words(page) and "Remind Ben" not in words(page)
    reminded = bo.post(f"/app/patients/p2/team/{kim}/remind", data={"csrf": form_token(page)})
    assert reminded.status_code == 200 and "Kim was told again" in words(reminded.text)
    second = inbox.wait_for("kim@example.org", 2)[1]
    old_link, new_link = (_link(mail.body) for mail in (first, second))
    client = world.client()
    assert client.get(old_link).status_code == 410
    assert client.post(new_link, data={"new": CHOSEN, "again": CHOSEN}).status_code == 303
    world.signed_in("kim@example.org", CHOSEN)

    again = bo.post(f"/app/patients/p2/team/{kim}/remind", data={"csrf": form_token(page)})
    assert again.status_code == 200
    third = inbox.wait_for("kim@example.org", 3)[2]
    assert "Sign in and add where their alerts should reach you" in third.body
    assert "/app/reset/" not in third.body, "she has her password: no new link"
    ben = world.contacts["Ben"]
    has = bo.post(f"/app/patients/p2/team/{ben}/remind", data={"csrf": form_token(page)})
    assert has.status_code == 422 and "they have a channel already" in words(has.text)
    with world.stack.db.session() as session:
        reminders = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "team_reminded")
        ).all()
    assert [e.detail["new_link"] for e in reminders] == [True, False]


def _link(body: str) -> str:
    found = re.search(r"https?://[^/\s]+(/app/reset/[A-Za-z0-9_-]+)", body)
    assert found is not None, body
    return found[1]


def test_an_invitation_whose_mail_fails_says_so_and_is_sent_again_later(tmp_path) -> None:
    mail = refused_smtp_url()
    offer = ChannelOffer(OwnServers(mail), any_url=False)
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with care_world(url, RECEIVER, mail_url=mail, channel_offer=offer) as world:
        bo = world.signed_in("bo")
        answer = _invite(bo, "Kim", "kim@example.org")
        said = words(answer.text)
        assert answer.status_code == 200 and "Kim is on your care team" in said
        assert "The e-mail to Kim could not be sent just now: press Remind Kim" in said
        assert "/app/reset/" not in answer.text, "no link: it would tell a new account apart"
        assert "Remind Kim" in words(bo.get("/app/patients/p2").text)


def test_alex_is_told_on_his_own_channel_when_ann_leaves(tmp_path, http: HttpReceiver) -> None:
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with care_world(url, http.url("")) as world:
        with world.stack.db.session() as session:
            add_contact(session, "p1", "Alex", [http.url("alex")], role=Role.PATIENT)
            add_contact(session, "p1", "Dee", [http.url("dee")], now_s=world.clock())
        ann = world.signed_in("ann")
        token = form_token(ann.get("/app/account").text)
        left = ann.post(
            f"/app/account/teams/{world.contacts['Ann']}/leave",
            data={"csrf": token, "confirm": "yes"},
        )
        assert left.status_code == 303
        (notice,) = http.inbox.wait_for("/alex", 1)
        assert notice.title == "flarewatch: your care team changed"
        assert notice.body == "Ann left your care team. Alerts now reach Dee."
        assert http.inbox.to("/dee") == [], "only the patient is told"


def test_bo_is_told_on_his_own_channel_when_kim_joins(
    tmp_path, http: HttpReceiver, smtp: SmtpReceiver, inbox: Inbox
) -> None:
    mail = smtp.url("nobody@example.org")
    offer = ChannelOffer(OwnServers(mail), any_url=False)
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with care_world(url, http.url(""), mail_url=mail, channel_offer=offer) as world:
        with world.stack.db.session() as session:
            add_contact(session, "p2", "Bo", [http.url("bo")], role=Role.PATIENT)
        _invite(world.signed_in("bo"), "Kim", "kim@example.org")
        (mail_to_kim,) = inbox.wait_for("kim@example.org", 1)
        client = world.client()
        client.post(_link(mail_to_kim.body), data={"new": CHOSEN, "again": CHOSEN})
        kim = world.signed_in("kim@example.org", CHOSEN)
        token = form_token(kim.get("/app/account").text)
        kim.post("/app/account/channels", data={"csrf": token, "kind": "email", "value": "k@x.org"})
        (notice,) = inbox.wait_for("/bo", 1)
        assert notice.body == "Kim joined your care team. Alerts now reach Ben, then Kim."
        kim.post("/app/account/channels", data={"csrf": token, "kind": "email", "value": "k@y.org"})
        world.stack.scheduler.run_until_idle()
        assert len(inbox.to("/bo")) == 1, "only her first channel is news"
