"""A patient's devices lined up in sample time before the detectors see them.

A chest strap gives the heart rate and a thermometer the skin temperature. When a gateway's
round of both devices' batches is split across two ingest cycles, the thermometer's readings are
older than the strap's newest the detector has folded in: before the alignment they were all
skipped, and a flush (skin warming with the heart up) went unseen. Real detector bank, real alert
database, real HTTP receiver; time is a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import select

from flarewatch.payloads import Sample, SampleBatch
from models.bank import DetectorBank
from service.const import ALIGN_HOLD_S
from service.db import Episode
from service.db.care_teams import add_device
from service.episodes import AlertingProcessor, EpisodeEngine
from service.episodes.alignment import DeviceAlignment
from service.processing import IngestCycle
from tests.alerting_helpers import AlertingStack, FakeClock, HttpReceiver, stack_for_ann
from tests.test_models_detector import T0, make_samples

ROUND = 12
"""Samples per device per gateway round (one a minute at one sample per 5 s)."""


@pytest.fixture
def stack(service_db_url: str, http: HttpReceiver) -> Iterator[AlertingStack]:
    stack = stack_for_ann(service_db_url, http, FakeClock(T0))
    yield stack
    stack.close()


def strap_and_thermometer(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    strap = [s.model_copy(update={"skin_temperature_c": None}) for s in samples]
    thermo = [s.model_copy(update={"heart_rate_bpm": None}) for s in samples]
    return strap, thermo


def batch(device_id: str, samples: Sequence[Sample]) -> SampleBatch:
    return SampleBatch(
        patient_id="p1", device_id=device_id, gateway_id="gw1", samples=tuple(samples)
    )


def episode_kinds(stack: AlertingStack) -> list[str]:
    with stack.db.session() as session:
        return [e.kind for e in session.scalars(select(Episode).order_by(Episode.id))]


def test_a_round_split_across_cycles_still_shows_the_flush(stack: AlertingStack) -> None:
    strap, thermo = strap_and_thermometer(make_samples(70, temp=31.0, warm_at_min=40, warm_c=1.5))
    bank = DetectorBank()
    processor = AlertingProcessor(bank, EpisodeEngine(stack.manager))
    # both devices known (a device the service has never heard from cannot be waited for)
    first = [batch("thermo", thermo[:ROUND]), batch("strap", strap[:ROUND])]
    processor.process(IngestCycle(strap[ROUND - 1].time_ms + 300, batches=first))
    for i in range(ROUND, len(strap), ROUND):
        now_ms = strap[min(i + ROUND, len(strap)) - 1].time_ms + 300
        # the strap's batch closes one worker cycle, the thermometer's opens the next
        processor.process(IngestCycle(now_ms, batches=[batch("strap", strap[i : i + ROUND])]))
        processor.process(
            IngestCycle(now_ms + 20, batches=[batch("thermo", thermo[i : i + ROUND])])
        )
    assert episode_kinds(stack) == ["flush"]
    assert bank.state_dict()["patients"]["p1"]["rejected_samples"] == 0
    assert processor.alignment.waiting == 0
    assert processor.alignment.released_late == 0


def test_after_a_restart_the_registered_devices_are_waited_for(stack: AlertingStack) -> None:
    """A new service meets the strap's backlog a cycle before the thermometer's: it knows both.

    Before, the alignment learnt a device only from its batches, so the thermometer's first
    batch after a restart was older than the strap's and skipped.
    """
    with stack.db.session() as session:
        add_device(session, "p1", "strap")
        add_device(session, "p1", "thermo")
    strap, thermo = strap_and_thermometer(make_samples(10, temp=31.0))
    bank = DetectorBank()
    processor = AlertingProcessor(bank, EpisodeEngine(stack.manager))
    now_ms = strap[-1].time_ms + 300
    processor.process(IngestCycle(now_ms, batches=[batch("strap", strap)]))
    assert processor.alignment.waiting == len(strap)
    processor.process(IngestCycle(now_ms + 20, batches=[batch("thermo", thermo)]))
    assert processor.alignment.waiting == 0
    assert bank.state_dict()["patients"]["p1"]["rejected_samples"] == 0


def test_a_registered_device_that_never_reports_holds_its_patient_at_most_hold_s(
    stack: AlertingStack,
) -> None:
    with stack.db.session() as session:
        add_device(session, "p1", "strap")
        add_device(session, "p1", "spare")  # in a drawer
    strap, _ = strap_and_thermometer(make_samples(2, temp=31.0))
    bank = DetectorBank()
    processor = AlertingProcessor(bank, EpisodeEngine(stack.manager))
    now_ms = strap[-1].time_ms
    processor.process(IngestCycle(now_ms, batches=[batch("strap", strap[:12])]))
    assert processor.alignment.waiting == 12
    processor.process(IngestCycle(now_ms + int(ALIGN_HOLD_S * 1000)))
    assert processor.alignment.waiting == 0
    processor.process(IngestCycle(now_ms + 6000, batches=[batch("strap", strap[12:])]))
    assert processor.alignment.waiting == 0, "the spare stopped holding"
    assert bank.detector("p1").last_time_s == strap[-1].time_ms / 1000


def test_samples_held_at_shutdown_are_scored_before_the_checkpoint(stack: AlertingStack) -> None:
    strap, thermo = strap_and_thermometer(make_samples(10, temp=31.0))
    bank = DetectorBank()
    processor = AlertingProcessor(bank, EpisodeEngine(stack.manager))
    processor.process(IngestCycle(strap[-1].time_ms, batches=[batch("thermo", thermo[:6])]))
    processor.process(IngestCycle(strap[-1].time_ms, batches=[batch("strap", strap)]))
    assert processor.alignment.waiting == len(strap) - 6
    processor.close()
    assert processor.alignment.waiting == 0
    assert bank.detector("p1").last_time_s == strap[-1].time_ms / 1000


def samples_at(seconds: range) -> tuple[Sample, ...]:
    return tuple(
        Sample(seq=i, time_ms=int((T0 + s) * 1000), heart_rate_bpm=70.0)
        for i, s in enumerate(seconds)
    )


def times(released: list[tuple[str, list[Sample]]]) -> list[tuple[str, list[float]]]:
    return [(pid, [s.time_ms / 1000 - T0 for s in samples]) for pid, samples in released]


def test_one_device_is_never_held() -> None:
    alignment = DeviceAlignment(hold_s=5)
    alignment.add([batch("strap", samples_at(range(0, 10)))], now_s=T0 + 10)
    assert times(alignment.release(T0 + 10)) == [("p1", [float(s) for s in range(10)])]


def test_a_device_lagging_behind_holds_the_other_at_most_hold_s() -> None:
    alignment = DeviceAlignment(hold_s=5, lag_s=600)
    alignment.add([batch("thermo", samples_at(range(0, 60, 10)))], now_s=T0 + 60)
    assert times(alignment.release(T0 + 60)) == [("p1", [0, 10, 20, 30, 40, 50])]
    alignment.add([batch("strap", samples_at(range(45, 70)))], now_s=T0 + 70)
    # the thermometer has reported up to 50 s: newer strap readings wait for it
    assert times(alignment.release(T0 + 70)) == [("p1", [45, 46, 47, 48, 49, 50])]
    assert alignment.waiting == 19
    assert alignment.release(T0 + 74) == []
    assert times(alignment.release(T0 + 75)) == [("p1", [float(s) for s in range(51, 70)])]
    assert alignment.released_late == 19


def test_a_device_far_behind_stops_holding_until_it_reports_again() -> None:
    alignment = DeviceAlignment(hold_s=5, lag_s=600)
    alignment.add([batch("thermo", samples_at(range(0, 1)))], now_s=T0)
    alignment.add([batch("strap", samples_at(range(0, 700)))], now_s=T0 + 700)
    alignment.release(T0 + 700)
    assert alignment.waiting == 699
    alignment.release(T0 + 705)  # held long enough: handed over, the thermometer 699 s behind
    alignment.add([batch("strap", samples_at(range(700, 710)))], now_s=T0 + 710)
    assert times(alignment.release(T0 + 710)) == [("p1", [float(s) for s in range(700, 710)])]
    # back: it holds again
    alignment.add([batch("thermo", samples_at(range(705, 706)))], now_s=T0 + 711)
    alignment.add([batch("strap", samples_at(range(710, 712)))], now_s=T0 + 712)
    assert times(alignment.release(T0 + 712)) == [("p1", [705])]
    assert alignment.waiting == 2


def test_a_device_moved_to_another_patient_stops_holding_the_first() -> None:
    alignment = DeviceAlignment(hold_s=5)
    alignment.add([batch("thermo", samples_at(range(0, 1)))], now_s=T0)
    alignment.add([batch("strap", samples_at(range(0, 20)))], now_s=T0 + 20)
    assert times(alignment.release(T0 + 20)) == [("p1", [0, 0])]
    assert alignment.waiting == 19
    moved = SampleBatch(patient_id="p2", device_id="thermo", samples=samples_at(range(30, 31)))
    alignment.add([moved], now_s=T0 + 21)
    released = times(alignment.release(T0 + 21))
    assert released == [("p1", [float(s) for s in range(1, 20)]), ("p2", [30])]


def test_a_clock_stepped_back_does_not_hold_samples_for_the_length_of_the_step() -> None:
    """The hold is measured on the ingest's wall clock, which NTP may step back (an hour)."""
    alignment = DeviceAlignment(hold_s=5)
    alignment.add([batch("thermo", samples_at(range(0, 1)))], now_s=T0 + 10)
    alignment.add([batch("strap", samples_at(range(0, 10)))], now_s=T0 + 10)
    assert times(alignment.release(T0 + 10)) == [("p1", [0, 0])]
    assert alignment.waiting == 9
    # the clock goes back an hour: held samples arrived "in the future"; they must not wait
    # until the clock reads their arrival again (an hour without detection for the patient)
    assert times(alignment.release(T0 + 11 - 3600)) == [("p1", [float(s) for s in range(1, 10)])]
    assert alignment.waiting == 0


