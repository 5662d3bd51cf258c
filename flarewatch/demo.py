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
import dataclasses
import logging
import secrets
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, Final

from sqlalchemy import select

from collector.ble.devices import ConfiguredDevice
from collector.gateway import run_gateway
from collector.outbox import Outbox, wall_clock_ms
from collector.publisher import MqttPublisher
from collector.simulation.cohort import Cohort
from collector.simulation.driver import SimulatedSource
from collector.simulation.episodes import EpisodeKind, EpisodeScript
from collector.virtual.control import WorldProcess
from flarewatch import __version__
from flarewatch.demo_cli import FLUSH_AT_S
from flarewatch.demo_view import DemoResult, LiveView, WebAppSignIn, report
from flarewatch.embedded_broker import EmbeddedBroker
from flarewatch.errors import ConfigError
from flarewatch.localservers import MosquittoServer, find_binary, free_port
from flarewatch.output_files import owner_only_file
from flarewatch.settings import Settings, load_settings
from service.alerts.runtime import AlertingRuntime
from service.db.accounts import add_account, find_account, set_password
from service.db.care_teams import PolicyUpdate, add_device, add_patient
from service.db.models import AccountRole, Episode, Patient
from service.ingest import IngestService
from service.processing import IngestCycle, LatestVitalsProcessor, Processor, ProcessorChain
from service.stores.factory import create_store

log = logging.getLogger("flarewatch.demo")

