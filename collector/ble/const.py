"""Tunables of the BLE layer, each with the unit in its name and the reason for its value."""

from __future__ import annotations

from typing import Final

# --- Bumble backend ------------------------------------------------------------------------------

BUMBLE_BACKEND_PREFIX: Final = "bumble:"
"""``collector.ble_backend = "bumble:usb:0"`` selects the Bumble backend on that HCI transport."""

BUMBLE_CONNECT_TIMEOUT_S: Final = 10.0
"""Bumble's own default connect timeout is infinite (GUIDE §3); a wearable that advertised a moment
ago answers a connect request within a few connection events, so 10 s means it has gone."""

BUMBLE_DISCONNECT_TIMEOUT_S: Final = 5.0
"""A local disconnect completes at once on a healthy controller; beyond 5 s the link is dead."""

BUMBLE_POWER_ON_TIMEOUT_S: Final = 10.0
"""Opening the HCI transport and powering the controller on (HCI reset and a few reads) takes well
under a second on a healthy controller; Bumble itself waits forever, so a hung dongle (or a socket
nobody answers on) would stall every scan and connect without a word."""

TRANSPORT_REOPEN_INTERVAL_S: Final = 1.0
"""After the HCI transport is lost (dongle unplugged), try to reopen it this often: cheap, and a
replugged dongle is back within a second or two."""

ATT_MTU_REQUEST_BYTES: Final = 247
"""MTU we ask for after connecting: 247 fills one LE data-length-extended PDU (251 bytes minus the
L2CAP header) and is what phones request; Bumble stays at 23 until asked (GUIDE §3)."""

ADVERTISER_FORGET_AFTER_S: Final = 300.0
"""Forget an advertiser (the central's address book, the scanners' seen devices) after 5 min
without hearing it, unless a connection to it is open. Phones and many wearables advertise from a
resolvable private address renewed every 5-15 min (Android CDD 7.4.3 C-3-5; Zephyr's default
BT_RPA_TIMEOUT is 900 s), so a gateway running for months hears millions of addresses; remembering
each for ever grows memory without bound. A wearable not connected advertises every few seconds
at most, so five silent minutes mean it is gone; it is learnt again from its next advertisement."""

ADVERTISER_SWEEP_INTERVAL_S: Final = 30.0
"""Look for silent advertisers at most this often: a sweep walks every entry, while advertisements
arrive many times a second."""

RESOLVED_ADDRESSES_MAX: Final = 4096
"""Private addresses whose resolution (their bonded band's identity, or none) is remembered; past
this the memory starts afresh. Each resolution costs one AES per bond; a private address lives
5-15 min, so even a busy street's phones fill this in hours, not seconds."""

CENTRAL_ADDRESS: Final = "F0:F1:F2:F3:F4:F5"
"""Random static address of a Bumble central (the two top bits set, Core Vol 6 Part B 1.3.2.1)."""

PAIRING_TIMEOUT_S: Final = 30.0
"""Just Works pairing takes a few round trips (well under a second); a band that never answers the
pairing request would otherwise hold the link until it drops (Bumble waits for ever)."""

PASSKEY_ENTRY_TIMEOUT_S: Final = 120.0
"""``flarewatch pair``: time for a person to read the passkey off the band and type it
(Core Vol 3 Part H 2.3.5.3 leaves the timeout to the devices; SMP itself allows 30 s per step)."""

# --- Connection manager --------------------------------------------------------------------------

MAX_CONNECTIONS_PER_ADAPTER: Final = 5
"""One Linux adapter holds about 5-7 connections in practice (GUIDE §3); 5 keeps a slot spare."""

CONNECT_ATTEMPTS: Final = 2
"""Attempts inside one ``establish_connection`` call; the state machine retries after backoff."""

ADVERTISEMENT_FRESH_S: Final = 15.0
"""Connect only to a device heard advertising within this window: connecting to a wearable that
left the room only burns the adapter's single pending-connect slot."""

WATCHDOG_TIMEOUT_S: Final = 10.0
"""No notification for this long although the link is up means the stream stalled silently (a
known failure after connection-parameter updates, GUIDE §3): reconnect. A 1 Hz sensor that misses
ten beats in a row is not coming back on its own."""

WATCHDOG_TICK_S: Final = 1.0
"""How often the manager checks each device's watchdog and backoff deadlines."""

STATUS_INTERVAL_S: Final = 30.0
"""A device status is published at every state change and at least this often while online."""

BATTERY_READ_INTERVAL_S: Final = 300.0
"""Battery level changes slowly; reading it every 5 min costs nothing and spots a dying band."""

# --- Backoff (seconds before the next attempt, by error kind) ------------------------------------

BACKOFF_BASE_S: Final = 1.0
"""First retry after an ordinary failure: quick, most failures are one-off radio hiccups."""

BACKOFF_MAX_S: Final = 60.0
"""Never wait longer than a minute: a patient's data matter more than the radio's rest."""

BACKOFF_OUT_OF_SLOTS_S: Final = 4.0
"""The adapter ran out of connection slots; bleak-retry-connector also waits 4 s for this."""

BACKOFF_NOT_FOUND_S: Final = 2.0
"""The device is gone (out of range): wait for its next advertisement rather than hammering."""

BACKOFF_WATCHDOG_S: Final = 0.5
"""After a stalled stream the link itself was fine; reconnect almost at once."""

BACKOFF_PAIRING_S: Final = 30.0
"""A band that refuses to pair rarely changes its mind within seconds: it waits for a person
(pairing mode, a passkey). Doubling from 30 s reaches the 60-s ceiling at the second refusal."""

BACKOFF_LINK_LOST_S: Final = 0.5
"""A dropped link is usually a brief walk out of range; try again as soon as it advertises."""
