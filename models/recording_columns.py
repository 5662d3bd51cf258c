"""The vital columns of a recording CSV (the ``flarewatch detect`` contract), without pandas.

Read by :mod:`models.recording` and written by :mod:`models.recording_writer`; kept apart so that
the service's exports, which only write recordings, do not load pandas.
"""

from __future__ import annotations

from typing import Final

VITAL_COLUMNS: Final[dict[str, tuple[str, float, float]]] = {
    "hr_bpm": ("heart_rate_bpm", 20.0, 300.0),
    "skin_temp_c": ("skin_temperature_c", 10.0, 45.0),
    "steps": ("steps", 0.0, 10_000.0),
    "acc_g": ("acceleration_g", 0.0, 32.0),
    "acc_sd_g": ("acceleration_sd_g", 0.0, 32.0),
    "contact": ("contact_detected", 0.0, 1.0),
}
"""CSV column -> (Sample field, lowest, highest accepted value): the ranges of the wire contract."""
