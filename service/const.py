"""Tunables of the service, each with the reason for its value."""

from __future__ import annotations

from typing import Final

from models.const import MAX_EPISODE_S

MAX_ROW_NUMBER: Final = 2**31 - 1
"""Largest database id (and listing limit) taken: ids are INTEGER columns; PostgreSQL refuses
larger ones, and SQLite's driver raises on them."""

INFLUX_MEASUREMENT: Final = "vitals"
"""One measurement for every sample; tags ``patient`` and ``device``, ``seq`` is a field."""

INFLUX_ANNOTATION_MEASUREMENT: Final = "alert_events"
"""Alert events for Grafana's episode marks (``service/alerts/annotations.py``), tag ``patient``."""

INFLUX_WRITE_LINES_MAX: Final = 5000
"""Largest /write request. InfluxDB's docs recommend 5,000 to 10,000 points per request; smaller
requests keep one retry cheap and the body well under the server's max-body-size."""

INFLUX_GZIP_LEVEL: Final = 1
"""Level 1 compresses line protocol ~8x at a fraction of the CPU of the default level 6."""

INFLUX_CONNECT_TIMEOUT_S: Final = 3.0
"""A local or LAN InfluxDB answers a TCP connect in milliseconds; 3 s means it is down."""

SQLITE_BUSY_TIMEOUT_MS: Final = 5000
"""Another process (demo live view, admin command) may briefly hold the write lock."""

INGEST_RECONNECT_MIN_S: Final = 1
INGEST_RECONNECT_MAX_S: Final = 10
"""Broker reconnect backoff (paho doubles from the minimum). paho's default maximum of 120 s would
leave samples waiting two minutes after a broker restart; 10 s costs a broker nothing."""

INGEST_BATCH_SAMPLES: Final = 5000
"""Samples written per store call; matches the InfluxDB request size above."""

INGEST_PIPELINE_CYCLES: Final = 1
"""Decoded cycles waiting for the writer thread. One lets the next cycle be decoded and encoded
while the previous write is in flight (the store, not Python, is then the limit); more would only
hold more unacknowledged messages in memory."""

INGEST_QUEUE_MESSAGES: Final = 20_000
"""Messages between the MQTT thread and the worker. The broker's in-flight limit (100 unacked
messages per client in deploy/mosquitto) normally keeps it far from full; when it is full the MQTT
thread blocks (backpressure), it never drops."""

PROCESS_TICK_S: Final = 1.0
"""The processing hook is called at least this often, even without data, so time-based logic
(no-data alarms, escalation timers) runs on a quiet stream."""

STATS_LOG_INTERVAL_S: Final = 10.0
"""How often ``flarewatch serve`` logs its counters."""

STORE_RETRY_FIRST_S: Final = 0.2
"""First wait after a failed store write; doubles per attempt."""

STORE_RETRY_MAX_S: Final = 5.0
"""Longest wait between store retries: an InfluxDB restart is noticed within 5 s."""

DEDUP_WINDOW_SEQS: Final = 4096
"""Late samples are recognised up to this many sequence numbers behind the newest of a device
(a gateway replaying its outbox while streaming live data); older ones count as duplicates. A
``seq`` further ahead than this starts a new numbering of the device (service/ingest/dedup.py)."""

DEDUP_MAX_NUMBERINGS: Final = 16
"""Numberings (runs of ``seq`` separated by jumps) remembered per device; the one with the fewest
accepted samples is forgotten first."""

DEDUP_SEED_SEQS: Final = 1024
"""Recent stored ``seq`` numbers per device read at start-up to seed the duplicate filter: more
than one message can hold (1000), so one message far ahead cannot hide the device's own numbering
after a restart. About 4 s for 1000 devices on InfluxDB 1.6 (service/stores/influx.py)."""

DEADLETTER_DETAIL_CHARS: Final = 300
"""Validation details in dead-letter reports are cut here (field paths and rules, never values)."""

STOP_TIMEOUT_S: Final = 10.0
"""How long a clean stop waits for the worker to flush and acknowledge."""

PROFILE_REFRESH_S: Final = 60.0
"""How often the running service re-reads the patients' detection profiles and erasures: a change
made with ``flarewatch admin patient set --detection-profile`` or ``patient erase`` (another
process) applies within a minute, for two small queries a minute."""

ERASE_QUIET_S: Final = 15 * 60.0
"""``admin patient erase`` refuses while the patient's newest sample is younger than this: their
band still sends, and its next samples would bring them back. A band's data arrives within
seconds; a gateway that was cut off delivers its backlog later, which is why the advice is to
take the band off the gateway first."""

EPISODE_LOST_AFTER_S: Final = MAX_EPISODE_S + 15 * 60.0
"""An open episode whose patient's data runs this far past its newest alarm is closed as expired.
The detectors close every episode within ``MAX_EPISODE_S`` of its latest onset (data time), so
one still open then is followed by no detector: its state was lost (a restart without a
checkpoint taken after the onset, a state that did not fit, a closing alarm the database
refused for good). Left open, it would absorb the next episode silently and turn a band taken
off days later into a critical escalation. The margin covers batches cut across the limit."""

ALIGN_HOLD_S: Final = 5.0
"""Longest a patient's samples wait (ingest time) for the patient's other devices to catch up
before the detectors get them (``service.episodes.alignment``). Above a gateway's publishing
round and a worker cycle, so that one device's batch a cycle after another's is not skipped;
far below the minutes a detection takes. Only patients with more than one device ever wait."""

ALIGN_DEVICE_LAG_S: Final = 600.0
"""A device this far behind (sample time) what was handed over stops holding the patient's
other devices back until it reports again: switched off or put away, it would otherwise add
``ALIGN_HOLD_S`` to every detection."""

DIARY_TEXT_MAX_CHARS: Final = 500
"""A diary line: what was eaten, taken or felt, in a sentence or two (a paragraph fits)."""
CHANNEL_HEALTH_DAYS: Final = 30
"""The deliveries a channel's health is read from: a month holds a few alerts of most patients
(a channel unused longer says nothing; test messages are not deliveries and do not count)."""
RESPONSE_DAYS: Final = 90
"""How far back the patient's page counts the care team's answering: a season holds the few
alerts and monthly drills of most patients, and what a team did a year ago says little now."""
EMERGENCY_PLAN_MAX_CHARS: Final = 10_000
"""An emergency plan is a few lines (the auto-injector, where it is, whom to call, how to lay
them), but a care team may paste a whole written action plan: every alert carries it in full,
named first and given at the end when longer than 240 characters, and split over several
messages on a channel that takes less (docs/alerts.md, Messages). Ten thousand characters hold
any such plan; beyond them it is a document, not a plan."""
DIARY_FUTURE_SLACK_S: Final = 300.0
"""An entry may be dated this far ahead of the service's clock (a phone's clock runs ahead)."""
DIARY_PAST_MAX_S: Final = 366 * 86_400.0
"""An entry may be dated up to a year back: a diary kept on paper, typed in later."""
DIARY_SHOWN: Final = 30
"""Diary entries on a patient's page, newest first (a few a day over a week or two)."""
DIARY_WORDS: Final = {
    "trigger": "A possible trigger",
    "symptom": "A symptom",
    "medication": "A dose taken",
    "note": "A note",
}
"""How the app names each diary kind (``service.db.models.DiaryKind`` values)."""

PAIRING_FIX: Final = (
    "it may have been reset. Put it in its pairing mode (its manual says how), near the gateway"
)
"""What a wearer does about a band the gateway cannot pair with (messages and pages say it)."""
