"""Bad and extreme values fed to the streaming detectors, through the interfaces that feed them.

One bad sample must not poison a patient's state for good: a NaN or an infinity reaching a
baseline, an average or the surge evidence leaves the detector deaf from then on, and a snapshot
holding one cannot be restored. Fuzzed with hypothesis over real recordings (data/recordings)
with a strong injected episode some minutes after the bad stretch:

* values the wire contract refuses (NaN, infinities, negative or absurd readings, times before
  2010 or after 2100), as a caller that skips validation hands them to the bank
  (``Sample.model_construct``, as ``models.recording.iter_samples`` does for speed): the sample
  is rejected and counted, and the alarms are those without it;
* extreme values the contract allows (20 and 300 bpm, 10,000 steps, 32 g, contact lost for a
  sample): the episode after them is still found, and the snapshot is finite and restores;
* time: duplicated timestamps, a clock stepped back, gaps of a second to weeks, a local-hour
  jump, a sample stamped ahead as far as the service lets through;
* ``flarewatch detect`` on a file with bad cells: they are blanked and counted, the alarms are
  those of the file with the cells empty.

``FLAREWATCH_FUZZ_EXAMPLES`` sets the examples per property (40 by default, as in CI).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from flarewatch.cli import main
from flarewatch.payloads import Sample
from models.alarm import Alarm, AlarmKind, is_onset
from models.artifacts import default_bank
from models.bank import DetectorBank
from models.datasets import DATA_DIR, load_fitbit
from models.injection import Episode, inject
from models.onsets import fitbit_onsets, stress_onset
from models.recording import clean_recording, iter_samples, read_recording
from models.replay import chunk_by_time

PATIENT = "p"
# sessions in which both strong episodes below are found within 5 min of their onset untouched
SESSIONS = ("S02", "S14", "S15", "S19", "S25", "S27", "S28", "S31", "S32", "S33", "S35")
KINDS = (AlarmKind.ANAPHYLAXIS, AlarmKind.FLUSH)
LEAD_S = (10 * 60, 14 * 60)
"""How long before the episode's onset the bad stretch lies: the time allowed to recover."""
AN_EPISODE = {"name": st.sampled_from(SESSIONS), "kind": st.sampled_from(KINDS)}
"""A property's draw of a session and the kind of its strong episode."""
FUZZ = settings(
    max_examples=int(os.environ.get("FLAREWATCH_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def strong_episode(kind: AlarmKind, onset_s: float) -> Episode:
    """An episode well inside the documented ranges, found by the rules with minutes to spare."""
    if kind is AlarmKind.ANAPHYLAXIS:  # +50 % within a minute, held 15 min
        return Episode(kind, onset_s, 60.0, 900.0, 300.0, 0.5, 0.0, None)
    return Episode(kind, onset_s, 240.0, 900.0, 600.0, 0.12, 2.0, None)  # +2 degC, heart +12 %


@functools.cache
def session(name: str, kind: AlarmKind) -> tuple[tuple[Sample, ...], Episode]:
    """A stress-predict session (1 Hz heart rate, skin, motion) with a strong episode at rest."""
    frame = pd.read_csv(DATA_DIR / "stress_predict" / f"{name}.csv.gz").drop(columns=["phase"])
    onset = stress_onset(frame, np.random.default_rng(1))
    assert onset is not None
    episode = strong_episode(kind, onset)
    cleaned, _ = clean_recording(inject(frame, [episode], np.random.default_rng(0)))
    return tuple(iter_samples(cleaned)), episode


@functools.cache
def fitbit_day() -> tuple[tuple[Sample, ...], Episode]:
    """Eleven hours of a Fitbit user (heart rate every ~15 s, steps) with a surge at rest."""
    frame = load_fitbit(limit=1, max_days=3)[0].frame
    onset = fitbit_onsets(frame, np.random.default_rng(0))[1]  # ~12 h into the recording
    episode = strong_episode(AlarmKind.ANAPHYLAXIS, onset)
    part = frame[frame["time_s"].between(onset - 8 * 3600, onset + 3 * 3600)]
    cleaned, _ = clean_recording(inject(part, [episode], np.random.default_rng(0)))
    return tuple(iter_samples(cleaned)), episode


class _Records(logging.Handler):
    """Keeps the records it is given (hypothesis cannot use pytest's per-test caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_detector_failure() -> Iterator[None]:
    """Fails if a detector raised: the bank logs it and starts the patient afresh, silently."""
    handler = _Records()
    logger = logging.getLogger("models.bank")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not handler.records, [r.getMessage() for r in handler.records]


def fed(
    batches: Sequence[Sequence[Sample]], clock_s: Sequence[float]
) -> tuple[list[Alarm], DetectorBank]:
    """The alarms of the batches fed to a fresh bank as the service feeds it, and the bank.

    Each batch is preceded by a tick at its ``clock_s`` (the service ticks on its own clock, not
    on a sample's time, which may be the bad value).
    """
    bank, alarms = default_bank(), list[Alarm]()
    with no_detector_failure():
        for batch, now_s in zip(batches, clock_s, strict=True):
            alarms += bank.tick(now_s)
            alarms += bank.update([(PATIENT, batch)])
    return alarms, bank


def in_batches(samples: Sequence[Sample]) -> tuple[list[list[Sample]], list[float]]:
    """Five-minute batches of ``samples``, and the clock of each (its first sample's time)."""
    batches = list(chunk_by_time(samples, 300.0))
    return batches, [batch[0].time_ms / 1000.0 for batch in batches]


def found(alarms: Sequence[Alarm], episode: Episode, shift_s: float = 0.0) -> bool:
    """An onset alarm of the episode's kind between its onset and its end."""
    start, end = episode.onset_s + shift_s, episode.end_s + shift_s
    return any(is_onset(a) and a.kind is episode.kind and start <= a.time_s <= end for a in alarms)


def alarmed(alarms: Sequence[Alarm], episode: Episode) -> bool:
    """:func:`found`, or an alarm of the episode's kind raised before it and still open at its
    onset (the wearer's own surge minutes before, whose episode runs into the injected one)."""
    open_before = False
    for alarm in sorted(alarms, key=lambda a: a.time_s):
        if alarm.kind is not episode.kind or alarm.time_s >= episode.onset_s:
            continue
        open_before = is_onset(alarm) or (open_before and not alarm.resolved)
    return open_before or found(alarms, episode)


def flushes_before(alarms: Sequence[Alarm], episode: Episode) -> list[float]:
    """When flush onsets were raised before the episode's onset."""
    return [
        a.time_s
        for a in alarms
        if is_onset(a) and a.kind is AlarmKind.FLUSH and a.time_s < episode.onset_s
    ]


def watched_through(samples: Sequence[Sample], bad: Sequence[Sample], episode: Episode) -> None:
    """Fed ``bad`` instead of ``samples``, the episode is still alarmed, no flush is raised
    before it that the untouched samples do not raise, and the snapshot restores."""
    alarms, bank = fed(*in_batches(bad))
    untouched, _ = fed(*in_batches(samples))
    assert alarmed(alarms, episode)
    assert flushes_before(alarms, episode) == flushes_before(untouched, episode)
    finite_snapshot(bank)


def finite_snapshot(bank: DetectorBank) -> None:
    """The bank's snapshot goes through strict JSON (no NaN, no infinity) and restores whole."""
    snapshot = json.loads(json.dumps(bank.state_dict(), allow_nan=False))
    assert default_bank().load_state_dict(snapshot) == 0, "the snapshot does not restore"


def rejected(bank: DetectorBank) -> int:
    """Samples the patient's detector skipped (out of order, or refused)."""
    return int(bank.state_dict()["patients"][PATIENT]["rejected_samples"])


def index_before(samples: Sequence[Sample], episode: Episode, lead_s: float) -> int:
    """Index of the first sample ``lead_s`` or less before the episode's onset."""
    limit_ms = (episode.onset_s - lead_s) * 1000.0
    return next(i for i, s in enumerate(samples) if s.time_ms >= limit_ms)


@pytest.mark.parametrize("name", SESSIONS)
def test_the_strong_episodes_are_found_untouched(name: str) -> None:
    """Without bad values both episodes are found (else the properties below prove nothing)."""
    for kind in KINDS:
        samples, episode = session(name, kind)
        alarms, bank = fed(*in_batches(samples))
        assert found(alarms, episode), (name, kind)
        assert rejected(bank) == 0
        finite_snapshot(bank)


# -- values the wire contract refuses, handed over without validation ---------------------------

REFUSED: dict[str, tuple[float, ...]] = {
    "heart_rate_bpm": (math.nan, math.inf, -math.inf, 0.0, 1.0, -50.0, 400.0, 1e9),
    "skin_temperature_c": (math.nan, math.inf, -math.inf, -50.0, 0.0, 60.0, 1e9),
    "steps": (-5, 10**9),
    "acceleration_sd_g": (math.nan, math.inf, -1.0, 1e9),
    # 1e12 s (the year 33,658) and later; 0 and 1e12 ms (2001), before the contract's 2010
    "time_ms": (10**15, 2**62, 0, 10**12),
}


def unchecked(sample: Sample, **values: Any) -> Sample:
    """``sample`` with ``values``, unvalidated (as a caller skipping the contract builds it)."""
    return Sample.model_construct(**{**dict(sample), **values})


def test_a_heart_rate_of_nan_is_rejected_and_counted_not_kept_for_good() -> None:
    """One NaN heart rate (a caller that skipped validation): the surge after it is found.

    Before, the NaN reached every heart-rate average and the reference: the detector never
    alarmed again, and the snapshot held a NaN (refused on restore: the patient started afresh).
    """
    samples, episode = session("S14", AlarmKind.ANAPHYLAXIS)
    at = index_before(samples, episode, LEAD_S[0])
    bad = [unchecked(s, heart_rate_bpm=math.nan) if i == at else s for i, s in enumerate(samples)]
    alarms, bank = fed(*in_batches(bad))
    without, _ = fed(*in_batches([s for i, s in enumerate(samples) if i != at]))
    assert found(alarms, episode)
    assert alarms == without
    assert rejected(bank) == 1
    finite_snapshot(bank)


def test_a_sample_stamped_in_the_year_33658_does_not_blind_the_patient() -> None:
    """time_ms = 1e15 (1e12 s) once: the samples after it are not all skipped as older ones."""
    samples, episode = session("S14", AlarmKind.ANAPHYLAXIS)
    batches, clock = in_batches(samples)
    at = index_before(samples, episode, LEAD_S[0])
    bad = [[unchecked(s, time_ms=10**15) if s is samples[at] else s for s in b] for b in batches]
    alarms, bank = fed(bad, clock)
    assert found(alarms, episode)
    assert rejected(bank) == 1


def test_a_clock_of_nan_raises_no_no_data_alarm() -> None:
    """``tick(NaN)`` (a broken clock) is no silence: before, NaN compared false against the limit.

    That raised a ``no_data`` warning for every patient, dated 5 min after their last heart
    rate, however recent it was.
    """
    samples, _ = session("S14", AlarmKind.ANAPHYLAXIS)
    bank = default_bank()
    bank.update([(PATIENT, samples[:60])])
    assert bank.tick(math.nan) == []
    assert bank.tick(samples[59].time_ms / 1000.0 + 1.0) == []


@FUZZ
@given(
    name=st.sampled_from(SESSIONS),
    kind=st.sampled_from(KINDS),
    lead_s=st.integers(*LEAD_S),
    stretch=st.lists(
        st.sampled_from([(f, v) for f, values in REFUSED.items() for v in values]),
        min_size=1,
        max_size=3,
    ),
)
def test_values_the_contract_refuses_are_rejected_and_counted(
    name: str, kind: AlarmKind, lead_s: int, stretch: list[tuple[str, float]]
) -> None:
    """A stretch of samples each holding one refused value: the alarms are those without them."""
    samples, episode = session(name, kind)
    batches, clock = in_batches(samples)
    at = index_before(samples, episode, lead_s)
    # bad times one millisecond apart: the bank merges samples of the same millisecond
    bad_ones = {
        id(samples[at + k]): {f: v + k if f == "time_ms" else v} for k, (f, v) in enumerate(stretch)
    }
    bad = [[unchecked(s, **bad_ones.get(id(s), {})) for s in b] for b in batches]
    alarms, bank = fed(bad, clock)
    kept = [[s for s in b if id(s) not in bad_ones] for b in batches]
    without, _ = fed([b for b in kept if b], [t for b, t in zip(kept, clock, strict=True) if b])
    assert alarms == without
    assert found(alarms, episode)
    assert rejected(bank) == len(stretch)
    finite_snapshot(bank)


# -- extreme values the contract allows ---------------------------------------------------------

ALLOWED_EXTREMES: dict[str, tuple[object, ...]] = {
    "heart_rate_bpm": (20.0, 21.0, 30.0, 250.0, 300.0),
    "steps": (0, 10_000),
    "acceleration_g": (0.0, 32.0),
    "acceleration_sd_g": (0.0, 32.0),
    "contact_detected": (True, False),
}


def extreme_sample() -> st.SearchStrategy[dict[str, object]]:
    """One to three fields of a sample set to the ends of their contract ranges."""
    pairs = [(f, v) for f, values in ALLOWED_EXTREMES.items() for v in values]
    return st.lists(st.sampled_from(pairs), min_size=1, max_size=3).map(dict)


@FUZZ
@given(
    name=st.sampled_from(SESSIONS),
    kind=st.sampled_from(KINDS),
    lead_s=st.integers(*LEAD_S),
    stretch=st.lists(extreme_sample(), min_size=1, max_size=5),
)
def test_extreme_values_the_contract_allows_leave_the_patient_watched(
    name: str, kind: AlarmKind, lead_s: int, stretch: list[dict[str, object]]
) -> None:
    """Up to 5 s of readings at the ends of their ranges: the episode minutes later is found."""
    samples, episode = session(name, kind)
    at = index_before(samples, episode, lead_s)
    bad = list(samples)
    for k, values in enumerate(stretch):
        bad[at + k] = Sample.model_validate({**dict(bad[at + k]), **values})
    alarms, bank = fed(*in_batches(bad))
    assert found(alarms, episode)
    finite_snapshot(bank)


# -- time ---------------------------------------------------------------------------------------

MOVES_S = (1, 15, 60, 299, 300, 599, 600, 3600, 86_400, 14 * 86_400)


@FUZZ
@given(
    lead_s=st.integers(90 * 60, 4 * 3600),
    move=st.one_of(
        st.tuples(st.just("gap"), st.sampled_from(MOVES_S)),
        st.tuples(st.just("back"), st.sampled_from([1, 15, 60, 599, 3600])),
        st.tuples(st.just("duplicates"), st.integers(1, 20)),
        st.tuples(st.just("ahead"), st.sampled_from([1, 60, 240, 300])),
    ),
    batch_size=st.sampled_from([1, 7, 20, 400]),
)
def test_time_going_wrong_leaves_the_patient_watched(
    lead_s: int, move: tuple[str, int], batch_size: int
) -> None:
    """Gaps, a clock stepped back (a local-hour jump among them), duplicates, a sample ahead.

    A Fitbit day, fed in batches of a fixed number of samples in the order they came (as one
    device's batches reach the service); the surge hours later is found, the snapshot restores,
    and every sample not newer than the newest before it is counted as skipped.
    """
    samples, episode = fitbit_day()
    at = index_before(samples, episode, lead_s)
    what, amount = move
    shift_s = 0.0
    bad = list(samples)
    if what in ("gap", "back"):  # the device clock jumps (a local-hour change: 3600 s)
        shift_s = amount if what == "gap" else -amount
        moved = 1000 * int(shift_s)
        bad[at:] = [s.model_copy(update={"time_ms": s.time_ms + moved}) for s in bad[at:]]
    elif what == "duplicates":  # the same millisecond again, with other readings
        rng = np.random.default_rng(amount)
        for k in sorted(rng.choice(range(at, at + 200), amount, replace=False), reverse=True):
            hr = float(rng.uniform(20.0, 300.0))
            bad.insert(k + 1, bad[k].model_copy(update={"heart_rate_bpm": hr, "steps": 0}))
    else:  # one sample stamped ahead, as far as the service accepts (5 min)
        bad[at] = bad[at].model_copy(update={"time_ms": bad[at].time_ms + 1000 * amount})
    batches = [bad[i : i + batch_size] for i in range(0, len(bad), batch_size)]
    alarms, bank = fed(batches, [b[0].time_ms / 1000.0 for b in batches])
    assert found(alarms, episode, shift_s)
    finite_snapshot(bank)
    assert rejected(bank) == skipped_in_order(batches)


def skipped_in_order(batches: Sequence[Sequence[Sample]]) -> int:
    """How many samples are not newer than every sample folded in before them.

    Within a batch the bank folds samples in time order, one per millisecond (the bank's
    ``_in_time_order``); across batches the newest time seen so far is the bar.
    """
    newest, skipped = -1, 0
    for batch in batches:
        times = sorted({s.time_ms for s in batch})
        skipped += sum(1 for t in times if t <= newest)
        newest = max(newest, times[-1])
    return skipped


# -- flarewatch detect on a file with bad cells -------------------------------------------------

BAD_CELLS = ("nan", "NaN", "inf", "-inf", "1e400", "-50", "-1", "1e9", "abc", "0x10")
BAD_TIMES = ("0", "1e12", "-1", "nan", "inf", "1e15")
VITALS = ("hr_bpm", "skin_temp_c", "acc_g", "acc_sd_g")


def detect(tmp: Path, frame: pd.DataFrame, name: str) -> list[dict[str, Any]]:
    """``flarewatch detect`` on ``frame`` written as a CSV file (cells as they are)."""
    rec, out = tmp / f"{name}.csv", tmp / f"{name}.jsonl"
    frame.to_csv(rec, index=False)
    assert main(["detect", "--input", str(rec), "--out", str(out)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@settings(FUZZ, max_examples=15)
@given(
    name=st.sampled_from(SESSIONS),
    kind=st.sampled_from(KINDS),
    lead_s=st.integers(*LEAD_S),
    cells=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(VITALS), st.sampled_from(BAD_CELLS)),
        min_size=1,
        max_size=4,
    ),
    bad_time=st.one_of(st.none(), st.tuples(st.integers(0, 5), st.sampled_from(BAD_TIMES))),
)
def test_detect_blanks_bad_cells_and_drops_bad_times(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    kind: AlarmKind,
    lead_s: int,
    cells: list[tuple[int, str, str]],
    bad_time: tuple[int, str] | None,
) -> None:
    """The events of a file with bad cells are those of the file with the cells left empty.

    The cells are counted as blanked per column, and a row with a bad time as dropped (a text
    of NaN is a missing value, as the contract says, and not counted).
    """
    frame = pd.read_csv(DATA_DIR / "stress_predict" / f"{name}.csv.gz")
    onset = stress_onset(frame.drop(columns=["phase"]), np.random.default_rng(1))
    assert onset is not None
    episode = strong_episode(kind, onset)
    frame = inject(frame, [episode], np.random.default_rng(0)).astype(object)
    at = int(np.searchsorted(frame["time_s"].to_numpy(dtype="float64"), onset - lead_s))
    bad, blank = frame.copy(), frame.copy()
    for row, column, text in cells:
        bad.loc[at + row, column] = text
        blank.loc[at + row, column] = None
    if bad_time is not None:
        bad.loc[at + bad_time[0], "time_s"] = bad_time[1]
        blank = blank.drop(index=at + bad_time[0])
    tmp = tmp_path_factory.mktemp("detect")
    events = detect(tmp, bad, "bad")
    assert events == detect(tmp, blank, "blank")
    _, quality = read_recording(tmp / "bad.csv")
    last_text = {(row, column): text for row, column, text in cells}
    dropped_row = None if bad_time is None else bad_time[0]
    counted = {
        c for (r, c), text in last_text.items() if text.lower() != "nan" and r != dropped_row
    }
    assert counted <= set(quality.dropped_cells)
    assert quality.dropped_rows.get("bad_time", 0) == (bad_time is not None)
    onsets = [e for e in events if e["evidence"].get("onset") == 1.0 and e["kind"] == kind.value]
    assert any(episode.onset_s <= e["time_s"] <= episode.end_s for e in onsets)


# -- the skin temperature: one reading says the band came off -----------------------------------


@FUZZ
@given(
    name=st.sampled_from(SESSIONS),
    kind=st.sampled_from(KINDS),
    lead_s=st.integers(*LEAD_S),
    sign=st.sampled_from([1.0, -1.0]),
    offsets=st.lists(st.floats(0.0, 1.9), min_size=1, max_size=5),
)
def test_a_skin_glitch_short_of_the_off_wrist_drop_leaves_the_patient_watched(
    name: str, kind: AlarmKind, lead_s: int, sign: float, offsets: list[float]
) -> None:
    """Up to 5 s of skin readings up to 1.9 degC warm, or cold (the peak, slope, skin trend).

    One way only: warm readings then a cold one are the off-wrist defect below.
    """
    samples, episode = session(name, kind)
    at = index_before(samples, episode, lead_s)
    bad = list(samples)
    for k, offset in enumerate(offsets):
        temp = bad[at + k].skin_temperature_c
        if temp is not None:
            bad[at + k] = bad[at + k].model_copy(
                update={"skin_temperature_c": temp + sign * offset}
            )
    alarms, bank = fed(*in_batches(bad))
    assert found(alarms, episode)
    finite_snapshot(bank)


@pytest.mark.parametrize(
    ("name", "lead_s", "offsets_c"),
    [
        ("S14", 600, [20.0 - 33.5]),  # one reading of 20 degC on a skin at 33.5
        ("S02", 608, [1.5, 1.5, 1.5, -1.875]),  # four readings, none 2 degC off the skin
    ],
    ids=["one cold reading", "four readings within 2 degC"],
)
def test_a_skin_glitch_does_not_leave_the_band_off_the_wrist_for_good(
    name: str, lead_s: int, offsets_c: list[float]
) -> None:
    """A few skin readings off (in range), then the skin as before; a surge 10 min later.

    A reading 2 degC below its 30-s average says the band came off. Until 1.12.1 it was back on
    only once that average had warmed 1 degC above its coldest; a reading moves the average by
    a thirtieth of its distance, so after a glitch a steady skin never got there: heart rate
    ignored, ``no_contact`` raised, the surge missed, until the skin happened to warm by a
    degree. Three readings 1.5 degC warm then one 1.9 degC cold did it too (the warm ones raised
    the average). Now a reading back near the average before the drop is the band worn again.
    """
    samples, episode = session(name, AlarmKind.ANAPHYLAXIS)
    at = index_before(samples, episode, lead_s)
    bad = list(samples)
    for k, offset in enumerate(offsets_c):
        temp = bad[at + k].skin_temperature_c
        assert temp is not None
        bad[at + k] = Sample.model_validate(
            {**dict(bad[at + k]), "skin_temperature_c": temp + offset}
        )
    alarms, _ = fed(*in_batches(bad))
    assert not [a for a in alarms if a.kind is AlarmKind.NO_CONTACT]
    assert found(alarms, episode)


def skin_glitch(
    name: str, kind: AlarmKind, lead_s: int, stretch: list[float]
) -> tuple[tuple[Sample, ...], Episode, list[Sample]]:
    """The session with its episode, and a copy with ``stretch`` as skin readings ``lead_s``
    before the episode's onset."""
    samples, episode = session(name, kind)
    at = index_before(samples, episode, lead_s)
    bad = list(samples)
    for k, temp in enumerate(stretch):
        bad[at + k] = Sample.model_validate({**dict(bad[at + k]), "skin_temperature_c": temp})
    return samples, episode, bad


@pytest.mark.parametrize(
    ("name", "kind", "lead_s", "stretch"),
    [
        pytest.param("S25", AlarmKind.ANAPHYLAXIS, 614, [10.0, 30.0], id="cooling-blinded"),
        pytest.param("S28", AlarmKind.FLUSH, 840, [45.0, 20.0], id="warm-up-restarted"),
        pytest.param("S35", AlarmKind.FLUSH, 601, [45.0, 10.0, 20.0, 45.0, 30.0], id="held-warm"),
    ],
)
def test_the_glitches_the_property_found_leave_the_patient_watched(
    name: str, kind: AlarmKind, lead_s: int, stretch: list[float]
) -> None:
    """Regressions found by the glitch property below with 400 and 1,500 examples.

    A cold reading says the band came off; the next, within 2 degC of the skin but 0.5 colder
    than the average before (S28: an average a warm glitch had raised), says the sensor is back
    and re-warms. Until 1.12.3 that restarted the skin averages from it, and the sensor's clock:

    * S25: the slope read flat for minutes, and the session's own heart rise at rest six minutes
      later (+36 %, held back by its cooling skin) raised a critical alarm, whose episode hid the
      surge injected four minutes after. The averages now keep the skin's course;
    * S28: its skin, still warming slowly 16 min after the band went on, was given another
      25 min to settle, and the flush 14 min later went unseen (found once the averages were
      kept). A sensor still settling now goes on settling.
    * S35 (found with 1,000 examples in a first design of 1.12.4, never released): the warm
      readings raised the average by 0.9 degC; back after the last cold one, the sensor's
      readings were dropped as re-warming, the average held warm and warming, and a flush was
      raised on it 9.5 min before the injected one, whose episode it then hid. No flush is
      judged while the readings are dropped.
    """
    samples, episode, bad = skin_glitch(name, kind, lead_s, stretch)
    alarms, _ = fed(*in_batches(bad))
    untouched, _ = fed(*in_batches(samples))
    assert [a for a in alarms if a.time_s < episode.onset_s] == [
        a for a in untouched if a.time_s < episode.onset_s
    ]
    assert found(alarms, episode)


def contact_lost(
    samples: Sequence[Sample], lost_s: float, cold_c: float, for_s: float = 10.0
) -> list[Sample]:
    """``samples`` from a band with a contact bit, without contact for ``for_s`` from
    ``lost_s``; back ``cold_c`` colder, the sensor re-warming onto the skin within a minute."""
    bad = []
    for sample in samples:
        since_s = sample.time_ms / 1000 - lost_s
        update: dict[str, Any] = {"contact_detected": not 0 <= since_s < for_s}
        if since_s >= for_s and sample.skin_temperature_c is not None:
            update["skin_temperature_c"] = sample.skin_temperature_c - cold_c * math.exp(
                -(since_s - for_s) / 20
            )
        bad.append(sample.model_copy(update=update))
    return bad


def sensor_lifted(
    samples: Sequence[Sample],
    lifted_s: float,
    cold_c: float,
    *,
    for_s: float = 10.0,
    below_c: float = 0.0,
) -> list[Sample]:
    """``samples`` from a band without a contact bit whose sensor leaves the skin for ``for_s``
    from ``lifted_s`` (the band shifting): it cools towards ``cold_c`` below the skin, then
    re-warms within a minute onto a spot that reads ``below_c`` colder from then on."""
    bad = []
    for sample in samples:
        since_s = sample.time_ms / 1000 - lifted_s
        temp = sample.skin_temperature_c
        if temp is None or since_s < 0:
            bad.append(sample)
            continue
        fallen_c = cold_c * (1 - math.exp(-min(since_s, for_s) / 4))
        if since_s >= for_s:
            fallen_c = below_c + (fallen_c - below_c) * math.exp(-(since_s - for_s) / 20)
        bad.append(sample.model_copy(update={"skin_temperature_c": temp - fallen_c}))
    return bad


def band_shifted(samples: Sequence[Sample], shifted_s: float) -> list[Sample]:
    """``samples`` with S07's band shift at ``shifted_s``, as the E4 of the recordings read it:
    1.2 degC colder at once, re-warmed within about 75 s onto a spot 0.35 degC colder."""
    bad = []
    for sample in samples:
        since_s = sample.time_ms / 1000 - shifted_s
        temp = sample.skin_temperature_c
        if temp is None or since_s < 0:
            bad.append(sample)
            continue
        fallen_c = 0.35 + 0.85 * math.exp(-since_s / 30)
        bad.append(sample.model_copy(update={"skin_temperature_c": temp - fallen_c}))
    return bad


def onsets_of(alarms: Sequence[Alarm], episode: Episode) -> list[float]:
    """When onset alarms of the episode's kind were raised, from its onset on."""
    return [
        a.time_s
        for a in alarms
        if is_onset(a) and a.kind is episode.kind and a.time_s > episode.onset_s
    ]


@pytest.mark.parametrize("after_s", [30, 60, 90])
@pytest.mark.parametrize("name", ["S02", "S15", "S27"])
def test_a_sensor_lifted_during_a_surge_without_a_contact_bit_leaves_it_found(
    name: str, after_s: int
) -> None:
    """A band without a contact bit (most bands, the E4 of the recordings) shifts during a
    surge, its sensor off the skin for 10 s (1.4 degC colder), then re-warming (1.12.5).

    Nothing says the sensor left, so until 1.12.5 its readings were the skin's: the dip read as
    the skin cooling, which holds the surge evidence back. S15's surge (its wearer moving 3.5
    min in) was missed; the others came up to 98 s late. A reading 0.5 degC below the 30-s
    average now says the sensor left: its readings are dropped while it re-warms, as after a
    contact loss. The surge is raised within 40 s of when it is untouched, or sooner.
    """
    samples, episode = session(name, AlarmKind.ANAPHYLAXIS)
    bad = sensor_lifted(samples, episode.onset_s + after_s, 1.5)
    onsets = onsets_of(fed(*in_batches(bad))[0], episode)
    expected = onsets_of(fed(*in_batches(samples))[0], episode)
    assert len(expected) == 1
    assert len(onsets) == 1 and onsets[0] <= expected[0] + 40


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("after_s", [30, 60, 90])
@pytest.mark.parametrize("name", ["S27", "S35"])
def test_a_band_shifted_as_the_e4s_did_leaves_the_episode_found(
    name: str, after_s: int, kind: AlarmKind
) -> None:
    """S07's band shift (1.2 degC at once, re-warmed in about 75 s onto a spot 0.35 degC
    colder) 30-90 s into an episode (1.12.5).

    Until 1.12.5 the step down read as the skin cooling for minutes, and the surges of S27
    and S35 were missed. The readings are now dropped while the sensor re-warms; taken again,
    the 30-s average starts from them, and the skin's slope for the surge rule leaves out the
    step. The episode is raised within 60 s of when it is untouched, or sooner (no flush is
    judged while the sensor re-warms, so a flush waits for it).
    """
    samples, episode = session(name, kind)
    bad = band_shifted(samples, episode.onset_s + after_s)
    onsets = onsets_of(fed(*in_batches(bad))[0], episode)
    expected = onsets_of(fed(*in_batches(samples))[0], episode)
    assert len(expected) == 1
    assert onsets and onsets[0] <= expected[0] + 60


@pytest.mark.parametrize("name", ["S05", "S13", "S18", "S28"])
def test_a_sensor_lifted_every_five_minutes_raises_no_alarm(name: str) -> None:
    """A stress-predict session without an episode, whose band (no contact bit) shifts every 5
    min, its sensor off the skin for 10 s each time (1.4 degC colder): no alarm (1.12.5).

    Until 1.12.5 the re-warming after each dip, over a reference that had followed the dip
    down, read as a flush: these four sessions raised one each (the 35 sessions 16 alarms
    instead of 3).
    """
    frame = pd.read_csv(DATA_DIR / "stress_predict" / f"{name}.csv.gz").drop(columns=["phase"])
    samples: Sequence[Sample] = list(iter_samples(clean_recording(frame)[0]))
    assert not [a for a in fed(*in_batches(samples))[0] if is_onset(a)]
    first_s, last_s = samples[0].time_ms / 1000, samples[-1].time_ms / 1000
    for lifted_s in np.arange(first_s + 300, last_s, 300):
        samples = sensor_lifted(samples, lifted_s, 1.5)
    assert not [a for a in fed(*in_batches(samples))[0] if is_onset(a)]


@pytest.mark.parametrize("cold_c", [0.0, 1.0])
@pytest.mark.parametrize("after_s", [30, 60, 90])
@pytest.mark.parametrize("name", ["S02", "S15"])
def test_a_contact_loss_during_a_surge_leaves_it_found(
    name: str, after_s: int, cold_c: float
) -> None:
    """Regressions: 10 readings without skin contact while the heart rises at rest.

    * Motion (S02 at 30 s, its wrist gestures): the motion readings of the loss are dropped; the
      first one after it weighed in as if it had lasted all of them, and one gesture (0.33 g)
      made the wearer "active" for 5 min. The surge evidence was wiped, and the surge raised
      nothing (a flush 18 min later). Found at the end of session 17 by hand; fixed in 1.12.3.
    * The sensor back a degree colder: its re-warming read as the skin cooling, which holds
      the surge evidence back. S02 came 70 s late; S15's, delayed past its wearer's next
      movement, never came (1.12.4). While it re-warms the skin's slope is unknown now.

    The surge is raised within 30 s of when it is without the loss, or sooner (while the sensor
    re-warms the skin's cooling holds nothing back).
    """
    samples, episode = session(name, AlarmKind.ANAPHYLAXIS)
    bad = contact_lost(samples, episode.onset_s + after_s, cold_c)
    alarms, _ = fed(*in_batches(bad))
    untouched, _ = fed(*in_batches(samples))
    onsets, expected = (
        [a.time_s for a in raised if a.kind is AlarmKind.ANAPHYLAXIS and a.evidence.get("onset")]
        for raised in (alarms, untouched)
    )
    assert len(expected) == 1
    assert len(onsets) == 1 and episode.onset_s < onsets[0] <= expected[0] + 30


@settings(FUZZ, phases=[Phase.explicit, Phase.generate])  # expected to fail: no shrinking
@given(
    **AN_EPISODE,
    lost_s=st.integers(-LEAD_S[1], 120),
    for_s=st.integers(1, 50),
    cold_c=st.floats(0.0, 3.0),
)
def test_a_contact_loss_leaves_the_patient_watched(
    name: str, kind: AlarmKind, lost_s: int, for_s: int, cold_c: float
) -> None:
    """Up to 50 s without skin contact from 14 min before the episode's onset, up to 10 s from
    its onset to 2 min into it, the sensor back up to 3 degC colder: the episode is found, and
    the sensor's re-warming raises no flush before it.

    Longer in the episode, the loss hides the heart for that long: S15's surge, its wearer
    moving 3.5 min in, is missed after 36 s without contact 36 s in, with or without the rules.
    A surge may be raised before the episode: while the sensor re-warms the skin's course is
    unknown, and a cooling no longer holds a heart rising at rest back (S02's own rise to 137
    bpm, 3 min before the episode, is raised after a loss of 15 s in its first minute; its
    alarm, still open, covers an injected surge).
    """
    if lost_s + for_s > 0:
        for_s = min(for_s, 10)
    samples, episode = session(name, kind)
    bad = contact_lost(samples, episode.onset_s + lost_s, cold_c, for_s)
    watched_through(samples, bad, episode)


@settings(FUZZ, phases=[Phase.explicit, Phase.generate])  # expected to fail: no shrinking
@given(
    **AN_EPISODE,
    lifted_s=st.integers(-LEAD_S[1], 120),
    for_s=st.integers(5, 30),
    cold_c=st.floats(1.0, 3.0),
)
def test_a_sensor_lift_leaves_the_patient_watched(
    name: str, kind: AlarmKind, lifted_s: int, for_s: int, cold_c: float
) -> None:
    """A band without a contact bit shifts from 14 min before the episode's onset to 2 min
    into it, its sensor off the skin for 5-30 s (cooling by 0.7-3 degC) and re-warming onto
    the skin: the episode is found, and no flush is raised before it.

    A band shifted onto a cooler spot is not always harmless (the cases the property found
    with a spot up to 0.5 degC cooler, with 1.12.5): S27's wearer cools at about the rate that
    holds a surge back (-0.02 degC/min), and a spot 0.29 degC cooler 169 s before its surge
    tips it over (missed; found without the shift). A step down while the skin warms on its
    own is not told from the skin's level (S15's warming surge, shifted 0.35 degC 30 s in,
    reads as a cooling skin and is missed). A sensor that cools less than SENSOR_LIFT_DROP_C
    is not seen to leave: its step down reads as the skin cooling (0.5 degC within 20 s holds
    S27's surge back until it is missed, with or without the rules of 1.12.5).
    """
    samples, episode = session(name, kind)
    bad = sensor_lifted(samples, episode.onset_s + lifted_s, cold_c, for_s=for_s)
    watched_through(samples, bad, episode)


@pytest.mark.parametrize(
    ("name", "kind", "lost_s", "for_s", "cold_c"),
    [
        pytest.param("S25", AlarmKind.FLUSH, 61, 14, 3.0, id="flush-under-way"),
        pytest.param("S27", AlarmKind.ANAPHYLAXIS, 37, 10, 0.38, id="a-little-colder"),
        pytest.param("S32", AlarmKind.FLUSH, -358, 39, 1.9, id="skin-cooled-meanwhile"),
    ],
)
def test_the_contact_losses_the_property_found_leave_the_patient_watched(
    name: str, kind: AlarmKind, lost_s: int, for_s: int, cold_c: float
) -> None:
    """Regressions found by the contact-loss property above (1.12.4).

    * S25: a loss of 14 s a minute into a flush's rise, the sensor back 3 degC colder. Its
      readings, folded in, took the skin's reference down and back up while it re-settled,
      and the flush was taken into it: missed.
    * S27: back 0.38 degC colder, 37 s into a surge. Less than 0.5 degC, the re-warming was
      taken for the skin cooling, which held the surge back until the wearer's own cooling
      minutes later vetoed it: missed. Any sensor back colder now re-warms.
    * S32: the skin cooled by 0.45 degC while the sensor was off, so its readings never came
      back near the average from before. Dropped for 3 min (the first design of 1.12.4) and
      then taken as a sudden cooling, they kept the sensor from settling through the flush 5
      min later. Readings that have stopped rising are the skin's.
    """
    samples, episode = session(name, kind)
    alarms, _ = fed(*in_batches(contact_lost(samples, episode.onset_s + lost_s, cold_c, for_s)))
    assert found(alarms, episode)


@pytest.mark.parametrize(("name", "lost_s"), [("S07", 870), ("S13", 900), ("S28", 870)])
def test_a_contact_loss_as_the_warm_up_ends_raises_no_flush(name: str, lost_s: int) -> None:
    """Regression: back a degree colder as the band's warm-up ended (15 min), the sensor's
    re-warming offset the skin's own warming: the slope read flat, the sensor "settled", and
    its re-warming read as a flush over a reference that had followed its cold readings down
    (a flush alarm 2-4 min later; losses 14.0-15.5 min after the band went on raised one in
    four of the seven sessions tried; 1.12.4). A sensor back colder is not judged settled
    before it has re-warmed."""
    frame = pd.read_csv(DATA_DIR / "stress_predict" / f"{name}.csv.gz").drop(columns=["phase"])
    samples = list(iter_samples(clean_recording(frame)[0]))
    start_s = samples[0].time_ms / 1000
    first_hour = [s for s in samples if s.time_ms / 1000 - start_s < 3600]
    alarms, _ = fed(*in_batches(contact_lost(first_hour, start_s + lost_s, 1.0)))
    assert [a.time_s for a in alarms if a.kind is AlarmKind.FLUSH] == []


@pytest.mark.parametrize("motion", [True, False])
@pytest.mark.parametrize("warmer_c", [3.0, 8.0])
def test_a_band_put_on_warm_is_not_off_the_wrist_for_good(warmer_c: float, motion: bool) -> None:
    """A band put on warmer than the skin (off a charger, out of a hot car), cooling onto it.

    The readings fall 2 degC below their 30-s average within seconds, which says the band came
    off; the average then falls to the skin's level and its coldest follows it down, so it never
    warmed 1 degC above it: ``no_contact`` a minute after the band went on, never resolved, and
    the surge half an hour later missed (until 1.12.2). A minute of "no contact" while it cools
    is all it costs now: the band holding at a wrist's warmth for two minutes is worn (moving,
    if it reports motion: since 1.12.3 a band as still as a table's stays off).
    """
    samples, episode = session("S14", AlarmKind.ANAPHYLAXIS)
    start_ms, first_c = samples[0].time_ms, samples[0].skin_temperature_c
    assert first_c is not None
    bad = [
        s.model_copy(
            update={
                "skin_temperature_c": s.skin_temperature_c
                + (first_c + warmer_c - s.skin_temperature_c)
                * math.exp(-(s.time_ms - start_ms) / 20e3),
                "acceleration_sd_g": s.acceleration_sd_g if motion else None,
                "acceleration_g": s.acceleration_g if motion else None,
            }
        )
        if s.skin_temperature_c is not None
        else s
        for s in samples
    ]
    alarms, _ = fed(*in_batches(bad))
    no_contact = [a for a in alarms if a.kind is AlarmKind.NO_CONTACT]
    assert [a.resolved for a in no_contact] in ([], [False, True])
    assert all(a.time_s - start_ms / 1000 < 5 * 60 for a in no_contact)
    assert found(alarms, episode)


@settings(FUZZ, phases=[Phase.explicit, Phase.generate])  # expected to fail: no shrinking
@given(
    name=st.sampled_from(SESSIONS),
    kind=st.sampled_from(KINDS),
    lead_s=st.integers(*LEAD_S),
    stretch=st.lists(st.sampled_from([10.0, 20.0, 30.0, 40.0, 45.0]), min_size=1, max_size=5),
)
def test_a_skin_temperature_glitch_leaves_the_patient_watched(
    name: str, kind: AlarmKind, lead_s: int, stretch: list[float]
) -> None:
    """Up to 5 s of skin readings anywhere in the contract's range: the episode after is found.

    Or an alarm of its kind is still open at its onset: warm glitches that raise the 30-s
    average by a degree make the real readings after them look like a sensor lifted off the
    skin (1.12.5), and while those are dropped a cooling no longer holds a heart rising at rest
    back (S02's own rise to 137 bpm is raised 91 s before the injected surge after
    [40, 45, 45, 40] degC 766 s before it; its alarm, still open, covers the surge).
    """
    _, episode, bad = skin_glitch(name, kind, lead_s, stretch)
    alarms, bank = fed(*in_batches(bad))
    assert alarmed(alarms, episode)
    finite_snapshot(bank)


def test_the_expected_count_of_skipped_samples_is_the_banks() -> None:
    """The time property's count is not vacuous: an old sample again is counted, once."""
    samples, _ = fitbit_day()
    head = list(samples[:50])
    batches = [head[:20], [head[5], *head[20:30]], head[30:]]
    _, bank = fed(batches, [b[0].time_ms / 1000.0 for b in batches])
    assert skipped_in_order(batches) == rejected(bank) == 1
