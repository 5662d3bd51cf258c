"""The patient's page: their bands, as their gateways last reported them.

Whether each band is connected and since when, and if not, why, in words a wearer can act on:
a band the gateway cannot pair with needs its pairing mode, one not heard is out of range or
flat. Its battery and skin contact as last read.
"""

from __future__ import annotations

import html
from typing import Final

from flarewatch.payloads import OFFLINE_PAIRING, LinkState
from service.accounts.patient_view import BandRow, PatientView
from service.api.pages import Clock
from service.const import PAIRING_FIX
from service.episodes.signals import SignalKind

LINK_WORDS: Final = {
    LinkState.ONLINE: "connected",
    LinkState.CONNECTING: "connecting",
    LinkState.OFFLINE: "NOT connected",
}

WHY_OFFLINE: Final = {
    OFFLINE_PAIRING: f"the gateway cannot pair with it: {PAIRING_FIX}",
    "not_found": "not heard: out of range, switched off, or its battery is flat",
    "link_lost": "its link dropped (out of range?)",
    "watchdog": "it stopped sending",
    "no_measurements": "it offers nothing flarewatch reads",
    "gateway stopped": "its gateway was stopped",
}
"""The gateway's reasons (``collector.ble.backoff.FailureKind`` and the publisher's) in words."""


def bands_part(view: PatientView, when: Clock) -> str:
    """The "Bands" section: one line per registered band."""
    if not view.bands:
        return "<h2>Bands</h2><p>None registered.</p>"
    lines = "".join(
        f"<li><strong>{html.escape(band.id)}</strong>: {band_words(band, when)}.</li>"
        for band in view.bands
    )
    silent = [since for signal, since in view.lost_signals if signal == SignalKind.GATEWAY_OFFLINE]
    stale = (
        f'<p class="note">The gateway has been silent since {when(silent[0])}: this is what it '
        "last reported.</p>"
        if silent
        else ""
    )
    return f'<h2>Bands</h2>{stale}<ul class="bands">{lines}</ul>'


def band_words(band: BandRow, when: Clock) -> str:
    """One band's link, battery and skin contact, as last reported."""
    if band.link_state is None or band.link_since_s is None:
        return "no gateway has reported on it yet"
    state = LinkState(band.link_state)
    words = f"{LINK_WORDS[state]} since {when(band.link_since_s)}"
    if state is LinkState.OFFLINE and band.link_reason in WHY_OFFLINE:
        words += f": {WHY_OFFLINE[band.link_reason]}"
    last = []
    if band.battery_percent is not None:
        last.append(f"battery {band.battery_percent} %")
    if band.contact_detected is not None:
        last.append("on the skin" if band.contact_detected else "NO skin contact")
    if last:
        words += f"; {', '.join(last)}"
    if band.reported_s is not None and band.reported_s != band.link_since_s:
        words += f" (last report {when(band.reported_s)})"
    return words
