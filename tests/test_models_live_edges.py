"""Live-use edges of the detectors: a band falling silent, damaged snapshots, vetoed backlogs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flarewatch.payloads import Sample
from models.alarm import Alarm, AlarmKind
from models.bank import DetectorBank
from models.const import MODEL_VERSION, NO_CONTACT_AFTER_S, NO_DATA_AFTER_S
from models.detector import PatientDetector
from models.labels import load_labelled_onsets
from tests.test_models_detector import T0, make_samples, onsets, reject_all


def test_a_band_that_loses_contact_and_falls_silent_is_no_data() -> None:
    """Contact lost, then silence before ``no_contact`` was due (the band put on its charger)."""
    worn = [
        Sample(seq=i, time_ms=int((T0 + i * 5) * 1000), heart_rate_bpm=64.0) for i in range(100)
    ]
    off_s = T0 + 500
    off = [
        Sample(seq=100 + i, time_ms=int((off_s + i * 5) * 1000), contact_detected=False)
        for i in range(int(NO_CONTACT_AFTER_S / 5) - 2)
    ]
    bank = DetectorBank()
    assert bank.update([("p", worn + off)]) == []
    silent = bank.tick(off_s + NO_DATA_AFTER_S + 60)
    assert [(a.kind, a.resolved) for a in silent] == [(AlarmKind.NO_DATA, False)]
    assert bank.tick(off_s + 86_400) == []  # said once
    back = Sample(seq=200, time_ms=int((off_s + 90_000) * 1000), heart_rate_bpm=64.0)
    assert [(a.kind, a.resolved) for a in bank.update([("p", [back])])] == [
        (AlarmKind.NO_DATA, True)
    ]


def _last(state: dict[str, Any]) -> float:
    return float(state["tracker"]["last_time_s"])


DAMAGED: dict[str, Callable[[dict[str, Any]], None]] = {
    # a time after the newest sample makes the next step negative: exp() overflowed
    "heart-rate-time-ahead": lambda s: s["tracker"].update(hr_time_s=_last(s) + 1e12),
    "skin-time-ahead": lambda s: s["tracker"].update(temp_time_s=_last(s) + 1e12),
    "calibration-fade-ahead": lambda s: s["calibration"].update(faded_s=_last(s) + 1e12),
    # resting rates divide the heart rate: zero raised ZeroDivisionError once the wearer moved
    "resting-rate-zero": lambda s: s["tracker"].update(rest_bpm=0.0, tod_rest_bpm=[None] * 24),
    "hourly-rate-zero": lambda s: s["tracker"].update(tod_rest_bpm=[0.0] * 24),
    # the skin's trend is a line through snapshots: one instant has no slope
    "skin-trend-one-instant": lambda s: s["skin_trend"].update(
        time_s=[_last(s) - 600.0] * 12, temp_c=[31.0] * 12, hr_bpm=[64.0] * 12
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_a_snapshot_that_would_fail_on_the_next_sample_starts_afresh(damage: str) -> None:
    samples = make_samples(120, temp=31.0)
    walking = make_samples(120, temp=31.0, steps_from_min=0)[800:]
    bank = DetectorBank()
    bank.update([("p", samples[:800])])
    state = json.loads(json.dumps(bank.state_dict()))
    DAMAGED[damage](state["patients"]["p"])
    restored = DetectorBank()
    assert restored.load_state_dict(json.loads(json.dumps(state))) == 1
    # p goes on as a new patient would (before, every update of p raised)
    assert restored.update([("p", walking)]) == DetectorBank().update([("p", walking)])


def _surges(minutes: float, spans: list[tuple[float, float]]) -> list[Sample]:
    """A resting heart with +40 % surges over the given minute spans."""
    out = []
    for s in make_samples(minutes):
        minute = (s.time_ms / 1000 - T0) / 60
        up = any(a <= minute < b for a, b in spans)
        hr = round(float(s.heart_rate_bpm or 0.0) * (1.4 if up else 1.0), 1)
        out.append(s.model_copy(update={"heart_rate_bpm": hr}))
    return out


@pytest.mark.parametrize(
    "spans", [[(40, 60)], [(40, 60), (100, 120)]], ids=["one-episode", "two-episodes"]
)
def test_vetoed_episodes_of_a_backlog_stay_silent(spans: list[tuple[float, float]]) -> None:
    """Hours of samples in one call (a gateway back from an outage), every onset vetoed."""
    samples = _surges(160, spans)
    rules = PatientDetector().update(samples)
    assert sum(1 for a in rules if a.evidence.get("onset") == 1.0) == len(spans)
    assert sum(1 for a in rules if a.resolved) == len(spans)
    assert DetectorBank(confirmer=reject_all()).update([("p", samples)]) == []


def test_a_labelled_onset_with_a_vital_as_text_is_skipped_without_quoting_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = {
        "label": "reaction",
        "kind": "anaphylaxis",
        "subject": "a1b2",
        "evidence": {"hr_bpm": "131.5 bpm"},
        "time_s": T0,
        "severity": "warning",
        "model_version": MODEL_VERSION,
    }
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    loaded = load_labelled_onsets(path)
    assert (loaded.lines, loaded.rejected, loaded.candidates) == (1, 1, [])
    assert "not a labelled onset" in caplog.text and "131.5" not in caplog.text


@pytest.mark.parametrize("offset_ms", [0, 500], ids=["same-instants", "own-instants"])
def test_two_devices_of_one_patient_are_folded_in_time_order(offset_ms: int) -> None:
    """A chest strap and a thermometer of one patient, each device's batch in turn per call.

    As a gateway's backlog (10-minute calls) they must raise what the one merged stream raises;
    before, the readings older than the other device's newest were skipped and the surge
    alarmed 10 minutes late.
    """
    full = make_samples(90, period_s=1.0, surge_at_min=60, surge_frac=0.3, temp=31.0)
    strap = [s.model_copy(update={"skin_temperature_c": None}) for s in full]
    thermo = [
        s.model_copy(update={"heart_rate_bpm": None, "time_ms": s.time_ms + offset_ms})
        for s in full[::5]
    ]
    # the one stream: at a shared instant one sample with both readings
    shared = [s if i % 5 == 0 else strap[i] for i, s in enumerate(full)]
    merged = shared if offset_ms == 0 else sorted([*strap, *thermo], key=lambda s: s.time_ms)
    expected = DetectorBank().update([("p", merged)])
    assert onsets(expected, AlarmKind.ANAPHYLAXIS)
    bank = DetectorBank()
    got = []
    span_ms = 600_000
    for start in range(full[0].time_ms, full[-1].time_ms + 1, span_ms):
        window = range(start, start + span_ms)
        batch = [s for s in thermo if s.time_ms in window] + [
            s for s in strap if s.time_ms in window
        ]
        got += bank.update([("p", batch)])
    assert got == expected
    assert bank.state_dict()["patients"]["p"]["rejected_samples"] == 0


def test_a_motion_stream_that_ended_does_not_make_a_small_rise_a_syncope() -> None:
    """The band's motion readings stop (still ones last); an hour on, a +14 % rise.

    Below the surge rule, it is anaphylaxis-like only followed by a still wrist, which a reading
    an hour old does not show: before, it was raised critical (and the confirmer never vetoes it).
    """
    rng = np.random.default_rng(3)
    samples = make_samples(120, period_s=1.0, hr=80.0, surge_at_min=80, surge_frac=0.14)

    def motion(stops_at_min: float | None) -> list[Sample]:
        out = []
        for s in samples:
            minute = (s.time_ms / 1000 - T0) / 60
            ended = stops_at_min is not None and minute >= stops_at_min
            moving = minute < 79  # the wrist goes still just before the rise
            acc = float(rng.uniform(0.005, 0.012) if moving else rng.uniform(0.0005, 0.003))
            out.append(s.model_copy(update={"acceleration_sd_g": None if ended else acc}))
        return out

    still = onsets(PatientDetector().update(motion(None)), AlarmKind.ANAPHYLAXIS)
    assert [a.evidence["still"] for a in still] == [1.0]  # measured still: surge then syncope
    assert onsets(PatientDetector().update(motion(10.0)), AlarmKind.ANAPHYLAXIS) == []


def test_a_rise_in_sleep_is_no_syncope_however_often_the_sleeper_turns() -> None:
    """A faint is sudden. Asleep, the wrist is still for an hour, or most of it between turns in
    bed: a +14 % rise then (a dream, a flush) was a critical surge then syncope on the spot,
    never vetoed (the demo's flush at night did that). The same rise when an awake wrist has
    just gone still is one."""
    rng = np.random.default_rng(5)
    samples = make_samples(120, period_s=1.0, hr=80.0, surge_at_min=80, surge_frac=0.14)

    def wrist(still_from_min: float, turns_every_min: float | None = None) -> list[Sample]:
        out = []
        for s in samples:
            minute = (s.time_ms / 1000 - T0) / 60
            turning = turns_every_min is not None and minute % turns_every_min < 0.5
            still = minute >= still_from_min and not turning
            acc = float(rng.uniform(0.0005, 0.003) if still else rng.uniform(0.005, 0.012))
            out.append(s.model_copy(update={"acceleration_sd_g": acc}))
        return out

    def raised(motion: list[Sample]) -> list[Alarm]:
        return onsets(PatientDetector().update(motion), AlarmKind.ANAPHYLAXIS)

    assert raised(wrist(still_from_min=15)) == []  # still for an hour
    assert raised(wrist(still_from_min=15, turns_every_min=4.0)) == []  # turns in bed
    fainted = raised(wrist(still_from_min=81))
    assert [a.evidence["still"] for a in fainted] == [1.0]


def _band_in_a_pocket(flush_at_min: float | None) -> list[Sample]:
    """A band with a contact bit: worn, then 30 min in a pocket (cooling), then back on."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(int(150 * 60 / 5)):
        minute = i * 5.0 / 60
        off = 60 <= minute < 90
        if minute < 60:
            skin = 33.0
        elif off:
            skin = 33.0 - 7.0 * (1 - math.exp(-(minute - 60) / 8))
        else:  # back on: the sensor warms up again, the heart a little up after moving
            skin = 33.0 - 6.7 * math.exp(-(minute - 90) / 4)
        hr = 66 + rng.normal(0, 1.0) + (2.5 if 90 <= minute < 105 else 0.0)
        if flush_at_min is not None and minute >= flush_at_min:
            ramp = min((minute - flush_at_min) / 5, 1.0)
            skin += 1.5 * (0.5 - 0.5 * math.cos(math.pi * ramp))
            hr *= 1 + 0.10 * ramp
        out.append(
            Sample(
                seq=i,
                time_ms=int((T0 + i * 5.0) * 1000),
                heart_rate_bpm=None if off else round(hr, 1),
                skin_temperature_c=round(skin + rng.normal(0, 0.02), 2),
                contact_detected=not off,
            )
        )
    return out


def test_a_band_put_back_on_after_it_said_no_contact_is_not_a_flush() -> None:
    """Its pocket's temperature is not the skin's: warming back up is the sensor settling.

    Before, the readings taken without contact became the skin's reference: the warm-up after
    putting the band back on raised a flush, and a real flush half an hour later went unseen
    inside that false episode.
    """
    alarms = PatientDetector().update(_band_in_a_pocket(None))
    assert [(a.kind, a.resolved) for a in alarms] == [
        (AlarmKind.NO_CONTACT, False),
        (AlarmKind.NO_CONTACT, True),
    ]
    flushes = onsets(PatientDetector().update(_band_in_a_pocket(120.0)), AlarmKind.FLUSH)
    assert [round((a.time_s - T0) / 60) for a in flushes] == [124]


def _band_taken_off_briefly(
    off_min: float, contact_bit: bool, flush_at_min: float | None = None
) -> list[Sample]:
    """Worn at 33 degC, off at minute 60 for ``off_min`` (its sensor cooling towards a 25-degC
    room), back on: the sensor warms up again and the heart is up 10 % after the fiddling."""
    rng = np.random.default_rng(1)
    cold = 33.0 - 8.0 * (1 - math.exp(-off_min / 1.5))
    out = []
    for i in range(int(130 * 60 / 2)):
        minute = i * 2.0 / 60
        off = 60 <= minute < 60 + off_min
        skin, hr = 33.0, 64.0 + rng.normal(0, 1.5)
        if off:
            skin = 33.0 - 8.0 * (1 - math.exp(-(minute - 60) / 1.5))
        elif minute >= 60 + off_min:
            back = minute - 60 - off_min
            skin = 33.0 - (33.0 - cold) * math.exp(-back / 3.0)
            hr *= 1 + 0.10 * math.exp(-back / 5.0)
        if flush_at_min is not None and minute >= flush_at_min:
            ramp = min((minute - flush_at_min) / 5, 1.0)
            skin += 1.5 * (0.5 - 0.5 * math.cos(math.pi * ramp))
            hr *= 1 + 0.10 * ramp
        out.append(
            Sample(
                seq=i,
                time_ms=int((T0 + i * 2.0) * 1000),
                heart_rate_bpm=None if off else round(hr, 1),
                skin_temperature_c=round(skin + rng.normal(0, 0.02), 2),
                acceleration_sd_g=0.002,
                contact_detected=(not off) if contact_bit else None,
            )
        )
    return out


@pytest.mark.parametrize("contact_bit", [True, False], ids=["contact-bit", "no-contact-bit"])
@pytest.mark.parametrize("off_min", [1.0, 3.0, 8.0])
def test_a_band_back_on_within_minutes_is_not_a_flush(off_min: float, contact_bit: bool) -> None:
    """Its sensor re-warming from the room's temperature is not the skin warming.

    Before, the wear clock alone said the sensor had settled (the band was worn for an hour), so
    the re-warming over a reference that had followed the cooling down raised a flush within
    minutes, with or without a contact bit; a sensor cooling more slowly than one reading's 2-degC
    drop was not even seen to leave the wrist.
    """
    alarms = PatientDetector().update(_band_taken_off_briefly(off_min, contact_bit))
    assert onsets(alarms, AlarmKind.FLUSH) == []
    # a real flush once the sensor has settled again is still one
    later = _band_taken_off_briefly(off_min, contact_bit, flush_at_min=100.0)
    flushes = onsets(PatientDetector().update(later), AlarmKind.FLUSH)
    assert [round((a.time_s - T0) / 60) // 5 * 5 for a in flushes] == [100]


def test_a_contact_blip_during_a_flush_does_not_hide_it() -> None:
    """A loose strap loses contact for seconds, its sensor still warm: the flush goes on."""
    samples = make_samples(70, period_s=1.0, temp=31.0, warm_at_min=40, warm_c=1.5)

    def blips(every_s: float | None) -> list[Sample]:
        out = []
        for s in samples:
            since = s.time_ms / 1000 - T0 - 40 * 60
            lost = every_s is not None and since >= 0 and since % every_s < 5  # 5 s lost
            out.append(s.model_copy(update={"contact_detected": not lost}))
        return out

    steady = onsets(PatientDetector().update(blips(None)), AlarmKind.FLUSH)
    blipping = onsets(PatientDetector().update(blips(90.0)), AlarmKind.FLUSH)
    assert len(steady) == 1 and len(blipping) == 1
    assert blipping[0].time_s - steady[0].time_s <= 30
