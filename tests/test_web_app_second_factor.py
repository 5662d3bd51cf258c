"""Two-step sign-in (TOTP, RFC 6238), through HTTP against the real server, SQLite and PostgreSQL.

Codes are made here with pyotp from the key the enrolment page shows, as an authenticator app
would; the service's clock is the test's (``world.clock``), so every 30-s step is chosen.
"""

from __future__ import annotations

import re

import httpx
import pyotp
from sqlalchemy import select

from flarewatch.cli import main
from service.accounts.const import (
    LOCKOUT_S,
    MAX_FAILED_LOGINS,
    RECOVERY_CODE_COUNT,
    SECOND_FACTOR_WINDOW_S,
    TOTP_STEP_S,
)
from service.db.accounts import get_account
from service.db.channel_crypto import open_secret
from service.db.erasure import erase_patient_records
from service.db.models import Account, AuditEvent, RecoveryCode, WebSession
from service.db.session import Database
from tests import web_app_helpers
from tests.alerting_helpers import SECRET
from tests.web_app_helpers import PASSWORD, RECEIVER, CareWorld, care_world, form_token, words

world = web_app_helpers.world
"""The care world on SQLite and PostgreSQL."""


def code_at(secret: str, time_s: float) -> str:
    """What an authenticator app holding ``secret`` shows at ``time_s``."""
    return pyotp.TOTP(secret).at(int(time_s))


def enrol(world: CareWorld, client: httpx.Client) -> tuple[str, list[str]]:
    """Turn two-step sign-in on from the account page: the key shown and the recovery codes."""
    token = form_token(client.get("/app/account").text)
    started = client.post(
        "/app/account/second-factor/start", data={"csrf": token, "sf-password": PASSWORD}
    )
    assert started.status_code == 303, started.text
    assert started.headers["location"] == "/app/account/second-factor"
    shown = client.get("/app/account/second-factor")
    assert shown.status_code == 200 and "<svg" in shown.text and 'role="img"' in shown.text
    key = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', shown.text)
    assert key is not None, shown.text
    secret = key.group(1).replace(" ", "")
    assert len(secret) == 32  # 160 bits
    confirmed = client.post(
        "/app/account/second-factor/confirm",
        data={"csrf": form_token(shown.text), "code": code_at(secret, world.clock())},
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = re.findall(r'<li><code class="secret">([a-z0-9-]+)</code></li>', confirmed.text)
    assert len(codes) == RECOVERY_CODE_COUNT and "not shown again" in words(confirmed.text)
    return secret, codes


def password_step(client: httpx.Client, username: str = "ann") -> httpx.Response:
    return client.post("/app/login", data={"username": username, "password": PASSWORD})


def test_turning_it_on_asks_a_code_after_the_password_and_nothing_before(world):
    ann = world.signed_in("ann")
    elsewhere = world.signed_in("ann")
    assert "Off: your password alone signs you in" in words(ann.get("/app/account").text)
    secret, _ = enrol(world, ann)
    assert ann.get("/app").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/app").status_code == 303  # every other one is signed out
    assert "On. 10 of 10 recovery codes unused" in words(ann.get("/app/account").text)

    world.clock.advance(TOTP_STEP_S)
    client = world.client()
    answer = password_step(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/app/login/code"
    for path in ("/app", "/app/patients/p1", "/app/account", "/api/v1/me"):
        seen = client.get(path)  # the right password alone opens nothing
        assert seen.status_code in (303, 401), path
        assert "Alex" not in seen.text
    assert client.get("/app/login/code").status_code == 200
    signed = client.post("/app/login/code", data={"code": code_at(secret, world.clock())})
    assert signed.status_code == 303 and signed.headers["location"] == "/app"
    assert "Alex" in client.get("/app").text
    assert client.get("/api/v1/me").json()["username"] == "ann"
    with world.stack.db.session() as session:
        assert not session.scalars(select(WebSession).where(WebSession.second_factor_due)).all()
        account = get_account(session, "ann")
        assert account.totp_secret is not None and secret not in account.totp_secret  # sealed
        assert account.totp_enrolling is None
        events = session.scalars(select(AuditEvent)).all()
    assert {"second_factor_on", "second_factor_asked"} <= {e.action for e in events}
    assert not any(secret in str(e.detail) for e in events)


def test_a_code_is_good_once_and_only_near_its_time(world):
    ann = world.signed_in("ann")
    secret, _ = enrol(world, ann)
    enrolled_at = world.clock()

    client = world.client()
    password_step(client)
    used = code_at(secret, enrolled_at)  # the enrolment's own code
    assert client.post("/app/login/code", data={"code": used}).status_code == 401
    world.clock.advance(3 * TOTP_STEP_S)
    stale = code_at(secret, world.clock() - 2 * TOTP_STEP_S)
    early = code_at(secret, world.clock() + 2 * TOTP_STEP_S)
    for code in (stale, early, "12345", "9" * 64):
        refused = client.post("/app/login/code", data={"code": code})
        assert refused.status_code == 401 and "Wrong code" in refused.text, code
    with world.stack.db.session() as session:
        assert get_account(session, "ann").failed_logins == MAX_FAILED_LOGINS
    # the account waits now: the browser starts over with the password, which waits too
    right = code_at(secret, world.clock() - TOTP_STEP_S)  # one step of drift is taken
    over = client.post("/app/login/code", data={"code": right})
    assert over.status_code == 303 and over.headers["location"] == "/app/login"
    assert client.get("/app").status_code == 303
    assert password_step(world.client()).status_code == 401

    world.clock.advance(LOCKOUT_S + 1)
    client = world.client()
    password_step(client)
    signed = client.post("/app/login/code", data={"code": code_at(secret, world.clock())})
    assert signed.status_code == 303 and "Alex" in client.get("/app").text
    replay = world.client()
    password_step(replay)
    again = replay.post("/app/login/code", data={"code": code_at(secret, world.clock())})
    assert again.status_code == 401  # the same step twice: a code seen over a shoulder


def test_a_password_alone_does_not_reset_the_count_of_wrong_codes(world):
    secret, _ = enrol(world, world.signed_in("ann"))
    world.clock.advance(TOTP_STEP_S)
    for _ in range(MAX_FAILED_LOGINS):
        client = world.client()
        assert password_step(client).status_code == 303  # the guesser has the password
        assert client.post("/app/login/code", data={"code": "000000"}).status_code == 401
    client = world.client()
    assert password_step(client).status_code == 401  # waits: the password is not even checked
    with world.stack.db.session() as session:
        reasons = [
            e.detail["reason"]
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "sign_in_refused")
            )
        ]
    assert reasons == ["wrong_code"] * MAX_FAILED_LOGINS + ["locked"]
    assert secret  # never guessed


