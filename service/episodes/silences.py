"""Held "no data" of a patient whose gateway is catching up: told once it is clear it is one.

The detector says "no data" once its patient's newest heart rate is 5 min older than the ingest
clock, and only once (it then waits for the heart rate to come back). The processing does not
tell it while the patient's batches are still arriving (``RECEIVING_GRACE_S``): a gateway
replaying its outbox, minutes behind, is catching up, not silent. Dropping it there lost it for
good: when the data really had a silence (the band taken off as the gateway fell behind), it was
never told, only its end, and a silence of the data is what ``flarewatch detect`` reports.

So it waits here instead, and is told:

* once the patient's batches stop arriving for the grace, the heart rate still missing (the
  silence is live: as before, only later);
* with its end, when the heart rate comes back at or after the time the silence was raised
  for (the data had the silence too: as the replay of the recording tells it);
* never, with its end neither, when the heart rate comes back before that time (the data only
  came late: there was no silence to tell).

A held one outlives a restart in the detector checkpoint (the detector, its latch set, raises it
once only); the restarted processing gives the gateway the grace again before telling it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.alarm import Alarm, AlarmKind


class HeldSilences:
    """The "no data" alarms held back per patient (see the module docstring)."""

    def __init__(self) -> None:
        self._held: dict[str, Alarm] = {}

    @property
    def held(self) -> int:
        """Patients whose "no data" waits now."""
        return len(self._held)

    def alarms(self) -> list[Alarm]:
        """The held alarms, for the checkpoint."""
        return list(self._held.values())

    def restore(self, alarms: Sequence[Alarm]) -> None:
        """Hold again the alarms a stopped service held (from its checkpoint)."""
        self._held.update((alarm.patient_id, alarm) for alarm in alarms)

    def forget(self, patient_id: str) -> None:
        """Drop the patient's held alarm (their erasure)."""
        self._held.pop(patient_id, None)

    def settle(
        self, scored: Sequence[Alarm], ticked: Sequence[Alarm], receiving: Callable[[str], bool]
    ) -> list[Alarm]:
        """The alarms to tell now, in order, "no data" held back or let out.

        ``scored`` are those the samples raised, ``ticked`` those the passing time raised.
        Only a tick's "no data" waits: one the samples raise lies between two of them (a
        silence of the data). ``receiving`` says whether a patient's batches are arriving.
        """
        out: list[Alarm] = []
        for alarm in scored:
            onset = self._held.pop(alarm.patient_id, None) if _silence_ends(alarm) else None
            if onset is None:
                out.append(alarm)
            elif alarm.time_s >= onset.time_s:  # the data fell silent too
                out += [onset, alarm]
        for alarm in ticked:
            if (
                alarm.kind is AlarmKind.NO_DATA
                and not alarm.resolved
                and receiving(alarm.patient_id)
            ):
                self._held[alarm.patient_id] = alarm
            else:
                out.append(alarm)
        for patient_id in list(self._held):
            if not receiving(patient_id):  # no longer catching up, and still no heart rate
                out.append(self._held.pop(patient_id))
        return out


def _silence_ends(alarm: Alarm) -> bool:
    """A "no data" alarm's end (the heart rate is back)."""
    return alarm.kind is AlarmKind.NO_DATA and alarm.resolved
