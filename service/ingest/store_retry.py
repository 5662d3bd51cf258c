"""Preparing and writing to the sample store through an outage, for as long as it lasts.

The delays and the outage log lines are decided in :mod:`service.ingest.backoff`; here they are
applied to the store calls the ingest makes (it keeps the messages unacknowledged meanwhile).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from enum import Enum

from flarewatch.payloads import SampleBatch
from service.const import DEDUP_SEED_SEQS
from service.ingest.backoff import store_retry_delay_s, warn_outage
from service.ingest.stats import IngestCounters
from service.stores.base import EncodedWrite, SampleStore, as_store_error

log = logging.getLogger(__name__)

STORE_REFUSED = "store_refused"
"""Rejection reason: the store refused a write as malformed (see :func:`store_retry_delay_s`)."""


class WriteOutcome(Enum):
    """How a retried write ended."""

    STORED = "stored"
    REFUSED = "refused"  # the store refused it as malformed: its messages are given up
    ABORTED = "aborted"  # the ingest was aborted while the store was down


def prepare_store(store: SampleStore, stop: threading.Event) -> dict[str, list[int]] | None:
    """Prepare ``store`` and read its recent seqs, retrying an outage; ``None`` if ``stop`` is set.

    Raises the store's error if it is not worth retrying (see :func:`store_retry_delay_s`).
    """
    attempt = 0
    logged = ""
    while not stop.is_set():
        try:
            store.prepare()
            return store.recent_seqs(DEDUP_SEED_SEQS)
        except Exception as exc:  # anything a store raises is judged for a retry
            error = as_store_error(exc, store.name)
            attempt += 1
            delay = store_retry_delay_s(error, attempt)
            if delay is None:
                raise error from exc
            logged = warn_outage(error, logged, "sample store not ready; retrying until it is")
            stop.wait(delay)
    return None


def write_retrying(
    store: SampleStore,
    encoded: EncodedWrite,
    counters: IngestCounters,
    abort: threading.Event,
    *,
    log_refusal: bool = True,
) -> WriteOutcome:
    """Write ``encoded``, retrying an outage until it succeeds or ``abort`` is set.

    ``log_refusal=False`` leaves a refusal to the caller to report (one line, not one per write).
    """
    attempt = 0
    logged = ""
    while True:
        started = time.monotonic()
        try:
            store.write_encoded(encoded)
        except Exception as exc:  # noqa: BLE001 - never let a store bug kill the writer
            error = as_store_error(exc, store.name)
            counters.store_error()
            attempt += 1
            delay = store_retry_delay_s(error, attempt)
            if delay is None:
                if log_refusal:
                    log.error("store refused a write: %s", error)
                return WriteOutcome.REFUSED
            logged = warn_outage(
                error,
                logged,
                "store write failed; retrying until it succeeds, with the "
                "messages unacknowledged meanwhile",
            )
            if abort.wait(delay):
                return WriteOutcome.ABORTED
            continue
        counters.store_write((time.monotonic() - started) * 1000)
        if attempt:
            log.info("store write succeeded after %d retries", attempt)
        return WriteOutcome.STORED


def write_each(
    store: SampleStore,
    batches: Sequence[SampleBatch],
    counters: IngestCounters,
    abort: threading.Event,
) -> list[bool] | None:
    """After the store refused a write of ``batches``: which of them it stores on their own.

    One message the store cannot take (a sample beyond its retention policy) must not cost the
    other messages of the write, other patients' included, their storage and processing. Each
    batch is written alone (outages retried as usual); ``None`` if ``abort`` was set meanwhile.
    """
    if len(batches) == 1:
        stored = [False]  # refused already, alone
    else:
        stored = []
        for batch in batches:
            outcome = write_retrying(
                store, store.encode([batch]), counters, abort, log_refusal=False
            )
            if outcome is WriteOutcome.ABORTED:
                return None
            stored.append(outcome is WriteOutcome.STORED)
    log.error(
        "%d of %d message(s) refused by the store, dead-lettered as %s",
        stored.count(False),
        len(stored),
        STORE_REFUSED,
    )
    return stored