def test_the_code_step_expires_and_needs_this_site(world):
    secret, _ = enrol(world, world.signed_in("ann"))
    client = world.client()
    password_step(client)
    other_site = client.post(
        "/app/login/code",
        data={"code": code_at(secret, world.clock() + TOTP_STEP_S)},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert other_site.status_code == 403 and "set-cookie" not in other_site.headers
    world.clock.advance(SECOND_FACTOR_WINDOW_S + 1)
    late = client.post("/app/login/code", data={"code": code_at(secret, world.clock())})
    assert late.status_code == 303 and late.headers["location"] == "/app/login"
    assert client.get("/app/login/code").headers["location"] == "/app/login"
    assert world.client().get("/app/login/code").headers["location"] == "/app/login"


def test_a_script_signs_in_with_password_and_code_at_once(world):
    secret, _ = enrol(world, world.signed_in("ann"))
    world.clock.advance(TOTP_STEP_S)
    script = world.client()
    wrong = script.post(
        "/app/login", data={"username": "ann", "password": PASSWORD, "code": "123456"}
    )
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    answer = script.post(
        "/app/login",
        data={"username": "ann", "password": PASSWORD, "code": code_at(secret, world.clock())},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/app"
    assert script.get("/api/v1/patients").status_code == 200


def test_recovery_codes_stand_in_once_each_and_can_be_renewed(world):
    ann = world.signed_in("ann")
    _, codes = enrol(world, ann)
    client = world.client()
    password_step(client)
    typed = codes[0].upper().replace("-", " ")  # as read off paper
    assert client.post("/app/login/code", data={"code": typed}).status_code == 303
    again = world.client()
    password_step(again)
    assert again.post("/app/login/code", data={"code": codes[0]}).status_code == 401
    bo = world.signed_in("bo")  # another account's code is no code of Ann's
    _, bos_codes = enrol(world, bo)
    assert again.post("/app/login/code", data={"code": bos_codes[0]}).status_code == 401
    page = client.get("/app/account").text
    assert "9 of 10 recovery codes unused" in words(page)

    token = form_token(page)
    wrong = client.post(
        "/app/account/second-factor/codes", data={"csrf": token, "codes-password": "nope"}
    )
    assert wrong.status_code == 403
    renewed = client.post(
        "/app/account/second-factor/codes", data={"csrf": token, "codes-password": PASSWORD}
    )
    new_codes = re.findall(r'<li><code class="secret">([a-z0-9-]+)</code></li>', renewed.text)
    assert len(new_codes) == RECOVERY_CODE_COUNT and not set(new_codes) & set(codes)
    late = world.client()
    password_step(late)
    assert late.post("/app/login/code", data={"code": codes[1]}).status_code == 401  # old: gone
    assert late.post("/app/login/code", data={"code": new_codes[1]}).status_code == 303
    with world.stack.db.session() as session:
        stored = session.scalars(select(RecoveryCode.code_hash)).all()
    assert not any(code.replace("-", "") in h for h in stored for code in new_codes)


def test_a_wrong_first_code_changes_nothing_and_turning_off_needs_password_and_code(world):
    ann = world.signed_in("ann")
    token = form_token(ann.get("/app/account").text)
    wrong_password = ann.post(
        "/app/account/second-factor/start", data={"csrf": token, "sf-password": "not it at all"}
    )
    assert wrong_password.status_code == 403
    no_token = ann.post("/app/account/second-factor/start", data={"sf-password": PASSWORD})
    assert no_token.status_code == 403
    ann.post("/app/account/second-factor/start", data={"csrf": token, "sf-password": PASSWORD})
    shown = ann.get("/app/account/second-factor").text
    refused = ann.post("/app/account/second-factor/confirm", data={"csrf": token, "code": "000000"})
    assert refused.status_code == 422 and "phone's clock" in words(refused.text)
    assert password_step(world.client()).headers["location"] == "/app"  # still password only
    assert "<svg" in shown

    secret, _ = enrol(world, ann)
    page = ann.get("/app/account").text
    token = form_token(page)
    world.clock.advance(TOTP_STEP_S)
    off = {"csrf": token, "off-password": PASSWORD, "code": "111111"}
    assert ann.post("/app/account/second-factor/off", data=off).status_code == 403
    off["code"] = code_at(secret, world.clock())
    off["off-password"] = "wrong password!"
    assert ann.post("/app/account/second-factor/off", data=off).status_code == 403
    off["off-password"] = PASSWORD
    assert ann.post("/app/account/second-factor/off", data=off).status_code == 303
    assert password_step(world.client()).headers["location"] == "/app"
    with world.stack.db.session() as session:
        account = get_account(session, "ann")
        assert account.totp_secret is None and not account.recovery_codes
        off_events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "second_factor_off")
        ).all()
    assert [e.detail["by"] for e in off_events] == ["self"]


