"""Grafana's panel queries run against a real InfluxDB holding what the service stores."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from flarewatch.localservers import InfluxServer
from flarewatch.payloads import Sample, SampleBatch
from flarewatch.settings import load_settings
from models.alarm import Alarm, AlarmKind, Severity
from service.alerts.annotations import InfluxAnnotations
from service.alerts.events import AlertEvent
from service.alerts.runtime import AlertingRuntime
from service.stores.influx import InfluxStore
from tests.test_deploy import documented_env, grafana_datasource, service_environment

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards" / "json"


def grafana_to_influxql(query: str, patient: str) -> str:
    """Substitute the Grafana macros the dashboards use, as Grafana would."""
    return (
        query.replace("$timeFilter", "time > now() - 1h")
        .replace("$__interval", "1m")
        .replace("$patient", patient)
    )


def _store_samples(store: InfluxStore) -> None:
    """Ten minutes of one wearer's samples, written as the service writes them."""
    now_ms = int(time.time() * 1000)
    samples = tuple(
        Sample(
            seq=i,
            time_ms=now_ms - 600_000 + i * 1000,
            heart_rate_bpm=70.0 + i % 5,
            skin_temperature_c=33.0,
            steps=1,
            acceleration_sd_g=0.01,
            battery_percent=80,
        )
        for i in range(300)
    )
    store.prepare()
    store.write([SampleBatch(patient_id="p1", device_id="band-1", samples=samples)])


def _check_every_panel(
    influxdb: InfluxServer, database: str = "flarewatch", auth: tuple[str, str] | None = None
) -> None:
    """The patient variable lists p1 and every panel shows p1's device (see _store_samples)."""
    dashboard_files = sorted(DASHBOARDS.glob("*.json"))
    assert dashboard_files
    for path in dashboard_files:
        dashboard = json.loads(path.read_text())
        variable = dashboard["templating"]["list"][0]["query"]
        values = _query(influxdb, variable, database, auth)
        assert ["patient", "p1"] in values["series"][0]["values"]
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                query = grafana_to_influxql(target["query"], "p1")
                result = _query(influxdb, query, database, auth)
                assert "series" in result, f"{path.name}: panel {panel['title']!r} is empty"
                assert result["series"][0]["tags"] == {"device": "band-1"}


def test_every_panel_returns_the_stored_series(influxdb: InfluxServer) -> None:
    with InfluxStore(influxdb.url) as store:
        _store_samples(store)
    _check_every_panel(influxdb)


def _query(
    influxdb: InfluxServer,
    query: str,
    database: str = "flarewatch",
    auth: tuple[str, str] | None = None,
) -> dict:
    response = httpx.post(
        f"{influxdb.url}/query", data={"db": database, "q": query}, auth=auth, timeout=10
    )
    response.raise_for_status()
    result = response.json()["results"][0]
    assert "error" not in result, result
    return result


def test_alert_events_become_grafana_annotations(influxdb: InfluxServer) -> None:
    """Alert events reach InfluxDB off the alerting path; the dashboard's annotation finds them."""
    with InfluxStore(influxdb.url) as store:
        store.prepare()
        annotations = InfluxAnnotations(store)
        annotations.start()
        now_s = time.time()
        for event in ("opened", "escalated", "acknowledged"):
            annotations(
                AlertEvent(
                    event=event,
                    alert_id=7,
                    patient_id="p1",
                    kind="anaphylaxis",
                    severity="critical",
                    state="active",
                    since_s=now_s - 60,
                    time_s=now_s + len(event) / 100,
                )
            )
        annotations.stop()
        assert (annotations.written, annotations.dropped) == (3, 0)
    for path in sorted(DASHBOARDS.glob("*.json")):
        (annotation,) = json.loads(path.read_text())["annotations"]["list"]
        result = _query(influxdb, grafana_to_influxql(annotation["query"], "p1"))
        events = [row[1] for row in result["series"][0]["values"]]
        assert sorted(events) == ["acknowledged", "escalated", "opened"]
        other = _query(influxdb, grafana_to_influxql(annotation["query"], "p2"))
        assert "series" not in other


