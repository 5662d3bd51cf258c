"""Tunables of alerting, each with the reason for its value."""

from __future__ import annotations

from typing import Final

DEFAULT_CANCEL_WINDOW_S: Final = 60.0
"""Time the wearer has to press "I'm OK" on a warning before caregivers are told; Empatica's
seizure alerts give the wearer a comparable short window to cancel a false alarm."""

DEFAULT_SIGNAL_WINDOW_S: Final = 600.0
"""Time the wearer has to answer a lost-signal notice ("no data", "no contact") before caregivers
are told. Bands come off every day: in the Fitbit recordings the detectors raise "no data" (5 min
without a heart rate) 1.97 times per worn day (charging, showers; docs/evaluation-all.md), so
with the 60-s window of a warning caregivers would hear of nearly all of them, ten times the
detectors' false alarms. The wearer is told at once and can answer "I took it off"; unanswered
ones reach caregivers 1.23 times a day (those lasting 10 min more). A signal lost during an open
episode is never held back: the episode turns critical at once."""

DEFAULT_OFF_REMINDER_S: Final = 2 * 3600.0
"""A wearer who answered "I took it off" is reminded after 2 hours that the band is still off:
until it is back nobody watches over them and no alert can reach their caregivers, and a band
put on the charger or left by the basin is easily forgotten. Two hours lets a charge or a long
bath pass without a word (a band charges in one to two hours)."""

DEFAULT_OFF_NOTICE_S: Final = 86_400.0
"""A band the wearer said they took off and still silent a day after it went silent: the
caregivers are told once. They count on flarewatch to alert them, and a day unwatched that
nobody knows of is the gap alarm services close by telling the family when a device has not
checked in for a day."""

OFF_REMINDER_MAX_GAP_S: Final = 86_400.0
"""Reminders come after twice as long each time (2, 4, 8, 16 hours by default), then once a day:
a wearer who leaves the band off on purpose is not nagged, and one who forgot is not left."""

DEFAULT_ACK_TIMEOUT_S: Final = 180.0
"""Without an acknowledgement the next person on the care team is alerted after 3 min: the median
time to cardiac arrest in fatal drug-induced anaphylaxis is about 5 min (GUIDE §1), so a second
person must be moving well before then."""

DEFAULT_REPEAT_INTERVAL_S: Final = 60.0
"""A critical alert is repeated every minute until someone acknowledges it."""

ACK_TOKEN_TTL_S: Final = 24 * 3600.0
"""An acknowledgement link works for a day: long enough to acknowledge late, short enough that a
forwarded old message cannot acknowledge a new alert (tokens are per alert anyway)."""

LABEL_TOKEN_TTL_S: Final = 14 * 86_400.0
"""A "was it a reaction?" link in an all-clear message works for two weeks: people answer when they
have the time, often after talking to their doctor. It can only label that one episode."""

DELIVERY_BACKOFF_BASE_S: Final = 1.0
"""First retry of a failed delivery after 1 s: most push failures are brief network hiccups."""

DELIVERY_BACKOFF_MAX_S: Final = 30.0
"""Longest wait between two attempts on one channel; beyond it the next channel is faster."""

CRITICAL_MAX_ATTEMPTS: Final = 3
"""Attempts per channel for critical messages before falling through to the next channel."""

WARNING_MAX_ATTEMPTS: Final = 4
"""Warnings can afford one more attempt (with longer waits) before falling through."""

SCHEDULER_POLL_S: Final = 0.5
"""The escalation scheduler wakes at least this often; new alerts wake it at once."""

SCHEDULER_STALL_S: Final = 30.0
"""Without a successful pass for this long the scheduler is reported unhealthy (``/readyz``, the
heartbeat): a pass runs every half second, so 30 s is a database outage or a stuck thread, not a
slow moment, and still well inside the 3-min acknowledgement timeout it would hold back."""

DELIVERY_WORKERS: Final = 16
"""Concurrent sends: Apprise blocks on network I/O, a burst of alerts must not queue behind one."""

VITALS_REFRESH_S: Final = 5.0
"""The latest vitals of an open episode are saved to its summary at most this often."""

ERROR_TEXT_MAX_CHARS: Final = 300
"""Delivery error texts kept in the audit trail are cut to this length."""

SECRET_PART_MIN_CHARS: Final = 4
"""Parts of a channel URL this long or longer are scrubbed from Apprise's log lines (shorter ones
would match ordinary words; a token or password is longer)."""

CLOCK_STEP_TOLERANCE_S: Final = 5.0
"""A system clock found this much behind the alert timers' past (a level notified "in the
future", the previous scheduler pass) was stepped back: the timers follow it
(``service.alerts.clock_step``). Above the jitter of a clock being slewed, far below a repeat."""

NAME_IN_TITLE_MAX_CHARS: Final = 24
"""A patient's name is cut to this in a message title, so that what happened still shows on a
lock screen (about 40-60 characters) and the title stays under the shortest title limit of the
push services (Pushover 250, ntfy 200); the body has the full name."""

PLAN_FIRST_LINE_MAX_CHARS: Final = 240
"""An emergency plan up to this long (one line) is the first line of an alert, before the
acknowledgement link; a longer one (or one of several lines) is named there and given in full at
the end, so that the link stays in the first ~400 characters, which a channel that cuts long
messages (SMS, Pushover's 1024) keeps."""

MAX_AWAY_S: Final = 30 * 86_400.0
"""A care-team member can be away for 30 days at most at a time. An absence always ends by
itself: a forgotten "away" must not leave a caregiver last in line for good."""

HELP: Final = "help"
"""The alert kind of a call for help (``service.alerts.help_requests``): not a detector's, no
episode, never from the bands."""

DRILL: Final = "drill"
"""The alert kind of a drill (``service.alerts.drills``): a practice alert, nothing is wrong."""

DRILL_NOTICE_S: Final = 3600.0
"""A drill put on a schedule comes at its time at least an hour later: whoever set it can tell
the others, and nobody meets one a minute after choosing 18:00 at 17:59."""

DRILL_RETRY_S: Final = 3600.0
"""A scheduled drill due while an alert is open waits an hour: a drill must never stand beside a
real alert, and the team has just had the real thing."""

DRILL_MAX_S: Final = 600.0
"""A drill nobody answers ends by itself after 10 min: long enough for the acknowledgement
timeouts of a team of three (3 min each by default) to run, short enough not to repeat into
the evening."""
