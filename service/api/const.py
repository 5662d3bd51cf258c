"""Tunables of the HTTP API, each with the reason for its value."""

from __future__ import annotations

from typing import Final

MAX_REQUEST_BODY_BYTES: Final = 96 * 1024
"""The largest request body taken (413 beyond it). The biggest legitimate body is an emergency
plan changed in the web app: up to 10,000 characters (``EMERGENCY_PLAN_MAX_CHARS``), 90 KiB
form-encoded if every one is a three-byte letter; without a limit one request of gigabytes would
be read into memory (and echoed back in its 422) by the process that sends every alert."""

DATABASE_RETRY_AFTER_S: Final = 5
"""Retry-After of a 503 while the service database is busy or unreachable: a write lock held
by a long transaction (bounded by ``SQLITE_BUSY_TIMEOUT_S``) or a PostgreSQL restart passes in
seconds."""
