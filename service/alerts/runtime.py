"""Everything alerting needs at run time, built from the settings and started/stopped together.

``flarewatch serve`` builds one :class:`AlertingRuntime`, hands :attr:`processor` to the ingest
and calls :meth:`start` / :meth:`stop` around it. Tests and the benchmark build it the same way.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import uvicorn
from sqlalchemy.engine import make_url

from flarewatch.redaction import address_of
from flarewatch.settings import Settings
from models.artifacts import default_bank
from service.alerts.annotations import InfluxAnnotations
from service.alerts.apprise_notifier import AppriseNotifier
from service.alerts.audit import Clock
from service.alerts.channel_changes import ChannelOffer
from service.alerts.manager import AlertManager
from service.alerts.mqtt_bridge import MqttAlertBridge
from service.alerts.notifier import Notifier
from service.alerts.own_servers import OwnServers
from service.alerts.scheduler import EscalationScheduler
from service.api.app import create_app
from service.db.session import Database
from service.episodes.checkpoint import DetectorCheckpoint
from service.episodes.engine import EpisodeEngine
from service.episodes.processor import AlarmSource
from service.episodes.profile_sync import ProfiledAlertingProcessor, ProfiledBank, ProfileSync
from service.health import Check, HealthBoard
from service.processing import IngestCycle, Processor
from service.stores.base import SampleStore
from service.stores.factory import create_store, store_kind
from service.stores.influx import InfluxStore

log = logging.getLogger(__name__)

API_START_TIMEOUT_S: Final = 10.0


def detector_state_path(settings: Settings) -> Path:
    """Where the detector checkpoint lives: as configured, else beside a SQLite service database."""
    service = settings.service
    if service.detector_state_path is not None:
        return service.detector_state_path
    url = make_url(service.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).with_name("detector-state.json")
    return Path("var/detector-state.json")


def warn_plain_http_links(public_base_url: str) -> bool:
    """Warn (and say so) when the links in messages would travel over plain HTTP off this host.

    Each acknowledgement link carries its token in the URL: over plain HTTP anyone on the path
    (hotel Wi-Fi, a mobile carrier's proxy) can read it and acknowledge or label the alert. The
    loopback default of a single-machine trial is fine.
    """
    url = urlsplit(public_base_url)
    host = url.hostname or ""
    if url.scheme != "http" or host == "localhost" or _is_loopback(host):
        return False
    log.warning(
        "service.public_base_url %s is plain HTTP: the acknowledgement links in messages carry "
        "their token in the URL, so anyone on the way can read and use it, and the web app's "
        "passwords and session cookie go unencrypted; put the service behind an HTTPS reverse "
        "proxy and give its https:// address (docs/deploy.md)",
        address_of(public_base_url),
    )
    return True


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _annotations(settings: Settings) -> InfluxAnnotations | None:
    """Grafana annotations of alert events when the samples go to InfluxDB."""
    if store_kind(settings) != "influx":
        return None
    store = create_store(settings)
    return InfluxAnnotations(store) if isinstance(store, InfluxStore) else None


class AlertingRuntime:
    """Database, alert manager, escalation scheduler, MQTT bridge, ack API and processing hook.

    ``persistent_mqtt=False`` (the demo) gives the MQTT bridge a clean session, so a throw-away
    instance leaves nothing queued on a shared broker.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = time.time,
        notifier: Notifier | None = None,
        bank: AlarmSource | None = None,
        serve_api: bool = True,
        persistent_mqtt: bool = True,
        health: HealthBoard | None = None,
    ) -> None:
        service = settings.service
        self.health = health if health is not None else HealthBoard()
        self.db = Database(service.database_url, secret_key=service.secret_key.get_secret_value())
        warn_plain_http_links(service.public_base_url)
        self.manager = AlertManager(
            self.db,
            clock,
            secret_key=service.secret_key.get_secret_value(),
            public_base_url=service.public_base_url,
        )
        self.scheduler = EscalationScheduler(
            self.manager, notifier or AppriseNotifier(OwnServers.of(service))
        )
        self.health.add("escalation", self.scheduler.health)
        self.engine = EpisodeEngine(self.manager)
        detectors = (
            bank if bank is not None else default_bank(confirmer_path=service.confirmer_path)
        )
        log.info("detectors: model %s", detectors.model_version)
        checkpoint = DetectorCheckpoint(detector_state_path(settings))
        checkpoint.restore(detectors)
        self.bridge = (
            MqttAlertBridge(
                settings.mqtt,
                self.manager,
                service.mqtt_client_id("alerts"),
                persistent=persistent_mqtt,
            )
            if settings.mqtt.url is not None
            else None
        )
        if self.bridge is not None:
            self.health.add("broker (alerts)", self.bridge.health)
        # Profiles are applied after the restore, so a switched detector keeps its baselines;
        # patients erased meanwhile are forgotten before any sample is scored.
        self.profiles = (
            ProfileSync(
                self.db,
                detectors,
                on_erased=[self.bridge.forget] if self.bridge is not None else [],
                checkpoint=checkpoint,
            )
            if isinstance(detectors, ProfiledBank)
            else None
        )
        if self.profiles is not None:
            self.profiles.refresh()
        self.processor = ProfiledAlertingProcessor(
            detectors, self.engine, checkpoint, self.profiles
        )
        self.annotations = _annotations(settings)
        if self.annotations is not None:
            self.manager.listeners.append(self.annotations)
        self._api: uvicorn.Server | None = None
        self._api_thread: threading.Thread | None = None
        self._api_store: SampleStore | None = None
        if serve_api:
            # a store of its own for the web app's charts (read-only; the ingest's is busy)
            self._api_store = create_store(settings)
            config = uvicorn.Config(
                create_app(
                    self.manager,
                    self._api_store,
                    second_factor_roles=service.second_factor_roles,
                    notifier=self.scheduler.notifier,
                    mail_url=(
                        service.mail_url.get_secret_value() or None
                        if service.mail_url is not None
                        else None
                    ),
                    channel_offer=ChannelOffer(
                        OwnServers.of(service), any_url=service.own_channel_urls
                    ),
                    health=self.health,
                ),
                host=service.api_host,
                port=service.api_port,
                log_level="warning",
                # Access logs would record acknowledgement tokens (secrets) in URLs.
                access_log=False,
                server_header=False,  # no software version to look up exploits for
            )
            self._api = uvicorn.Server(config)
            self.health.add("web app", self._api_health)

    def start(self) -> None:
        """Start the scheduler, the profile poller, the MQTT bridge and the API server."""
        self.scheduler.start()
        if self.profiles is not None:
            self.profiles.start()
        if self.annotations is not None:
            self.annotations.start()
        if self.bridge is not None:
            self.bridge.start()
        if self._api is not None:
            self._api_thread = threading.Thread(
                target=self._api.run, name="flarewatch-api", daemon=True
            )
            self._api_thread.start()
            deadline = time.monotonic() + API_START_TIMEOUT_S
            while (
                not self._api.started
                and self._api_thread.is_alive()
                and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            if self._api.started:
                log.info(
                    "web app at %s/app (and the acknowledgement links under that address)",
                    address_of(self.manager.public_base_url).rstrip("/"),
                )
            else:
                log.error(
                    "the acknowledgement API did not start on %s:%s (port in use?): "
                    "acknowledgement links will not work",
                    self._api.config.host,
                    self._api.config.port,
                )

    def _api_health(self) -> Check:
        """Whether the web app answers: the acknowledgement links and the pages need it."""
        alive = self._api_thread is not None and self._api_thread.is_alive()
        if self._api is not None and self._api.started and alive:
            return Check("web app", True, "serving")
        return Check("web app", False, "not serving: acknowledgement links do not work")

    def stop(self) -> None:
        """Stop everything started by :meth:`start`, the scheduler last (pending sends finish)."""
        if self._api is not None and self._api_thread is not None:
            self._api.should_exit = True
            self._api_thread.join()
        if self._api_store is not None:
            self._api_store.close()
        if self.bridge is not None:
            self.bridge.stop()
        if self.profiles is not None:
            self.profiles.stop()
        self.scheduler.stop()
        if self.annotations is not None:
            self.annotations.stop()
        self.processor.close()
        self.db.dispose()


class _RuntimeProcessor(Processor):
    """The runtime's processing hook, stopping the whole runtime when the ingest closes it."""

    def __init__(self, runtime: AlertingRuntime) -> None:
        self.runtime = runtime

    def process(self, cycle: IngestCycle) -> None:
        """Run detectors and episodes on the cycle."""
        self.runtime.processor.process(cycle)

    def close(self) -> None:
        """Stop the API, the MQTT bridge and the scheduler."""
        self.runtime.stop()


def start_alerting(settings: Settings, **kwargs: Any) -> Processor:
    """Build and start the alerting runtime; the returned hook stops it on ``close()``.

    This is what ``flarewatch serve`` plugs behind the ingest.
    """
    runtime = AlertingRuntime(settings, **kwargs)
    runtime.start()
    return _RuntimeProcessor(runtime)
