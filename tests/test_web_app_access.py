"""The web app's sign-in and role-based access, through HTTP against the real server.

On SQLite and PostgreSQL: a caregiver sees only the patients of the care teams they stand on,
a patient only themselves, a researcher only consenting patients' episodes, pseudonymised;
anything else is answered as if it did not exist. Passwords are kept as Argon2id hashes, wrong
ones lock the account for a while, sessions end (sign-out, idle, password change, disabling),
and a form posted without its session's token or from another site does nothing.
"""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from models.alarm import AlarmKind
from service.accounts.const import LOCKOUT_S, MAX_FAILED_LOGINS, SESSION_IDLE_S, SESSION_MAX_S
from service.db.accounts import get_account, set_disabled, set_password
from service.db.care_teams import remove_contact
from service.db.erasure import erase_patient_records
from service.db.models import Account, AccountContact, Alert, AuditEvent, Episode, WebSession
from service.pseudonyms import pseudonym
from tests import web_app_helpers
from tests.alerting_helpers import SECRET
from tests.web_app_helpers import PASSWORD, RECEIVER, CareWorld, form_token, words

world = web_app_helpers.world
"""The care world on SQLite and PostgreSQL."""

REFUSED = "Wrong username or password"


def test_signing_in_sets_a_guarded_cookie_and_shows_only_ones_patients(world):
    client = world.client()
    assert client.get("/app").headers["location"] == "/app/login"
    form = client.get("/app/login")
    assert form.status_code == 200 and 'type="password"' in form.text

    answer = client.post("/app/login", data={"username": "ANN ", "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/app"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # served over plain HTTP here (Secure with an https URL)
    home = client.get("/app")
    assert home.status_code == 200
    assert "Alex" in home.text and "Bo" not in home.text and "Cy" not in home.text
    assert "Signed in as" in home.text and "Nothing going on" in home.text
    assert home.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in home.headers["content-security-policy"]


def test_a_refusal_says_the_same_whatever_was_wrong(world):
    client = world.client()
    other_site = client.post(
        "/app/login",
        data={"username": "ann", "password": PASSWORD},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert other_site.status_code == 403 and "set-cookie" not in other_site.headers
    answers = [
        client.post("/app/login", data={"username": "ann", "password": "not the password!"}),
        client.post("/app/login", data={"username": "nobody", "password": PASSWORD}),
        client.post("/app/login", data={"username": "", "password": ""}),
        client.post("/app/login", content=b"\xff\xfe garbage=&&=", headers={"content-type": "x"}),
        client.post("/app/login", content="&".join(f"f{i}=v" for i in range(50)).encode()),
        client.post("/app/login", data={"username": "ann" * 400, "password": PASSWORD}),
    ]
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert REFUSED in answer.text
        assert "set-cookie" not in answer.headers
    assert client.get("/app").status_code == 303


def test_a_caregiver_sees_their_patient_and_nobody_elses(world):
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    world.episode("p2")
    ann = world.signed_in("ann")
    page = ann.get("/app/patients/p1")
    assert page.status_code == 200
    assert "CRITICAL" in page.text and "possible anaphylaxis" in page.text
    assert "nobody has acknowledged it yet" in page.text
    assert "Emergency plan" in page.text and "Ann (caregiver)" in words(page.text)
    assert RECEIVER not in page.text  # channels are never shown
    assert "reload the page for the latest" in page.text
    for other in ("p2", "p3", "p9"):  # another's, nobody's, nobody: the same answer
        refused = ann.get(f"/app/patients/{other}")
        assert refused.status_code == 404, other
        assert "not shared with your account" in refused.text
        assert "Bo" not in refused.text
    assert ann.get("/app/patients/..%2Fp2").status_code == 404
    assert ann.get("/app/research").status_code == 404
    assert ann.get("/app/research/episodes.csv").status_code == 404


def test_a_patient_sees_only_themselves(world):
    world.episode("p2")
    bo = world.signed_in("bo")
    home = bo.get("/app")
    assert "Your record" in home.text and "Bo" in home.text and "Alex" not in home.text
    assert "WARNING" in home.text and "possible flush" in home.text
    assert bo.get("/app/patients/p2").status_code == 200
    assert bo.get("/app/patients/p1").status_code == 404


def test_a_researcher_sees_consenting_patients_pseudonymised_only(world):
    world.episode("p1")  # Alex did not consent
    bo_episode = world.episode("p2")
    rita = world.signed_in("rita")
    assert rita.get("/app").headers["location"] == "/app/research"
    page = rita.get("/app/research")
    assert page.status_code == 200
    assert "1 episode of 1 consenting subject." in page.text
    subject = pseudonym(SECRET, "p2")
    download = rita.get("/app/research/episodes.csv")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    lines = download.text.splitlines()
    assert lines[0] == "subject,episode,kind,severity,onset_s,end_s,label,model_version"
    assert len(lines) == 2 and lines[1].startswith(f"{subject},") and ",flush," in lines[1]
    for text in (page.text, download.text):
        for secret in ("p2", "Bo", "Ben", "Alex", "p1"):
            assert not re.search(rf"\b{re.escape(secret)}\b", text), secret
    assert re.fullmatch("[0-9a-f]{16}", lines[1].split(",")[1])  # keyed, not the database's id
    assert lines[1].split(",")[1] != str(bo_episode)
    onset_s = float(lines[1].split(",")[4])
    assert onset_s <= world.clock() - 52 * 7 * 86400  # moved back a year at least
    assert rita.get("/app/patients/p2").status_code == 404

    with world.stack.db.session() as session:  # consent withdrawn: gone at the next page
        from service.db.care_teams import get_patient, set_research_consent

        set_research_consent(session, get_patient(session, "p2"), False, world.clock())
    assert len(rita.get("/app/research/episodes.csv").text.splitlines()) == 1


def test_taken_off_the_care_team_a_caregiver_loses_the_patient(world):
    ben = world.signed_in("ben")
    assert ben.get("/app/patients/p2").status_code == 200
    with world.stack.db.session() as session:
        remove_contact(session, world.contacts["Ben"], world.clock())
    assert ben.get("/app/patients/p2").status_code == 404
    assert "No patient is shared with you yet" in ben.get("/app").text


def test_wrong_passwords_make_the_account_wait(world):
    client = world.client()
    for _ in range(MAX_FAILED_LOGINS):
        answer = client.post("/app/login", data={"username": "ann", "password": "guess-guess-1"})
        assert answer.status_code == 401
    locked = client.post("/app/login", data={"username": "ann", "password": PASSWORD})
    assert locked.status_code == 401 and REFUSED in locked.text  # the right one waits too
    world.clock.advance(LOCKOUT_S + 1)
    assert (
        client.post("/app/login", data={"username": "ann", "password": PASSWORD}).status_code == 303
    )
    with world.stack.db.session() as session:
        account = get_account(session, "ann")
        assert account.failed_logins == 0 and account.locked_until_s is None
        reasons = [
            e.detail["reason"]
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "sign_in_refused")
            )
        ]
    assert reasons == ["wrong_password"] * MAX_FAILED_LOGINS + ["locked"]


def test_sessions_end_on_sign_out_idleness_password_change_and_disabling(world):
    ann = world.signed_in("ann")
    cookie = ann.cookies["fw_session"]
    page = ann.get("/app").text
    answer = ann.post("/app/logout", data={"csrf": form_token(page)})
    assert answer.status_code == 303 and answer.headers["location"] == "/app/login"
    stolen = world.client()
    stolen.cookies.set("fw_session", cookie)
    assert stolen.get("/app").status_code == 303  # the old cookie opens nothing

    ann = world.signed_in("ann")
    world.clock.advance(SESSION_IDLE_S - 60)
    assert ann.get("/app").status_code == 200  # used: the idle time starts again
    world.clock.advance(SESSION_IDLE_S - 60)
    assert ann.get("/app").status_code == 200
    world.clock.advance(SESSION_IDLE_S + 1)
    assert ann.get("/app").status_code == 303
    left_open = world.signed_in("ben")  # never signs out
    world.clock.advance(SESSION_MAX_S + 1)
    world.signed_in("ben")  # a sign-in forgets every expired session
    with world.stack.db.session() as session:
        assert len(session.scalars(select(WebSession)).all()) == 1
    assert left_open.get("/app").status_code == 303

    for change in ("password", "disable"):
        ann = world.signed_in("ann")
        with world.stack.db.session() as session:
            account = get_account(session, "ann")
            if change == "password":
                assert set_password(session, account, PASSWORD, world.clock()) == 1
            else:
                assert set_disabled(session, account, True, world.clock()) == 1
        assert ann.get("/app").status_code == 303, change
    refused = world.client().post("/app/login", data={"username": "ann", "password": PASSWORD})
    assert refused.status_code == 401  # disabled


def test_labelling_needs_the_pages_form_token_and_this_origin(world):
    episode_id = world.episode("p1")
    ann = world.signed_in("ann")
    page = ann.get("/app/patients/p1").text
    token = form_token(page)
    path = f"/app/patients/p1/episodes/{episode_id}/label"
    forged = [
        ann.post(path, data={"label": "reaction"}),
        ann.post(path, data={"label": "reaction", "csrf": "0" * 32}),
        ann.post(
            path,
            data={"label": "reaction", "csrf": token},
            headers={"origin": "https://evil.example"},
        ),
        ann.post(
            path,
            data={"label": "reaction", "csrf": token},
            headers={"sec-fetch-site": "cross-site", "origin": "null"},
        ),
    ]
    assert [answer.status_code for answer in forged] == [403, 403, 403, 403]
    other = world.signed_in("ben")  # another session's token does not fit either
    assert other.post(path, data={"label": "reaction", "csrf": token}).status_code == 403
    assert (
        other.post(
            path, data={"label": "reaction", "csrf": form_token(other.get("/app").text)}
        ).status_code
        == 404
    )  # Ben may not label Alex's episode
    assert ann.post(path, data={"label": "maybe", "csrf": token}).status_code == 422
    assert (
        ann.post("/app/patients/p1/episodes/not-a-number/label", data={"csrf": token}).status_code
        == 422
    )
    with world.stack.db.session() as session:
        assert session.get_one(Episode, episode_id).label is None

    done = ann.post(path, data={"label": "reaction", "csrf": token})
    assert done.status_code == 303
    with world.stack.db.session() as session:
        episode = session.get_one(Episode, episode_id)
        assert (episode.label, episode.labelled_by) == ("reaction", "Ann")
        [labelled] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "episode_labelled")
        ).all()
        assert labelled.detail["via"] == "web"
    assert "a real reaction, said by Ann" in words(ann.get("/app/patients/p1").text)


