"""Server addresses fit for messages and logs: never the credentials a URL may carry."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from flarewatch.const import SECRET_ANYWHERE_MIN_CHARS


def address_of(url: str) -> str:
    """``scheme://host:port/path`` of ``url``: no user, password, query or fragment."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: the rest still tells which server
        port = None
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"


def scrubbed(text: str, url: str, *, hide_user: bool = True) -> str:
    """``text`` (an error's message) with the user and password of ``url`` starred out.

    By position first: the ``user:password@`` of the URL, where the text quotes it, becomes
    ``***@``. Then the user and password themselves (as written in the URL and percent-decoded),
    where the text has them elsewhere: everywhere when long enough to be told from an ordinary
    word (``SECRET_ANYWHERE_MIN_CHARS``), else only as a word of their own. ``hide_user=False``
    keeps the user (a database role, which the redacted URL shows too: "role ... does not
    exist" must stay readable) and stars the password only.
    """
    userinfo, at, _ = urlsplit(url).netloc.rpartition("@")
    if not (at and userinfo):
        return text
    user, _, password = userinfo.partition(":")
    for written in {userinfo, unquote(userinfo)}:
        shown = "***" if hide_user else f"{written.partition(':')[0]}:***"
        text = text.replace(f"{written}@", f"{shown}@")
    hidden = (user, password) if hide_user else (password,)
    secrets = {form for secret in hidden for form in (secret, unquote(secret)) if form}
    # longest first: a user that is part of the password must not leave the rest of it showing
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= SECRET_ANYWHERE_MIN_CHARS:
            text = text.replace(secret, "***")
        else:
            text = re.sub(rf"(?<![^\W_]){re.escape(secret)}(?![^\W_])", "***", text)
    return text
