"""The service's detection path on a test clock, and the deliveries hypothesis draws for it.

Shared by ``test_delivery_properties.py`` (the properties: what the service raises equals what
a clean replay raises, whatever the delivery does) and ``test_delivery_regressions.py`` (the
counterexamples they found, as plain tests). The ``delivery_world`` fixture is in ``conftest.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import select

from flarewatch.payloads import DeviceStatus, LinkState, Sample, SampleBatch
from flarewatch.topics import device_status_topic, samples_topic
from models.alarm import Alarm, AlarmKind
from models.artifacts import default_bank
from models.bank import DetectorBank
from models.datasets import DATA_DIR
from models.injection import Episode, inject
from models.recording import clean_recording, iter_samples
from models.replay import replay
from service.const import ALIGN_HOLD_S
from service.db import Episode as EpisodeRow
from service.db.care_teams import add_device
from service.episodes import AlertingProcessor, EpisodeEngine
from service.episodes.checkpoint import DetectorCheckpoint
from service.ingest.cycle import Cycle, CycleDecoder, ReceivedMessage
from service.ingest.dedup import SeqWindow
from service.ingest.store_retry import prepare_store
from service.processing import IngestCycle
from service.stores.sqlite import SqliteStore
from tests.alerting_helpers import (
    AlertingStack,
    RecordedEngine,
    register_team,
)

PATIENT = "p1"
GATEWAY = "gw1"
HOLD_MS = int(ALIGN_HOLD_S * 1000)
TICK_MS = 1000  # the ingest runs the hook at least once a second on a quiet stream
SLICE_S = 50 * 60  # long enough for the 15-min wear warm-up, an episode and its course
T0_MS = 1_644_227_574_000  # the first sample of the surge recording
START_S = 1_644_000_000.0  # the service database's clock (the recordings are of February 2022)
CHECKPOINT_S = 600.0  # the detectors' periodic checkpoint (the service: a minute; fsync is slow)

EXAMPLES = settings(
    # a few seconds a property; FLAREWATCH_DELIVERY_EXAMPLES=200 for a longer hunt
    max_examples=int(os.environ.get("FLAREWATCH_DELIVERY_EXAMPLES", "12")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Event = tuple[float, str, str, bool]
"""An alarm as the replay contract writes it: time_s (ms), kind, severity, resolved."""


def as_event(alarm: Alarm) -> Event:
    return (round(alarm.time_s, 3), alarm.kind.value, alarm.severity.value, alarm.resolved)


# -- recordings ---------------------------------------------------------------------------------


@functools.cache
def source(name: str) -> pd.DataFrame:
    """A real session with an injected episode (``surge`` or ``flush``), ``SLICE_S`` long."""
    session = {"surge": "S02", "flush": "S05"}[name]
    frame = pd.read_csv(DATA_DIR / "stress_predict" / f"{session}.csv.gz")
    start = float(frame["time_s"].iloc[0])
    episode = (  # onset, rise, plateau, decay, heart rate rise, skin warming, still after
        Episode(AlarmKind.ANAPHYLAXIS, start + 25 * 60, 90.0, 1200.0, 300.0, 0.5, 0.0, 120.0)
        if name == "surge"
        else Episode(AlarmKind.FLUSH, start + 24 * 60, 300.0, 900.0, 900.0, 0.12, 1.5, None)
    )
    frame = inject(frame, [episode], np.random.default_rng(0))
    frame = frame[frame["time_s"] < start + SLICE_S]
    return clean_recording(frame)[0]


@dataclass(frozen=True)
class Sampling:
    """Which recording, read how often, with which silences (minute, seconds)."""

    source: str
    irregular_seed: int | None
    """None: every second as recorded; else read at random 1-15 s intervals from this seed."""
    gaps: tuple[tuple[int, int], ...] = ()
    """Silences of every device: under 5 min (below "no data") or well over it."""

    def samples(self) -> list[Sample]:
        frame = source(self.source)
        times = frame["time_s"].to_numpy(dtype="float64")
        if self.irregular_seed is not None:
            rng = np.random.default_rng(self.irregular_seed)
            new = times[0] + np.cumsum(rng.uniform(1.0, 15.0, len(times) // 4))
            new = new[new <= times[-1]]
            rows = np.searchsorted(times, new, side="right") - 1
            frame = frame.iloc[rows].copy()
            frame["time_s"] = np.round(new, 3)
        keep = np.ones(len(frame), dtype=bool)
        start = float(frame["time_s"].iloc[0])
        for minute, length_s in self.gaps:
            at = start + minute * 60
            keep &= ~frame["time_s"].between(at, at + length_s, inclusive="left").to_numpy()
        return list(iter_samples(frame[keep].reset_index(drop=True)))


STRAP_FIELDS = ("heart_rate_bpm", "acceleration_g", "acceleration_sd_g", "steps")
THERMO_FIELDS = ("skin_temperature_c",)
STRAP_THERMO = ("strap", "thermo")


def measured(sample: Sample, fields: Sequence[str], seq: int, shift_ms: int = 0) -> Sample | None:
    """What one device measured of ``sample`` (None if nothing), numbered by that device."""
    values = {name: getattr(sample, name) for name in fields}
    values = {name: value for name, value in values.items() if value is not None}
    if not values:
        return None
    return Sample(seq=seq, time_ms=sample.time_ms + shift_ms, **values)


@dataclass(frozen=True)
class Devices:
    """One band, or a strap and a thermometer (its readings ``thermo_shift_ms`` later).

    Registered with the service, or never: then their gateway says each is online when it
    connects, before its first data.
    """

    two: bool
    thermo_shift_ms: int = 0
    registered: bool = True

    def split(self, samples: Sequence[Sample]) -> dict[str, list[Sample]]:
        """Each device's own samples, in its ``seq`` order."""
        parts = (
            {"strap": (STRAP_FIELDS, 0), "thermo": (THERMO_FIELDS, self.thermo_shift_ms)}
            if self.two
            else {"band": (STRAP_FIELDS + THERMO_FIELDS, 0)}
        )
        devices: dict[str, list[Sample]] = {}
        for device, (fields, shift_ms) in parts.items():
            first_seq = 5_000 if device == "thermo" else 1_000
            own = [measured(s, fields, 0, shift_ms) for s in samples]
            devices[device] = [
                s.model_copy(update={"seq": first_seq + i})
                for i, s in enumerate(s for s in own if s is not None)
            ]
        return devices


