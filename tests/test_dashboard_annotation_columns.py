"""Grafana builds an annotation from the columns of its query's result: every column the
dashboard's annotation names (text, tags) must come back from a real InfluxDB."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from flarewatch.localservers import InfluxServer
from service.alerts.annotations import InfluxAnnotations
from service.alerts.events import AlertEvent
from service.stores.influx import InfluxStore

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards" / "json"


def _as_grafana_sends_it(query: str, patient: str) -> str:
    """The annotation query with the dashboard's variables filled in as Grafana fills them."""
    return query.replace("$timeFilter", "time > now() - 1h").replace("$patient", patient)


def test_annotation_query_returns_every_column_the_annotation_names(
    influxdb: InfluxServer,
) -> None:
    """Tags Grafana cannot find among the result's columns are silently left off the marker."""
    with InfluxStore(influxdb.url) as store:
        store.prepare()
        annotations = InfluxAnnotations(store)
        annotations.start()
        now_s = time.time()
        annotations(
            AlertEvent(
                event="opened",
                alert_id=3,
                patient_id="p1",
                kind="anaphylaxis",
                severity="critical",
                state="active",
                since_s=now_s - 5,
                time_s=now_s,
            )
        )
        annotations.stop()
        assert annotations.written == 1
    dashboard_files = sorted(DASHBOARDS.glob("*.json"))
    assert dashboard_files
    for path in dashboard_files:
        for annotation in json.loads(path.read_text())["annotations"]["list"]:
            response = httpx.post(
                f"{influxdb.url}/query",
                data={"db": "flarewatch", "q": _as_grafana_sends_it(annotation["query"], "p1")},
                timeout=10,
            )
            response.raise_for_status()
            (series,) = response.json()["results"][0]["series"]
            (row,) = series["values"]
            value = dict(zip(series["columns"], row, strict=True))
            named = [annotation["textColumn"], *annotation["tagsColumn"].split(",")]
            missing = [column for column in named if column not in value]
            assert not missing, f"{path.name}: {annotation['name']} lacks columns {missing}"
            assert (value["event"], value["kind"], value["severity"]) == (
                "opened",
                "anaphylaxis",
                "critical",
            )
