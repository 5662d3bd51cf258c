"""While the episode database refuses writes, the alerting hook's backlog stays bounded.

An alarm the database could not take waits first in line with everything behind it (nothing
lost, order kept). The latest-vitals refresh of every patient with data used to join that line
once per cycle: an hour of outage with 1,000 patients piled up millions of calls. Real SQLite
database held locked by another writer; real HTTP receiver; time is a fake clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flarewatch.payloads import DeviceStatus, LinkState, Sample, SampleBatch
from service.db import SignalState
from service.db import session as db_session
from service.db.care_teams import add_device
from service.db.models import Device
from service.episodes import AlertingProcessor, EpisodeEngine
from service.processing import IngestCycle
from tests.alerting_helpers import FakeClock, HttpReceiver, build_stack, register_team

T0 = 1_764_000_000.0
PATIENTS = [f"p{n}" for n in range(20)]


class NoAlarms:
    """Detectors that see nothing: the line is held up by a signal change."""

    def update(self, items: object) -> list[object]:
        return []

    def tick(self, now_s: float) -> list[object]:
        return []


def cycle(n: int, **extra: object) -> IngestCycle:
    time_ms = int(T0 * 1000) + n * 1000
    batches = [
        SampleBatch(
            patient_id=pid,
            device_id=f"band-{pid}",
            samples=(Sample(seq=n, time_ms=time_ms, heart_rate_bpm=70.0 + n),),
        )
        for pid in PATIENTS
    ]
    return IngestCycle(time_ms, batches=batches, **extra)  # type: ignore[arg-type]


def test_a_long_outage_queues_each_patients_vitals_once(
    tmp_path: Path, http: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.1)  # wait 0.1 s for the lock
    stack = build_stack(f"sqlite:///{tmp_path / 'service.sqlite3'}", FakeClock(T0))
    register_team(stack.db, "p0", [("ann", [http.url("ann")])])
    with stack.db.session() as session:
        add_device(session, "p0", "band-p0")
    processor = AlertingProcessor(NoAlarms(), EpisodeEngine(stack.manager))  # type: ignore[arg-type]
    holder = stack.db.engine.connect()
    held = holder.begin()  # another writer holds the database's write lock
    offline = DeviceStatus(
        patient_id="p0", device_id="band-p0", time_ms=int(T0 * 1000), state=LinkState.OFFLINE,
        reason="pairing",
    )  # fmt: skip
    processor.process(cycle(0, device_statuses=[offline]))
    for n in range(1, 15):
        battery = DeviceStatus(
            patient_id="p0", device_id="band-p0", time_ms=int(T0 * 1000) + n * 1000,
            state=LinkState.OFFLINE, reason="pairing", battery_percent=50 - n,
        )  # fmt: skip
        processor.process(cycle(n, device_statuses=[battery]))
    assert processor.deliveries_failed == 15, "the signal change was tried every cycle"
    # the signal change, the band's status (one write for all its statuses), a vitals refresh
    # per patient: nothing more however long the outage
    assert processor.undelivered <= 2 + len(PATIENTS), "one vitals refresh per patient at most"

    held.rollback()
    holder.close()
    processor.process(cycle(15))
    assert processor.undelivered == 0 and processor.deliveries_dropped == 0
    with stack.db.session() as session:
        state = session.get_one(SignalState, ("p0", "device_offline"))
        assert state.active
        band = session.get_one(Device, "band-p0")  # its newest status, written once
        assert (band.link_state, band.link_reason, band.battery_percent) == (
            "offline",
            "pairing",
            36,
        )
        assert band.link_since_s == T0  # offline since the first status, though written after
    stack.close()