def in_time_order(devices: Mapping[str, Sequence[Sample]]) -> list[Sample]:
    """Every device's samples as one recording: by time, readings of one millisecond merged."""
    merged: dict[int, dict[str, Any]] = {}
    for samples in devices.values():
        for sample in samples:
            row = merged.setdefault(sample.time_ms, {})
            for name in STRAP_FIELDS + THERMO_FIELDS:
                value = getattr(sample, name)
                if value is not None and name not in row:
                    row[name] = value
    return [
        Sample(seq=i, time_ms=time_ms, **merged[time_ms])
        for i, time_ms in enumerate(sorted(merged))
    ]


def reference(samples: Sequence[Sample]) -> list[Alarm]:
    """What ``flarewatch detect`` writes for the recording: an in-order replay from empty."""
    return sorted(replay(default_bank(), PATIENT, samples), key=lambda a: a.time_s)


def events(alarms: Sequence[Alarm]) -> list[Event]:
    return sorted((as_event(a) for a in alarms), key=lambda e: e[0])


# -- delivery -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """How the gateway rounds, messages and ingest cycles go (each tuple used in turn)."""

    round_s: tuple[int, ...]
    """Length of each gateway round (data seconds): a round's messages leave at its end."""
    parts: tuple[int, ...]
    """Messages each device's part of a round is cut into (cut at random samples)."""
    jitter_ms: tuple[int, ...]
    """Each message's delay after its round, below the alignment window."""
    latency_ms: int
    """Delay every message shares (network, broker)."""
    resend: tuple[tuple[int, int], ...] = ()
    """(message number, seconds later): that message delivered again (at-least-once)."""
    busy_ms: int = 0
    """How long the ingest worker is busy: messages arriving meanwhile go in one cycle."""
    restart_at: float | None = None
    """A restart of the service after this share of the cycles (checkpoint, seeded filter)."""
    late: tuple[tuple[int, int], ...] = ()
    """(message number, seconds): that message later than the alignment waits for."""


@dataclass(frozen=True)
class Message:
    arrive_ms: int
    order: int
    device: str
    samples: tuple[Sample, ...]
    resent: bool = False


