"""Tunables of the collector: ``Final`` constants with the unit in the name and why that value."""

from __future__ import annotations

from typing import Final

# --- outbox --------------------------------------------------------------------------------------

OUTBOX_DISK_BUDGET_BYTES: Final = 512 * 1024 * 1024
"""Pending samples kept while the broker is unreachable. ~150 B per sample: about 3.5 M samples,
i.e. 10 wearables at 1 Hz for ~4 days, yet small against a Raspberry Pi's SD card."""

OUTBOX_WARN_FRACTION: Final = 0.8
"""Warn (log + status) once the pending data fills this share of the disk budget."""

OUTBOX_ROW_OVERHEAD_BYTES: Final = 48
"""Estimated SQLite cost per row beyond the JSON body (ids, seq, b-tree cell), for the budget."""

OUTBOX_BUSY_TIMEOUT_MS: Final = 10_000
"""Wait this long for another connection's write lock (a backup tool, the sqlite3 shell)."""

OUTBOX_SYNCHRONOUS: Final = "NORMAL"
"""WAL with synchronous=NORMAL: a committed transaction survives a process crash (SIGKILL) because
it is in the OS page cache; only an OS crash or power cut can lose the last commits. FULL would
fsync every batch; pass ``synchronous="FULL"`` to :class:`collector.outbox.Outbox` where power
cuts are common and the disk is fast enough."""

# --- MQTT publisher ------------------------------------------------------------------------------

PUBLISH_BATCH_MAX_SAMPLES: Final = 500
"""Most samples per SampleBatch message (the contract allows MAX_SAMPLES_PER_BATCH). A batch also
closes before its payload would exceed the contract's flarewatch.const.MAX_PAYLOAD_BYTES: 500
contract-valid samples with 64 RR intervals each encode to ~480 KB, which the service would
dead-letter as too large after the broker acknowledged it."""

PUBLISH_READ_ROWS: Final = 5_000
"""Outbox rows read per refill of the publishing window (grouped per device into batches)."""

PUBLISH_INFLIGHT_MESSAGES: Final = 64
"""Batches published but not yet acknowledged. Bounds memory and the duplicates a crash can cause;
64 batches of up to 500 samples keeps a LAN link busy without waiting for each PUBACK."""

PUBLISH_INFLIGHT_SAMPLES: Final = 20_000
"""Samples published but not yet acknowledged, across all in-flight batches."""

LOOP_TIMEOUT_S: Final = 0.02
"""Longest the network thread sleeps in select(): the worst added latency of a new submission."""

DEVICE_STATUS_INTERVAL_S: Final = 30.0
"""Refresh of each device's retained status (battery, contact, last seq) while samples flow; a
change of link state or contact is published at once."""

GATEWAY_STATUS_INTERVAL_S: Final = 10.0
"""Refresh of the retained gateway status (outbox_pending), so a stalled replay is visible."""

ROUND_RETRY_BASE_DELAY_S: Final = 1.0
"""A publishing round that failed (outbox locked, unexpected error) is retried after this long,
doubling while it keeps failing: most failures are transient and samples wait in the outbox."""

ROUND_RETRY_MAX_DELAY_S: Final = 60.0
"""Cap of that retry delay: a lasting failure (disk full) is retried and logged once a minute, not
fifty times a second, while the MQTT session stays up."""

PUBLISH_REFUSED_BASE_DELAY_S: Final = 5.0
"""A topic whose publish the broker refused (MQTT 5 PUBACK reason >= 0x80, e.g. 0x87 Not authorized
after a device moved to another patient) is tried again with one batch after this long, doubling
while the broker keeps refusing it. Its samples wait in the outbox meanwhile."""

PUBLISH_REFUSED_MAX_DELAY_S: Final = 60.0
"""Cap of that delay: once the ACL is fixed the held samples flow within a minute, while a lasting
refusal costs one batch a minute (Mosquitto 2.0.11 also closes the connection after each)."""

SESSION_EXPIRY_S: Final = 60 * 24 * 3600
"""MQTT 5 Session Expiry Interval the gateway asks for (with clean start off): its session outlives
weeks of outage, as ``persistent_client_expiration 60d`` keeps 3.1.1 sessions in
deploy/mosquitto. The MQTT 5 default, 0, would end the session with each connection (MQTT 5.0
§3.1.2.11.2)."""

CONNECT_TIMEOUT_S: Final = 10.0
"""TCP/TLS connect timeout: a broker behind a dead route must not block the thread for minutes.
Also how long a CONNECT may go unanswered before the attempt counts as failed."""

MQTT5_REPROBE_AFTER_S: Final = 300.0
"""A 3.1.1 session taken after one unanswered MQTT 5 CONNECT (maybe just a broker busy starting
up) is ended after this long, at a moment without batches in flight, to try MQTT 5 again. Without
it a session that never drops kept the gateway on 3.1.1 for weeks, where the broker acknowledges a
publish its ACL denies and the gateway deletes those samples. Five minutes outlasts a broker's
start-up while few samples are exposed meanwhile; a broker that truly lacks MQTT 5 costs one more
unanswered CONNECT (``CONNECT_TIMEOUT_S``), once, and then keeps 3.1.1."""

MQTT5_REPROBE_DRAIN_S: Final = 5.0
"""Before that planned reconnect nothing new is published, and it waits up to this long for the
PUBACKs of the batches in flight (milliseconds on a LAN) so that none is sent twice. What is still
unacknowledged then is sent again from the outbox (the service drops duplicates by seq)."""

# reconnect backoff (see collector.mqtt_reconnect.reconnect_delay_s)
RECONNECT_BASE_DELAY_S: Final = 0.25
"""First retry after a refused or dropped connection: a restarting broker is back within seconds."""

RECONNECT_MAX_DELAY_S: Final = 15.0
"""Cap for transient failures: a gateway must catch a returning broker quickly (data is queued)."""

RECONNECT_CONFIG_DELAY_S: Final = 60.0
"""Retry interval when the broker refuses us (bad credentials, TLS certificate): a person must fix
the configuration, hammering the broker would not help and may get the client banned."""

RECONNECT_DNS_DELAY_S: Final = 5.0
"""Minimum delay when the broker's name does not resolve (network still coming up on boot)."""

RECONNECT_JITTER_FRACTION: Final = 0.2
"""Random spread of each delay (± this share), so many gateways do not reconnect in lockstep."""

SHORT_SESSION_S: Final = 10.0
"""A session the broker closes sooner than this after accepting it does not reset the reconnect
backoff. Two gateways sharing one client id take the session from each other at once: with the
backoff reset on every accepted connection they would reconnect four times a second for good."""

SHORT_SESSIONS_WARN_AFTER: Final = 3
"""Short sessions in a row before the gateway says why (once per streak, not at every drop)."""

SHUTDOWN_FLUSH_TIMEOUT_S: Final = 5.0
"""On a clean stop, wait this long for in-flight batches to be acknowledged before disconnecting."""

# --- device profiles -----------------------------------------------------------------------------

CADENCE_MAX_GAP_S: Final = 10.0
"""Steps are counted from a cadence (Running Speed and Cadence) only between notifications at most
this far apart. RSC sensors notify about once a second, and the BLE watchdog reconnects after 10 s
of silence (``collector.ble.const.WATCHDOG_TIMEOUT_S``): a longer gap lost notifications, and
assuming the last cadence held throughout would invent minutes of walking. The next notification
then counts from zero."""
