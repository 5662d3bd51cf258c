"""A dashboard set to one patient shows that patient's data only, whatever the patient ids.

Patient ids may hold ``.`` (``flarewatch.const.ID_PATTERN``). Grafana's InfluxDB data source
leaves a single value that reads as a number (``parseFloat`` is not NaN, e.g. ``2024.01``)
unescaped, even inside a regular expression (``interpolateQueryExpr`` in
public/app/plugins/datasource/influxdb/datasource.ts, grafana/grafana): a panel filtering with
``=~ /^$patient$/`` then also shows ``2024-01``'s vitals. Real InfluxDB, queries as Grafana sends
them, data written by the service's own store and alert annotations.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from flarewatch.localservers import InfluxServer
from flarewatch.payloads import Sample, SampleBatch
from service.alerts.annotations import InfluxAnnotations
from service.alerts.events import AlertEvent
from service.stores.influx import InfluxStore

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards" / "json"
PATIENTS = {"2024.01": "band-a", "2024-01": "band-b", "2024x01": "band-c"}


def _as_grafana_sends_it(query: str, patient: str) -> str:
    """Grafana's macros, and the patient as it interpolates a number-like single value: as is."""
    return (
        query.replace("$timeFilter", "time > now() - 1h")
        .replace("$__interval", "1m")
        .replace("$patient", patient)
    )


def _query(influxdb: InfluxServer, query: str) -> dict:
    response = httpx.post(
        f"{influxdb.url}/query", data={"db": "flarewatch", "q": query}, timeout=10
    )
    response.raise_for_status()
    (result,) = response.json()["results"]
    assert "error" not in result, (query, result)
    return dict(result)


def _store(influxdb: InfluxServer) -> None:
    now_ms = int(time.time() * 1000)
    samples = tuple(
        Sample(
            seq=i,
            time_ms=now_ms - 120_000 + i * 1000,
            heart_rate_bpm=72.0,
            skin_temperature_c=33.0,
            steps=1,
            acceleration_sd_g=0.01,
            battery_percent=80,
        )
        for i in range(60)
    )
    with InfluxStore(influxdb.url) as store:
        store.prepare()
        store.write(
            [SampleBatch(patient_id=p, device_id=d, samples=samples) for p, d in PATIENTS.items()]
        )
        annotations = InfluxAnnotations(store)
        annotations.start()
        for n, patient in enumerate(PATIENTS):
            annotations(
                AlertEvent("opened", n + 1, patient, "flush", "warning", "active", 0.0, time.time())
            )
        annotations.stop()
        assert annotations.written == len(PATIENTS)


def test_each_panel_and_annotation_shows_the_chosen_patient_only(influxdb: InfluxServer) -> None:
    _store(influxdb)
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        listed = _query(influxdb, dashboard["templating"]["list"][0]["query"])
        assert {row[1] for row in listed["series"][0]["values"]} == set(PATIENTS)
        for patient, device in PATIENTS.items():
            for panel in dashboard["panels"]:
                for target in panel["targets"]:
                    result = _query(influxdb, _as_grafana_sends_it(target["query"], patient))
                    devices = [series["tags"]["device"] for series in result.get("series", [])]
                    assert devices == [device], f"{panel['title']!r} for {patient}: {devices}"
            for annotation in dashboard["annotations"]["list"]:
                result = _query(influxdb, _as_grafana_sends_it(annotation["query"], patient))
                (series,) = result["series"]
                alert_ids = [row[series["columns"].index("alert_id")] for row in series["values"]]
                assert alert_ids == [list(PATIENTS).index(patient) + 1], patient
