"""The one HTML page layout of the link pages, and the security headers every response carries.

The pages are opened from links that carry a token (a secret that acknowledges an alert), on
phones, through mail and chat apps. So every response forbids what could leak or misuse it:
caching (a shared proxy or the browser's cache keeping the page), the Referer header, being framed
(a button to click under someone else's page), and any script, image or style from anywhere
(the one inline style is allowed by its hash; style attributes are not, so the pages use classes).

A caregiver reads them on a phone, woken at night: the style is for a narrow screen first, with
the one button to press full width and large, above everything else that can wait. Also with the
phone's text at 200 % (sizes in rem, so they follow it), in dark mode (no white page at 3 am), on
a screen reader (one ``main``, one ``h1`` that is also the title) and with a keyboard (a thick
focus ring): ``tests/test_link_pages_accessibility.py`` runs axe-core over every page.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable
from typing import Final, TypeAlias

from fastapi.responses import HTMLResponse

Clock: TypeAlias = Callable[[float], str]
"""A time (epoch s) on the patient's clock, in words."""

PAGE_STYLE: Final = (
    ":root{color-scheme:light dark}"
    "body{font-family:system-ui,sans-serif;font-size:1.05rem;line-height:1.4;max-width:36rem;"
    "margin:0 auto;padding:.5rem .75rem 2rem;overflow-wrap:anywhere;color:#111;background:#fff}"
    "h1{font-size:1.3rem;margin:.6rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .3rem}"
    "button{font-size:1.25rem;padding:.8rem 1.2rem;min-height:3rem}"
    "button.act{display:block;width:100%;min-height:3.5rem;margin:.8rem 0 .3rem;"
    "padding:.6rem .5rem;font-weight:700;color:#fff;background:#b00020;border:0;"
    "border-radius:.6rem}"
    ":focus-visible{outline:.2rem solid currentColor;outline-offset:.2rem}"
    "button.act:focus-visible{outline-color:#111}button.act.calm{background:#1e6b34}"
    "a{color:#0b57d0;display:inline-block;padding:.75rem 0}"
    ".critical{color:#b00020}"
    ".state{font-weight:600;margin:.6rem 0;padding:.5rem .8rem;border-left:.4rem solid #e0a000;"
    "background:#fff4d6}.state.done{border-color:#1e7e34;background:#e6f4ea}"
    ".state.over{border-color:#777;background:#eee}"
    ".plan{margin:1rem 0;padding:.2rem 1rem .6rem;border:3px solid #b00020;border-radius:.5rem;"
    "font-size:1.15rem}.plan p{margin:.3rem 0}"
    ".note{color:#555;font-size:.9rem;margin:.3rem 0}button .note{color:inherit}"
    "ul{padding-left:1.2rem}li{margin:.3rem 0}"
    # the signed-in app (service.api.web_pages): forms, the account line, tables of episodes
    "label{display:block;font-weight:600;margin:.8rem 0 .2rem}"
    "input,select,textarea{font-size:1.1rem;width:100%;box-sizing:border-box;padding:.6rem;"
    "min-height:3rem;font-family:inherit}li form{display:inline}"
    "fieldset{border:0;padding:0;margin:.8rem 0 0}legend{font-weight:600;padding:0}"
    "fieldset label{display:inline-flex;align-items:center;gap:.4rem;min-height:2.75rem;"
    "margin:0 .9rem 0 0;font-weight:400}"
    "input[type=checkbox]{width:1.4rem;height:1.4rem;min-height:0;margin:0}"
    ".account{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;font-size:.9rem}"
    ".account form{margin:0}button.link{font-size:.95rem;min-height:2.75rem;padding:.3rem .8rem}"
    "table{border-collapse:collapse;width:100%;font-size:.95rem}"
    "th,td{text-align:left;padding:.4rem .3rem;border-bottom:1px solid #ccc;vertical-align:top}"
    "td form{display:inline}td button{font-size:.95rem;min-height:2.75rem;padding:.3rem .6rem;"
    "margin:.1rem 0}.error{color:#b00020;font-weight:600}"
    ".chart{margin:.6rem 0}.chart svg{display:block;max-width:100%;height:auto}"
    ".chart .frame{fill:none;stroke:#999;stroke-width:1}.chart .episode{fill:#f6c7cd}"
    ".chart .hr{fill:none;stroke:#b00020;stroke-width:2}"
    ".chart .temp{fill:none;stroke:#0b57d0;stroke-width:2}"
    ".chart .tick{font-size:12px;fill:#333}.chart .mark{fill:#333}"
    "figcaption{font-size:.9rem;color:#333}"
    ".qr svg{display:block;margin:.6rem 0}code.secret{font-size:1.1rem;letter-spacing:.05em}"
    "ul.codes{list-style:none;padding:0;columns:2}"
    "nav.spans a,nav.spans strong{display:inline-block;padding:.75rem .2rem}"
    # dark mode, for a phone read in the dark: no white page; the red button stays as it is
    "@media (prefers-color-scheme:dark){body{color:#eee;background:#121212}"
    "button.act:focus-visible{outline-color:#eee}a{color:#8ab4f8}"
    ".critical{color:#ff8a80}.plan{border-color:#ff8a80}"
    ".state{background:#3d3000}.state.done{background:#12361d}.state.over{background:#333}"
    ".note{color:#bbb}th,td{border-color:#555}.error{color:#ff8a80}"
    ".chart .episode{fill:#5c1f27}.chart .hr{stroke:#ff8a80}.chart .temp{stroke:#8ab4f8}"
    ".chart .tick,.chart .mark{fill:#ddd}figcaption{color:#ddd}}"
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

REFRESH_S: Final = 30
"""How often a page about an alert that is going on loads itself again: the state and who has
been told change by the minute (repeats, escalation), and a phone left open must not show an
alert as waiting that someone took on meanwhile."""

_PAGE: Final = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
{refresh}<style>{style}</style></head><body><main><h1{heading_class}>{title}</h1>{body}
</main></body></html>"""


def page(
    title: str,
    body: str,
    status: int = 200,
    *,
    refresh_url: str | None = None,
    heading_class: str | None = None,
) -> HTMLResponse:
    """A link page: ``title`` is escaped here, ``body`` is HTML whose values the caller escaped.

    ``refresh_url``: load that address again every :data:`REFRESH_S` seconds. A meta refresh
    (no script: the CSP allows none) always navigates with a GET, so it can never post a form
    again, also when the page shown is the answer to a POST.
    """
    refresh = (
        f'<meta http-equiv="refresh" content="{REFRESH_S}; url={html.escape(refresh_url)}">'
        if refresh_url is not None
        else ""
    )
    return HTMLResponse(
        _PAGE.format(
            title=html.escape(title),
            style=PAGE_STYLE,
            body=body,
            refresh=refresh,
            heading_class=f' class="{html.escape(heading_class)}"' if heading_class else "",
        ),
        status_code=status,
    )


def message_page(title: str, text: str, status: int) -> HTMLResponse:
    """A page that only says ``text`` (escaped): a refusal or an error."""
    return page(title, f"<p>{html.escape(text)}</p>", status)
