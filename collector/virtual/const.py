"""Tunables of the virtual wearables, with the unit in each name and the reason for each value."""

from __future__ import annotations

from typing import Final

ADVERTISING_INTERVAL_MS: Final = 100.0
"""Real bands advertise every 20-1000 ms; 100 ms lets a test reconnect quickly without spending
the virtual world's CPU on advertising reports."""

HEART_RATE_INTERVAL_S: Final = 1.0
"""Heart Rate Measurement is notified about once per second by standard straps and bands."""

TEMPERATURE_INTERVAL_S: Final = 1.0
"""The acceptance load is 1 Hz heart rate + 1 Hz temperature per device (issue 3)."""

STEP_LENGTH_M: Final = 0.7
"""Speed a virtual RSC sensor reports is cadence x step length; 0.7 m is an adult walking step
(the speed is informative only: the collector maps the cadence to steps)."""

WEARABLE_ADDRESS_PREFIX: Final = "C0:5E:00:00"
"""Virtual bands get random static addresses C0:5E:00:00:HH:LL (the two top bits set)."""

SUPERVISION_TIMEOUT_REASON: Final = 0x08
"""HCI error Connection Timeout: what a real controller reports when a device walks away."""