def test_passwords_are_kept_as_argon2id_hashes_and_never_audited(world):
    world.signed_in("ann")
    with world.stack.db.session() as session:
        hashes = session.scalars(select(Account.password_hash)).all()
        events = session.scalars(select(AuditEvent)).all()
        sessions = session.scalars(select(WebSession.token_hash)).all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert len(set(hashes)) == len(hashes)  # salted: one password, four hashes
    assert all(PASSWORD not in str(e.detail) for e in events)
    assert {e.action for e in events} >= {"account_added", "account_linked", "sign_in"}
    assert all(re.fullmatch("[0-9a-f]{64}", h) for h in sessions)


def test_erasing_a_patient_removes_their_account_and_their_caregivers_access(world):
    world.client().post("/app/login", data={"username": "bo", "password": "a wrong password"})
    bo = world.signed_in("bo")
    bo.post("/app/logout", data={"csrf": form_token(bo.get("/app").text)})
    with world.stack.db.session() as session:
        set_password(session, get_account(session, "bo"), "yet another passphrase", world.clock())
        erase_patient_records(session, "p2", world.clock())
        # no line of their trail is left to name them by their username
        usernames = {e.detail.get("username") for e in session.scalars(select(AuditEvent))}
    assert "bo" not in usernames and {"ann", "ben"} <= usernames
    with world.stack.db.session() as session:
        assert session.scalar(select(Account).where(Account.username == "bo")) is None
        assert (
            session.scalar(
                select(AccountContact).where(AccountContact.contact_id == world.contacts["Ben"])
            )
            is None
        )
        assert session.scalars(select(WebSession)).all() == []
    ben = world.signed_in("ben")
    assert ben.get("/app/patients/p2").status_code == 404


