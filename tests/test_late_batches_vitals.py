"""Samples replayed late (a gateway's outbox after an outage) never pass for the latest vitals.

The ingest hands batches over in arrival order; a replayed hour-old batch may come after the live
one, in the same cycle or alone. Caregivers' reminders of an open episode quote its latest vitals,
and the live view shows them: both must be the newest by sample time. Real alert database and
HTTP receiver; time is a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import select

from flarewatch.payloads import Sample, SampleBatch
from models.alarm import Alarm, AlarmKind, Severity
from service.alerts.render import HEART_RATE_TIME_KEY
from service.db import Episode
from service.episodes import AlertingProcessor, EpisodeEngine
from service.processing import IngestCycle, LatestVitalsProcessor
from tests.alerting_helpers import (
    AlertingStack,
    FakeClock,
    HttpReceiver,
    stack_for_ann,
)

T0 = 1_764_000_000.0
NOW_MS = int(T0 * 1000)
HOUR_MS = 3_600_000


def batch(seq: int, time_ms: int, heart_rate_bpm: float) -> SampleBatch:
    return SampleBatch(
        patient_id="p1",
        device_id="band1",
        samples=(Sample(seq=seq, time_ms=time_ms, heart_rate_bpm=heart_rate_bpm),),
    )


class Scripted:
    """Detectors that raise the alarms put in ``next`` on their next update."""

    def __init__(self) -> None:
        self.next: list[Alarm] = []

    def update(self, items: Sequence[tuple[str, Sequence[Sample]]]) -> list[Alarm]:
        raised, self.next = self.next, []
        return raised

    def tick(self, now_s: float) -> list[Alarm]:
        return []


@pytest.fixture
def stack(service_db_url: str, http: HttpReceiver) -> Iterator[tuple[AlertingStack, FakeClock]]:
    clock = FakeClock(T0)
    stack = stack_for_ann(service_db_url, http, clock)
    yield stack, clock
    stack.close()


def test_reminders_quote_the_newest_vitals_not_a_late_replay(stack, inbox) -> None:
    stack, clock = stack
    bank = Scripted()
    processor = AlertingProcessor(bank, EpisodeEngine(stack.manager))  # type: ignore[arg-type]
    bank.next = [Alarm("p1", T0, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-test-1", {})]
    processor.process(IngestCycle(NOW_MS, batches=[batch(100, NOW_MS, 150.0)]))
    stack.scheduler.run_until_idle()
    [first] = inbox.wait_for("/ann", 1)
    assert "heart rate 150 beats a minute" in first.body

    clock.advance(10)
    live, replayed = batch(110, NOW_MS + 10_000, 155.0), batch(5, NOW_MS - HOUR_MS, 70.0)
    processor.process(IngestCycle(NOW_MS + 10_000, batches=[live, replayed]))
    clock.advance(10)
    processor.process(IngestCycle(NOW_MS + 20_000, batches=[batch(6, NOW_MS - HOUR_MS, 65.0)]))
    for _ in range(4):  # to the first reminder of the unacknowledged alert
        clock.advance(60)
        stack.scheduler.run_until_idle()
    reminders = inbox.to("/ann")[1:]
    assert reminders, "the caregiver is reminded"
    assert all("heart rate 155 beats a minute" in r.body for r in reminders), [
        r.body for r in reminders
    ]
    # the episode keeps when that reading was measured (the acknowledgement page says its age)
    with stack.db.session() as session:
        [episode] = session.scalars(select(Episode)).all()
        vitals = episode.summary["vitals"]
    assert (vitals["heart_rate_bpm"], vitals[HEART_RATE_TIME_KEY]) == (155.0, T0 + 10)


def test_the_live_view_keeps_the_newest_reading() -> None:
    view = LatestVitalsProcessor()
    live, replayed = batch(110, NOW_MS, 155.0), batch(5, NOW_MS - HOUR_MS, 70.0)
    view.process(IngestCycle(NOW_MS, batches=[live, replayed]))
    view.process(IngestCycle(NOW_MS, batches=[batch(6, NOW_MS - HOUR_MS + 1000, 65.0)]))
    reading = view.snapshot()["p1"].vitals["heart_rate_bpm"]
    assert (reading.time_ms, reading.value) == (NOW_MS, 155.0)
    assert view.snapshot()["p1"].samples == 3