HISTORY_S: Final = 20 * 60
"""Simulated history replayed before real time: the detectors' baselines need ~10-15 min."""
SETTLE_TIMEOUT_S: Final = 30.0
"""After the last sample: how long to wait for the outbox and the ingest to catch up."""
REFRESH_S: Final = 0.5
LOG_EVERY_S: Final = 5.0
GATEWAY_ID: Final = "demo-gateway"
DEMO_PASSWORD_BYTES: Final = 12
"""The demo's web app password: 16 URL-safe characters, new each run."""
DEMO_EMERGENCY_PLAN: Final = (
    "Simulated patient. In a real plan: signs to check, when to use the adrenaline auto-injector, "
    "whom to call."
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
    # An instance name of its own, so that on a broker a running service uses too (--mqtt-url)
    # the demo's clients never take over the service's sessions, nor another demo's.
    instance = f"demo-{secrets.token_hex(4)}"
    overrides: dict[str, Any] = {
        "environment": "demo",
        "mqtt": {"url": broker_url, "client_id": f"flarewatch-{instance}-gateway"},
        "service": {
            "database_url": f"sqlite:///{data_dir / 'flarewatch.sqlite3'}",
            "api_port": free_port(),
            "instance": instance,
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
    # The embedded broker logs every state transition at INFO: it would drown the live view
    # (httpx is quieted for every command by flarewatch.cli).
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
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
        if broker_kind == "embedded amqtt":  # MQTT 3.1.1 only: no MQTT 5 attempt to time out
            mqtt = settings.mqtt.model_copy(update={"protocol": "3.1.1"})
            settings = settings.model_copy(update={"mqtt": mqtt})
        result = _run(args, settings, broker_kind)
    report(result)
    return 0 if result.ok else 1


def _flush_at_s(args: argparse.Namespace) -> float:
    if args.flush_at is not None:
        return float(args.flush_at)
    if args.duration is None:
        return FLUSH_AT_S
    return min(FLUSH_AT_S, float(args.duration) * float(args.speed) / 2)


def _run(args: argparse.Namespace, settings: Settings, broker_kind: str) -> DemoResult:
    now_ms = wall_clock_ms()
    if args.speed > 1 and not args.ble_sim:
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
        episodes=[]
        if args.ble_sim
        else [EpisodeScript("p1", EpisodeKind.FLUSH, flush_onset_ms, at_rest=True)],
    )
    view = LatestVitalsProcessor()
    # Clean sessions: a demo leaves no session queueing samples on a shared broker after it ends.
    runtime = AlertingRuntime(settings, persistent_mqtt=False)
    password = _register_patients(runtime, cohort)
    password_file = settings.collector.outbox_path.parent / "web-password.txt"
    password_file.unlink(missing_ok=True)  # a --data-dir used before: last run's password
    owner_only_file(password_file).write_text(password + "\n")
    web = WebAppSignIn(
        f"{settings.service.public_base_url}/app", cohort.patient_ids[0], password, password_file
    )
    runtime.start()
    gate = EndOfDemoGate(runtime.processor)
    ingest = IngestService.from_settings(
        settings, processor=ProcessorChain([view, gate]), persistent=False
    )
    result = DemoResult(
        broker=broker_kind, store=ingest.store.name, flush_patient=None if args.ble_sim else "p1"
    )
    ingest.start()
    try:
        if not ingest.wait_ready(SETTLE_TIMEOUT_S):
            raise ConfigError(f"the service could not subscribe at {settings.mqtt.url}")
        with Outbox(settings.collector.outbox_path) as outbox:
            display = LiveView(
                cohort.patient_ids, view, ingest, runtime, lambda: outbox.pending, web=web
            )
            end_ms = (
                None if args.duration is None else now_ms + round(args.duration * args.speed * 1000)
            )
            live = SimulatedSource(cohort, start_ms=now_ms, end_ms=end_ms, speed=args.speed)
            history = SimulatedSource(
                cohort, start_ms=now_ms - HISTORY_S * 1000, end_ms=now_ms, speed=0
            )
            try:
                with _stop_on_sigterm():
                    if args.ble_sim:
                        _stream_ble(args, settings, display, gate)
                    else:
                        _stream_simulated(settings, outbox, (history, live), display, gate)
            except KeyboardInterrupt:
                log.info("stopping: Ctrl-C")
            if not args.ble_sim and live.progress.simulated_ms <= flush_onset_ms:
                # Stopped before the flush began: there is no flush window to check.
                log.info("stopped before the flush of p1 began")
                result.flush_patient = None
            if not args.ble_sim:
                result.generated_by_patient = {
                    patient: sum(s.progress.by_patient.get(patient, 0) for s in (history, live))
                    for patient in cohort.patient_ids
                }
            _wait_ingested(ingest, outbox)
        result.rejected = ingest.stats().rejected_total
    finally:
        ingest.stop()
    _collect(result, settings, cohort, flush_onset_ms, runtime)
    runtime.stop()
    return result


class EndOfDemoGate(Processor):
    """Hands every cycle on; once the demo ends, without the bands' and gateway's statuses.

    The demo's gateway stops cleanly at the end and says its bands are offline. The service,
    still running to store the last samples, took that for every patient's signal lost, and an
    episode open then (the scripted flush) turned critical in the summary. A real gateway that
    stops is exactly that; the end of a demo is not.
    """

    def __init__(self, inner: Processor) -> None:
        self.inner = inner
        self._statuses_closed = False

    def close_statuses(self) -> None:
        """From now on, statuses do not reach the service (any thread)."""
        self._statuses_closed = True

    def process(self, cycle: IngestCycle) -> None:
        """Hand the cycle on, its statuses left out once closed."""
        if self._statuses_closed:
            cycle = dataclasses.replace(cycle, device_statuses=(), gateway_statuses=())
        self.inner.process(cycle)

    def close(self) -> None:
        """Close the service's processor."""
        self.inner.close()


def _register_patients(runtime: AlertingRuntime, cohort: Cohort) -> str:
    """Enrol the simulated patients (no caregivers: the demo's episodes notify nobody).

    The first patient gets a web app account of their own, under their id, with a new password
    each run: what the live view's caption offers to sign in with.
    """
    plan = PolicyUpdate(emergency_plan=DEMO_EMERGENCY_PLAN)
    password = secrets.token_urlsafe(DEMO_PASSWORD_BYTES)
    with runtime.db.session() as session:
        for simulator in cohort.patients:
            profile = simulator.profile
            if session.get(Patient, profile.patient_id) is None:
                add_patient(session, profile.patient_id, time.time(), plan)
                add_device(session, profile.patient_id, profile.device_id, "simulated band")
        first = cohort.patients[0].profile.patient_id
        account = find_account(session, first)
        if account is None:
            add_account(
                session, first, password, AccountRole.PATIENT, time.time(), patient_id=first
            )
        else:
            set_password(session, account, password, time.time())
    return password


def _stream_simulated(
    settings: Settings,
    outbox: Outbox,
    sources: tuple[SimulatedSource, SimulatedSource],
    display: LiveView,
    gate: EndOfDemoGate,
) -> None:
    """The history as fast as possible, then live: simulated samples via outbox and publisher."""
    history, live = sources
    software = f"flarewatch-demo {__version__}"
    with MqttPublisher(settings.mqtt, outbox, gateway_id=GATEWAY_ID, software=software) as pub:

        async def stream() -> None:
            display.phase = "replaying 20 min of history"
            await history.run(pub)
            display.phase = "live"
            await live.run(pub)

        try:
            asyncio.run(display.around(stream()))
        finally:
            gate.close_statuses()  # the publisher, closing, says the band is offline
            pub.wait_until_sent(SETTLE_TIMEOUT_S)


def _stream_ble(
    args: argparse.Namespace, settings: Settings, display: LiveView, gate: EndOfDemoGate
) -> None:
    """Virtual BLE bands in their own process, read by the real collector (bleak on Bumble).

    At the end of ``--duration`` the gateway stops with its bands' statuses closed off first
    (:class:`EndOfDemoGate`); stopped with Ctrl-C, its bands' "offline" still reaches the service.
    """
    with WorldProcess(args.patients) as world:
        devices = [
            ConfiguredDevice(str(d["name"]), f"p{i + 1}", str(d["address"]))
            for i, d in enumerate(world.ready["devices"])
        ]
        collector = settings.collector.model_copy(
            update={"ble_backend": f"bumble:{world.hci_transport}"}
        )
        gateway_settings = settings.model_copy(update={"collector": collector})

        async def stream() -> None:
            stop = asyncio.Event()
            if args.duration is not None:

                def end() -> None:
                    gate.close_statuses()
                    stop.set()

                asyncio.get_running_loop().call_later(args.duration, end)
            display.phase = "live from virtual BLE bands"
            await run_gateway(gateway_settings, devices, stop=stop)

        asyncio.run(display.around(stream()))


def _wait_ingested(ingest: IngestService, outbox: Outbox) -> None:
    """Until the gateway outbox is empty and the ingest has acknowledged everything it got."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        stats = ingest.stats()
        if outbox.pending == 0 and stats.queue_depth == 0 and stats.unacked_messages == 0:
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
        if result.flush_patient is not None:  # no flush with --ble-sim, or stopped before it
            result.flush_samples_in_store = len(
                store.samples(patient_id=result.flush_patient, start_ms=flush_onset_ms)
            )
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