def test_the_json_api_answers_with_the_same_rules(world):
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    world.episode("p2")
    assert world.client().get("/api/v1/me").status_code == 401
    assert world.client().get("/api/v1/patients").status_code == 401
    ann = world.signed_in("ann")
    assert ann.get("/api/v1/me").json() == {
        "username": "ann",
        "display_name": "Ann",
        "role": "caregiver",
        "patients": ["p1"],
    }
    [alex] = ann.get("/api/v1/patients").json()
    assert alex["id"] == "p1" and alex["open_alerts"][0]["kind"] == "anaphylaxis"
    assert alex["care_team"] == [
        {
            "contact_id": world.contacts["Ann"],
            "name": "Ann",
            "role": "caregiver",
            "away_until_s": None,
            "failing_since_s": None,
            "away_every": None,
            "reachable": True,
        }
    ]
    assert alex["last_drill"] is None
    assert alex["quiet_hours"] is None
    assert RECEIVER not in ann.get("/api/v1/patients/p1").text
    assert ann.get("/api/v1/patients/p1").json()["episodes"][0]["severity"] == "critical"
    assert ann.get("/api/v1/patients/p2").status_code == 404
    assert ann.get("/api/v1/research/episodes").status_code == 404
    rita = world.signed_in("rita")
    assert rita.get("/api/v1/patients").json() == []
    [episode] = rita.get("/api/v1/research/episodes").json()
    assert episode["subject"] == pseudonym(SECRET, "p2") and "p2" not in str(episode)


