"""Alert events written to InfluxDB, so Grafana marks episodes on the vitals they came from.

Best effort and off the alerting path: events are queued by the alert manager's listener call and
written by a thread of their own, so a slow or unreachable InfluxDB never delays an alert. The
service database stays the record of truth; a dropped annotation is counted and logged.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Final

from service.alerts.events import AlertEvent
from service.const import INFLUX_ANNOTATION_MEASUREMENT
from service.errors import StoreError
from service.stores.influx import InfluxStore

log = logging.getLogger(__name__)

QUEUE_EVENTS: Final = 1000
"""Alert events are rare (a few per episode); a full queue means InfluxDB has been down long."""
STOP_TIMEOUT_S: Final = 5.0


def annotation_line(event: AlertEvent) -> str:
    """One line of line protocol for an alert event (ids and enums only: nothing to escape)."""
    return (
        f"{INFLUX_ANNOTATION_MEASUREMENT},patient={event.patient_id},kind={event.kind},"
        f'severity={event.severity} event="{event.event}",state="{event.state}",'
        f"alert_id={event.alert_id}i {round(event.time_s * 1000)}"
    )


class InfluxAnnotations:
    """An alert listener (``AlertManager.listeners``) that writes events on its own thread.

    It owns ``store`` (a connection of its own, apart from the ingest's) and closes it on stop.
    """

    def __init__(self, store: InfluxStore, queue_size: int = QUEUE_EVENTS) -> None:
        self.store = store
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[AlertEvent | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None

    def __call__(self, event: AlertEvent) -> None:
        """Queue an event; never blocks the alerting path."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(
            target=self._run, name="flarewatch-annotations", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued (within a few seconds), stop and close the store."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
        self.store.close()

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self.store.write_bodies(self.store.bodies([annotation_line(event)]))
                self.written += 1
            except StoreError as exc:
                self.dropped += 1
                log.warning("alert annotation for alert %s not written: %s", event.alert_id, exc)
