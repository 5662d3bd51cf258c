"""The latest status of every device a gateway serves, published retained on its status topic."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from collector.clocks import MonotonicClockS, WallClockMs, plausible_time_ms
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
    published_at_s: float | None = None
    """Monotonic time of the last publication (``None``: never published)."""


class DeviceStatusBoard:
    """Tracks each device's link state, battery, contact and newest seq (thread-safe).

    A change of link state or skin contact makes the status due at once; otherwise it is
    refreshed every ``DEVICE_STATUS_INTERVAL_S``, timed with ``monotonic_s`` so that a wall clock
    stepped back by NTP does not hold refreshes back. ``clock_ms`` only stamps ``time_ms``; while
    it reads before 2010 (clock not set yet) no status is produced and changes stay due.
    """

    def __init__(
        self,
        gateway_id: str,
        clock_ms: WallClockMs,
        monotonic_s: MonotonicClockS = time.monotonic,
    ) -> None:
        self.gateway_id = gateway_id
        self._clock_ms = clock_ms
        self._monotonic_s = monotonic_s
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
        """``(topic, payload)`` of each status changed or due for refresh; marks them sent.

        Empty while the wall clock is not set: a status must carry a plausible time.
        """
        now_ms = plausible_time_ms(self._clock_ms())
        if now_ms is None:
            return []
        now_s = self._monotonic_s()
        with self._lock:
            due = [e for e in self._entries.values() if e.dirty or self._refresh_due(e, now_s)]
            messages = [self._message(e, now_ms) for e in due]  # encoded before marked as sent
            for entry in due:
                self._entries[entry.device_id] = replace(entry, dirty=False, published_at_s=now_s)
        return messages

    @staticmethod
    def _refresh_due(entry: _Entry, now_s: float) -> bool:
        return (
            entry.published_at_s is None or now_s - entry.published_at_s >= DEVICE_STATUS_INTERVAL_S
        )

    def offline_messages(self, reason: str) -> list[tuple[str, bytes]]:
        """Statuses saying every device is offline (none while the wall clock is not set)."""
        now_ms = plausible_time_ms(self._clock_ms())
        if now_ms is None:
            return []
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
        """Current status of every device, as contract messages (none while the clock is unset)."""
        now_ms = plausible_time_ms(self._clock_ms())
        if now_ms is None:
            return []
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