def test_changing_ones_password_keeps_this_browser_and_signs_out_the_others(world):
    ann = world.signed_in("ann")
    elsewhere = world.signed_in("ann")
    token = form_token(ann.get("/app/account").text)
    new = "another long passphrase"

    def change(current: str, again: str = new, wanted: str = new) -> int:
        data = {"csrf": token, "current": current, "new": wanted, "again": again}
        return ann.post("/app/account/password", data=data).status_code

    assert change(PASSWORD, again="a different one!") == 422
    assert change(PASSWORD, again="short", wanted="short") == 422
    assert (
        ann.post(
            "/app/account/password", data={"current": PASSWORD, "new": new, "again": new}
        ).status_code
        == 403
    )  # no form token
    assert change("not my password") == 403
    with world.stack.db.session() as session:
        assert get_account(session, "ann").failed_logins == 1  # counted as a wrong sign-in
    assert change(PASSWORD) == 303
    assert ann.get("/app").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/app").status_code == 303  # the other one is signed out
    assert (
        world.client()
        .post("/app/login", data={"username": "ann", "password": PASSWORD})
        .status_code
        == 401
    )
    world.signed_in("ann", new)


def alert_of(world: CareWorld, patient_id: str) -> Alert:
    with world.stack.db.session() as session:
        return session.scalars(select(Alert).where(Alert.patient_id == patient_id)).one()


def test_a_caregiver_acknowledges_from_the_app_and_the_escalation_stops(world):
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    alert = alert_of(world, "p1")
    ann, ben, bo = world.signed_in("ann"), world.signed_in("ben"), world.signed_in("bo")
    page = ann.get("/app/patients/p1").text
    assert "I'm on it: acknowledge" in words(page)
    path = f"/app/patients/p1/alerts/{alert.id}"
    token = form_token(page)
    assert (
        ben.post(f"{path}/ack", data={"csrf": form_token(ben.get("/app").text)}).status_code == 404
    )
    assert (
        bo.post(
            f"/app/patients/p2/alerts/{alert.id}/ack",
            data={"csrf": form_token(bo.get("/app").text)},
        ).status_code
        == 404
    )
    assert ann.post(f"{path}/cancel", data={"csrf": token}).status_code == 403  # not the wearer's
    assert ann.post(f"{path}/ack", data={}).status_code == 403  # no form token
    assert alert_of(world, "p1").state == "active"

    assert ann.post(f"{path}/ack", data={"csrf": token}).status_code == 303
    acked = alert_of(world, "p1")
    assert (acked.state, acked.acked_by, acked.next_action_s) == ("acknowledged", "Ann", None)
    after = ann.get("/app/patients/p1").text
    assert "Ann is on it" in words(after) and "acknowledge</button>" not in after
    with world.stack.db.session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "acknowledged"))
        assert event.detail["via"] == "web"


