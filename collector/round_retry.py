"""Back-off of a repeated task (the publisher's rounds): a failed run is retried later."""

from __future__ import annotations

from dataclasses import dataclass

from collector.mqtt_reconnect import round_retry_delay_s


@dataclass(slots=True)
class RoundRetry:
    """Failures of a repeated task and when it may run again (times from a monotonic clock)."""

    failed_total: int = 0
    failures_in_a_row: int = 0
    retry_at_s: float | None = None

    def ready(self, now_s: float) -> bool:
        """Whether the task may run now (it is not backing off after a failure)."""
        return self.retry_at_s is None or now_s >= self.retry_at_s

    def failed(self, now_s: float) -> float:
        """Record a failure at ``now_s``; returns the back-off in seconds before the next run."""
        self.failed_total += 1
        self.failures_in_a_row += 1
        delay_s = round_retry_delay_s(self.failures_in_a_row)
        self.retry_at_s = now_s + delay_s
        return delay_s

    def succeeded(self) -> None:
        """Record a successful run: the next failure backs off from the start again."""
        self.failures_in_a_row = 0
        self.retry_at_s = None
