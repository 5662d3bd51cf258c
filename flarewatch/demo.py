"""``flarewatch demo``: the whole pipeline on one machine, with nothing to configure.

Composition root (like :mod:`flarewatch.cli`): it wires the collector's simulated patients and the
service together, which no component may do itself. Without ``--mqtt-url`` it starts a broker
(Mosquitto when installed, else the embedded amqtt broker); without ``--influx-url`` it stores in
SQLite. Twenty simulated minutes of history are replayed first so the detectors have a personal
baseline, then the patients stream in real time (or ``--speed`` times faster) and one of them has a
flush. A live table shows each patient's latest vitals, stored samples, rejects and episodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy import select

from collector.outbox import Outbox, wall_clock_ms
from collector.publisher import MqttPublisher
from collector.simulation.cohort import Cohort
from collector.simulation.driver import SimulatedSource
from collector.simulation.episodes import EpisodeKind, EpisodeScript
from flarewatch import __version__
from flarewatch.embedded_broker import EmbeddedBroker
from flarewatch.errors import ConfigError
from flarewatch.localservers import MosquittoServer, find_binary, free_port
from flarewatch.settings import Settings, load_settings
from service.alerts.runtime import AlertingRuntime
from service.db.care_teams import PolicyUpdate, add_device, add_patient
from service.db.models import Episode, Patient
from service.ingest import IngestService
from service.processing import LatestVitalsProcessor, ProcessorChain
from service.stores.factory import create_store

log = logging.getLogger("flarewatch.demo")

HISTORY_S: Final = 20 * 60
"""Simulated history replayed before real time: the detectors' baselines need ~10-15 min."""
FLUSH_AT_S: Final = 60.0
"""The scripted flush starts one simulated minute after the live phase begins."""
SETTLE_TIMEOUT_S: Final = 30.0
"""After the last sample: how long to wait for the outbox and the ingest to catch up."""
REFRESH_S: Final = 0.5
LOG_EVERY_S: Final = 5.0
GATEWAY_ID: Final = "demo-gateway"
DEMO_EMERGENCY_PLAN: Final = (
    "Simulated patient. In a real plan: signs to check, when to use the adrenaline auto-injector, "
    "whom to call."
)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``flarewatch demo``."""
    cmd = subparsers.add_parser(
        "demo",
        help="run broker, simulated patients and the service together, with a live view",
        description="Start everything on this machine: a broker (unless --mqtt-url), the sample "
        "store (SQLite unless --influx-url), N simulated patients (one has a flush) and the "
        "service with detection and episodes. Ctrl-C stops cleanly.",
    )
    cmd.add_argument("--patients", type=int, default=5, help="simulated patients (default 5)")
    cmd.add_argument("--duration", type=float, default=None, help="seconds to run (default: ∞)")
    cmd.add_argument("--speed", type=float, default=1.0, help="simulated s per real s (default 1)")
    cmd.add_argument(
        "--flush-at",
        type=float,
        default=None,
        help=f"simulated seconds until p1's flush (default {FLUSH_AT_S:.0f}, or half the run)",
    )
    cmd.add_argument("--seed", type=int, default=1, help="random seed of the patients (default 1)")
    cmd.add_argument("--mqtt-url", help="use this broker instead of starting one")
    cmd.add_argument("--influx-url", help="store in this InfluxDB instead of SQLite")
    cmd.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default="auto",
        help="which local broker to start without --mqtt-url (auto: mosquitto if installed)",
    )
    cmd.add_argument("--data-dir", type=Path, help="keep the demo's files here (default: temp)")
    cmd.set_defaults(handler=run_demo)


@dataclass
class DemoResult:
    """What the demo stored, for the final report and its exit code."""

    broker: str
    store: str
    stored_by_patient: dict[str, int] = field(default_factory=dict)
    flush_patient: str = "p1"
    flush_samples_in_store: int = 0
    rejected: int = 0
    episodes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every patient has stored samples, the flush patient's flush window included."""
        return (
            bool(self.stored_by_patient)
            and all(n > 0 for n in self.stored_by_patient.values())
            and self.flush_samples_in_store > 0
        )


def _start_broker(stack: contextlib.ExitStack, choice: str, data_dir: Path) -> tuple[str, str]:
    if choice in ("auto", "mosquitto"):
        try:
            find_binary("mosquitto")
        except ConfigError:
            if choice == "mosquitto":
                raise
        else:
            (data_dir / "mosquitto").mkdir(exist_ok=True)
            server = stack.enter_context(MosquittoServer(data_dir / "mosquitto"))
            return server.url, "mosquitto (local)"
    broker = stack.enter_context(EmbeddedBroker())
    return broker.url, "embedded amqtt"


