"""Duplicate filter by (device, seq): at-least-once delivery must not show a sample twice.

A device's samples are judged within a *numbering*: a run of sequence numbers that grows without
jumping more than ``DEDUP_WINDOW_SEQS`` ahead. Per numbering the filter keeps the highest ``seq``
accepted and the missing numbers (gaps) at least ``DEDUP_WINDOW_SEQS`` below it, so a sample that
arrives late (a gateway replaying its outbox while it streams live data) is still accepted once and
a redelivered one is dropped.

A ``seq`` further ahead than that starts a new numbering instead of moving the old one's mark: a
gateway that took the device over (it numbers from its clock in ms), or a buggy or forged
publisher (anything up to 2^53 - 1 is valid). The old numbering keeps being judged on its own, so
one far-ahead sample can no longer make every later genuine sample of the device look like a
duplicate. Jumps are counted and logged (device and sequence numbers only). At most
``DEDUP_MAX_NUMBERINGS`` numberings are kept per device; beyond that the one with the fewest
accepted samples is forgotten (if its samples came again they would pass once more; the stores
ignore them, their writes are idempotent).

Seeded at start-up from the store's recent ``seq`` numbers per device (``SampleStore.recent_seqs``):
they give back the numberings, each seen up to its highest number; gaps from before a restart are
not known, so a sample older than that counts as a duplicate (it is in the store already unless it
was lost upstream).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence

from flarewatch.payloads import MAX_SEQ, Sample
from service.const import DEDUP_MAX_NUMBERINGS, DEDUP_WINDOW_SEQS

log = logging.getLogger(__name__)


class _Numbering:
    """One run of a device's sequence numbers: ``[low, high]`` seen except ``gaps``."""

    __slots__ = ("accepted", "gaps", "high", "low")

    def __init__(self, low: int, high: int, accepted: int) -> None:
        self.low = low
        self.high = high
        self.accepted = accepted
        self.gaps: set[int] = set()


class SeqWindow:
    """Remembers which sequence numbers of each device were accepted already."""

    def __init__(self, window: int = DEDUP_WINDOW_SEQS) -> None:
        self.window = window
        self.jumps = 0
        """Samples that started a new numbering of a known device (see the module docstring)."""
        self._numberings: dict[str, list[_Numbering]] = {}  # by ``low``, ascending
        self._jumps_by_device: dict[str, int] = {}

    def seed(self, recent_seqs: Mapping[str, Iterable[int] | int]) -> None:
        """Start from the store: each device's recent stored ``seq`` numbers (before any accept).

        Numbers further apart than the window split them into numberings, each seen from its
        lowest to its highest number; everything below the lowest counts as seen. Gaps from before
        the start are not known (the numbers read need not be all the stored ones in their
        range). A bare number (``SampleStore.last_seqs``) is one numbering up to it.
        """
        for device, stored in recent_seqs.items():
            seqs = [stored] if isinstance(stored, int) else sorted(set(stored))
            if not seqs:
                continue
            numberings = [_Numbering(0, seqs[0], 1)]
            for previous, seq in itertools.pairwise(seqs):
                if seq - previous > self.window:
                    numberings.append(_Numbering(seq, seq, 1))
                else:
                    numberings[-1].high = seq
                    numberings[-1].accepted += 1
            self._numberings[device] = numberings

    def last_seq(self, device_id: str) -> int | None:
        """Highest accepted ``seq`` of a device, if any."""
        numberings = self._numberings.get(device_id)
        return numberings[-1].high if numberings else None

    def numberings(self, device_id: str) -> int:
        """How many numberings of a device are remembered (1 unless its ``seq`` jumped)."""
        return len(self._numberings.get(device_id, ()))

    def remembered_gaps(self, device_id: str) -> int:
        """How many missing sequence numbers of a device are remembered (bounded memory)."""
        return sum(len(run.gaps) for run in self._numberings.get(device_id, ()))

    def _note_gap(self, run: _Numbering, start: int, stop: int) -> None:
        if stop <= start:
            return
        run.gaps.update(range(max(start, stop - self.window), stop))
        if len(run.gaps) > 2 * self.window:
            floor = stop - self.window
            run.gaps = {seq for seq in run.gaps if seq >= floor}

    def accept(self, device_id: str, samples: Sequence[Sample]) -> list[Sample]:
        """The samples (in increasing ``seq`` order) not seen before; records them as seen."""
        first, last = samples[0].seq, samples[-1].seq
        numberings = self._numberings.get(device_id)
        if numberings is None:
            # A new device's numbering may start anywhere (the outbox starts at the clock).
            numberings = self._numberings[device_id] = [_Numbering(first, first - 1, 0)]
        index = len(numberings) - 1
        while index and numberings[index].low > first:
            index -= 1
        run = numberings[index]
        above = numberings[index + 1].low if index + 1 < len(numberings) else MAX_SEQ + 1
        # The usual case: the batch goes on one numbering, everything is new, nothing jumps.
        if (
            run.low <= first
            and run.high < first
            and last - run.high <= self.window
            and last < above
        ):
            self._note_gap(run, run.high + 1, first)
            if last - first + 1 != len(samples):
                for a, b in itertools.pairwise(samples):
                    self._note_gap(run, a.seq + 1, b.seq)
            run.high = last
            run.accepted += len(samples)
            return list(samples)
        fresh = []
        for sample in samples:
            seq = sample.seq
            found = _numbering_of(numberings, seq)
            if found is None or seq > found.high + self.window:
                run = self._start_numbering(device_id, numberings, found, seq)
            elif seq > found.high:
                run = found
                self._note_gap(run, run.high + 1, seq)
                run.high = seq
            elif seq in found.gaps:
                run = found
                run.gaps.discard(seq)
            else:
                continue
            run.accepted += 1
            fresh.append(sample)
        return fresh

    def _start_numbering(
        self, device_id: str, numberings: list[_Numbering], below: _Numbering | None, seq: int
    ) -> _Numbering:
        """``seq`` jumped away from every numbering of the device: count, log, start a new one."""
        self.jumps += 1
        jumps = self._jumps_by_device[device_id] = self._jumps_by_device.get(device_id, 0) + 1
        if jumps & (jumps - 1) == 0:  # the 1st, 2nd, 4th, 8th… jump of a device: bounded logs
            after = "below its lowest numbering" if below is None else f"from {below.high}"
            log.warning(
                "seq of device %s jumped %s to %d (jump %d of this device): a gateway that took "
                "the device over numbers anew, otherwise a buggy or forged publisher; each "
                "numbering is deduplicated on its own",
                device_id,
                after,
                seq,
                jumps,
            )
        if len(numberings) >= DEDUP_MAX_NUMBERINGS:
            # the fewest accepted samples, the highest among equals (the device's own is lowest)
            numberings.remove(min(reversed(numberings), key=lambda run: run.accepted))
        run = _Numbering(seq, seq, 0)
        numberings.append(run)
        numberings.sort(key=lambda numbering: numbering.low)
        return run


def _numbering_of(numberings: list[_Numbering], seq: int) -> _Numbering | None:
    """The numbering ``seq`` falls in: the one starting highest at or below it."""
    for run in reversed(numberings):
        if run.low <= seq:
            return run
    return None
