"""Grafana's panel queries run against a real InfluxDB holding what the service stores."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from flarewatch.localservers import InfluxServer
from flarewatch.payloads import Sample, SampleBatch
from service.stores.influx import InfluxStore

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards" / "json"


def grafana_to_influxql(query: str, patient: str) -> str:
    """Substitute the Grafana macros the dashboards use, as Grafana would."""
    return (
        query.replace("$timeFilter", "time > now() - 1h")
        .replace("$__interval", "1m")
        .replace("/^$patient$/", f"/^{patient}$/")
    )


def test_every_panel_returns_the_stored_series(influxdb: InfluxServer) -> None:
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
    with InfluxStore(influxdb.url) as store:
        store.prepare()
        store.write([SampleBatch(patient_id="p1", device_id="band-1", samples=samples)])
    dashboard_files = sorted(DASHBOARDS.glob("*.json"))
    assert dashboard_files
    for path in dashboard_files:
        dashboard = json.loads(path.read_text())
        variable = dashboard["templating"]["list"][0]["query"]
        values = _query(influxdb, variable)
        assert ["patient", "p1"] in values["series"][0]["values"]
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                result = _query(influxdb, grafana_to_influxql(target["query"], "p1"))
                assert "series" in result, f"{path.name}: panel {panel['title']!r} is empty"
                assert result["series"][0]["tags"] == {"device": "band-1"}


def _query(influxdb: InfluxServer, query: str) -> dict:
    response = httpx.post(
        f"{influxdb.url}/query", data={"db": "flarewatch", "q": query}, timeout=10
    )
    response.raise_for_status()
    result = response.json()["results"][0]
    assert "error" not in result, result
    return result
