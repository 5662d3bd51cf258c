"""The publisher's window: outbox rows batched, published and awaiting their PUBACK.

Owned by the publisher's network thread. Rows are read from the outbox in insertion order behind a
cursor, grouped into batches (:func:`collector.batching.batches_from_rows`), published at QoS 1
while the window has room, and deleted from the outbox when the broker acknowledges their batch.
"""

from __future__ import annotations

import threading
from collections import deque

import paho.mqtt.client as mqtt

from collector.batching import BatchMessage, batches_from_rows
from collector.const import PUBLISH_INFLIGHT_SAMPLES, PUBLISH_READ_ROWS
from collector.outbox import Outbox


class PublishWindow:
    """Bounded in-flight batches of one publisher; ``sent`` is notified after each settled ack."""

    def __init__(
        self,
        outbox: Outbox,
        gateway_id: str,
        *,
        max_messages: int,
        batch_max_samples: int,
        sent: threading.Condition,
    ) -> None:
        self._outbox = outbox
        self._gateway_id = gateway_id
        self._max_messages = max_messages
        self._batch_max_samples = batch_max_samples
        self._sent = sent
        self._cursor = 0
        self._ready: deque[BatchMessage] = deque()
        self._inflight: dict[int, tuple[int, ...]] = {}
        self._inflight_samples = 0
        self._acked_mids: list[int] = []
        self._unsettled: list[int] = []
        """Rows of acknowledged batches not yet deleted (the delete failed: retried next round)."""
        self.published_batches = 0
        self.acked_samples = 0

    @property
    def inflight_batches(self) -> int:
        """Batches published and not yet acknowledged."""
        return len(self._inflight)

    def note_ack(self, mid: int) -> None:
        """Record a PUBACK (called from paho's ``on_publish``); settled by :meth:`settle`."""
        self._acked_mids.append(mid)

    def settle(self) -> None:
        """Delete the rows of acknowledged batches from the outbox and wake waiting senders.

        Rows whose delete fails (outbox locked by another program, disk full) are kept and
        deleted by a later call: the cursor has moved past them, so forgetting them here would
        leave them pending until a restart sends them again.
        """
        for mid in self._acked_mids:
            rows = self._inflight.pop(mid, None)
            if rows:
                self._unsettled.extend(rows)
                self._inflight_samples -= len(rows)
        self._acked_mids.clear()
        if not self._unsettled:
            return
        self._outbox.ack(self._unsettled)  # raises OutboxError: the rows stay for the next try
        self.acked_samples += len(self._unsettled)
        self._unsettled = []
        with self._sent:
            self._sent.notify_all()

    def fill(self, client: mqtt.Client) -> None:
        """Publish the next batches while the window has room for messages and samples."""
        while (
            len(self._inflight) < self._max_messages
            and self._inflight_samples < PUBLISH_INFLIGHT_SAMPLES
        ):
            if not self._ready and not self._read_more():
                return
            batch = self._ready.popleft()
            info = client.publish(batch.topic, batch.payload, qos=1)
            self._inflight[info.mid] = batch.row_ids
            self._inflight_samples += len(batch.row_ids)
            self.published_batches += 1

    def _read_more(self) -> bool:
        """Batch the next outbox rows; the cursor moves only once they are batched."""
        rows = self._outbox.read(self._cursor, PUBLISH_READ_ROWS)
        if not rows:
            return False
        self._ready.extend(batches_from_rows(rows, self._gateway_id, self._batch_max_samples))
        self._cursor = rows[-1].row_id
        return True
