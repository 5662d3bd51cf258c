"""Server addresses fit for messages and logs: never the credentials a URL may carry."""

from __future__ import annotations

from urllib.parse import urlsplit


def address_of(url: str) -> str:
    """``scheme://host:port/path`` of ``url``: no user, password, query or fragment."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: the rest still tells which server
        port = None
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"


def scrubbed(text: str, url: str) -> str:
    """``text`` (an error's message) with the user and password of ``url`` starred out."""
    parts = urlsplit(url)
    for secret in (parts.password, parts.username):
        if secret:
            text = text.replace(secret, "***")
    return text