def test_annotations_never_block_alerting_when_influxdb_is_down() -> None:
    store = InfluxStore("http://127.0.0.1:9", timeout_s=0.5)  # nothing listens there
    annotations = InfluxAnnotations(store, queue_size=2)
    event = AlertEvent("opened", 1, "p1", "flush", "warning", "active", 0.0, 1.0)
    started = time.monotonic()
    for _ in range(5):  # the writer is not started: the queue fills, extra events are dropped
        annotations(event)
    assert time.monotonic() - started < 0.1
    assert annotations.dropped == 3
    annotations.start()
    annotations.stop()  # also closes the store
    assert annotations.written == 0 and annotations.dropped == 5


def test_service_marks_its_alerts_on_the_dashboard(influxdb: InfluxServer, tmp_path) -> None:
    """With samples in InfluxDB, the alerting runtime annotates the alerts it opens."""
    settings = load_settings(
        mqtt={"url": None},
        influx={"url": influxdb.url},
        service={"database_url": f"sqlite:///{tmp_path}/service.sqlite3"},
    )
    with InfluxStore(influxdb.url) as store:
        store.prepare()
    runtime = AlertingRuntime(settings, serve_api=False)
    runtime.start()
    try:
        alarm = Alarm("p1", time.time(), AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "test-model")
        runtime.engine.on_alarm(alarm, {"heart_rate_bpm": 131.0})
    finally:
        runtime.stop()
    (annotation,) = json.loads((DASHBOARDS / "flarewatch-vitals.json").read_text())["annotations"][
        "list"
    ]
    result = _query(influxdb, grafana_to_influxql(annotation["query"], "p1"))
    assert "opened" in [row[1] for row in result["series"][0]["values"]]


def _initialise_like_the_influxdb_image(url: str, env: dict[str, str]) -> None:
    """What influxdb:1.8's init-influxdb.sh (influxdata/influxdata-docker) runs on a new volume
    with INFLUXDB_HTTP_AUTH_ENABLED, INFLUXDB_ADMIN_USER, INFLUXDB_DB and INFLUXDB_READ_USER set."""
    admin = (env["INFLUXDB_ADMIN_USER"], env["INFLUXDB_ADMIN_PASSWORD"])
    database, reader = env["INFLUXDB_DB"], env["INFLUXDB_READ_USER"]
    statements = [
        (None, f"CREATE USER \"{admin[0]}\" WITH PASSWORD '{admin[1]}' WITH ALL PRIVILEGES"),
        (admin, f"CREATE DATABASE {database}"),
        (admin, f"CREATE USER \"{reader}\" WITH PASSWORD '{env['INFLUXDB_READ_USER_PASSWORD']}'"),
        (admin, f'REVOKE ALL PRIVILEGES FROM "{reader}"'),
        (admin, f'GRANT READ ON "{database}" TO "{reader}"'),
    ]
    for auth, statement in statements:
        response = httpx.post(f"{url}/query", data={"q": statement}, auth=auth, timeout=10)
        response.raise_for_status()
        assert "error" not in response.json()["results"][0], statement


def test_grafana_reads_every_panel_with_the_credentials_compose_gives_it(tmp_path: Path) -> None:
    """InfluxDB with authentication, set up as the influxdb service's image does; the service
    writes as compose configures it; Grafana's datasource, as provisioned, reads every panel."""
    env = documented_env()
    influx_env = service_environment("influxdb", env)
    service_env = service_environment("service", env)
    datasource = grafana_datasource(env)
    with InfluxServer(tmp_path, auth_enabled=True) as server:
        _initialise_like_the_influxdb_image(server.url, influx_env)
        with InfluxStore(
            server.url,
            username=service_env["FLAREWATCH_INFLUX__USERNAME"],
            password=SecretStr(service_env["FLAREWATCH_INFLUX__PASSWORD"]),
        ) as store:
            _store_samples(store)
        grafana = (datasource["user"], datasource["secureJsonData"]["password"])
        _check_every_panel(server, datasource["jsonData"]["dbName"], grafana)
        anonymous = httpx.post(
            f"{server.url}/query", data={"db": "flarewatch", "q": "SHOW MEASUREMENTS"}
        )
        assert anonymous.status_code == 401, "without credentials InfluxDB refuses Grafana"
        write = httpx.post(
            f"{server.url}/write", params={"db": "flarewatch"}, content=b"m v=1", auth=grafana
        )
        assert write.status_code == 403, "Grafana's user may read, not write"
