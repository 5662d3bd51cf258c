"""Services sharing one broker: each instance has MQTT client ids of its own (``service.instance``),
so a demo or a second service never takes over a running service's sessions, and one instance
restarted with the same settings finds the persistent session it left (real Mosquitto)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from flarewatch.errors import ConfigError
from flarewatch.localservers import MosquittoServer
from flarewatch.settings import Settings, load_settings
from service.alerts.runtime import AlertingRuntime
from service.ingest import IngestService
from service.stores.base import SampleStore
from tests.ingest_helpers import RawPublisher, make_batch, wait_for

DEMO = [sys.executable, "-m", "flarewatch.cli", "demo", "--patients", "1", "--duration", "3"]
_OUTAGE = re.compile(r"cannot use MQTT broker|connection lost|connected again")


def _settings(tmp_path: Path, url: str, **service: str) -> Settings:
    return load_settings(
        mqtt={"url": url},
        store={"kind": "sqlite", "sqlite_path": tmp_path / "samples.sqlite3"},
        service={"database_url": f"sqlite:///{tmp_path}/service.sqlite3", **service},
    )


class _Service:
    """What ``flarewatch serve`` runs: alerting runtime (with its MQTT bridge) behind an ingest."""

    def __init__(self, settings: Settings) -> None:
        self.runtime = AlertingRuntime(settings, serve_api=False)
        self.ingest = IngestService.from_settings(settings, processor=self.runtime.processor)

    def __enter__(self) -> _Service:
        self.runtime.start()
        assert self.runtime.bridge is not None and self.runtime.bridge.wait_ready(10)
        self.ingest.start()
        assert self.ingest.wait_ready(10)
        return self

    def __exit__(self, *_: object) -> None:
        self.ingest.stop()
        self.runtime.stop()


@pytest.fixture
def publisher(mosquitto: MosquittoServer) -> Iterator[RawPublisher]:
    raw = RawPublisher(mosquitto.url)
    yield raw
    raw.close()


def _has(store: SampleStore, samples: int) -> bool:
    return store.count(device_id="band") == samples


def _connected_ids(mosquitto: MosquittoServer) -> list[str]:
    return re.findall(r"New client connected from \S+ as (\S+)", mosquitto.log_text())


def test_a_demo_on_the_broker_of_a_running_service_takes_none_of_its_sessions(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    publisher: RawPublisher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings = _settings(tmp_path / "service", mosquitto.url)
    (tmp_path / "service").mkdir()
    with _Service(settings) as service:
        demo = subprocess.run(
            [*DEMO, "--mqtt-url", mosquitto.url],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
            check=False,
        )
        assert demo.returncode == 0, demo.stderr[-3000:]
        report = json.loads(demo.stdout.strip().splitlines()[-1])
        assert report["ok"] is True and report["broker"] == "external"
        # the service went on receiving while the demo ran, and after it left
        publisher.batch(make_batch("own", "own-band", range(30))).wait_for_publish(10)
        store = service.ingest.store
        wait_for(lambda: store.count(device_id="own-band") == 30, 30, "the service's own samples")
        # both consumed the demo's samples: each its own subscription, none stolen
        demo_stored = report["stored_by_patient"]["p1"]
        wait_for(lambda: store.count(patient_id="p1") == demo_stored, 30, "demo samples")
        stats = service.ingest.stats()
        assert stats.connected and stats.rejected_total == 0
    outages = [r.getMessage() for r in caplog.records if _OUTAGE.search(r.getMessage())]
    assert outages == [], "the service was disconnected while the demo ran"
    ids = _connected_ids(mosquitto)
    assert ids.count("flarewatch-service-ingest") == 1, ids
    assert ids.count("flarewatch-service-alerts") == 1, ids
    demo_ids = [i for i in ids if i.startswith("flarewatch-demo-")]
    assert len(demo_ids) == len(set(demo_ids)) >= 3, ids  # ingest, alerts, gateway


def test_two_services_with_their_own_instance_names_run_side_by_side(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    publisher: RawPublisher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first = _settings(tmp_path / "a", mosquitto.url)
    second = _settings(tmp_path / "b", mosquitto.url, instance="ward-2")
    with _Service(first) as one, _Service(second) as two:
        for n in range(0, 100, 20):
            publisher.batch(make_batch("p1", "band", range(n, n + 20))).wait_for_publish(10)
        for store in (one.ingest.store, two.ingest.store):
            wait_for(partial(_has, store, 100), 30, "every sample, in both services")
    assert not [r for r in caplog.records if _OUTAGE.search(r.getMessage())]
    assert sorted(_connected_ids(mosquitto)[1:]) == [  # after the test's publisher
        "flarewatch-service-alerts",
        "flarewatch-service-ingest",
        "flarewatch-ward-2-alerts",
        "flarewatch-ward-2-ingest",
    ]


def test_a_restart_with_the_same_instance_name_gets_what_was_queued_meanwhile(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    publisher: RawPublisher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings = _settings(tmp_path, mosquitto.url, instance="ward-2")
    first = IngestService.from_settings(settings)
    first.start()
    assert first.wait_ready(10)
    first.stop()
    publisher.batch(make_batch("p1", "band", range(50))).wait_for_publish(10)  # service down
    again = IngestService.from_settings(settings)
    again.start()
    try:
        wait_for(lambda: again.store.count(device_id="band") == 50, 30, "the queued samples")
    finally:
        again.stop()
    assert any("session present: True" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["", "two words", "a/b", "x" * 41, "-lead"])
def test_an_instance_name_unfit_for_a_client_id_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"service\.instance"):
        _settings(tmp_path, "mqtt://127.0.0.1:1883", instance=name)