def test_the_patient_cancels_their_warning_in_time_and_is_told_when_too_late(world):
    world.episode("p2")
    alert = alert_of(world, "p2")
    assert alert.state == "cancel_window"
    bo = world.signed_in("bo")
    page = bo.get("/app/patients/p2").text
    assert "cancel the alarm" in page
    token = form_token(page)
    path = f"/app/patients/p2/alerts/{alert.id}"
    assert bo.post(f"{path}/ack", data={"csrf": token}).status_code == 403  # not a caregiver
    assert bo.post(f"{path}/cancel", data={"csrf": token}).status_code == 303
    assert alert_of(world, "p2").state == "cancelled"

    world.clock.advance(3600)
    world.episode("p2", AlarmKind.FLUSH)  # a new warning, let run past its window
    with world.stack.db.session() as session:
        late = max(session.scalars(select(Alert.id).where(Alert.patient_id == "p2")))
    world.clock.advance(120)
    world.stack.scheduler.run_until_idle()
    answer = bo.post(f"/app/patients/p2/alerts/{late}/cancel", data={"csrf": token})
    assert answer.status_code == 409 and "Too late to cancel" in answer.text


def test_behind_https_the_session_cookie_is_secure(world):
    from service.alerts.manager import AlertManager
    from tests.alerting_helpers import ApiServer

    https = AlertManager(
        world.stack.db, world.clock, secret_key=SECRET, public_base_url="https://care.example"
    )
    with ApiServer(https) as api, httpx.Client(base_url=api.base_url) as client:
        answer = client.post("/app/login", data={"username": "ann", "password": PASSWORD})
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]


def test_who_read_a_record_is_on_the_patients_trail_hourly(world):
    def views() -> list[tuple[str | None, str, str]]:
        with world.stack.db.session() as session:
            events = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "record_viewed")
            ).all()
        return [(e.patient_id, e.detail["username"], e.detail["via"]) for e in events]

    ann, ben = world.signed_in("ann"), world.signed_in("ben")
    for _ in range(3):
        ann.get("/app/patients/p1")
    ann.get("/app")
    ann.get("/api/v1/patients/p1")
    ben.get("/api/v1/patients")
    assert views() == [("p1", "ann", "app"), ("p2", "ben", "api")]
    world.clock.advance(3600)
    ann.get("/api/v1/patients/p1")
    assert views()[-1] == ("p1", "ann", "api")
    ann.get("/app/patients/p2")  # not hers: refused, and nothing noted
    assert len(views()) == 3

    world.episode("p2")
    rita = world.signed_in("rita")
    rita.get("/app/research/episodes.csv")
    with world.stack.db.session() as session:
        [read] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "research_episodes_read")
        ).all()
    assert read.patient_id is None
    assert read.detail == {"username": "rita", "episodes": 1, "subjects": 1, "via": "app"}


def test_one_signs_out_every_other_browser_from_ones_account_page(world):
    ann = world.signed_in("ann")
    assert "Only on this browser" in words(ann.get("/app/account").text)
    lost_phone, laptop = world.signed_in("ann"), world.signed_in("ann")
    ben = world.signed_in("ben")
    page = ann.get("/app/account").text
    assert "On this browser and 2 others" in words(page)
    done = ann.post("/app/account/sign-out-others", data={"csrf": form_token(page)})
    assert done.status_code == 200 and "Signed out of 2 other browsers." in words(done.text)
    assert lost_phone.get("/app").status_code == 303 and laptop.get("/app").status_code == 303
    assert ann.get("/app").status_code == 200 and ben.get("/app").status_code == 200
    assert ann.post("/app/account/sign-out-others", data={}).status_code == 403  # no token
    with world.stack.db.session() as session:
        (event,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "signed_out_elsewhere")
        ).all()
    assert event.detail == {"username": "ann", "browsers": 2}
