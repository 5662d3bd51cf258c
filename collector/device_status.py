"""The latest status of every device a gateway serves, published retained on its status topic."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from collector.const import DEVICE_STATUS_INTERVAL_S
from collector.sources.base import Reading
from flarewatch import topics
from flarewatch.payloads import DeviceStatus, LinkState, encode


@dataclass(frozen=True, slots=True)
class _Entry:
    patient_id: str
    device_id: str
    state: LinkState
    reason: str | None = None
    battery_percent: int | None = None
    contact_detected: bool | None = None
    last_seq: int | None = None
    dirty: bool = True
    published_ms: int = 0


class DeviceStatusBoard:
    """Tracks each device's link state, battery, contact and newest seq (thread-safe).

    A change of link state or skin contact makes the status due at once; otherwise it is
    refreshed every ``DEVICE_STATUS_INTERVAL_S`` while samples flow.
    """

    def __init__(self, gateway_id: str, clock_ms: Callable[[], int]) -> None:
        self.gateway_id = gateway_id
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def note_readings(
        self, patient_id: str, device_id: str, readings: Sequence[Reading], last_seq: int
    ) -> None:
        """Update from stored readings: the device is online; battery/contact from the newest."""
        battery = next(
            (r.battery_percent for r in reversed(readings) if r.battery_percent is not None), None
        )
        contact = next(
            (r.contact_detected for r in reversed(readings) if r.contact_detected is not None),
            None,
        )
        with self._lock:
            old = self._entries.get(device_id)
            if old is None or old.patient_id != patient_id:
                old = _Entry(patient_id, device_id, LinkState.ONLINE)
            changed = old.state is not LinkState.ONLINE or (
                contact is not None and contact != old.contact_detected
            )
            self._entries[device_id] = replace(
                old,
                state=LinkState.ONLINE,
                reason=None if old.state is not LinkState.ONLINE else old.reason,
                battery_percent=battery if battery is not None else old.battery_percent,
                contact_detected=contact if contact is not None else old.contact_detected,
                last_seq=last_seq,
                dirty=old.dirty or changed,
            )

    def set_state(
        self,
        patient_id: str,
        device_id: str,
        state: LinkState,
        *,
        reason: str | None = None,
        battery_percent: int | None = None,
        contact_detected: bool | None = None,
    ) -> None:
        """Record a link state change reported by a source; it is published on the next round."""
        with self._lock:
            old = self._entries.get(device_id) or _Entry(patient_id, device_id, state)
            self._entries[device_id] = replace(
                old,
                patient_id=patient_id,
                state=state,
                reason=reason,
                battery_percent=old.battery_percent if battery_percent is None else battery_percent,
                contact_detected=old.contact_detected
                if contact_detected is None
                else contact_detected,
                dirty=True,
            )

    def mark_all_dirty(self) -> None:
        """Republish every status (after a reconnect the broker may hold stale ones)."""
        with self._lock:
            self._entries = {k: replace(e, dirty=True) for k, e in self._entries.items()}

    def due_messages(self) -> list[tuple[str, bytes]]:
        """``(topic, payload)`` of each status changed or due for refresh; marks them sent."""
        now_ms = self._clock_ms()
        refresh_ms = DEVICE_STATUS_INTERVAL_S * 1000
        with self._lock:
            due = [
                e
                for e in self._entries.values()
                if e.dirty or now_ms - e.published_ms >= refresh_ms
            ]
            for entry in due:
                self._entries[entry.device_id] = replace(entry, dirty=False, published_ms=now_ms)
        return [self._message(e, now_ms) for e in due]

    def offline_messages(self, reason: str) -> list[tuple[str, bytes]]:
        """Statuses saying every device is offline (the gateway stops reading them)."""
        now_ms = self._clock_ms()
        with self._lock:
            entries = list(self._entries.values())
        return [
            self._message(replace(e, state=LinkState.OFFLINE, reason=reason), now_ms)
            for e in entries
        ]

    def device_ids(self) -> tuple[str, ...]:
        """Ids of every device seen, sorted (for the gateway status)."""
        with self._lock:
            return tuple(sorted(self._entries))

    def snapshot(self) -> list[DeviceStatus]:
        """Current status of every device, as contract messages."""
        now_ms = self._clock_ms()
        with self._lock:
            entries = list(self._entries.values())
        return [self._status(e, now_ms) for e in entries]

    def _status(self, entry: _Entry, now_ms: int) -> DeviceStatus:
        return DeviceStatus(
            patient_id=entry.patient_id,
            device_id=entry.device_id,
            gateway_id=self.gateway_id,
            time_ms=now_ms,
            state=entry.state,
            battery_percent=entry.battery_percent,
            contact_detected=entry.contact_detected,
            last_seq=entry.last_seq,
            reason=entry.reason,
        )

    def _message(self, entry: _Entry, now_ms: int) -> tuple[str, bytes]:
        topic = topics.device_status_topic(entry.patient_id, entry.device_id)
        return topic, encode(self._status(entry, now_ms))
