"""Tunables of the wire contract, each with the reason for its value."""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 1
"""Major version of the wire contract; it is part of every topic (``flarewatch/v1/...``)."""

TOPIC_ROOT: Final = f"flarewatch/v{SCHEMA_VERSION}"

ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Patient, device and gateway ids: no MQTT wildcards or separators, and no leading ``_``
(reserved for system topics such as ``_gateways`` and ``_deadletter``)."""

MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""Largest accepted message. A 1 Hz wearable batch of 60 samples is ~6 KiB; anything near this
limit is a bug or an attack and is rejected before JSON parsing."""

MAX_SAMPLES_PER_BATCH: Final = 1000
"""A gateway replaying its outbox after a long outage sends many batches, not one huge one."""

MAX_FUTURE_SKEW_MS: Final = 5 * 60 * 1000
"""Samples stamped more than 5 min ahead of the receiver's clock come from a broken device clock."""

MAX_SAMPLE_AGE_MS: Final = 90 * 24 * 3600 * 1000
"""A gateway may replay samples after weeks offline; older than 90 days is a broken clock."""

MIN_VALID_TIME_MS: Final = 1_262_304_000_000
"""2010-01-01T00:00:00Z: anything earlier is an unset real-time clock (epoch 0 and friends)."""

MIN_SECRET_KEY_CHARS: Final = 16
"""Shortest ``service.secret_key`` accepted: catches placeholders, words and typos. It is a
floor, not a target: the documented one-liner (``secrets.token_urlsafe(32)``) gives 43 characters
(256 bits), the length RFC 2104 section 3 advises for an HMAC-SHA256 key."""

REPEATED_LOG_INTERVAL_S: Final = 60.0
"""The same complaint about the same source is logged at most this often, with a count of the
ones held back: a band read once a second while the gateway's clock is unset (before NTP on a
board without a real-time clock) would otherwise write a warning every second per device."""

STALE_TEMPORARY_AGE_S: Final = 24 * 3600.0
"""A temporary file untouched this long is stale even if a process of its id is alive (the id
was reused) or it was written on another host sharing the folder (whose processes cannot be
seen from here): every writer writes its file in one go, in well under a minute."""

HOST_TAG_MAX_CHARS: Final = 32
"""The host part of a temporary file's name is cut to this: names stay far below 255 bytes."""

SECRET_ANYWHERE_MIN_CHARS: Final = 4
"""A user or password this long is starred wherever it stands in a text; a shorter one only
where it stands alone (a one-letter password starred inside every word left nothing to read).
Inside the URL's own text the credentials are starred whatever their length."""
