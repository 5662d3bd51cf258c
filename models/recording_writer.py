"""Writing recordings in the replay format: the service's exports.

The other half of :mod:`models.recording`, which reads them back as ``detect`` does.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from flarewatch.output_files import owner_only_file
from flarewatch.payloads import Sample
from models.recording_columns import VITAL_COLUMNS


def recording_rows(samples: Iterable[Sample]) -> Iterator[list[str]]:
    """The replay format's header, then one row per sample, as ``read_recording`` reads them.

    ``time_s`` keeps the millisecond; a missing value is an empty cell; ``contact`` is 0 or 1.
    """
    fields = [(column, name) for column, (name, _, _) in VITAL_COLUMNS.items()]
    yield ["time_s", *(column for column, _ in fields)]
    for sample in samples:
        cells = [f"{sample.time_ms / 1000:.3f}"]
        for _, name in fields:
            value = getattr(sample, name)
            cells.append(
                "" if value is None else str(int(value) if isinstance(value, bool) else value)
            )
        yield cells


@dataclass(frozen=True, slots=True)
class WrittenRecording:
    """What :func:`write_recording` wrote: how many samples, from when to when (epoch seconds)."""

    samples: int
    first_s: float
    last_s: float


def write_recording(path: Path, samples: Iterable[Sample]) -> WrittenRecording | None:
    """Write ``samples`` (in time order) as a gzip recording ``path``, readable by its owner only.

    Returns None, leaving no file, when there was no sample.
    """
    count, first_s, last_s = 0, 0.0, 0.0

    def counted() -> Iterator[Sample]:
        nonlocal count, first_s, last_s
        for sample in samples:
            if count == 0:
                first_s = sample.time_ms / 1000
            last_s = sample.time_ms / 1000
            count += 1
            yield sample

    with gzip.open(owner_only_file(path), "wt", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(recording_rows(counted()))
    if count == 0:
        path.unlink()
        return None
    return WrittenRecording(count, first_s, last_s)
