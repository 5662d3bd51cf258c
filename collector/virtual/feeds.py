"""Vitals feeds for virtual wearables: the physiological simulator at wall-clock time."""

from __future__ import annotations

from collections.abc import Callable

from collector.outbox import wall_clock_ms
from collector.simulation import PatientSimulator, random_profile
from collector.sources.base import Reading
from collector.virtual.wearable import SteadyVitals, Vitals

MS_PER_MINUTE = 60_000
MAX_CADENCE_PER_MIN = 255
"""RSC Instantaneous Cadence is a uint8 (RSCS §3.1.1.3)."""

BAND_WORN_BEFORE_MS = 3_600_000
"""Virtual bands have been worn for an hour when the world starts: past the ~10 min sensor
warm-up (GUIDE §3), so the first values are already skin values."""


class SimulatorVitals:
    """What :class:`collector.simulation.PatientSimulator` says the band measures right now.

    The simulator is a pure function of time, so asking it for the current grid instant is all a
    virtual band needs. Instants it leaves out (BLE dropouts, band off) repeat the last values.
    """

    def __init__(
        self, simulator: PatientSimulator, clock_ms: Callable[[], int] = wall_clock_ms
    ) -> None:
        self.simulator = simulator
        self._clock_ms = clock_ms
        self._last = SteadyVitals().vitals_at(0.0)

    def vitals_at(self, elapsed_s: float) -> Vitals:
        """Vitals of the newest simulated instant (``elapsed_s`` is implied by the wall clock)."""
        now = self._clock_ms()
        readings = self.simulator.generate(now - self.simulator.interval_ms, now + 1).readings()
        if readings:
            self._last = _vitals(readings[-1], self._last, self.simulator.interval_ms)
        return self._last


def _vitals(reading: Reading, last: Vitals, interval_ms: int) -> Vitals:
    cadence = last.cadence_per_min
    if reading.steps is not None:  # steps in one simulator interval, as a rate per minute
        cadence = min(round(reading.steps * MS_PER_MINUTE / interval_ms), MAX_CADENCE_PER_MIN)
    return Vitals(
        heart_rate_bpm=reading.heart_rate_bpm or last.heart_rate_bpm,
        skin_temperature_c=reading.skin_temperature_c or last.skin_temperature_c,
        rr_intervals_s=reading.rr_intervals_s or (),
        contact_detected=bool(reading.contact_detected),
        battery_percent=(
            last.battery_percent if reading.battery_percent is None else reading.battery_percent
        ),
        cadence_per_min=cadence,
    )


def simulated_vitals(index: int, seed: int = 1) -> SimulatorVitals:
    """The simulator feed of cohort member ``index`` (a reproducible random patient)."""
    profile = random_profile(seed, index)
    simulator = PatientSimulator(
        profile, seed=seed, band_on_ms=wall_clock_ms() - BAND_WORN_BEFORE_MS
    )
    return SimulatorVitals(simulator)