def test_the_administrator_turns_it_off_for_a_lost_phone(world, capsys, monkeypatch):
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", SECRET)
    secret, _ = enrol(world, world.signed_in("ann"))
    phone_thief = world.client()
    password_step(phone_thief)
    url = world.stack.db.url
    assert main(["admin", "--database-url", url, "account", "list"]) == 0
    listed = capsys.readouterr().out
    assert re.search(r"ann .*\bon\b", listed) and re.search(r"ben .*\boff\b", listed)
    assert main(["admin", "--database-url", url, "account", "second-factor-off", "ann"]) == 0
    assert "turned off" in capsys.readouterr().out
    code = code_at(secret, world.clock() + TOTP_STEP_S)
    assert phone_thief.post("/app/login/code", data={"code": code}).status_code == 303
    assert phone_thief.get("/app").status_code == 303  # its half-open session was ended
    assert password_step(world.client()).headers["location"] == "/app"
    assert main(["admin", "--database-url", url, "account", "second-factor-off", "ann"]) == 0
    assert "already" in capsys.readouterr().out


def test_the_secret_goes_with_a_new_service_key(world, tmp_path, monkeypatch):
    secret, _ = enrol(world, world.signed_in("ann"))
    url = world.stack.db.url
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", "a-new-key-for-the-service-0123")
    (tmp_path / "old.key").write_text(SECRET)
    rekey = ["db", "rekey", "--old-key-file", str(tmp_path / "old.key")]
    assert main(["admin", "--database-url", url, *rekey]) == 0
    db = Database(url, secret_key="a-new-key-for-the-service-0123")
    try:
        with db.session() as session:
            account = session.scalars(select(Account).where(Account.username == "ann")).one()
            assert account.totp_secret is not None
            assert open_secret(session, account.totp_secret) == secret
    finally:
        db.dispose()


def test_erasing_a_patient_takes_their_second_factor_too(world):
    enrol(world, world.signed_in("bo"))
    enrol(world, world.signed_in("ann"))
    with world.stack.db.session() as session:
        erase_patient_records(session, "p2", world.clock())
    with world.stack.db.session() as session:
        owners = {code.account.username for code in session.scalars(select(RecoveryCode))}
    assert owners == {"ann"}


def test_a_role_made_to_use_it_sees_nothing_until_it_is_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with care_world(url, RECEIVER, second_factor_roles=("researcher",)) as required:
        rita = required.signed_in("rita")
        for path in ("/app", "/app/research", "/app/research/episodes.csv"):
            assert rita.get(path).headers["location"] == "/app/account", path
        api = rita.get("/api/v1/research/episodes")
        assert api.status_code == 403 and "two-step" in api.json()["detail"]
        page = rita.get("/app/account")
        assert "Every researcher signs in in two steps on this service" in words(page.text)
        assert required.signed_in("ann").get("/app/patients/p1").status_code == 200  # not hers

        secret, _ = enrol(required, rita)
        assert rita.get("/app/research").status_code == 200
        assert rita.get("/api/v1/research/episodes").status_code == 200
        page = rita.get("/app/account").text
        assert "Turn two-step sign-in off" not in page and "it stays on" in words(page)
        required.clock.advance(TOTP_STEP_S)
        off = {
            "csrf": form_token(page),
            "off-password": PASSWORD,
            "code": code_at(secret, required.clock()),
        }
        refused = rita.post("/app/account/second-factor/off", data=off)
        assert refused.status_code == 403 and "it stays on" in words(refused.text)
        with required.stack.db.session() as session:
            assert get_account(session, "rita").totp_secret is not None