def messages(
    devices: Mapping[str, Sequence[Sample]], delivery: Delivery, cut_seed: int
) -> list[Message]:
    """The messages of every device in arrival order (ties: in publishing order)."""
    rng = np.random.default_rng(cut_seed)
    start_ms = min(s.time_ms for samples in devices.values() for s in samples)
    end_ms = max(s.time_ms for samples in devices.values() for s in samples)
    out: list[Message] = []
    cursor = dict.fromkeys(devices, 0)
    last_ms = dict.fromkeys(devices, 0)
    round_end = start_ms
    turn = 0
    while round_end <= end_ms:
        round_end += delivery.round_s[turn % len(delivery.round_s)] * 1000
        for device, samples in devices.items():
            stop = cursor[device]
            while stop < len(samples) and samples[stop].time_ms < round_end:
                stop += 1
            part = samples[cursor[device] : stop]
            cursor[device] = stop
            if not part:
                continue
            pieces = min(delivery.parts[len(out) % len(delivery.parts)], len(part))
            cuts = sorted(rng.choice(np.arange(1, len(part)), pieces - 1, replace=False).tolist())
            for lo, hi in zip([0, *cuts], [*cuts, len(part)], strict=True):
                number = len(out)
                delay = delivery.latency_ms + delivery.jitter_ms[number % len(delivery.jitter_ms)]
                late_ms = 1000 * dict(delivery.late).get(number, 0)
                # one publisher's messages on a topic arrive in order (MQTT ordered topics)
                arrive_ms = last_ms[device] = max(round_end + delay, last_ms[device]) + late_ms
                out.append(Message(arrive_ms, number, device, tuple(part[lo:hi])))
        turn += 1
    # not after the last message: the service would rightly tell that the data ended
    final_ms = max(m.arrive_ms for m in out)
    for number, later_s in delivery.resend:
        if number < len(out):
            again = out[number]
            arrive_ms = min(again.arrive_ms + later_s * 1000, final_ms)
            out.append(Message(arrive_ms, len(out), again.device, again.samples, True))
    return sorted(out, key=lambda m: (m.arrive_ms, m.order))


# -- the service --------------------------------------------------------------------------------


class ScoredBank:
    """The released detector bank, noting what the processing hands it (nothing else changes)."""

    def __init__(self, inner: DetectorBank, scored: list[list[Sample]]) -> None:
        self.inner = inner
        self.scored = scored

    @property
    def model_version(self) -> str:
        return self.inner.model_version

    def update(self, items: Sequence[tuple[str, Sequence[Sample]]]) -> list[Alarm]:
        self.scored.append([sample for _, samples in items for sample in samples])
        return self.inner.update(items)

    def tick(self, now_s: float) -> list[Alarm]:
        return self.inner.tick(now_s)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> int:
        return self.inner.load_state_dict(state)


@dataclass
class Served:
    """What the service did with a delivery."""

    events: list[Event] = field(default_factory=list)
    episodes: list[tuple[str, str, float, float | None]] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)
    skipped_by_detector: int = 0
    released_late: int = 0
    alarms: list[Alarm] = field(default_factory=list)
    """Every alarm the episode engine was handed, in that order."""
    scored: list[list[Sample]] = field(default_factory=list)
    """What the processing handed the detectors, call by call."""
    new_samples: int = 0
    """Samples the ingest accepted (not duplicates)."""


@dataclass
class World:
    """The service database and sample store every example shares (a patient of its own each)."""

    folder: Path
    stack: AlertingStack
    patients: Iterator[int] = field(default_factory=itertools.count)


