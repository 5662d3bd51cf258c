"""One log line per kind of complaint and source per interval, with a count of the ones held back.

A fault that repeats with every reading (an unset clock, a band sending a malformed value once a
second) must still be visible at once, but must not flood the log or the disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from flarewatch.const import REPEATED_LOG_INTERVAL_S


class LogThrottle:
    """Decides which repetitions of a complaint are logged: the first, then one per interval."""

    def __init__(
        self,
        interval_s: float = REPEATED_LOG_INTERVAL_S,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self._clock_s = clock_s
        self._last: dict[Hashable, tuple[float, int]] = {}

    def allow(self, key: Hashable) -> int | None:
        """``None`` to stay silent; else how many were held back since the last line for ``key``."""
        now_s = self._clock_s()
        last = self._last.get(key)
        if last is not None and now_s - last[0] < self.interval_s:
            self._last[key] = (last[0], last[1] + 1)
            return None
        self._last[key] = (now_s, 0)
        return 0 if last is None else last[1]
