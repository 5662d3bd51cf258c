"""The physiological simulator: determinism, plausible ranges, confounders, episode shapes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import pytest

from collector.errors import SimulationError
from collector.simulation import (
    Cohort,
    EpisodeKind,
    EpisodeScript,
    EpisodeTruth,
    PatientSimulator,
    SampleBlock,
    parse_episode,
    random_profile,
)
from collector.simulation.driver import SimulatedSource
from collector.simulation.schedule import local_day
from collector.sources.base import Reading
from flarewatch.payloads import Sample

DAY0 = 1_764_028_800_000  # 2025-11-25T00:00Z
H = 3_600_000
MIN = 60_000


def simulator(
    seed: int = 7, index: int = 0, episodes: Sequence[EpisodeScript] = ()
) -> PatientSimulator:
    return PatientSimulator(
        random_profile(seed, index), seed=seed, band_on_ms=DAY0, episodes=episodes
    )


def arrays_equal(a: SampleBlock, b: SampleBlock) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)
        for f in SampleBlock.__dataclass_fields__
        if f not in ("patient_id", "device_id")
    )


@pytest.fixture(scope="module")
def day() -> SampleBlock:
    return simulator().generate(DAY0, DAY0 + 24 * H)


def test_same_seed_same_samples_other_seed_other_samples() -> None:
    a = simulator(seed=7).generate(DAY0, DAY0 + 2 * H)
    b = simulator(seed=7).generate(DAY0, DAY0 + 2 * H)
    c = simulator(seed=8).generate(DAY0, DAY0 + 2 * H)
    assert arrays_equal(a, b)
    assert not np.array_equal(a.heart_rate_bpm, c.heart_rate_bpm, equal_nan=True)


def test_chunking_does_not_change_the_samples() -> None:
    sim = simulator()
    whole = sim.generate(DAY0 + 5 * H, DAY0 + 7 * H)
    cuts = [
        DAY0 + 5 * H,
        DAY0 + 5 * H + 1,
        DAY0 + 6 * H - 333,
        DAY0 + 6 * H + 1801_000,
        DAY0 + 7 * H,
    ]
    parts = [simulator().generate(a, b) for a, b in itertools.pairwise(cuts)]
    joined = SampleBlock(
        patient_id=whole.patient_id,
        device_id=whole.device_id,
        **{
            f: np.concatenate([getattr(p, f) for p in parts])
            for f in SampleBlock.__dataclass_fields__
            if f not in ("patient_id", "device_id")
        },
    )
    assert arrays_equal(whole, joined)


def test_a_patient_does_not_depend_on_cohort_size() -> None:
    small = Cohort(2, seed=3, band_on_ms=DAY0).generate(DAY0, DAY0 + H)[1]
    large = Cohort(9, seed=3, band_on_ms=DAY0).generate(DAY0, DAY0 + H)[1]
    assert arrays_equal(small, large)


def test_every_reading_is_a_valid_contract_sample(day: SampleBlock) -> None:
    readings = day.readings()
    assert 0.99 * 86_400 < len(readings) < 86_400  # a few BLE dropouts
    for i, r in enumerate(readings[::97]):
        Sample(seq=i, **r.fields())
    # each reading carries the values of its own instant, field by field
    present = np.flatnonzero(day.present)
    for r, k in zip(readings[::997], present[::997], strict=True):
        assert r.time_ms == day.time_ms[k] and r.steps == day.steps[k]
        assert r.skin_temperature_c == day.skin_temperature_c[k]
        assert r.acceleration_g == day.acceleration_g[k]
        assert r.acceleration_sd_g == day.acceleration_sd_g[k]
        assert r.contact_detected == day.contact_detected[k]
        assert r.battery_percent == day.battery_percent[k]
        hr = day.heart_rate_bpm[k]
        assert (r.heart_rate_bpm is None) if np.isnan(hr) else (r.heart_rate_bpm == hr)
        assert r.energy_expended_kj is None


def test_values_are_plausible(day: SampleBlock) -> None:
    hr = day.heart_rate_bpm[~np.isnan(day.heart_rate_bpm)]
    assert hr.min() >= 40 and hr.max() <= 200
    assert 55 <= np.median(hr) <= 95
    # worn and warmed up: at least 15 min since the band went on (start, after the shower)
    put_on = np.flatnonzero(np.diff(day.band_on.astype(int)) == 1) + 1
    warm = day.band_on.copy()
    for i in [0, *put_on.tolist()]:
        warm[i : i + 900] = False
    worn = warm
    assert day.skin_temperature_c[worn].min() > 29.0 and day.skin_temperature_c[worn].max() < 37.5
    assert 0.93 < day.contact_detected.mean() < 1.0
    assert np.isnan(day.heart_rate_bpm[~day.contact_detected]).all()
    assert 2_000 < day.steps.sum() < 40_000
    assert day.steps[day.asleep].sum() == 0
    battery = day.battery_percent
    assert (np.diff(battery) <= 0).all() and 5 <= battery[0] - battery[-1] <= 30
    # acceleration spread tells rest, sleep and activity apart
    active = day.activity > 0.3
    awake_still = ~day.asleep & (day.activity == 0) & day.band_on
    assert np.median(day.acceleration_sd_g[active]) > 4 * np.median(
        day.acceleration_sd_g[awake_still]
    )
    assert np.median(day.acceleration_sd_g[day.asleep]) < np.median(
        day.acceleration_sd_g[awake_still]
    )


def test_rr_intervals_match_heart_rate(day: SampleBlock) -> None:
    bounds = np.concatenate(([0], np.cumsum(day.rr_counts)))
    rows = np.flatnonzero(day.rr_counts > 0)[::50]
    mean_rr = np.array([day.rr_values_s[bounds[i] : bounds[i + 1]].mean() for i in rows])
    implied_hr = 60.0 / mean_rr
    assert np.median(np.abs(implied_hr - day.heart_rate_bpm[rows]) / implied_hr) < 0.06
    # about one beat per second at ~60-90 bpm
    assert 0.9 < day.rr_counts[day.contact_detected].mean() < 1.6


def test_sleep_lowers_heart_rate_and_warms_the_wrist(day: SampleBlock) -> None:
    awake_rest = ~day.asleep & (day.activity == 0) & day.contact_detected
    awake_rest &= np.arange(len(day)) > 1800  # past the warm-up
    asleep = day.asleep & day.contact_detected
    assert np.nanmean(day.heart_rate_bpm[asleep]) < np.nanmean(day.heart_rate_bpm[awake_rest]) - 4
    assert (
        np.mean(day.skin_temperature_c[asleep]) > np.mean(day.skin_temperature_c[awake_rest]) + 0.5
    )


def test_wrist_warms_about_0_6_c_in_the_10_min_before_sleep_onset() -> None:
    sim = simulator()
    onset = int(sim.day_plan(local_day(DAY0 + 12 * H, sim.profile)).sleep[0, 0])
    block = sim.generate(onset - 30 * MIN, onset + 1000)
    temp = block.skin_temperature_c
    before = temp[(block.time_ms < onset - 12 * MIN) & block.contact_detected].mean()
    at_onset = temp[-60:][block.contact_detected[-60:]].mean()
    assert 0.4 < at_onset - before < 1.0


def test_sensor_warms_up_over_about_ten_minutes_after_the_band_goes_on() -> None:
    sim = simulator()
    block = sim.generate(DAY0, DAY0 + 30 * MIN)
    temp = block.skin_temperature_c
    settled = temp[20 * 60 : 30 * 60].mean()
    # like the E4 (stress-predict): the first second reads 0.5-2.3 degC below the settled level
    assert 0.5 < settled - temp[:5].mean() < 2.5
    assert settled - temp[10 * 60 - 30 : 10 * 60 + 30].mean() < 0.15  # ~95 % there after 10 min
    assert (np.diff(temp[:300]) > -0.1).all()  # monotone apart from sensor noise


def difference(
    kind: EpisodeKind, **script: bool
) -> tuple[SampleBlock, SampleBlock, list[EpisodeTruth]]:
    onset = DAY0 + 15 * H
    episode = EpisodeScript("p1", kind, onset, **script)
    with_episode = simulator(episodes=[episode])
    plain = simulator().generate(onset - 30 * MIN, onset + 2 * H)
    return (
        with_episode.generate(onset - 30 * MIN, onset + 2 * H),
        plain,
        with_episode.ground_truth(),
    )


def test_flush_warms_skin_and_raises_heart_rate_within_cited_ranges() -> None:
    block, plain, truths = difference(EpisodeKind.FLUSH)
    (truth,) = truths
    assert truth.kind is EpisodeKind.FLUSH
    assert 0.6 <= truth.skin_rise_c <= 2.7
    assert truth.onset_ms < truth.peak_ms < truth.offset_ms
    skin = block.skin_temperature_c - plain.skin_temperature_c
    hr = block.heart_rate_bpm - plain.heart_rate_bpm
    before = block.time_ms < truth.onset_ms
    assert np.abs(skin[before]).max() < 1e-9 and np.nanmax(np.abs(hr[before])) == 0
    plateau = (block.time_ms > truth.peak_ms) & (block.time_ms < truth.peak_ms + 10 * MIN)
    plateau &= block.contact_detected
    assert np.mean(skin[plateau]) == pytest.approx(truth.skin_rise_c, abs=0.05)
    resting = simulator().profile.resting_hr_bpm
    assert 0.09 * resting < np.nanmean(hr[plateau]) < 0.21 * resting
    after = block.time_ms > truth.offset_ms + 10 * MIN
    assert np.abs(skin[after]).max() < 0.1 * truth.skin_rise_c


def test_anaphylaxis_surges_heart_rate_fast_then_syncope_stills_the_patient() -> None:
    block, plain, truths = difference(EpisodeKind.ANAPHYLAXIS, syncope=True)
    (truth,) = truths
    assert 30 <= truth.hr_rise_bpm <= 60
    assert 60_000 <= truth.peak_ms - truth.onset_ms <= 180_000
    hr = block.heart_rate_bpm - plain.heart_rate_bpm
    surge = (block.time_ms >= truth.peak_ms) & (block.time_ms < truth.peak_ms + 10 * MIN)
    assert np.nanmin(hr[surge]) > 25
    assert truth.syncope_onset_ms is not None and truth.syncope_offset_ms is not None
    still = (block.time_ms >= truth.syncope_onset_ms) & (block.time_ms < truth.syncope_offset_ms)
    assert block.steps[still].sum() == 0
    assert block.acceleration_sd_g[still].max() < 0.01
    assert block.activity[still].max() == 0


def test_anaphylaxis_without_syncope_keeps_motion() -> None:
    _, _, truths = difference(EpisodeKind.ANAPHYLAXIS, syncope=False)
    (truth,) = truths
    assert truth.syncope_onset_ms is None


def test_cohort_ground_truth_lists_scripted_episodes_in_onset_order() -> None:
    episodes = [
        parse_episode("2:anaphylaxis:600", DAY0, ["p1", "p2", "p3"]),
        parse_episode("p1:flush:60", DAY0, ["p1", "p2", "p3"]),
    ]
    cohort = Cohort(3, seed=1, band_on_ms=DAY0, episodes=episodes)
    truth = cohort.ground_truth()
    assert [(t.patient_id, t.kind, t.onset_ms) for t in truth] == [
        ("p1", EpisodeKind.FLUSH, DAY0 + 60_000),
        ("p2", EpisodeKind.ANAPHYLAXIS, DAY0 + 600_000),
    ]


@pytest.mark.parametrize(
    "text", ["p1:flush", "p9:flush:10", "p1:sneeze:10", "p1:flush:soon", "p1:flush:-5"]
)
def test_bad_episode_scripts_are_clear_errors(text: str) -> None:
    with pytest.raises(SimulationError, match="episode"):
        parse_episode(text, DAY0, ["p1", "p2"])


def test_bad_parameters_are_clear_errors() -> None:
    with pytest.raises(SimulationError):
        PatientSimulator(random_profile(1, 0), seed=1, band_on_ms=DAY0, interval_ms=5)
    with pytest.raises(SimulationError, match="unknown patients"):
        Cohort(1, seed=1, band_on_ms=DAY0, episodes=[EpisodeScript("p7", EpisodeKind.FLUSH, DAY0)])
    with pytest.raises(SimulationError):
        SimulatedSource(Cohort(1, seed=1, band_on_ms=DAY0), start_ms=DAY0, end_ms=None, speed=0)


class ListSink:
    def __init__(self) -> None:
        self.groups: list[tuple[str, str, list[Reading]]] = []

    def submit(self, patient_id: str, device_id: str, readings: Sequence[Reading]) -> int:
        self.groups.append((patient_id, device_id, list(readings)))
        return len(readings)

    def submit_many(self, groups: Iterable[tuple[str, str, Sequence[Reading]]]) -> None:
        for group in groups:
            self.submit(*group)


class FakeTime:
    """A clock that only advances when the driver sleeps: real-time pacing without waiting."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def clock(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.now_s += seconds


