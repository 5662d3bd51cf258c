"""The one HTML page layout of the link pages, and the security headers every response carries.

The pages are opened from links that carry a token (a secret that acknowledges an alert), on
phones, through mail and chat apps. So every response forbids what could leak or misuse it:
caching (a shared proxy or the browser's cache keeping the page), the Referer header, being framed
(a button to click under someone else's page), and any script, image or style from anywhere
(the one inline style is allowed by its hash).
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Final

from fastapi.responses import HTMLResponse

PAGE_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}"
    "button{font-size:1.4rem;padding:1rem 2rem}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(PAGE_STYLE.encode()).digest()).decode()

SECURITY_HEADERS: Final = {
    "content-security-policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-robots-tag": "noindex, nofollow",
}
"""Set on every response of the API, replacing any value a route gave."""

_PAGE: Final = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>{style}</style></head><body><h1>{title}</h1>{body}
</body></html>"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A link page: ``title`` is escaped here, ``body`` is HTML whose values the caller escaped."""
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), style=PAGE_STYLE, body=body), status_code=status
    )


def message_page(title: str, text: str, status: int) -> HTMLResponse:
    """A page that only says ``text`` (escaped): a refusal or an error."""
    return page(title, f"<p>{html.escape(text)}</p>", status)
