"""Signed, expiring tokens for the links in messages: acknowledge, "I'm OK", label (HMAC-SHA256).

A token is 36 bytes in 48 characters of unpadded URL-safe base64, the same length for every
alert, so that an SMS's first part of 153 characters holds who, what and the whole link:

=====  ======  =====================================================================
bytes  field
=====  ======  =====================================================================
0      1       format version (:data:`TOKEN_VERSION`)
1      1       action (:data:`_ACTION_CODES`)
2-5    4       alert id, unsigned big-endian
6-9    4       contact id (who it was sent to)
10-13  4       expiry, epoch seconds (unsigned: good until 2106)
14-19  6       :func:`alert_key` of the alert (48 bits)
20-35  16      HMAC-SHA256 of bytes 0-19, its first 128 bits
=====  ======  =====================================================================

RFC 2104 §5 allows a MAC cut to half the hash's length (and no fewer than 80 bits); 128 bits
leave a forger one chance in 2^128 a try. The tokens issued before this format were the claim
as text, a dot and a 20-byte MAC: 70-76 characters, longer with the alert id.
Those links stay good for their lifetime (a day, two weeks for a label link): the verifier takes
both formats, told apart by the dot, and :func:`sign_token` issues only the binary one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
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


TOKEN_VERSION: Final = 1
"""First byte of a binary token; a later layout gets the next number."""
TOKEN_MAC_BYTES: Final = 16
"""HMAC-SHA256 cut to 128 bits: half the hash, the shortest RFC 2104 §5 recommends."""
_CLAIM: Final = struct.Struct(f">BBIII{ALERT_KEY_CHARS // 2}s")
"""Version, action, alert id, contact id, expiry (epoch s), alert key: 20 bytes."""
TOKEN_CHARS: Final = (_CLAIM.size + TOKEN_MAC_BYTES) * 4 // 3
"""48: 36 bytes, a multiple of 3, so the base64 has neither padding nor unused bits."""
_ACTION_CODES: Final = {TokenAction.ACK: 1, TokenAction.CANCEL: 2, TokenAction.LABEL: 3}
_ACTIONS: Final = {code: action for action, code in _ACTION_CODES.items()}
_FIELD_MAX: Final = 2**32 - 1

_SPELLING: Final = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_CHARS}}}")
_LEGACY_SPELLING: Final = re.compile(r"[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{27}")
"""A token of the earlier format: base64 of the claim as text, a dot, of the 20-byte MAC."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes of unpadded URL-safe base64, only in the one spelling :func:`_b64` gives them.

    The decoder ignores the unused low bits of the last character (even in strict mode), so
    ``…iA0`` and ``…iA1`` would be one token; a spelling that does not come back is refused.
    """
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical spelling")
    return data


def _mac(secret: str, message: bytes, size: int) -> bytes:
    # Domain-separated key: the service secret may sign other things later (sessions, exports).
    key = hashlib.sha256(b"flarewatch-alert-token\x00" + secret.encode()).digest()
    return hmac.new(key, message, hashlib.sha256).digest()[:size]


def sign_token(secret: str, claim: TokenClaim) -> str:
    """Encode and sign ``claim`` as a URL-safe token of :data:`TOKEN_CHARS` characters.

    Only tokens bound to one alert are issued: ``claim.alert_key`` is required.
    """
    if claim.alert_key is None or not re.fullmatch(
        rf"[0-9a-f]{{{ALERT_KEY_CHARS}}}", claim.alert_key
    ):
        raise ValueError(f"a token needs the alert key of its alert, not {claim.alert_key!r}")
    for field in ("alert_id", "contact_id", "expires_s"):
        if not 0 <= getattr(claim, field) <= _FIELD_MAX:
            raise ValueError(f"{field.replace('_', ' ')} {getattr(claim, field)} out of range")
    body = _CLAIM.pack(
        TOKEN_VERSION,
        _ACTION_CODES[claim.action],
        claim.alert_id,
        claim.contact_id,
        claim.expires_s,
        bytes.fromhex(claim.alert_key),
    )
    return _b64(body + _mac(secret, body, TOKEN_MAC_BYTES))


def verify_token(secret: str, token: str, now_s: float) -> TokenClaim:
    """Check the signature and expiry of ``token``; raise :class:`TokenError` if unusable.

    Only the spelling the service made is taken: base64 decoding skips characters outside its
    alphabet and ignores unused bits, which would give one token many spellings (and a page that
    echoes the spelling it was opened with, a way to change its meaning). The MAC is compared in
    constant time before anything in the claim is believed.
    """
    if _LEGACY_SPELLING.fullmatch(token):
        claim = _verify_legacy(secret, token)
    elif _SPELLING.fullmatch(token):
        claim = _verify(secret, token)
    else:
        raise TokenError("malformed")
    if now_s > claim.expires_s:
        raise TokenError("expired")
    return claim


def _verify(secret: str, token: str) -> TokenClaim:
    raw = _unb64(token)  # 48 characters of the alphabet: always 36 bytes, one spelling
    body, mac = raw[: _CLAIM.size], raw[_CLAIM.size :]
    if body[0] != TOKEN_VERSION:
        raise TokenError("malformed")
    if not hmac.compare_digest(mac, _mac(secret, body, TOKEN_MAC_BYTES)):
        raise TokenError("bad_signature")
    _version, action, alert_id, contact_id, expires_s, key = _CLAIM.unpack(body)
    if action not in _ACTIONS:
        raise TokenError("malformed")
    return TokenClaim(_ACTIONS[action], alert_id, contact_id, expires_s, key.hex())


_LEGACY_MAC_BYTES: Final = 20


def sign_legacy_token(secret: str, claim: TokenClaim) -> str:
    """A token in the format issued before the binary one, for tests of the upgrade only.

    The service never issues these; :func:`verify_token` still takes them until they expire.
    """
    body = _legacy_body(claim)
    return f"{_b64(body.encode())}.{_b64(_mac(secret, body.encode(), _LEGACY_MAC_BYTES))}"


def _legacy_body(claim: TokenClaim) -> str:
    body = f"{claim.action}.{claim.alert_id}.{claim.contact_id}.{claim.expires_s}"
    return body if claim.alert_key is None else f"{body}.{claim.alert_key}"


def _verify_legacy(secret: str, token: str) -> TokenClaim:
    try:
        body_part, mac_part = token.split(".")
        body = _unb64(body_part)
        mac = _unb64(mac_part)
    except ValueError as exc:
        raise TokenError("malformed") from exc
    if not hmac.compare_digest(mac, _mac(secret, body, _LEGACY_MAC_BYTES)):
        raise TokenError("bad_signature")
    try:
        action, alert_id, contact_id, expires_s, *key = body.decode().split(".")
        if len(key) > 1 or (key and not re.fullmatch(rf"[0-9a-f]{{{ALERT_KEY_CHARS}}}", key[0])):
            raise ValueError("not a token body")
        claim = TokenClaim(
            TokenAction(action),
            int(alert_id),
            int(contact_id),
            int(expires_s),
            key[0] if key else None,
        )
    except ValueError as exc:  # UnicodeDecodeError is one
        raise TokenError("malformed") from exc
    return claim
