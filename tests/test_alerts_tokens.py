"""Link tokens: short enough for an SMS, one spelling each, bound to one alert, links sent before
the upgrade still good for their lifetime."""

from __future__ import annotations

import base64
import string
from collections.abc import Iterator

import pytest

from models.alarm import Severity
from service.alerts.const import ACK_TOKEN_TTL_S, LABEL_TOKEN_TTL_S
from service.alerts.errors import TokenError
from service.alerts.tokens import (
    TokenAction,
    TokenClaim,
    alert_key,
    sign_legacy_token,
    sign_token,
    verify_token,
)
from service.db import Alert, AlertState, Contact, Patient
from tests.alerting_helpers import SECRET, AlertingStack, HttpReceiver, served_stack

T0 = 1_764_000_000.0
KEY = alert_key("p1", T0)
CLAIM = TokenClaim(TokenAction.ACK, 42, 7, 1_764_086_400, KEY)
ALPHABET = string.ascii_letters + string.digits + "-_"

LEGACY_ACK = "YWNrLjQyLjcuMTc2NDA4NjQwMC45OGMxNjBhMmNmMDY.KrbfdXfAjLc30YFhIAxCvpFyiA0"
"""``CLAIM`` signed with ``k1`` by flarewatch before the binary tokens (at commit 284114d)."""
LEGACY_KEYLESS = "YWNrLjQyLjcuMTc2NDA4NjQwMA.F2jW35tGTNoLbKqWzHIzw7NB9SQ"
"""The same without the alert key, as versions before the key signed it."""


def other_spellings(part: str) -> Iterator[str]:
    """``part`` (unpadded URL-safe base64) with other unused trailing bits: the same bytes."""
    decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    for last in ALPHABET:
        spelling = part[:-1] + last
        if last != part[-1] and base64.urlsafe_b64decode(spelling + "=" * (-len(part) % 4)) == (
            decoded
        ):
            yield spelling


def refusal(token: str, now_s: float = T0, secret: str = "k1") -> str:
    with pytest.raises(TokenError) as refused:
        verify_token(secret, token, now_s)
    return refused.value.reason


def test_a_token_is_48_characters_whatever_the_alert_number():
    """It was 70-76 characters and grew with the alert id, leaving a name 10-16 characters
    in the first part of an SMS behind a 30-character public URL."""
    for alert_id, contact_id in [(1, 1), (42, 7), (4_000_000_000, 4_000_000_000)]:
        for action in TokenAction:
            claim = TokenClaim(action, alert_id, contact_id, int(T0 + LABEL_TOKEN_TTL_S), KEY)
            token = sign_token("k1", claim)
            assert len(token) == 48 and set(token) <= set(ALPHABET), token
            assert verify_token("k1", token, T0) == claim


def test_a_token_is_refused_with_the_reason_once_expired_or_under_another_key():
    token = sign_token("k1", CLAIM)
    assert verify_token("k1", token, CLAIM.expires_s) == CLAIM
    assert refusal(token, CLAIM.expires_s + 1) == "expired"
    assert refusal(token, secret="other-key") == "bad_signature"
    for junk in ["", "abc", "a.b.c", "!!!.???", "A" * 48, "A" * 47, "A" * 49]:
        assert refusal(junk) in ("malformed", "bad_signature"), junk


def test_changing_any_bit_or_character_of_a_token_is_refused():
    token = sign_token("k1", CLAIM)
    raw = base64.urlsafe_b64decode(token)
    for index in range(len(raw)):
        for bit in range(8):
            changed = bytearray(raw)
            changed[index] ^= 1 << bit
            spelled = base64.urlsafe_b64encode(bytes(changed)).decode()
            assert refusal(spelled) in ("bad_signature", "malformed"), (index, bit)
    for index, original in enumerate(token):
        for other in set(ALPHABET) - {original}:
            assert refusal(token[:index] + other + token[index + 1 :]), (index, other)


def test_a_token_has_one_spelling():
    """Padding, the standard base64 alphabet or characters added give no second spelling."""
    token = sign_token("k1", CLAIM)
    padded = base64.urlsafe_b64encode(base64.urlsafe_b64decode(token)).decode() + "="
    standard = base64.b64encode(base64.urlsafe_b64decode(token)).decode()
    spellings = [
        padded,
        token + "==",
        f" {token}",
        f"{token}\n",
        token[:10] + "!" + token[10:],
        token[:10] + "." + token[10:],
    ]
    if standard != token:
        spellings.append(standard)
    for spelling in spellings:
        assert refusal(spelling) == "malformed", spelling


