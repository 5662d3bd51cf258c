"""Properties of the replay contract and the streaming detectors, over real recordings.

Seeded random variations of the shipped recordings (docs/models.md, replay contract):

* whatever the file looks like, ``flarewatch detect`` ends with a clear error or with alarms
  that keep the contract (time order, known kinds and severities, one onset per episode, times
  within the recording);
* a snapshot saved and restored anywhere (as the service checkpoints) changes no alarm;
* how the samples are cut into batches (the service's ingest cycles, a gateway's backlog)
  changes no alarm, also when the confirmer vetoes onsets;
* two runs write the same bytes.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flarewatch.cli import main
from flarewatch.payloads import Sample
from models.alarm import Alarm, AlarmKind
from models.artifacts import default_bank
from models.bank import DetectorBank
from models.datasets import DATA_DIR, load_fitbit
from models.injection import Episode, draw_episode, inject
from models.profiles import DetectionProfile
from models.recording import clean_recording, iter_samples
from models.replay import chunk_by_time, replay

STRESS = sorted((DATA_DIR / "stress_predict").glob("S*.csv.gz"))
VITALS = ("hr_bpm", "skin_temp_c", "steps", "acc_g", "acc_sd_g")
KINDS = {"flush", "anaphylaxis", "no_contact", "no_data"}
SIGNAL_STATES = {"no_contact", "no_data"}
EARLIEST_S, LATEST_S = 1_262_304_000.0, 4_102_444_800.0  # the plausible times (2010 to 2100)
ABSURD: tuple[object, ...] = (
    math.nan,
    math.inf,
    -math.inf,
    -5,
    0,
    400,
    80,
    "abc",
    "",
    " 70 ",
    "1e400",
    "NaN",
    "0x10",
)


@pytest.fixture(scope="module")
def fitbit() -> list[pd.DataFrame]:
    return [r.frame for r in load_fitbit(limit=2, max_days=2)]


def real_slice(rng: np.random.Generator, fitbit: list[pd.DataFrame]) -> pd.DataFrame:
    """A stress session (heart rate, skin, motion) or hours of a Fitbit user (heart, steps)."""
    if rng.random() < 0.6:
        return pd.read_csv(STRESS[int(rng.integers(len(STRESS)))])
    frame = fitbit[int(rng.integers(len(fitbit)))]
    start = frame["time_s"].iloc[0] + rng.uniform(0, 86_400)
    end = start + rng.uniform(1, 8) * 3600
    part = frame[(frame["time_s"] >= start) & (frame["time_s"] < end)]
    return part.reset_index(drop=True) if len(part) > 10 else pd.read_csv(STRESS[0])


def with_episodes(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Up to two injected surges or flushes, so that episodes run through what follows."""
    first, last = float(frame["time_s"].iloc[0]), float(frame["time_s"].iloc[-1])
    episodes = [
        draw_episode(
            rng,
            AlarmKind.ANAPHYLAXIS if rng.random() < 0.6 else AlarmKind.FLUSH,
            first + rng.uniform(0.2, 0.9) * (last - first),
        )
        for _ in range(int(rng.integers(0, 3)))
    ]
    return inject(frame, episodes, rng)


