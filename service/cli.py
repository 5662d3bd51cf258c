"""``flarewatch serve``, declared for ``flarewatch.cli`` (the composition root)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from flarewatch.mqtt import BrokerAddress
from flarewatch.settings import Settings, load_settings, require_secret_key
from service.const import STATS_LOG_INTERVAL_S
from service.db.service_lock import ServiceLock
from service.health import HealthBoard
from service.heartbeat import Heartbeat
from service.ingest import IngestService
from service.processing import Processor

log = logging.getLogger("flarewatch.serve")


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``flarewatch serve`` to the ``flarewatch`` CLI."""
    serve = subparsers.add_parser(
        "serve",
        help="run the service: MQTT ingest, storage, detection, episodes, alerts, ack API",
        description="Consume samples and statuses from the MQTT broker, store them (InfluxDB or "
        "SQLite), run the per-patient detectors, turn alarms into episodes and caregiver alerts, "
        "and serve the acknowledgement links. Stops cleanly on SIGTERM/Ctrl-C.",
    )
    serve.add_argument("--mqtt-url", help="broker, e.g. mqtt://127.0.0.1:1883")
    serve.add_argument("--influx-url", help="InfluxDB v1-compatible API, e.g. http://host:8086")
    serve.add_argument("--sqlite", type=Path, metavar="PATH", help="use the SQLite store at PATH")
    serve.set_defaults(handler=run_serve)


def serve_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings overrides from the ``serve`` flags (flags beat environment and config file)."""
    overrides: dict[str, Any] = {}
    if args.mqtt_url:
        overrides["mqtt"] = {"url": args.mqtt_url}
    if args.influx_url:
        overrides["influx"] = {"url": args.influx_url}
        overrides["store"] = {"kind": "influx"}
    if args.sqlite:
        overrides["store"] = {"kind": "sqlite", "sqlite_path": args.sqlite}
    return overrides


def build_processor(settings: Settings, health: HealthBoard) -> Processor:
    """The processing hook ``serve`` runs behind the ingest (detectors plug in here).

    Imported here, not at the top: the detectors and their model (scikit-learn) take seconds to
    load, which a ``serve`` refused for its settings should not wait for.
    """
    from service.alerts.runtime import start_alerting

    return start_alerting(settings, health=health)


def run_serve(args: argparse.Namespace) -> int:
    """Run the ingest until SIGTERM/SIGINT, logging counters periodically."""
    settings = load_settings(args.config, **serve_overrides(args))
    require_secret_key(settings.service)  # whatever the environment: the ack links face people
    stopping = threading.Event()
    # before anything touches the database: a second service would send every alert twice
    with ServiceLock(settings.service.database_url) as lock:
        # a lock lost with its database session and taken by another service stops this one
        lock.watch(on_lost=stopping.set)
        return _serve(settings, stopping, lock)


def _serve(settings: Settings, stopping: threading.Event, lock: ServiceLock) -> int:
    """The body of ``serve``, run while this process holds the service database's lock.

    Returns the exit code: 1 when the ingest died or another service took the lock (both logged
    as errors), so that a supervisor notices.
    """
    health = HealthBoard()
    ingest = IngestService.from_settings(settings, processor=build_processor(settings, health))
    health.add("broker (ingest)", ingest.broker_health)
    health.add("sample store", ingest.store_health)
    heartbeat = Heartbeat.from_settings(settings.service, health)

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    broker = BrokerAddress.from_settings(settings.mqtt)
    if settings.mqtt.client_id:
        log.warning(
            "mqtt.client_id is a gateway's setting and is ignored here: this service connects as "
            "%s (set service.instance to tell services sharing a broker apart)",
            settings.service.mqtt_client_id("ingest"),
        )
    log.info("serving: broker %s, %s store", broker, ingest.store.name)
    ingest.start()
    if heartbeat is not None:
        heartbeat.start()
    try:
        while not stopping.wait(STATS_LOG_INTERVAL_S):
            if not ingest.running:
                log.error("ingest stopped unexpectedly; see the errors above")
                ingest.stop()
                return 1
            log.info("%s", ingest.stats().summary())
    finally:
        if heartbeat is not None:
            heartbeat.stop()  # first: a service stopping must not be reported healthy
    ingest.stop()
    log.info("stopped: %s", ingest.stats().summary())
    return 0 if lock.lost_to is None else 1