def test_a_link_sent_before_the_upgrade_still_verifies():
    assert sign_legacy_token("k1", CLAIM) == LEGACY_ACK, "the old code path, unchanged"
    assert verify_token("k1", LEGACY_ACK, T0) == CLAIM
    keyless = TokenClaim(TokenAction.ACK, 42, 7, 1_764_086_400)
    assert sign_legacy_token("k1", keyless) == LEGACY_KEYLESS
    assert verify_token("k1", LEGACY_KEYLESS, T0) == keyless
    assert refusal(LEGACY_ACK, CLAIM.expires_s + 1) == "expired"
    assert refusal(LEGACY_ACK, secret="other-key") == "bad_signature"
    body, mac = LEGACY_ACK.split(".")
    assert refusal(f"{body}.{mac[:-1]}{'B' if mac[-1] == 'A' else 'A'}") == "bad_signature"


def test_a_link_sent_before_the_upgrade_has_one_spelling_too():
    """Unused trailing bits of its base64 were ignored: ``…iA0`` and ``…iA1`` both acknowledged."""
    body, mac = LEGACY_ACK.split(".")
    spellings = [f"{body}.{other}" for other in other_spellings(mac)]
    spellings += [f"{other}.{mac}" for other in other_spellings(body)]
    assert spellings, "the old format has unused trailing bits in both parts"
    for spelling in spellings:
        assert refusal(spelling) == "malformed", spelling


def test_only_a_token_bound_to_one_alert_is_issued():
    with pytest.raises(ValueError, match="alert key"):
        sign_token("k1", TokenClaim(TokenAction.ACK, 42, 7, 1_764_086_400))
    with pytest.raises(ValueError, match="alert id"):
        sign_token("k1", TokenClaim(TokenAction.ACK, 2**32, 7, 1_764_086_400, KEY))


@pytest.fixture
def stack(tmp_path, http: HttpReceiver) -> Iterator[AlertingStack]:
    with served_stack(f"sqlite:///{tmp_path}/fw.sqlite3", http) as built:
        yield built


def critical_alert(stack: AlertingStack) -> tuple[Alert, int]:
    """A critical alert of p1 (not yet sent) and the contact id of caregiver ann."""
    with stack.manager.transaction() as txn:
        patient = txn.session.get_one(Patient, "p1")
        alert = stack.manager.open_alert(
            txn, patient, kind="anaphylaxis", severity=Severity.CRITICAL, since_s=txn.now_s
        )
        ann = txn.session.query(Contact).filter_by(name="ann").one().id
    return alert, ann


def test_an_acknowledgement_link_sent_before_the_upgrade_acknowledges_for_its_day(stack):
    alert, ann = critical_alert(stack)
    claim = TokenClaim(
        TokenAction.ACK,
        alert.id,
        ann,
        int(stack.clock() + ACK_TOKEN_TTL_S),
        alert_key(alert.patient_id, alert.created_s),
    )
    old = sign_legacy_token(SECRET, claim)
    stack.clock.advance(ACK_TOKEN_TTL_S - 60)
    assert stack.client.get(f"/ack/{old}").status_code == 200
    done = stack.client.post(f"/ack/{old}")
    assert done.status_code == 200 and "Acknowledged" in done.text
    with stack.db.session() as session:
        acked = session.get_one(Alert, alert.id)
        assert (acked.state, acked.acked_by) == (AlertState.ACKNOWLEDGED, "ann")
    stack.clock.advance(120)
    late = stack.client.post("/api/v1/alerts/ack", json={"token": old})
    assert late.status_code == 403 and late.json()["reason"] == "expired"


def test_a_label_link_sent_before_the_upgrade_works_for_two_weeks(stack):
    alert, ann = critical_alert(stack)
    expires = int(stack.clock() + LABEL_TOKEN_TTL_S)
    key = alert_key(alert.patient_id, alert.created_s)
    old = sign_legacy_token(SECRET, TokenClaim(TokenAction.LABEL, alert.id, ann, expires, key))
    stack.clock.advance(LABEL_TOKEN_TTL_S - 3600)
    assert stack.manager.inspect(old, TokenAction.LABEL).id == alert.id


def test_a_token_of_another_alert_with_the_same_id_is_refused(stack):
    """What a link of an alert lost in a database restore looks like: its id, another key."""
    alert, ann = critical_alert(stack)
    expires = int(stack.clock() + ACK_TOKEN_TTL_S)
    lost_key = alert_key(alert.patient_id, alert.created_s - 3600)
    for sign in (sign_token, sign_legacy_token):
        token = sign(SECRET, TokenClaim(TokenAction.ACK, alert.id, ann, expires, lost_key))
        refused = stack.client.post("/api/v1/alerts/ack", json={"token": token})
        assert refused.status_code == 403 and refused.json()["reason"] == "other_alert"
    with stack.db.session() as session:
        assert session.get_one(Alert, alert.id).state == AlertState.ACTIVE
    issued = stack.manager.link(TokenAction.ACK, alert, ann).rsplit("/", 1)[1]
    assert len(issued) == 48
    assert stack.client.post("/api/v1/alerts/ack", json={"token": issued}).status_code == 200