async def test_driver_paces_with_the_injected_clock_and_resumes_after_stored_samples() -> None:
    cohort = Cohort(2, seed=1, band_on_ms=DAY0)
    fake = FakeTime()
    sink = ListSink()
    resume = {"p1-band": DAY0 + 299_000}  # p1 already stored its first 300 samples
    source = SimulatedSource(
        cohort,
        start_ms=DAY0,
        end_ms=DAY0 + 600_000,
        speed=10.0,
        resume_ms=resume,
        clock_s=fake.clock,
        sleep=fake.sleep,
    )
    await source.run(sink)
    times = {d: [r.time_ms for _, dev, rs in sink.groups if dev == d for r in rs] for d in resume}
    assert times["p1-band"][0] == DAY0 + 300_000
    p2 = [r.time_ms for _, dev, rs in sink.groups if dev == "p2-band" for r in rs]
    assert p2[0] == DAY0 and p2[-1] == DAY0 + 599_000
    assert sorted(p2) == p2 and len(set(p2)) == len(p2)
    # 600 simulated seconds from the oldest cursor at 10x: about 60 s of (fake) real time
    assert 55 <= fake.now_s <= 62
    assert asyncio.get_running_loop() is not None


def test_rest_motion_steps_and_dropouts_match_the_real_recordings(day: SampleBlock) -> None:
    """Figures measured on data/recordings (docs/collector.md, "Calibration")."""
    worn = day.band_on & day.contact_detected
    seated = worn & ~day.asleep & (day.activity == 0) & (day.steps == 0)
    sd = day.acceleration_sd_g[seated]
    # E4 at rest (stress-predict baseline/relax): median 0.007 g, p25 0.005, p90 0.04 g
    assert 0.005 < np.median(sd) < 0.009
    assert 0.003 < np.percentile(sd, 25) < 0.006
    assert 0.015 < np.percentile(sd, 90) < 0.06
    assert np.median(day.acceleration_sd_g[day.asleep]) < 0.004  # still enough for the detectors
    assert abs(np.median(day.acceleration_g[seated]) - 1.0) < 0.01
    # Fitbit (fitbit_covid, 10:00-20:00): 11-28 % of minutes with steps, and most step-free time
    # in runs of 10 min or more
    hours = (day.time_ms % (24 * H)) // H
    daytime = (hours >= 10) & (hours < 20)
    minutes = day.steps[daytime][: daytime.sum() // 60 * 60].reshape(-1, 60).sum(axis=1)
    assert 0.08 < np.mean(minutes > 0) < 0.35
    edges = np.flatnonzero(np.diff(np.concatenate(([0], (minutes == 0).astype(int), [0]))))
    runs = edges[1::2] - edges[::2]
    assert runs[runs >= 10].sum() > 0.6 * runs.sum()
    # E4: 0.3 % of seconds without heart rate while worn
    assert np.isnan(day.heart_rate_bpm[worn]).mean() < 0.01
    # E4 skin temperature comes in 0.02 degC steps
    temps = day.skin_temperature_c[worn]
    assert np.allclose(np.round(temps / 0.02) * 0.02, temps, atol=1e-6)