def test_a_device_announced_online_is_waited_for_from_its_first_data() -> None:
    alignment = DeviceAlignment(hold_s=5)
    alignment.announce("p1", "thermo")  # its gateway's status, before any data
    alignment.add([batch("strap", samples_at(range(0, 60)))], now_s=T0 + 60)
    assert alignment.release(T0 + 60) == []
    alignment.add([batch("thermo", samples_at(range(0, 60, 10)))], now_s=T0 + 61)
    released = times(alignment.release(T0 + 61))
    assert released == [("p1", sorted([*map(float, range(0, 51)), 0, 10, 20, 30, 40, 50]))]
    assert alignment.released_late == 0


def test_a_device_announced_again_holds_nothing_once_seen() -> None:
    """Connected but silent, its status refreshed every 30 s: the others wait once, not at
    every refresh; a device seen before is waited for again only once it reports."""
    alignment = DeviceAlignment(hold_s=5, lag_s=600)
    alignment.announce("p1", "thermo")
    alignment.add([batch("strap", samples_at(range(0, 10)))], now_s=T0 + 10)
    assert alignment.release(T0 + 10) == []
    assert len(times(alignment.release(T0 + 15))[0][1]) == 10  # held hold_s once
    for minute in range(1, 4):
        alignment.announce("p1", "thermo")
        alignment.add([batch("strap", samples_at(range(60 * minute, 60 * minute + 10)))], T0)
        assert len(times(alignment.release(T0))[0][1]) == 10  # at once
    assert alignment.released_late == 10
