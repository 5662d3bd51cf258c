"""Duplicate filter by (device, seq): at-least-once delivery must not show a sample twice.

Per device it keeps the highest ``seq`` seen and the missing numbers (gaps) at least
``DEDUP_WINDOW_SEQS`` below it, so a sample that arrives late (a gateway replaying its outbox while
it streams live data) is still accepted once, and a redelivered one is dropped. Seeded at start-up
from the store's last ``seq`` per device; gaps from before a restart are not known, so a sample
older than the seed counts as a duplicate (it is in the store already unless it was lost upstream).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from flarewatch.payloads import Sample
from service.const import DEDUP_WINDOW_SEQS


class SeqWindow:
    """Remembers which sequence numbers of each device were accepted already."""

    def __init__(self, window: int = DEDUP_WINDOW_SEQS) -> None:
        self.window = window
        self._high: dict[str, int] = {}
        self._gaps: dict[str, set[int]] = {}

    def seed(self, last_seqs: Mapping[str, int]) -> None:
        """Treat everything up to each device's stored last ``seq`` as seen."""
        for device, seq in last_seqs.items():
            if seq > self._high.get(device, -1):
                self._high[device] = seq

    def last_seq(self, device_id: str) -> int | None:
        """Highest accepted ``seq`` of a device, if any."""
        return self._high.get(device_id)

    def _note_gap(self, device_id: str, start: int, stop: int) -> None:
        if stop <= start:
            return
        gaps = self._gaps.setdefault(device_id, set())
        gaps.update(range(max(start, stop - self.window), stop))
        if len(gaps) > 2 * self.window:
            floor = stop - self.window
            self._gaps[device_id] = {seq for seq in gaps if seq >= floor}

    def accept(self, device_id: str, samples: Sequence[Sample]) -> list[Sample]:
        """The samples (in increasing ``seq`` order) not seen before; records them as seen."""
        known = self._high.get(device_id)
        high = -1 if known is None else known
        first, last = samples[0].seq, samples[-1].seq
        if first > high:  # the usual case: everything is new
            # A new device's numbering may start anywhere (the outbox starts at the clock).
            if known is not None:
                self._note_gap(device_id, high + 1, first)
            if last - first + 1 != len(samples):
                for a, b in itertools.pairwise(samples):
                    self._note_gap(device_id, a.seq + 1, b.seq)
            self._high[device_id] = last
            return list(samples)
        gaps = self._gaps.get(device_id, set())
        fresh = []
        for sample in samples:
            seq = sample.seq
            if seq > high:
                self._note_gap(device_id, high + 1, seq)
                gaps = self._gaps.get(device_id, gaps)
                high = seq
                fresh.append(sample)
            elif seq in gaps:
                gaps.discard(seq)
                fresh.append(sample)
        self._high[device_id] = high
        return fresh
