"""Account passwords: Argon2id hashes only, checked in constant time, with a floor on length.

A wrong username costs the same as a wrong password (:func:`verify_password` against a dummy
hash), so the sign-in's timing does not tell which usernames exist.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from flarewatch.errors import ConfigError
from service.accounts.const import (
    ARGON2_MEMORY_KIB,
    ARGON2_PARALLELISM,
    ARGON2_TIME_COST,
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
)


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
    )


@cache
def _dummy_hash() -> str:
    return _hasher().hash("no account has this password, it only costs the same time")


def check_new_password(password: str, username: str) -> str:
    """``password`` if it may be set for ``username``; :class:`ConfigError` saying why not."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ConfigError(
            f"the password is too short: at least {MIN_PASSWORD_CHARS} characters "
            "(a few words make a good one)"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise ConfigError(f"the password is too long: at most {MAX_PASSWORD_CHARS} characters")
    if username.casefold() in password.casefold():
        raise ConfigError("the password must not contain the username")
    if len(set(password)) < 4:
        raise ConfigError("the password repeats too few characters: choose another")
    return password


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string, salt and parameters in it) to store for ``password``."""
    return _hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; ``None`` (no such account) is never true.

    Costs one hash either way. A stored hash that is not an Argon2 string matches nothing.
    """
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        _hasher().verify(stored_hash or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """Whether a hash was made with weaker parameters than today's (rehash at the next sign-in)."""
    try:
        return _hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
