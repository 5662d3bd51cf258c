"""An episode the detectors lost across a restart is closed, not left open for ever.

The detectors' state is checkpointed once a minute: a service killed within that minute after an
onset (or restarted without a usable checkpoint) comes back with detectors that never saw the
episode, so none of them will ever close it. Left open, it would absorb the next episode without
a word to anyone and turn a band taken off days later into a critical escalation. Real detector
bank, real alert database, real HTTP receiver; time is a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from flarewatch.payloads import Sample, SampleBatch
from models.bank import DetectorBank
from models.detector import PatientDetector
from service.db import Episode
from service.db import session as db_session
from service.episodes import AlertingProcessor, EpisodeEngine
from service.episodes.checkpoint import DetectorCheckpoint
from service.processing import IngestCycle
from tests.alerting_helpers import (
    AlertingStack,
    FakeClock,
    HttpReceiver,
    stack_for_ann,
)
from tests.test_models_detector import T0, make_samples

MINUTE_MS = 60_000


def minutes_ms(minutes: float) -> int:
    return int(T0 * 1000 + minutes * MINUTE_MS)


@pytest.fixture
def stack(service_db_url: str, http: HttpReceiver) -> Iterator[tuple[AlertingStack, FakeClock]]:
    clock = FakeClock(T0)
    stack = stack_for_ann(service_db_url, http, clock)
    yield stack, clock
    stack.close()


def feed(processor: AlertingProcessor, samples: list[Sample]) -> None:
    """One batch a minute, as a gateway sends them."""
    for i in range(0, len(samples), 12):
        chunk = tuple(samples[i : i + 12])
        batch = SampleBatch(patient_id="p1", device_id="band1", gateway_id="gw1", samples=chunk)
        processor.process(IngestCycle(chunk[-1].time_ms, batches=[batch]))


def episodes(stack: AlertingStack) -> list[tuple[str, bool]]:
    with stack.db.session() as session:
        found = session.scalars(select(Episode).order_by(Episode.id))
        return [(e.state, bool(e.summary.get("expired"))) for e in found]


def surge_then_calm(until_min: float) -> tuple[list[Sample], list[Sample]]:
    """A surge from minute 40 to 70 at rest, calm after: split at minute 50 (after its onset)."""
    surge, calm = (
        make_samples(120, surge_at_min=40, surge_frac=0.4),
        make_samples(until_min, seed=1),
    )
    samples = [s for s in surge if s.time_ms < minutes_ms(70)]
    samples += [s for s in calm if s.time_ms >= minutes_ms(70)]
    return (
        [s for s in samples if s.time_ms < minutes_ms(50)],
        [s for s in samples if s.time_ms >= minutes_ms(50)],
    )


def test_an_episode_the_restarted_detectors_never_saw_is_closed_as_expired(stack, inbox) -> None:
    stack, clock = stack
    before, after = surge_then_calm(until_min=400)
    feed(AlertingProcessor(DetectorBank(PatientDetector()), EpisodeEngine(stack.manager)), before)
    assert episodes(stack) == [("open", False)], "the surge opened an episode"
    stack.scheduler.run_until_idle()
    assert inbox.wait_for("/ann", 1)[0].title.startswith("CRITICAL")

    # killed before the checkpoint caught the onset: a new process, detectors afresh
    restarted = AlertingProcessor(DetectorBank(PatientDetector()), EpisodeEngine(stack.manager))
    feed(restarted, [s for s in after if s.time_ms < minutes_ms(150)])
    assert episodes(stack) == [("open", False)], "within the longest episode it stays open"
    feed(restarted, [s for s in after if s.time_ms >= minutes_ms(150)])
    assert episodes(stack) == [("closed", True)], "closed as expired, not as an all-clear"
    clock.advance(1)
    stack.scheduler.run_until_idle()
    assert inbox.wait_for("/ann", 2)[-1].title.startswith("Closed, still raised")


def test_no_data_never_closes_an_open_episode(stack) -> None:
    stack, _clock = stack
    before, _ = surge_then_calm(until_min=120)
    engine = EpisodeEngine(stack.manager)
    feed(AlertingProcessor(DetectorBank(PatientDetector()), engine), before)
    restarted = AlertingProcessor(DetectorBank(PatientDetector()), EpisodeEngine(stack.manager))
    # hours of silence (a gateway offline), then its replay starts with samples of that time
    late = make_samples(60, seed=2)
    restarted.process(IngestCycle(minutes_ms(600)))
    feed(restarted, [s for s in late if s.time_ms >= minutes_ms(51)])
    assert episodes(stack) == [("open", False)]


def test_stopping_while_the_database_is_down_keeps_the_onset_for_the_restart(
    tmp_path: Path, http: HttpReceiver, inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An onset the database never took is raised again after the restart, not forgotten.

    Saved with the onset in it, the detectors' state says the episode is running: the restarted
    service would never raise it, and nobody would be told of the surge.
    """
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.1)
    stack = stack_for_ann(f"sqlite:///{tmp_path / 'service.sqlite3'}", http, FakeClock(T0))
    checkpoint_path = tmp_path / "detectors.json"
    before, after = surge_then_calm(until_min=120)
    calm = [s for s in before if s.time_ms < minutes_ms(35)]
    surge_start = [s for s in before if s.time_ms >= minutes_ms(35)]

    first = AlertingProcessor(
        DetectorBank(PatientDetector()),
        EpisodeEngine(stack.manager),
        checkpoint=DetectorCheckpoint(checkpoint_path),
    )
    feed(first, calm)  # baselines learnt, checkpoints taken
    holder = stack.db.engine.connect()
    held = holder.begin()  # the database is locked by another writer from here
    feed(first, surge_start)
    assert first.alarms_seen >= 1 and first.undelivered >= 1, "the onset waits for the database"
    first.close()  # stopped before the database came back
    held.rollback()
    holder.close()
    assert episodes(stack) == []

    restarted = DetectorBank(PatientDetector())
    assert DetectorCheckpoint(checkpoint_path).restore(restarted) == 1
    feed(AlertingProcessor(restarted, EpisodeEngine(stack.manager)), after[:240])  # 20 min
    assert episodes(stack) == [("open", False)], "raised again once the surge goes on"
    stack.scheduler.run_until_idle()
    assert inbox.wait_for("/ann", 1)[0].title.startswith("CRITICAL")
    stack.close()
