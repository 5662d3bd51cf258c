"""Samples of one simulated device over a time range, as numpy arrays (one element per instant)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.sources.base import Reading

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """Generated samples of one device; ``NaN`` in a float array means "not measured".

    ``present`` is False where the whole sample was lost (BLE dropout): such instants are left
    out by :meth:`readings`. ``asleep``, ``activity`` and ``band_on`` are ground truth of the
    confounders, for tests and model evaluation; they are not sent on the wire.
    """

    patient_id: str
    device_id: str
    time_ms: IntArray
    heart_rate_bpm: FloatArray
    rr_counts: IntArray
    """Number of RR intervals of each sample; their values are consecutive in ``rr_values_s``."""
    rr_values_s: FloatArray
    skin_temperature_c: FloatArray
    steps: IntArray
    acceleration_g: FloatArray
    acceleration_sd_g: FloatArray
    contact_detected: BoolArray
    battery_percent: IntArray
    present: BoolArray
    asleep: BoolArray
    activity: FloatArray
    band_on: BoolArray

    def __len__(self) -> int:
        return int(self.time_ms.shape[0])

    def readings(self) -> list[Reading]:
        """The present samples as :class:`Reading` values, in time order."""
        bounds = np.concatenate(([0], np.cumsum(self.rr_counts))).tolist()
        rr_all = np.round(self.rr_values_s, 4).tolist()
        columns = zip(
            self.time_ms.tolist(),
            self.heart_rate_bpm.tolist(),
            self.skin_temperature_c.tolist(),
            self.steps.tolist(),
            self.acceleration_g.tolist(),
            self.acceleration_sd_g.tolist(),
            self.contact_detected.tolist(),
            self.battery_percent.tolist(),
            self.present.tolist(),
            strict=True,
        )
        out: list[Reading] = []
        append = out.append
        for i, (t, hr, temp, steps, acc, acc_sd, contact, battery, present) in enumerate(columns):
            if not present:
                continue
            lo, hi = bounds[i], bounds[i + 1]
            # positional in field order (hot loop); NaN != NaN marks "not measured"
            append(
                Reading(
                    t,
                    None if hr != hr else hr,
                    tuple(rr_all[lo:hi]) if hi > lo else None,
                    None if temp != temp else temp,
                    steps,
                    acc,
                    acc_sd,
                    None,
                    contact,
                    battery,
                )
            )
        return out
