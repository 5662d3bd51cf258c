"""Reading one patient's stored samples back in time order, a span at a time (replays, exports)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from flarewatch.payloads import Sample
from models.const import EVAL_CHUNK_S
from models.replay import chunk_by_time
from service.stores.base import SampleStore

READ_SPAN_MS: Final = 3_600_000
"""Samples are read an hour at a time: an hour of a 1-Hz band is 3,600 samples, a few MB as
Python objects; a day of it took about 100 MB a band (290 MB for a strap and a watch)."""


def stored_batches(
    store: SampleStore,
    patient_id: str,
    start_ms: int,
    end_ms: int,
    on_span: Callable[[], None] | None = None,
) -> Iterator[list[Sample]]:
    """The patient's stored samples in ``[start_ms, end_ms)``, oldest first, in 5-min batches.

    Samples of every device of the patient are merged in time order, as the service fed them.
    """
    for low in range(start_ms, end_ms, READ_SPAN_MS):
        found = store.samples(
            patient_id=patient_id, start_ms=low, end_ms=min(low + READ_SPAN_MS, end_ms)
        )
        samples = sorted((s.sample for s in found), key=lambda s: s.time_ms)
        yield from chunk_by_time(samples, EVAL_CHUNK_S)
        if on_span is not None:
            on_span()
