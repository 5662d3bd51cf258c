"""A band taken off the wrist: told from its skin temperature, never mistaken for a patient.

Most bands have no contact bit, and the Empatica E4 goes on reporting a heart rate from the table
(in stress-predict session S28 it climbed from 82 to 114 bpm after the band came off, with the
wrist motionless: the shape of a surge followed by syncope).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from flarewatch.payloads import Sample
from models.alarm import Alarm, AlarmKind
from models.datasets import DATA_DIR, load_stress_predict
from models.detector import PatientDetector

T0 = 1_764_000_000.0
ROOM_C = 23.0
SKIN_C = 32.5


def band(
    minutes: float, start_min: float, rng: np.random.Generator, phase: str, room_c: float = ROOM_C
) -> list[Sample]:
    """One sample a second: worn at rest, lying on a table, or being put back on."""
    out = []
    for i in range(int(minutes * 60)):
        t = start_min * 60 + i
        hr: float | None = 70.0 + rng.normal(0, 1.5)
        if phase == "worn":
            temp, acc = SKIN_C + rng.normal(0, 0.02), rng.uniform(0.005, 0.012)
        elif phase == "table":
            # the sensor cools to the room within a minute; the optical heart rate drifts up
            temp = room_c + (SKIN_C - room_c) * math.exp(-i / 8.0) + rng.normal(0, 0.02)
            hr, acc = 80.0 + min(i, 300) / 6.0 + rng.normal(0, 1.0), rng.uniform(0.0005, 0.002)
        else:  # back on: the wrist warms the sensor over a few minutes
            temp = SKIN_C - (SKIN_C - room_c) * math.exp(-i / 90.0) + rng.normal(0, 0.02)
            acc = rng.uniform(0.005, 0.012)
        out.append(
            Sample(
                seq=int(t),
                time_ms=int((T0 + t) * 1000),
                heart_rate_bpm=None if hr is None else round(hr, 1),
                skin_temperature_c=round(temp, 2),
                acceleration_sd_g=acc,
            )
        )
    return out


def onsets(alarms: list[Alarm]) -> list[Alarm]:
    return [a for a in alarms if a.evidence.get("onset") == 1.0]


def test_band_on_the_table_is_no_contact_not_anaphylaxis() -> None:
    rng = np.random.default_rng(7)
    worn = band(40, 0, rng, "worn")
    table = band(15, 40, rng, "table")
    detector = PatientDetector()
    alarms = detector.update(worn + table)
    assert onsets(alarms) == []
    contact = [a for a in alarms if a.kind is AlarmKind.NO_CONTACT]
    assert [a.resolved for a in contact] == [False]
    # the skin fell 2 degC below its 30-s average within seconds, then a minute without contact
    assert 60 <= contact[0].time_s - (T0 + 40 * 60) <= 75

    # without the skin temperature nothing tells the table from a fainted wearer
    blind = PatientDetector().update(
        [s.model_copy(update={"skin_temperature_c": None}) for s in worn + table]
    )
    assert [a.kind for a in onsets(blind)] == [AlarmKind.ANAPHYLAXIS]

    back = band(60, 55, rng, "back on")
    later = detector.update(back)
    assert [(a.kind, a.resolved) for a in later] == [(AlarmKind.NO_CONTACT, True)]
    resolved_after_s = later[0].time_s - (T0 + 55 * 60)
    assert (
        0 < resolved_after_s <= 120
    )  # a wrist warms the sensor by a degree within a minute or two
    # back on the wrist the wear clock restarted: the sensors settle before anything is judged
    assert detector.tracker.worn_for(later[0].time_s) < 1.0


@pytest.mark.parametrize("room_c", [18.0, 23.0, 27.5, 28.5, 29.0])
def test_a_band_on_the_table_stays_off_however_long_it_holds_the_rooms_temperature(
    room_c: float,
) -> None:
    """Since 1.12.2 a band holding its level at a wrist's warmth (28 degC or more) is worn again
    (one put on warm cools onto the skin); a band on a table holds the room's. In a room as warm
    as a wrist the table's stillness tells them apart (1.12.3): judged worn, its heart rate
    climbing from the table raised an anaphylaxis-like alarm."""
    rng = np.random.default_rng(5)
    detector = PatientDetector()
    alarms = detector.update(band(40, 0, rng, "worn") + band(60, 40, rng, "table", room_c))
    assert detector.tracker.off_wrist
    assert [(a.kind, a.resolved) for a in alarms] == [(AlarmKind.NO_CONTACT, False)]


def test_a_band_on_a_warm_table_is_worn_again_once_it_moves_on_a_wrist() -> None:
    """The stillness that keeps it off is the table's: on a wrist it moves, and is worn again.

    Put on a wrist reading 29.3 degC (the E4 reads wrists cool), the sensor at the room's 29
    never warms the degree that says so: its level and its movement do.
    """
    rng = np.random.default_rng(5)
    detector = PatientDetector()
    detector.update(band(40, 0, rng, "worn") + band(20, 40, rng, "table", 29.0))
    assert detector.tracker.off_wrist
    cool_wrist = [
        s.model_copy(update={"skin_temperature_c": (s.skin_temperature_c or 0) - 3.2})
        for s in band(10, 60, rng, "worn")
    ]
    alarms = detector.update(cool_wrist)
    assert [(a.kind, a.resolved) for a in alarms] == [(AlarmKind.NO_CONTACT, True)]
    assert alarms[0].time_s - (T0 + 60 * 60) <= 3 * 60
    assert not detector.tracker.off_wrist
    still = [s.model_copy(update={"acceleration_sd_g": 0.001}) for s in cool_wrist]
    held = PatientDetector()
    held.update(band(40, 0, rng, "worn") + band(20, 40, rng, "table", 29.0))
    assert held.update(still) == []
    assert held.tracker.off_wrist  # the same, motionless: a table


def test_handling_a_band_off_the_wrist_does_not_put_it_back_on() -> None:
    rng = np.random.default_rng(3)
    table = band(5, 40, rng, "table")
    # someone picks it up: single readings jump 1-2 degC for a few seconds
    handled = [
        s.model_copy(update={"skin_temperature_c": (s.skin_temperature_c or 0) + 1.8})
        if 100 <= i < 104
        else s
        for i, s in enumerate(table)
    ]
    detector = PatientDetector()
    detector.update(band(40, 0, rng, "worn") + handled)
    assert detector.tracker.off_wrist


@pytest.fixture(scope="module")
def sessions() -> dict[str, tuple[list[float], float]]:
    """Per stress-predict session: when the detector found the band off, and the session end."""
    found: dict[str, tuple[list[float], float]] = {}
    for recording in load_stress_predict(DATA_DIR):
        detector = PatientDetector()
        times = []
        for sample in recording.samples(recording.frame):
            detector.update([sample])
            if detector.tracker.off_wrist:
                times.append(sample.time_ms / 1000.0)
        found[recording.subject] = (times, float(recording.frame["time_s"].iloc[-1]))
    return found


def test_real_band_removals_are_found_and_nothing_else(
    sessions: dict[str, tuple[list[float], float]],
) -> None:
    off = {subject for subject, (times, _) in sessions.items() if times}
    # the four sessions whose skin temperature falls 4.5-7.7 degC in the last minute
    assert off == {"S02", "S03", "S04", "S28"}
    for subject in off:
        times, end = sessions[subject]
        assert end - times[0] <= 90  # found within seconds of the fall, at the very end
        assert times[-1] == end  # and it stayed off, though the band was handled


def test_real_band_removal_raises_no_contact() -> None:
    s28 = next(r for r in load_stress_predict(DATA_DIR) if r.subject == "S28")
    alarms = PatientDetector().update(list(s28.samples(s28.frame)))
    assert [a.kind for a in alarms if a.evidence.get("onset") == 1.0] == []
    contact = [a for a in alarms if a.kind is AlarmKind.NO_CONTACT]
    assert len(contact) == 1 and not contact[0].resolved


def test_a_band_off_briefly_only_resettles_its_temperature() -> None:
    rng = np.random.default_rng(5)
    detector = PatientDetector()
    alarms = detector.update(band(40, 0, rng, "worn") + band(2, 40, rng, "table"))
    assert detector.tracker.off_wrist
    later = detector.update(band(10, 42, rng, "back on"))
    assert not detector.tracker.off_wrist
    assert [(a.kind, a.resolved) for a in alarms + later] == [
        (AlarmKind.NO_CONTACT, False),
        (AlarmKind.NO_CONTACT, True),
    ]
    # off for less than a gap: the wear clock runs on, as after a short silence in the data
    assert detector.tracker.worn_for(T0 + 52 * 60) >= 52 * 60 - 1


def test_a_band_left_on_the_table_stays_off_across_a_gap_in_its_data() -> None:
    rng = np.random.default_rng(11)
    before = band(40, 0, rng, "worn") + band(5, 40, rng, "table")
    # the gateway lost the band for 15 min; it still lies on the table when data resumes
    after = [s for s in band(60, 45, rng, "table") if s.time_ms >= (T0 + 60 * 60) * 1000]
    after = [s.model_copy(update={"skin_temperature_c": ROOM_C}) for s in after]
    detector = PatientDetector()
    alarms = detector.update(before + after)
    assert detector.tracker.off_wrist
    assert onsets(alarms) == []
    assert [(a.kind, a.resolved) for a in alarms] == [(AlarmKind.NO_CONTACT, False)]
    # put on again: the skin warms the sensor and the wear clock restarts
    worn = band(10, 105, rng, "back on")
    later = detector.update(worn)
    assert [(a.kind, a.resolved) for a in later] == [(AlarmKind.NO_CONTACT, True)]