class Service:
    """The service's detection path on a test clock: ingest cycle, store, processing hook."""

    def __init__(self, world: World, devices: Sequence[str], *, registered: bool = True) -> None:
        self.world = world
        self.patient = f"p{next(world.patients)}"
        register_team(world.stack.db, self.patient, [], now_s=START_S)
        with world.stack.db.session() as session:
            for device in devices if registered else ():
                add_device(session, self.patient, self.device_id(device))
        self.store = SqliteStore(world.folder / f"{self.patient}.sqlite3")
        self.checkpoint_path = world.folder / f"{self.patient}-detectors.json"
        self.served = Served()
        self.alarms: list[Alarm] = []
        self._start()

    def device_id(self, device: str) -> str:
        return f"{self.patient}-{device}"

    def _start(self) -> None:
        """(Re)start: the duplicate filter seeded from the store, the detectors restored."""
        seeds = prepare_store(self.store, threading.Event())
        assert seeds is not None
        dedup = SeqWindow()
        dedup.seed(seeds)
        self.decoder = CycleDecoder(dedup, self._reject)
        self.bank = ScoredBank(default_bank(), self.served.scored)
        checkpoint = DetectorCheckpoint(self.checkpoint_path, interval_s=CHECKPOINT_S)
        checkpoint.restore(self.bank.inner)
        self._skipped_before = self._skipped_by_detector()  # counted in the restored state
        self.engine = RecordedEngine(self.world.stack.manager)
        self.processor = AlertingProcessor(self.bank, self.engine, checkpoint)

    def _reject(self, received: ReceivedMessage, reason: str, detail: str) -> None:
        self.served.rejected.append(f"{reason}: {detail}")

    def _stop(self) -> None:
        """A clean stop (SIGTERM): what was received is processed, the checkpoint saved."""
        self.processor.close()
        self.alarms += self.engine.alarms
        self.served.skipped_by_detector += self._skipped_by_detector() - self._skipped_before
        self.served.released_late += self.processor.alignment.released_late

    def _skipped_by_detector(self) -> int:
        state = self.bank.inner.state_dict()["patients"].get(self.patient, {})
        return int(state.get("rejected_samples", 0))

    def restart(self) -> None:
        self._stop()
        self._start()

    def cycle(
        self, now_ms: int, delivered: Sequence[Message] = (), online: Sequence[str] = ()
    ) -> None:
        """One worker cycle: decode, drop duplicates, store, process (as ``IngestService``).

        ``online``: devices whose gateway's status says they are connected (as it publishes it
        when a device connects, before its first data).
        """
        cycle = Cycle()
        for device in online:
            status = DeviceStatus(
                patient_id=self.patient,
                device_id=self.device_id(device),
                gateway_id=GATEWAY,
                time_ms=now_ms,
                state=LinkState.ONLINE,
            )
            topic = device_status_topic(self.patient, self.device_id(device))
            payload = status.model_dump_json(exclude_none=True).encode()
            self.decoder.add(cycle, ReceivedMessage(1, 1, topic, payload), now_ms)
        for message in delivered:
            device = self.device_id(message.device)
            batch = SampleBatch(
                patient_id=self.patient,
                device_id=device,
                gateway_id=GATEWAY,
                samples=message.samples,
            )
            payload = batch.model_dump_json(exclude_none=True).encode()
            received = ReceivedMessage(1, 1, samples_topic(self.patient, device), payload)
            self.decoder.add(cycle, received, now_ms)
        self.served.duplicates += cycle.duplicates
        self.served.new_samples += cycle.new_samples
        if cycle.batches:
            self.store.write(cycle.batches)
        self.processor.process(
            IngestCycle(
                now_ms, batches=tuple(cycle.batches), device_statuses=tuple(cycle.device_statuses)
            )
        )

    def finish(self) -> Served:
        self._stop()
        self.served.alarms = self.alarms
        self.served.events = events(self.alarms)
        self.served.episodes = episodes_of(self.world, self.patient)
        self.store.close()
        return self.served


def episodes_of(world: World, patient: str) -> list[tuple[str, str, float, float | None]]:
    """The patient's episodes in the service database: kind, severity, opened, closed."""
    with world.stack.db.session() as session:
        rows = session.scalars(
            select(EpisodeRow).where(EpisodeRow.patient_id == patient).order_by(EpisodeRow.id)
        )
        return [(e.kind, e.severity, e.opened_s, e.closed_s) for e in rows]


def reference_episodes(
    world: World, alarms: Sequence[Alarm]
) -> list[tuple[str, str, float, float | None]]:
    """The episodes the replay's alarms make, handed to the episode engine in time order."""
    patient = f"p{next(world.patients)}"
    engine = EpisodeEngine(world.stack.manager)
    for alarm in alarms:
        engine.on_alarm(dataclasses.replace(alarm, patient_id=patient))
    return episodes_of(world, patient)


def cycles_of(delivery: Delivery, queue: list[Message]) -> list[tuple[int, list[Message]]]:
    """Ingest cycles: a message and those arriving while the worker is busy, at the last one's."""
    cycles: list[tuple[int, list[Message]]] = []
    for message in queue:
        if cycles and message.arrive_ms - cycles[-1][1][0].arrive_ms <= delivery.busy_ms:
            cycles[-1][1].append(message)
            cycles[-1] = (message.arrive_ms, cycles[-1][1])
        else:
            cycles.append((message.arrive_ms, [message]))
    return cycles


def serve(
    world: World,
    devices: Mapping[str, Sequence[Sample]],
    delivery: Delivery,
    cut_seed: int = 0,
    *,
    registered: bool = True,
) -> Served:
    """Deliver the devices' samples as ``delivery`` says through the service; what it did.

    Devices not ``registered`` are announced online by their gateway before their data.
    """
    cycles = cycles_of(delivery, messages(devices, delivery, cut_seed))
    restart = None if delivery.restart_at is None else int(delivery.restart_at * len(cycles))
    service = Service(world, list(devices), registered=registered)
    if not registered:
        service.cycle(cycles[0][0] - TICK_MS, online=list(devices))
    return drive(service, cycles, restart)