def _settings(args: argparse.Namespace, broker_url: str, data_dir: Path) -> Settings:
    overrides: dict[str, Any] = {
        "environment": "demo",
        "mqtt": {"url": broker_url},
        "service": {
            "database_url": f"sqlite:///{data_dir / 'flarewatch.sqlite3'}",
            "api_port": free_port(),
        },
        "collector": {"gateway_id": GATEWAY_ID, "outbox_path": data_dir / "outbox.sqlite3"},
    }
    if args.influx_url:
        overrides["influx"] = {"url": args.influx_url}
        overrides["store"] = {"kind": "influx"}
    else:
        overrides["store"] = {"kind": "sqlite", "sqlite_path": data_dir / "samples.sqlite3"}
    settings = load_settings(args.config, **overrides)
    api = settings.service
    base_url = f"http://{api.api_host}:{api.api_port}"
    return settings.model_copy(
        update={"service": api.model_copy(update={"public_base_url": base_url})}
    )


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo until ``--duration`` or Ctrl-C; exit 0 when every patient's data was stored."""
    if args.patients < 1:
        raise ConfigError("--patients must be at least 1")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with contextlib.ExitStack() as stack:
        data_dir = args.data_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="flarewatch-demo-"))
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        if args.mqtt_url:
            broker_url, broker_kind = args.mqtt_url, "external"
        else:
            broker_url, broker_kind = _start_broker(stack, args.broker, data_dir)
        settings = _settings(args, broker_url, data_dir)
        result = _run(args, settings, broker_kind)
    _report(result)
    return 0 if result.ok else 1


def _flush_at_s(args: argparse.Namespace) -> float:
    if args.flush_at is not None:
        return float(args.flush_at)
    if args.duration is None:
        return FLUSH_AT_S
    return min(FLUSH_AT_S, float(args.duration) * float(args.speed) / 2)


def _run(args: argparse.Namespace, settings: Settings, broker_kind: str) -> DemoResult:
    now_ms = wall_clock_ms()
    if args.speed > 1:
        if args.duration is None:
            raise ConfigError("--speed above 1 needs --duration: samples may not lie in the future")
        # Accelerated time is placed in the recent past so that it ends now: the service rejects
        # samples stamped in the future, as it should.
        now_ms -= round(args.duration * args.speed * 1000)
    flush_onset_ms = now_ms + round(_flush_at_s(args) * 1000)
    cohort = Cohort(
        args.patients,
        seed=args.seed,
        band_on_ms=now_ms - HISTORY_S * 1000,
        episodes=[EpisodeScript("p1", EpisodeKind.FLUSH, flush_onset_ms)],
    )
    view = LatestVitalsProcessor()
    runtime = AlertingRuntime(settings)
    _register_patients(runtime, cohort)
    runtime.start()
    ingest = IngestService.from_settings(
        settings, processor=ProcessorChain([view, runtime.processor])
    )
    result = DemoResult(broker=broker_kind, store=ingest.store.name)
    ingest.start()
    with contextlib.ExitStack() as stack:
        stack.callback(ingest.stop)
        if not ingest.wait_ready(SETTLE_TIMEOUT_S):
            raise ConfigError(f"the service could not subscribe at {settings.mqtt.url}")
        outbox = stack.enter_context(Outbox(settings.collector.outbox_path))
        publisher = stack.enter_context(
            MqttPublisher(
                settings.mqtt,
                outbox,
                gateway_id=GATEWAY_ID,
                software=f"flarewatch-demo {__version__}",
            )
        )
        end_ms = (
            None if args.duration is None else now_ms + round(args.duration * args.speed * 1000)
        )
        display = _Display(cohort.patient_ids, view, ingest, runtime, publisher)
        try:
            with _stop_on_sigterm():
                asyncio.run(_stream(cohort, publisher, now_ms, end_ms, args.speed, display))
        except KeyboardInterrupt:
            log.info("stopping: Ctrl-C")
        publisher.wait_until_sent(SETTLE_TIMEOUT_S)
        _wait_ingested(ingest, publisher)
    result.rejected = ingest.stats().rejected_total
    _collect(result, settings, cohort, flush_onset_ms, runtime)
    runtime.stop()
    return result


def _register_patients(runtime: AlertingRuntime, cohort: Cohort) -> None:
    """Enrol the simulated patients (no caregivers: the demo's episodes notify nobody)."""
    plan = PolicyUpdate(emergency_plan=DEMO_EMERGENCY_PLAN)
    with runtime.db.session() as session:
        for simulator in cohort.patients:
            profile = simulator.profile
            if session.get(Patient, profile.patient_id) is None:
                add_patient(session, profile.patient_id, time.time(), plan)
                add_device(session, profile.patient_id, profile.device_id, "simulated band")


async def _stream(
    cohort: Cohort,
    publisher: MqttPublisher,
    now_ms: int,
    end_ms: int | None,
    speed: float,
    display: _Display,
) -> None:
    history = SimulatedSource(cohort, start_ms=now_ms - HISTORY_S * 1000, end_ms=now_ms, speed=0)
    live = SimulatedSource(cohort, start_ms=now_ms, end_ms=end_ms, speed=speed)
    display_task = asyncio.create_task(display.run())
    try:
        display.phase = "replaying 20 min of history"
        await history.run(publisher)
        display.phase = "live"
        await live.run(publisher)
    finally:
        display_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await display_task
        display.final()


