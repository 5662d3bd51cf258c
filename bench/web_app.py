"""The web app's cost per request: signing in, a patient's page, its six-hour chart.

A caregiver opens a patient's page from a phone while an alert goes on: how long the page takes
with its chart (six hours of a 1-Hz band, 21,600 samples, read from the sample store and reduced
to one point a minute by the store), against, in the same run, the floor (``/healthz``: the
server and the HTTP round trip), the same page without a chart, the store's reduction alone, and
the baseline of reading every sample of the six hours (the chart's cost reduced in Python).
Signing in costs one Argon2id hash (OWASP's minimum parameters, ``service/accounts/const.py``),
on purpose.

On the real server (uvicorn on a loopback port), SQLite service database and SQLite sample store
in a temporary folder. Each figure is the median of ``--runs`` requests.

Usage: .venv/bin/python bench/web_app.py [--runs 20]
Last line: one JSON object with the figures (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn
from rich.progress import Progress

from flarewatch.localservers.base import free_port
from flarewatch.payloads import Sample, SampleBatch
from models.alarm import Alarm, AlarmKind, Severity
from service.accounts.vitals import CHART_SPAN_MS
from service.alerts.manager import AlertManager
from service.api import create_app
from service.db import Database
from service.db.accounts import add_account, link_contact
from service.db.care_teams import PolicyUpdate, add_contact, add_patient
from service.db.models import AccountRole
from service.episodes import EpisodeEngine
from service.stores.base import SampleStore
from service.stores.sqlite import SqliteStore

KEY = "bench-web-app-key-0123456789abcdef"
PASSWORD = "a bench passphrase, long enough"


def _serve(manager: AlertManager, store: SampleStore | None) -> tuple[uvicorn.Server, str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(manager, store),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{port}"


def _median_ms(action: Callable[[], object], runs: int, tick: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
        tick()
    return statistics.median(times)


def _world(folder: Path) -> tuple[AlertManager, SqliteStore]:
    """Alex, caregiver Ann with an account, six hours of 1-Hz samples and 50 past episodes."""
    now_s = time.time()
    db = Database(f"sqlite:///{folder / 'service.sqlite3'}", secret_key=KEY)
    manager = AlertManager(db, time.time, secret_key=KEY, public_base_url="http://127.0.0.1:9")
    with db.session() as session:
        add_patient(session, "p1", now_s, PolicyUpdate(display_name="Alex"))
        contact = add_contact(session, "p1", "Ann", ["json://127.0.0.1:9/ann"])
        account = add_account(session, "ann", PASSWORD, AccountRole.CAREGIVER, now_s)
        link_contact(session, account, contact.id, now_s)
    engine = EpisodeEngine(manager)
    for day in range(50, 0, -1):  # an episode a day, each closed at the next
        alarm = Alarm("p1", now_s - day * 86_400, AlarmKind.FLUSH, Severity.WARNING, "bench")
        engine.on_alarm(alarm, {"heart_rate_bpm": 90.0})
    store = SqliteStore(folder / "samples.sqlite3")
    store.prepare()
    start_ms = int(now_s * 1000) - CHART_SPAN_MS
    samples = [
        Sample(
            seq=i,
            time_ms=start_ms + i * 1000,
            heart_rate_bpm=60.0 + i % 30,
            skin_temperature_c=33.0,
        )
        for i in range(CHART_SPAN_MS // 1000)
    ]
    for low in range(0, len(samples), 1000):
        store.write(
            [
                SampleBatch(
                    patient_id="p1", device_id="band", samples=tuple(samples[low : low + 1000])
                )
            ]
        )
    return manager, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="requests per figure (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flarewatch-bench-web-") as folder:
        manager, store = _world(Path(folder))
        with_chart, url = _serve(manager, store)
        without_chart, bare_url = _serve(manager, None)
        figures: dict[str, float] = {}
        with (
            Progress(transient=True) as progress,
            httpx.Client(base_url=url) as client,
            httpx.Client(base_url=bare_url) as bare,
        ):
            task = progress.add_task("requests", total=args.runs * 6)

            def tick() -> None:
                progress.advance(task)

            def sign_in(http: httpx.Client) -> None:
                answer = http.post("/app/login", data={"username": "ann", "password": PASSWORD})
                assert answer.status_code == 303, answer.text

            figures["floor: GET /healthz"] = _median_ms(
                lambda: client.get("/healthz"), args.runs, tick
            )
            figures["sign in (one Argon2id hash)"] = _median_ms(
                lambda: sign_in(client), args.runs, tick
            )
            sign_in(bare)
            figures["patient page, no chart"] = _median_ms(
                lambda: bare.get("/app/patients/p1"), args.runs, tick
            )
            end_ms = int(time.time() * 1000)
            figures["store's minute means of 6 h"] = _median_ms(
                lambda: store.minute_means("p1", end_ms - CHART_SPAN_MS, end_ms), args.runs, tick
            )
            figures["baseline: every sample of 6 h read"] = _median_ms(
                lambda: store.samples(
                    patient_id="p1", start_ms=end_ms - CHART_SPAN_MS, end_ms=end_ms
                ),
                args.runs,
                tick,
            )
            page = client.get("/app/patients/p1").text
            assert page.count('<polyline class="hr"') == 1, "the chart is missing"
            figures["patient page with its chart"] = _median_ms(
                lambda: client.get("/app/patients/p1"), args.runs, tick
            )
        with_chart.should_exit = without_chart.should_exit = True
        store.close()
        manager.db.dispose()
    width = max(map(len, figures))
    for name, ms in figures.items():
        print(f"{name:<{width}}  {ms:8.1f} ms")
    chart_ms = figures["patient page with its chart"] - figures["patient page, no chart"]
    baseline_ms = figures["baseline: every sample of 6 h read"]
    print(
        f"the chart adds {chart_ms:.0f} ms to the page, {chart_ms / baseline_ms:.0%} of reading "
        "its samples one by one"
    )
    print(json.dumps({name: round(ms, 2) for name, ms in figures.items()}))


if __name__ == "__main__":
    main()