def drive(
    service: Service, cycles: Sequence[tuple[int, Sequence[Message]]], restart: int | None = None
) -> Served:
    """Run the service through ``cycles`` (a restart before cycle number ``restart``)."""
    now_ms = cycles[0][0]
    for number, (arrive_ms, delivered) in enumerate(cycles):
        while now_ms + TICK_MS < arrive_ms:  # quiet: the hook still runs every second
            now_ms += TICK_MS
            service.cycle(now_ms)
        now_ms = max(now_ms, arrive_ms)
        if number == restart:
            service.restart()
        service.cycle(now_ms, delivered)
    for _ in range(int(ALIGN_HOLD_S) + 2):  # what waits for a device is handed on
        now_ms += TICK_MS
        service.cycle(now_ms)
    return service.finish()


def rounds(
    devices: Mapping[str, Sequence[Sample]], round_s: int, order: Sequence[str]
) -> list[tuple[int, list[Message]]]:
    """Every ``round_s`` a gateway round: each device's message, in ``order``, 0.1 s apart."""
    start_ms = min(samples[0].time_ms for samples in devices.values())
    by_round: dict[int, dict[str, list[Sample]]] = {}
    for device, samples in devices.items():
        for sample in samples:
            number = (sample.time_ms - start_ms) // (round_s * 1000) + 1
            by_round.setdefault(number, {}).setdefault(device, []).append(sample)
    cycles: list[tuple[int, list[Message]]] = []
    for number, parts in sorted(by_round.items()):
        end_ms = start_ms + number * round_s * 1000
        for k, device in enumerate(d for d in order if d in parts):
            message = Message(end_ms + 100 * (k + 1), len(cycles), device, tuple(parts[device]))
            cycles.append((message.arrive_ms, [message]))
    return cycles


# -- what hypothesis draws ----------------------------------------------------------------------

samplings = st.builds(
    Sampling,
    source=st.sampled_from(["surge", "flush"]),
    irregular_seed=st.none() | st.integers(0, 99),
    gaps=st.lists(
        st.tuples(st.integers(1, 45), st.sampled_from([20, 120, 600, 900])), max_size=2
    ).map(tuple),
)
two_devices = st.builds(
    Devices,
    two=st.just(True),
    thermo_shift_ms=st.just(0) | st.integers(1, 999),
    registered=st.booleans(),
)
any_devices = st.builds(Devices, two=st.just(False), registered=st.booleans()) | two_devices


def in_turn(values: st.SearchStrategy[int], most: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """A short pattern of values, used in turn."""
    return st.lists(values, min_size=1, max_size=most).map(tuple)


def deliveries(**fixed: Any) -> st.SearchStrategy[Delivery]:
    """Deliveries within the protocol: a device at most the alignment window behind another."""
    drawn: dict[str, Any] = {
        # within a minute (+ 30 s + 5 s of delays): the service never waits 5 min for data that
        # the recording has, so it raises "no data" where the replay does
        "round_s": in_turn(st.sampled_from([1, 5, 15, 60]) | st.integers(1, 60)),
        "parts": in_turn(st.integers(1, 3)),
        # a message processed at most 3 s + 2 s after its round: within the 5-s alignment window
        "jitter_ms": in_turn(st.integers(0, 2_999)),
        "latency_ms": st.integers(0, 30_000),
        "busy_ms": st.integers(0, 1_999),
    }
    return st.builds(Delivery, **{**drawn, **fixed})


def resends(max_size: int | None = None) -> st.SearchStrategy[tuple[tuple[int, int], ...]]:
    """Messages delivered again: (message number, seconds later), at-least-once."""
    again = st.tuples(st.integers(0, 200), st.integers(0, 900))
    return st.lists(again, min_size=1, max_size=max_size).map(tuple)


def resent_samples(
    devices: Mapping[str, Sequence[Sample]], delivery: Delivery, cut_seed: int = 0
) -> int:
    """How many samples ``delivery`` delivers again: each must be counted as a duplicate."""
    return sum(len(m.samples) for m in messages(devices, delivery, cut_seed) if m.resent)


def check(served: Served, expected: Sequence[Alarm]) -> None:
    """The service handed the episode engine exactly the replay's alarms; nothing was refused."""
    assert served.rejected == []
    assert served.events == events(expected), describe(served)


def describe(served: Served) -> str:
    counted = (
        f"duplicates {served.duplicates}, skipped by the detector {served.skipped_by_detector}, "
        f"released before the other device {served.released_late}"
    )
    return f"the service's alarms differ from the replay's ({counted})"


def silences(alarms: Sequence[Alarm]) -> list[tuple[float, bool]]:
    """The ``no_data`` alarms: (time_s, resolved), in the order they were raised."""
    return [(a.time_s, a.resolved) for a in alarms if a.kind is AlarmKind.NO_DATA]
