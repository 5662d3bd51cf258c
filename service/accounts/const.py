"""Tunables of the web app's sign-in, each with the reason for its value."""

from __future__ import annotations

from typing import Final

ARGON2_TIME_COST: Final = 2
ARGON2_MEMORY_KIB: Final = 19 * 1024
ARGON2_PARALLELISM: Final = 1
"""Argon2id with 19 MiB, 2 passes, 1 lane: the OWASP Password Storage Cheat Sheet's minimum
configuration. About 50 ms per sign-in on a small server, and 19 MiB, not the library default's
64 MiB, per concurrent sign-in."""

MIN_PASSWORD_CHARS: Final = 12
"""NIST SP 800-63B-4 asks at least 15 characters of a password used alone; 12 with the lockout
below is the floor OWASP gives. Longer is taken: no composition rules, no upper bound below
:data:`MAX_PASSWORD_CHARS`."""
MAX_PASSWORD_CHARS: Final = 256
"""A bound that keeps hashing a request body cheap; a passphrase fits many times over."""

MAX_FAILED_LOGINS: Final = 5
"""Wrong passwords in a row before the account waits :data:`LOCKOUT_S` (then one more try each
time): an online guesser gets a few hundred tries a day instead of millions."""
LOCKOUT_S: Final = 15 * 60.0
"""How long an account waits after :data:`MAX_FAILED_LOGINS` wrong passwords."""

SESSION_IDLE_S: Final = 12 * 3600.0
"""A browser unused this long signs in again: a caregiver's phone stays signed in through a day
and a night of alerts, a shared computer left signed in does not stay so for days."""
SESSION_MAX_S: Final = 7 * 86400.0
"""A browser signs in again at least weekly, however often it is used."""
SESSION_TOUCH_S: Final = 60.0
"""``last_seen_s`` is written at most this often per session (every page view would write)."""
SESSION_TOKEN_BYTES: Final = 32
"""256 random bits in the cookie; the database keeps their SHA-256 only."""

USERNAME_PATTERN: Final = r"[a-z0-9][a-z0-9._@-]{1,63}"
"""Lowercase letters, digits and ``. _ @ -`` (an e-mail address fits), 2-64 characters."""

ADDRESS_FAILURES_MAX: Final = 10
ADDRESS_WINDOW_S: Final = 5 * 60.0
"""Refused sign-ins from one network address within the window before it waits: the lockout
above guards one account, this guards them all from one guesser trying many usernames."""
ADDRESSES_TRACKED_MAX: Final = 10_000
"""Addresses remembered at once (the oldest forgotten first): bounded memory under a flood."""
SIGN_IN_HASHES_AT_ONCE: Final = 2
"""Passwords checked at the same time: each costs ~50 ms of a core and 19 MiB, and the same server
answers the acknowledgement links, which a flood of sign-ins must not starve."""

VIEW_NOTED_EVERY_S: Final = 3600.0
"""A person's reading of one patient's record goes on the patient's trail at most hourly: who
looked, and when, without a line for every page load of a caregiver watching an alert."""
VIEWS_REMEMBERED_MAX: Final = 10_000
"""(Account, patient) pairs remembered at once for that, the oldest forgotten first."""

TOTP_STEP_S: Final = 30
TOTP_DIGITS: Final = 6
"""RFC 6238's defaults (SHA-1, 30 s, 6 digits): what every authenticator app reads from a QR."""
TOTP_DRIFT_STEPS: Final = 1
"""Codes of one step either side of now are taken too: RFC 6238 §5.2 recommends at most one
step for the time it takes to type and send a code, and a phone's clock off by up to 30 s."""
TOTP_ISSUER: Final = "flarewatch"
"""The name an authenticator app lists the account under, beside the username."""
RECOVERY_CODE_COUNT: Final = 10
RECOVERY_CODE_CHARS: Final = 10
"""Ten single-use codes of ten characters out of 31 (49 random bits each): with the lockout
above, a guesser's chance is nil; only their SHA-256 is kept, as for session tokens."""
SECOND_FACTOR_WINDOW_S: Final = 5 * 60.0
"""After the right password, how long a browser has to give the code before signing in again."""

RESET_LINK_S: Final = 30 * 60.0
"""How long a link to set a new password works (once): long enough to find the mail, short
enough that an old mailbox holds no key to the account (OWASP Forgot Password Cheat Sheet)."""
PASSWORD_LINK_PATH: Final = "/app/reset"
"""Where a link to set a password points, under the service's public address (the web app's
``/reset/{token}`` pages)."""
INVITE_LINK_S: Final = 7 * 86_400.0
"""How long an invitation (a link to set the first password of a new account) works, once: a
week to find the mail or the message it was passed on in; it holds no password, and a new one
replaces it."""
RESET_MAIL_EVERY_S: Final = 5 * 60.0
"""At most one such mail per account in this time: the form cannot be used to flood a mailbox."""
RESET_REQUESTS_MAX: Final = 5
RESET_REQUESTS_WINDOW_S: Final = 15 * 60.0
"""Requests for links from one network address within the window before it waits."""
EMAIL_PATTERN: Final = r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+"
"""An e-mail address as far as a form can tell: something, ``@``, a domain with a dot."""