def irregular(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The recording read at random intervals of 1 to 15 s (the reading last known then)."""
    times = frame["time_s"].to_numpy(dtype="float64")
    steps = np.cumsum(rng.uniform(1.0, 15.0, int((times[-1] - times[0]) / 8) + 10))
    new = times[0] + steps[times[0] + steps <= times[-1]]
    if rng.random() < 0.5:
        new = np.round(new, int(rng.integers(0, 4)))
    rows = np.clip(np.searchsorted(times, new, side="right") - 1, 0, len(frame) - 1)
    out = frame.iloc[rows].copy()
    out["time_s"] = new
    return out.reset_index(drop=True)


def with_gaps(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Silences of minutes to hours (around the 5-min no-data and 10-min wear limits)."""
    frame = frame.copy()
    frame["time_s"] = frame["time_s"].astype("float64")
    for _ in range(int(rng.integers(0, 4))):
        at = int(rng.integers(0, len(frame)))
        gap = rng.choice([60, 299, 300, 599, 600, 601, 1800, 3600, 3 * 3600, 20 * 3600])
        frame.loc[at:, "time_s"] += float(gap)
    return frame


def messy_csv(rng: np.random.Generator, fitbit: list[pd.DataFrame]) -> tuple[bytes, list[float]]:
    """A real recording made awkward in every way the contract allows; and its valid times."""
    frame = with_episodes(real_slice(rng, fitbit), rng)
    if rng.random() < 0.8:
        frame = irregular(frame, rng)
    frame = with_gaps(frame, rng)
    frame = frame.drop(columns=[c for c in VITALS if c in frame and rng.random() < 0.3])
    times = frame["time_s"].tolist()
    cells = frame.astype(object)
    columns = [c for c in cells.columns if c != "phase"]
    for _ in range(int(rng.integers(0, 30))):  # absurd values, of time as well
        column = cells.columns.get_loc(columns[int(rng.integers(len(columns)))])
        cells.iat[int(rng.integers(len(cells))), column] = ABSURD[int(rng.integers(len(ABSURD)))]
    rows = cells.to_numpy().tolist()
    for _ in range(int(rng.integers(0, 20))):  # duplicate timestamps
        at = int(rng.integers(len(rows)))
        rows.insert(at + 1, list(rows[at]))
    for _ in range(int(rng.integers(0, 20))):  # rows out of order
        i, j = (int(k) for k in rng.integers(0, len(rows), 2))
        rows[i], rows[j] = rows[j], rows[i]
    header = list(cells.columns)
    if rng.random() < 0.3:
        header.append("note")
        for row in rows:
            row.append(["x", '"a, b"', "", '"q"'][int(rng.integers(4))])
    order = rng.permutation(len(header))
    header = [header[k] for k in order]
    rows = [[row[k] for k in order] for row in rows]
    quoting = rng.random() < 0.3

    def cell(value: object) -> str:
        text = repr(value) if isinstance(value, float) else str(value)
        return f'"{text}"' if quoting and rng.random() < 0.5 else text

    eol = "\r\n" if rng.random() < 0.3 else "\n"
    lines = [",".join(cell(c) for c in header), *(",".join(cell(v) for v in r) for r in rows)]
    data = (eol.join(lines) + eol * int(rng.integers(0, 4))).encode()
    if rng.random() < 0.2:
        data = b"\xef\xbb\xbf" + data
    if rng.random() < 0.2:
        data = gzip.compress(data, mtime=0)
    valid = [t for t in times if EARLIEST_S <= t <= LATEST_S]
    return data, valid


def contract_breaches(events: list[dict[str, Any]], times: Sequence[float]) -> list[str]:
    """What in an events file breaks the replay contract (empty: nothing)."""
    breaches = []
    if [e["time_s"] for e in events] != sorted(e["time_s"] for e in events):
        breaches.append("not in time order")
    first, last = min(times) - 0.0005, max(times) + 0.0005  # samples are to the millisecond
    open_kinds: set[str] = set()
    escalations: dict[str, int] = {}
    for e in events:
        kind, at = e["kind"], e["time_s"]
        if not {"time_s", "kind", "severity", "resolved"} <= e.keys():
            breaches.append(f"fields missing at {at}")
        if kind not in KINDS or e["severity"] not in {"warning", "critical"}:
            breaches.append(f"unknown kind or severity at {at}")
        if not first <= at <= last:
            breaches.append(f"{kind} at {at} outside the recording")
        if e["resolved"]:
            if kind not in open_kinds:
                breaches.append(f"{kind} resolved at {at} without an open episode")
            open_kinds.discard(kind)
        elif kind in SIGNAL_STATES or e["evidence"].get("onset") == 1.0:
            if kind in open_kinds:
                breaches.append(f"a second {kind} onset at {at} within a continuing episode")
            open_kinds.add(kind)
            escalations[kind] = 0
        elif kind not in open_kinds:
            breaches.append(f"{kind} escalated at {at} without an open episode")
        else:  # at most once to critical, and once to say the wrist went still
            escalations[kind] += 1
            if escalations[kind] > 2 or e["severity"] != "critical":
                breaches.append(f"{kind} alarmed again at {at} within a continuing episode")
    return breaches


@pytest.mark.parametrize("seed", range(24))
def test_a_messy_recording_gives_a_clear_error_or_alarms_within_the_contract(
    seed: int,
    fitbit: list[pd.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = np.random.default_rng(seed)
    data, times = messy_csv(rng, fitbit)
    rec, out = tmp_path / "rec.csv", tmp_path / "events.jsonl"
    rec.write_bytes(data)
    code = main(["detect", "--input", str(rec), "--out", str(out)])
    if code != 0:
        assert code == 1
        assert "flarewatch: error: " in capsys.readouterr().err
        return
    assert "failed" not in caplog.text  # a detector that raised started afresh, silently
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert contract_breaches(events, times) == []


def test_the_contract_check_finds_what_it_looks_for() -> None:
    """The check above is not vacuous: each breach it looks for is found."""
    onset = {"time_s": 10.0, "kind": "anaphylaxis", "severity": "warning", "resolved": False}
    onset["evidence"] = {"onset": 1.0}
    end = {**onset, "time_s": 20.0, "resolved": True, "evidence": {}}
    assert contract_breaches([onset, end], [0.0, 30.0]) == []
    assert contract_breaches([end, onset], [0.0, 30.0])
    assert contract_breaches([onset, {**onset, "time_s": 15.0}], [0.0, 30.0])
    assert contract_breaches([onset], [11.0, 30.0])
    assert contract_breaches([{**onset, "severity": "high"}], [0.0, 30.0])
    assert contract_breaches([{**onset, "evidence": {}}], [0.0, 30.0])
    again = {**onset, "time_s": 12.0, "severity": "critical", "evidence": {}}
    assert contract_breaches([onset, again, again, end], [0.0, 30.0]) == []
    assert contract_breaches([onset, again, again, again, end], [0.0, 30.0])
    assert contract_breaches([onset, {**again, "severity": "warning"}, end], [0.0, 30.0])


# -- save/restore and batches: the bank the service runs ---------------------------------------


def real_samples(seed: int, fitbit: list[pd.DataFrame]) -> list[Sample]:
    """A real recording with injected episodes, irregular and with gaps, as samples."""
    rng = np.random.default_rng(seed)
    frame = with_gaps(irregular(with_episodes(real_slice(rng, fitbit), rng), rng), rng)
    cleaned, _ = clean_recording(frame.drop(columns=["phase"], errors="ignore"))
    return list(iter_samples(cleaned))


def new_bank(profile: DetectionProfile, veto_all: bool = False) -> DetectorBank:
    bank = default_bank()
    bank.set_profile("p", profile)
    if veto_all:  # the released confirmer, rejecting every onset it may judge
        assert bank.confirmer is not None
        bank.confirmer.threshold = 1.01
    return bank


def fed(bank: DetectorBank, batches: Sequence[Sequence[Sample]]) -> list[Alarm]:
    """Alarms of the batches fed one ``update`` each, each preceded by a tick (as ``replay``)."""
    alarms = []
    for batch in batches:
        alarms += bank.tick(batch[0].time_ms / 1000.0)
        alarms += bank.update([("p", batch)])
    return alarms


def cut(samples: list[Sample], at: Sequence[int]) -> list[list[Sample]]:
    edges = [0, *sorted(set(at)), len(samples)]
    return [samples[a:b] for a, b in itertools.pairwise(edges) if b > a]


PROFILES = list(DetectionProfile)


@pytest.mark.parametrize("seed", range(8))
def test_a_snapshot_restored_anywhere_changes_no_alarm(
    seed: int, fitbit: list[pd.DataFrame]
) -> None:
    samples = real_samples(100 + seed, fitbit)
    profile = PROFILES[seed % len(PROFILES)]
    veto = seed % 2 == 1
    batches = list(chunk_by_time(samples, 300.0))
    expected = fed(new_bank(profile, veto), batches)
    rng = np.random.default_rng(seed)
    # restarts between batches and within one (a checkpoint, a crash, a gateway's split round)
    points = rng.integers(1, len(samples), int(rng.integers(1, 6)))
    bank, alarms = new_bank(profile, veto), []
    for part in cut(samples, points.tolist()):
        alarms += fed(bank, list(chunk_by_time(part, 300.0)))
        snapshot = json.loads(json.dumps(bank.state_dict()))  # through the checkpoint's JSON
        if seed % 4 < 2:
            bank = new_bank(profile, veto)
            assert bank.load_state_dict(snapshot) == 0
        else:  # as the service starts: the snapshot restored, then the patient's profile set
            bank = new_bank(DetectionProfile.BALANCED, veto)
            assert bank.load_state_dict(snapshot) == 0
            bank.set_profile("p", profile)
    assert alarms == expected


# 22, 32 and 38 meet a vetoed onset followed by a still wrist in the same call (they failed
# before the bank silenced a vetoed episode from its onset on)
@pytest.mark.parametrize("seed", [*range(6), 22, 32, 38])
def test_how_samples_are_cut_into_batches_changes_no_alarm(
    seed: int, fitbit: list[pd.DataFrame]
) -> None:
    samples = real_samples(200 + seed, fitbit)
    profile = PROFILES[seed % len(PROFILES)]
    veto = seed % 2 == 0
    expected = fed(new_bank(profile, veto), list(chunk_by_time(samples, 300.0)))
    rng = np.random.default_rng(seed)
    cuttings = {
        "one sample each": [[s] for s in samples],
        "random": cut(samples, rng.integers(1, len(samples), len(samples) // 40).tolist()),
        "one minute": list(chunk_by_time(samples, 60.0)),
        "an hour's backlog": list(chunk_by_time(samples, 3600.0)),
        "all at once": [samples],
    }
    for name, batches in cuttings.items():
        assert fed(new_bank(profile, veto), batches) == expected, name


def test_a_vetoed_surge_stays_silent_whatever_the_batch() -> None:
    """A surge the confirmer vetoes, then a still wrist once the heart is back at rest.

    The still wrist after a vetoed surge opens the episode only while the heart is still up
    (surge then syncope). Fed in one hour's batch (a gateway's backlog) the bank turned the
    detector's escalation into a critical onset with the heart 8 % below its reference, which
    5-min batches never raised.
    """
    frame = pd.read_csv(STRESS[1])  # S02: heart rate, skin temperature and a moving wrist
    onset = float(frame["time_s"].iloc[0]) + 25 * 60
    surge = Episode(AlarmKind.ANAPHYLAXIS, onset, 90.0, 360.0, 120.0, 0.5, 0.0, None)
    frame = inject(frame, [surge], np.random.default_rng(0))
    still = frame["time_s"].between(surge.end_s + 240, surge.end_s + 420, inclusive="left")
    frame.loc[still, "acc_sd_g"] = 0.001
    cleaned, _ = clean_recording(frame.drop(columns=["phase"]))
    samples = list(iter_samples(cleaned))
    rules = replay(default_bank(rules_only=True), "p", samples)
    assert any(a.evidence.get("onset") == 1.0 for a in rules), "no surge: the test is vacuous"
    for chunk_s in (1e-3, 300.0, 3600.0, 1e6):
        assert (
            replay(new_bank(DetectionProfile.BALANCED, True), "p", samples, chunk_s=chunk_s) == []
        )


def test_two_runs_write_the_same_bytes(tmp_path: Path) -> None:
    """Separate processes, different hash seeds: nothing depends on set or dict order."""
    rng = np.random.default_rng(7)
    frame = with_episodes(pd.read_csv(STRESS[4]), rng)
    rec = tmp_path / "rec.csv"
    frame.to_csv(rec, index=False)
    outputs = []
    for hash_seed in ("1", "2"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLAREWATCH_")}
        env["PYTHONHASHSEED"] = hash_seed
        out = tmp_path / f"events-{hash_seed}.jsonl"
        command = ["detect", "--input", str(rec), "--out", str(out)]
        subprocess.run(
            [sys.executable, "-m", "flarewatch.cli", *command],
            check=True,
            capture_output=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0], "no alarm at all: the comparison proves little"
