"""Credentials encrypted at rest: Apprise URLs and second-factor secrets never stored in clear.

The key is derived from the operator's ``service.secret_key`` with HKDF-SHA256 under its own
label, so it is independent of the key that signs acknowledgement links although one secret
configures both. Values are Fernet tokens (AES-128-CBC + HMAC-SHA256, from ``cryptography``)
behind a version prefix, which tells sealed values from plaintext ones (rows written before the
encryption migration) and leaves room for another scheme later.

A session made by :class:`service.db.session.Database` carries the cipher in ``Session.info``;
:func:`seal_url` and :func:`open_url` are the only ways code stores and reads a channel URL;
:func:`seal_secret` and :func:`open_secret` do the same for an account's TOTP secret.
"""

from __future__ import annotations

import base64
from typing import Final

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Account, Channel
from service.errors import ChannelKeyError

SEALED_PREFIX: Final = "fernet1:"
"""Marks a sealed value: Fernet token, key derived as below (version 1)."""
HKDF_INFO: Final = b"flarewatch channel credentials v1"
"""HKDF label: a sub-key of ``service.secret_key`` used for nothing else."""
SESSION_INFO_KEY: Final = "flarewatch.channel_cipher"
"""Where a :class:`Database` session keeps its :class:`ChannelCipher` (``Session.info``)."""
MIGRATION_CIPHER_KEY: Final = "channel_cipher"
"""Alembic ``config.attributes`` entry holding the cipher for the encrypting migration."""
KEY_ADVICE: Final = (
    "set service.secret_key (FLAREWATCH_SERVICE__SECRET_KEY) to the key the channels were stored "
    "with; after changing the key on purpose, run `flarewatch admin db rekey --old-key-file FILE`"
)


class ChannelCipher:
    """Seals and opens channel URLs with a key derived from the service secret."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ChannelKeyError("service.secret_key is empty: channel URLs cannot be encrypted")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
            secret_key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, url: str) -> str:
        """Encrypt ``url`` for storage."""
        return SEALED_PREFIX + self._fernet.encrypt(url.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """Decrypt a stored value; :class:`ChannelKeyError` if it is not ours or the key differs."""
        if not is_sealed(sealed):
            raise ChannelKeyError(
                "a channel URL in the service database is not encrypted: "
                "open the database once with the service (it migrates) before use"
            )
        try:
            return self._fernet.decrypt(sealed.removeprefix(SEALED_PREFIX)).decode()
        except (InvalidToken, UnicodeDecodeError) as exc:
            raise ChannelKeyError(
                f"a channel URL in the service database cannot be decrypted: {KEY_ADVICE}"
            ) from exc

    def can_open(self, sealed: str) -> bool:
        """Tell whether :meth:`open` would succeed (startup key check)."""
        try:
            self.open(sealed)
        except ChannelKeyError:
            return False
        return True


def is_sealed(value: str) -> bool:
    """Tell a sealed value from a plaintext URL (written before encryption existed)."""
    return value.startswith(SEALED_PREFIX)


def session_cipher(session: Session) -> ChannelCipher:
    """The cipher of ``session``'s database; :class:`ChannelKeyError` if it has no key."""
    cipher = session.info.get(SESSION_INFO_KEY)
    if not isinstance(cipher, ChannelCipher):
        raise ChannelKeyError(
            "the service database was opened without service.secret_key: "
            "channel URLs can be neither stored nor read"
        )
    return cipher


def seal_url(session: Session, url: str) -> str:
    """``url`` sealed with the key of ``session``'s database, ready for ``Channel.sealed_url``."""
    return session_cipher(session).seal(url)


def open_url(session: Session, channel: Channel) -> str:
    """The Apprise URL of ``channel`` in clear (to send, test or redact; never to log)."""
    return session_cipher(session).open(channel.sealed_url)


def seal_secret(session: Session, secret: str) -> str:
    """An account's second-factor secret sealed for storage (as channel URLs are)."""
    return session_cipher(session).seal(secret)


def open_secret(session: Session, sealed: str) -> str:
    """A second-factor secret in clear (to check a code or show it at enrolment; never to log)."""
    return session_cipher(session).open(sealed)


def reseal_channels(session: Session, old: ChannelCipher, new: ChannelCipher) -> int:
    """Re-encrypt every channel URL and second-factor secret from ``old``'s key to ``new``'s.

    Returns how many channel URLs (the secrets go along, uncounted).
    """
    channels = session.scalars(select(Channel)).all()
    for channel in channels:
        channel.sealed_url = new.seal(old.open(channel.sealed_url))
    for account in session.scalars(select(Account)).all():
        if account.totp_secret is not None:
            account.totp_secret = new.seal(old.open(account.totp_secret))
        if account.totp_enrolling is not None:
            account.totp_enrolling = new.seal(old.open(account.totp_enrolling))
    return len(channels)
