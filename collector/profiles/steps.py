"""Steps from a cadence: what a Running Speed and Cadence sensor gives the ``steps`` field.

``Sample.steps`` is "steps since the previous sample"; an RSC sensor sends a rate (1/minute) at
about 1 Hz. Each notification's cadence is applied to the time since this device's previous one,
and the fraction of a step left over is carried to the next, so 90/min at 1 Hz gives 1, 2, 1, 2…
and the sum stays right. The first notification of a connection, and the first after a gap longer
than ``CADENCE_MAX_GAP_S``, give 0: nothing is invented for time nobody measured. A cadence of 0
gives an explicit ``steps=0``, which tells the detectors this band does report activity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from collector.const import CADENCE_MAX_GAP_S
from collector.gatt import RscMeasurement
from collector.profiles.base import SampleFieldValue

SECONDS_PER_MINUTE = 60.0


class CadenceSteps:
    """Per-device accumulator turning RSC cadence notifications into whole steps since the last."""

    def __init__(self, max_gap_s: float = CADENCE_MAX_GAP_S) -> None:
        self.max_gap_s = max_gap_s
        self._last_s: float | None = None
        self._carry = 0.0  # fraction of a step counted but not yet reported, in [0, 1)

    def steps(self, cadence_per_min: int, received_s: float) -> int:
        """Whole steps between the previous notification and this one at ``cadence_per_min``."""
        last, self._last_s = self._last_s, received_s
        if last is None or not 0.0 <= received_s - last <= self.max_gap_s:
            self._carry = 0.0  # first notification, a gap, or a clock that went back
            return 0
        exact = cadence_per_min * (received_s - last) / SECONDS_PER_MINUTE + self._carry
        whole = math.floor(exact)
        self._carry = exact - whole
        return whole

    def to_fields(self, value: RscMeasurement, received_s: float) -> Mapping[str, SampleFieldValue]:
        """The ``steps`` field of one RSC Measurement received at ``received_s``."""
        return {"steps": self.steps(value.cadence_per_min, received_s)}
