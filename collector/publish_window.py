"""The publisher's window: outbox rows batched, published and awaiting their PUBACK.

Owned by the publisher's network thread. Rows are read from the outbox in insertion order behind a
cursor, grouped into batches (:func:`collector.batching.batches_from_rows`), published at QoS 1
while the window has room, and deleted from the outbox when the broker acknowledges their batch.

A batch the broker refuses (MQTT 5 PUBACK reason >= 0x80) is not deleted: its topic is held
(:class:`collector.refused_topics.RefusedTopics`) and the batches of a held topic are skipped,
their rows left in the outbox. When the hold's wait ends, and again when the broker accepts the
probe, the cursor moves back to the topic's oldest skipped row so that they are read again; rows
still in flight at that moment are not published twice.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from collector.batching import BatchMessage, batches_from_rows
from collector.const import LOOP_TIMEOUT_S, PUBLISH_INFLIGHT_SAMPLES, PUBLISH_READ_ROWS
from collector.outbox import Outbox, PendingRow
from collector.refused_topics import RefusedTopics
from flarewatch.log_throttle import LogThrottle


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
        monotonic_s: Callable[[], float],
    ) -> None:
        self._outbox = outbox
        self._gateway_id = gateway_id
        self._max_messages = max_messages
        self._batch_max_samples = batch_max_samples
        self._sent = sent
        self._monotonic_s = monotonic_s
        self.refusals = RefusedTopics(LogThrottle(clock_s=monotonic_s))
        self._cursor = 0
        self._replay_below = 0
        """Rows up to this id may be in flight although behind the cursor (it moved back)."""
        self._ready: deque[BatchMessage] = deque()
        self._inflight: dict[int, tuple[str, tuple[int, ...]]] = {}
        self._other_topics: dict[int, str] = {}
        """Topics of published status messages awaiting their PUBACK (no outbox rows)."""
        self._held_from: dict[str, int] = {}
        """Per held topic, its oldest row skipped or refused (read again when probing)."""
        self._inflight_samples = 0
        self._acks: list[tuple[int, ReasonCode | None]] = []
        self._unsettled: list[int] = []
        """Rows of acknowledged batches not yet deleted (the delete failed: retried next round)."""
        self.published_batches = 0
        self.acked_samples = 0
        self.careful = False
        """One message (batch or status) in flight at a time, set by the publisher after a session
        that ended short without a refusal. Mosquitto 2.0.11 closes the connection after refusing
        a publish; with more publishes unread on its side the close becomes a TCP reset and the
        PUBACK saying why is lost (measured here), so the refused message is sent again and again.
        Alone in flight, its refusal can be read. (The publisher then also takes a new client:
        paho 2.2 would re-send every unacknowledged message at once on reconnect.)"""

    @property
    def inflight_batches(self) -> int:
        """Batches published and not yet acknowledged."""
        return len(self._inflight)

    def note_ack(self, mid: int, refusal: ReasonCode | None = None) -> None:
        """Record a PUBACK, with its reason if the broker refused the publish (from ``on_publish``).

        Settled by :meth:`settle`.
        """
        self._acks.append((mid, refusal))

    def settle(self) -> None:
        """Delete the rows of acknowledged batches from the outbox and wake waiting senders.

        Rows of refused batches stay in the outbox and their topic is held. Rows whose delete
        fails (outbox locked by another program, disk full) are kept and deleted by a later call:
        the cursor has moved past them, so forgetting them here would leave them pending until a
        restart sends them again.
        """
        now_s = self._monotonic_s()
        for mid, refusal in self._acks:
            batch = self._inflight.pop(mid, None)
            topic, rows = batch if batch else (self._other_topics.pop(mid, None), ())
            self._inflight_samples -= len(rows)
            if topic is None:
                continue
            if refusal is not None:
                self.refusals.refused(topic, str(refusal), int(refusal.value), now_s)
                self._hold_rows(topic, rows)
                continue
            self._unsettled.extend(rows)
            if self.refusals.accepted(topic):
                self._rewind(self._held_from.pop(topic, None))
        self._acks.clear()
        if not self._unsettled:
            return
        self._outbox.ack(self._unsettled)  # raises OutboxError: the rows stay for the next try
        self.acked_samples += len(self._unsettled)
        self._unsettled = []
        with self._sent:
            self._sent.notify_all()

    def publish_other(
        self, client: mqtt.Client, topic: str, payload: bytes
    ) -> mqtt.MQTTMessageInfo | None:
        """Publish a retained status at QoS 1 unless held back (then ``None``).

        Held back: its topic is refused, or the window is careful and a message is in flight.
        """
        if self.careful and (self._inflight or self._other_topics):
            return None  # not queued: statuses are refreshed anyway
        if not self.refusals.may_publish(topic, self._monotonic_s()):
            return None
        info = client.publish(topic, payload, qos=1, retain=True)
        self._other_topics[info.mid] = topic
        return info

    def fill(self, client: mqtt.Client) -> int:
        """Publish the next batches while the window has room; returns how many were published."""
        now_s = self._monotonic_s()
        for topic in self.refusals.take_due(now_s):
            self._rewind(self._held_from.pop(topic, None))
        published = 0
        limit = 1 - len(self._other_topics) if self.careful else self._max_messages
        while len(self._inflight) < limit and self._inflight_samples < PUBLISH_INFLIGHT_SAMPLES:
            if not self._ready and not self._read_more():
                break
            batch = self._ready.popleft()
            if not self.refusals.may_publish(batch.topic, now_s):
                self._hold_rows(batch.topic, batch.row_ids)
                continue
            info = client.publish(batch.topic, batch.payload, qos=1)
            self._inflight[info.mid] = (batch.topic, batch.row_ids)
            self._inflight_samples += len(batch.row_ids)
            self.published_batches += 1
            published += 1
        return published

    def flush(self, client: mqtt.Client, timeout_s: float, session_up: Callable[[], bool]) -> None:
        """Publish and settle for up to ``timeout_s`` while the session is up (before a stop).

        It ends early once nothing is in flight and nothing more can go out (the outbox is empty,
        or what it holds belongs to topics the broker refuses).
        """
        until_s = time.monotonic() + timeout_s
        while session_up() and time.monotonic() < until_s:
            client.loop(LOOP_TIMEOUT_S)
            self.settle()
            if not self.fill(client) and not self._inflight:
                return

    def restart(self) -> None:
        """Forget what is in flight (a new client will not get its PUBACKs): read it all again."""
        self._rewind(1)
        self._inflight.clear()
        self._other_topics.clear()
        self._inflight_samples = 0
        self._acks.clear()
        self._held_from.clear()
        self.refusals.forget_probes()

    def _hold_rows(self, topic: str, row_ids: tuple[int, ...]) -> None:
        """Leave rows of a held topic in the outbox, to be read again when it is probed."""
        if row_ids:
            oldest = min(row_ids)
            self._held_from[topic] = min(oldest, self._held_from.get(topic, oldest))

    def _rewind(self, row_id: int | None) -> None:
        """Move the cursor back so that rows from ``row_id`` on are read again."""
        if row_id is None:
            return
        ready_oldest = min((min(b.row_ids) for b in self._ready), default=row_id)
        self._ready.clear()  # their rows are read again
        self._replay_below = max(self._replay_below, self._cursor)
        self._cursor = min(self._cursor, row_id - 1, ready_oldest - 1)

    def _read_more(self) -> bool:
        """Batch the next outbox rows; the cursor moves only once they are batched."""
        rows = self._outbox.read(self._cursor, PUBLISH_READ_ROWS)
        if not rows:
            return False
        fresh = self._not_in_flight(rows)
        self._ready.extend(batches_from_rows(fresh, self._gateway_id, self._batch_max_samples))
        self._cursor = rows[-1].row_id
        return True

    def _not_in_flight(self, rows: list[PendingRow]) -> list[PendingRow]:
        """Rows read again after a rewind, without those still in flight or awaiting deletion."""
        if rows[0].row_id > self._replay_below:
            return rows
        busy = set(self._unsettled)
        for _, row_ids in self._inflight.values():
            busy.update(row_ids)
        return [row for row in rows if row.row_id not in busy]