def _wait_ingested(ingest: IngestService, publisher: MqttPublisher) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        stats = ingest.stats()
        if (
            stats.queue_depth == 0
            and stats.unacked_messages == 0
            and (stats.received_samples >= publisher.status().acked_samples)
        ):
            return
        time.sleep(0.1)


def _collect(
    result: DemoResult,
    settings: Settings,
    cohort: Cohort,
    flush_onset_ms: int,
    runtime: AlertingRuntime,
) -> None:
    with create_store(settings) as store:
        store.prepare()
        for patient in cohort.patient_ids:
            result.stored_by_patient[patient] = store.count(patient_id=patient)
        result.flush_samples_in_store = len(store.samples(patient_id="p1", start_ms=flush_onset_ms))
    with runtime.db.session() as session:
        for episode in session.scalars(select(Episode).order_by(Episode.opened_s)):
            result.episodes.append(
                {
                    "patient_id": episode.patient_id,
                    "kind": episode.kind,
                    "severity": episode.severity,
                    "state": episode.state,
                    "opened_s": round(episode.opened_s, 1),
                    "model_version": episode.model_version,
                }
            )


def _report(result: DemoResult) -> None:
    console = Console(stderr=True)
    table = Table(title=f"flarewatch demo — broker: {result.broker}, store: {result.store}")
    table.add_column("patient")
    table.add_column("stored samples", justify="right")
    for patient, count in result.stored_by_patient.items():
        table.add_row(patient, str(count))
    console.print(table)
    console.print(
        f"flush patient {result.flush_patient}: {result.flush_samples_in_store} samples stored "
        f"since its flush began; {len(result.episodes)} episode(s); {result.rejected} rejected"
    )
    print(  # noqa: T201 - the machine-readable summary is the command's output
        json.dumps(
            {
                "ok": result.ok,
                "broker": result.broker,
                "store": result.store,
                "stored_by_patient": result.stored_by_patient,
                "flush_patient": result.flush_patient,
                "flush_samples_in_store": result.flush_samples_in_store,
                "rejected": result.rejected,
                "episodes": result.episodes,
            }
        )
    )


class _Display:
    """The live terminal table (or a log line every few seconds without a terminal)."""

    def __init__(
        self,
        patients: list[str],
        view: LatestVitalsProcessor,
        ingest: IngestService,
        runtime: AlertingRuntime,
        publisher: MqttPublisher,
    ) -> None:
        self.patients = patients
        self.view = view
        self.ingest = ingest
        self.runtime = runtime
        self.publisher = publisher
        self.phase = "starting"
        self.console = Console(stderr=True)
        self._live: Live | None = None

    async def run(self) -> None:
        """Refresh until cancelled."""
        if self.console.is_terminal:
            self._live = Live(self.table(), console=self.console, refresh_per_second=2)
            self._live.start()
        last_log = 0.0
        while True:
            if self._live is not None:
                self._live.update(self.table())
            elif time.monotonic() - last_log >= LOG_EVERY_S:
                last_log = time.monotonic()
                log.info("demo %s: %s", self.phase, self.ingest.stats().summary())
            await asyncio.sleep(REFRESH_S)

    def final(self) -> None:
        """Show the last state and release the terminal."""
        if self._live is not None:
            self._live.update(self.table())
            self._live.stop()

    def _episodes(self) -> Mapping[str, str]:
        with self.runtime.db.session() as session:
            rows = session.scalars(select(Episode).where(Episode.state == "open"))
            return {e.patient_id: f"{e.kind} ({e.severity})" for e in rows}

    def table(self) -> Table:
        """Per patient: vitals, samples stored, rejects, device state, open episode."""
        stats = self.ingest.stats()
        snapshot = self.view.snapshot()
        episodes = self._episodes()
        outbox = self.publisher.status().outbox
        table = Table(
            title=f"flarewatch demo — {self.phase} — stored {stats.stored_samples} samples, "
            f"rejected {stats.rejected_total}, outbox {outbox.pending}",
            caption="Ctrl-C to stop",
        )
        for column in ("patient", "heart rate", "skin temp", "movement", "stored", "rejects"):
            table.add_column(column, justify="left" if column == "patient" else "right")
        table.add_column("device")
        table.add_column("episode")
        for patient in self.patients:
            view = snapshot.get(patient)
            vitals = view.vitals if view else {}
            devices = view.devices if view else {}
            table.add_row(
                patient,
                _fmt(vitals.get("heart_rate_bpm"), "{:.0f} bpm"),
                _fmt(vitals.get("skin_temperature_c"), "{:.2f} °C"),
                _fmt(vitals.get("acceleration_sd_g"), "{:.3f} g"),
                str(stats.stored_by_patient.get(patient, 0)),
                str(stats.rejected_by_patient.get(patient, 0)),
                ", ".join(str(d.state) for d in devices.values()) or "—",
                episodes.get(patient, "—"),
            )
        return table


def _fmt(reading: Any, pattern: str) -> str:
    return "—" if reading is None else pattern.format(reading.value)
