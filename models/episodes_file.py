"""The labelled episodes file (``flarewatch evaluate --episodes``): its columns and onset sources.

Read by :mod:`models.own_recordings` and written by the service's research export; kept apart so
that the export does not load pandas.
"""

from __future__ import annotations

from typing import Final

EPISODE_COLUMNS: Final = ("subject", "onset_s", "kind")
"""Columns the episodes file must have; ``end_s`` and ``onset_from`` are optional, others are
ignored."""

ONSET_FIRST_SIGN: Final = "first_sign"
ONSET_ADDED: Final = "added"
ONSET_ALARM: Final = "alarm"
"""Where an episode's ``onset_s`` came from (optional column ``onset_from``): a first sign the
care team recorded, a missed reaction they added, or only the alarm that opened the episode. A
delay measured from the alarm's own time says nothing of the detectors' speed, so such episodes
count for sensitivity but give no delay."""
ONSET_SOURCES: Final = (ONSET_FIRST_SIGN, ONSET_ADDED, ONSET_ALARM)
