"""Signed, expiring tokens for the links in messages: acknowledge, "I'm OK", label (HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from service.alerts.errors import TokenError


class TokenAction(StrEnum):
    """What a token allows its holder to do with one alert."""

    ACK = "ack"
    CANCEL = "cancel"
    LABEL = "label"
    """Say whether the alert's episode was a real reaction (the detectors learn from it)."""


@dataclass(frozen=True, slots=True)
class TokenClaim:
    """The verified content of a token."""

    action: TokenAction
    alert_id: int
    contact_id: int
    expires_s: int
    alert_key: str | None = None
    """:func:`alert_key` of the alert it was issued for (``None`` in tokens of earlier versions)."""


ALERT_KEY_CHARS: Final = 12
"""Hex characters of :func:`alert_key`: 48 bits, enough to tell one alert from another with the
same id, not a secret (the token's MAC is what makes it unforgeable)."""


def alert_key(patient_id: str, created_s: float) -> str:
    """What ties a token to one alert, not just to its id.

    A service database restored from a backup numbers its next alerts with ids handed out before;
    a link of the lost alert (valid for a day) would otherwise acknowledge the new alert of the
    same id, perhaps another patient's.
    """
    digest = hashlib.sha256(f"{patient_id}\x00{created_s!r}".encode()).hexdigest()
    return digest[:ALERT_KEY_CHARS]


_SPELLING: Final = re.compile(r"[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{27}")
"""A token as signed: unpadded URL-safe base64 of the claim, a dot, of the 20-byte MAC."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> bytes:
    # Domain-separated key: the service secret may sign other things later (sessions, exports).
    key = hashlib.sha256(b"flarewatch-alert-token\x00" + secret.encode()).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).digest()[:20]


def sign_token(secret: str, claim: TokenClaim) -> str:
    """Encode and sign ``claim`` as a URL-safe token."""
    body = f"{claim.action}.{claim.alert_id}.{claim.contact_id}.{claim.expires_s}"
    if claim.alert_key is not None:
        body += f".{claim.alert_key}"
    return f"{_b64(body.encode())}.{_b64(_mac(secret, body))}"


def verify_token(secret: str, token: str, now_s: float) -> TokenClaim:
    """Check the signature and expiry of ``token``; raise :class:`TokenError` if unusable.

    Only the spelling :func:`sign_token` makes is taken: base64 decoding skips characters outside
    its alphabet, which would give one token endless spellings (and a page that echoes the
    spelling it was opened with, a way to change its meaning).
    """
    if not _SPELLING.fullmatch(token):
        raise TokenError("malformed")
    try:
        body_part, mac_part = token.split(".")
        body = _unb64(body_part).decode()
        mac = _unb64(mac_part)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("malformed") from exc
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise TokenError("bad_signature")
    try:
        action, alert_id, contact_id, expires_s, *key = body.split(".")
        if len(key) > 1 or (key and not re.fullmatch(rf"[0-9a-f]{{{ALERT_KEY_CHARS}}}", key[0])):
            raise ValueError("not a token body")
        claim = TokenClaim(
            TokenAction(action),
            int(alert_id),
            int(contact_id),
            int(expires_s),
            key[0] if key else None,
        )
    except ValueError as exc:
        raise TokenError("malformed") from exc
    if now_s > claim.expires_s:
        raise TokenError("expired")
    return claim
