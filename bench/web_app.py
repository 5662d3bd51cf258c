"""The web app's cost per request: signing in, the home page, the account page, a patient's
page, its chart of 6 h, 24 h, 7 days, an episode's page.

A caregiver opens a patient's page from a phone while an alert goes on: how long the page takes
with its chart (six hours of a 1-Hz band, 21,600 samples, read from the sample store and reduced
to one point a minute by the store; a day and a week, 86,400 and 604,800 samples, to a point
every 5 and 30 minutes), against, in the same run, the floor (``/healthz``: the server and the
HTTP round trip), the same page without a chart, the store's reduction alone, and the baseline
of reading every sample of the six hours (the chart's cost reduced in Python).
Signing in costs one Argon2id hash (OWASP's minimum parameters, ``service/accounts/const.py``),
on purpose.

On the real server (uvicorn on a loopback port), SQLite service database in a temporary folder,
the sample store SQLite there too, or with ``--store influx`` a real InfluxDB (Debian's
``influxd``, on a free port, as in the tests). Each figure is the median of ``--runs`` requests.

Usage: .venv/bin/python bench/web_app.py [--runs 20] [--store sqlite|influx]
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
from functools import partial
from pathlib import Path

import httpx
import uvicorn
from rich.progress import Progress
from sqlalchemy import func, select

from flarewatch.localservers import InfluxServer
from flarewatch.localservers.base import free_port
from flarewatch.payloads import Sample, SampleBatch
from models.alarm import Alarm, AlarmKind, Severity
from service.accounts.vitals import CHART_SPANS
from service.alerts.apprise_notifier import AppriseNotifier
from service.alerts.channel_changes import ChannelOffer, add_channel
from service.alerts.manager import AlertManager
from service.alerts.own_servers import OwnServers, mail_channel, ntfy_channel
from service.api import create_app
from service.db import Database
from service.db.accounts import add_account, link_contact
from service.db.care_teams import PolicyUpdate, add_contact, add_patient
from service.db.models import AccountRole, Episode
from service.episodes import EpisodeEngine
from service.stores.base import SampleStore
from service.stores.influx import InfluxStore
from service.stores.sqlite import SqliteStore

KEY = "bench-web-app-key-0123456789abcdef"
PASSWORD = "a bench passphrase, long enough"


SERVERS = OwnServers("mailto://127.0.0.1:9?from=bench@example.org", "http://127.0.0.1:9")
"""The service's own mail and ntfy servers: Ann's channels go through them (nothing is sent)."""


def _serve(manager: AlertManager, store: SampleStore | None) -> tuple[uvicorn.Server, str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(
            manager,
            store,
            notifier=AppriseNotifier(SERVERS),
            channel_offer=ChannelOffer(SERVERS),
        ),
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


def _world(folder: Path, store: SampleStore) -> AlertManager:
    """Alex, caregiver Ann with an account and three channels, a week of 1-Hz samples and 50
    past episodes (the latest a day ago, 40 minutes long: its page charts 100 minutes)."""
    now_s = time.time()
    db = Database(f"sqlite:///{folder / 'service.sqlite3'}", secret_key=KEY)
    manager = AlertManager(db, time.time, secret_key=KEY, public_base_url="http://127.0.0.1:9")
    with db.session() as session:
        add_patient(session, "p1", now_s, PolicyUpdate(display_name="Alex"))
        contact = add_contact(session, "p1", "Ann", ["json://127.0.0.1:9/ann"])
        account = add_account(session, "ann", PASSWORD, AccountRole.CAREGIVER, now_s)
        link_contact(session, account, contact.id, now_s)
        for url in (mail_channel("ann@example.org"), ntfy_channel("fw-bench")):
            add_channel(session, contact, url, now_s, by="bench", via="bench")
    engine = EpisodeEngine(manager)
    for day in range(50, 0, -1):  # an episode a day, each over after 40 minutes
        onset_s = now_s - day * 86_400
        alarm = Alarm("p1", onset_s, AlarmKind.FLUSH, Severity.WARNING, "bench")
        engine.on_alarm(alarm, {"heart_rate_bpm": 90.0})
        kind, severity = AlarmKind.FLUSH, Severity.WARNING
        engine.on_alarm(Alarm("p1", onset_s + 2400, kind, severity, "bench", resolved=True))
    store.prepare()
    week_ms = CHART_SPANS["7d"].span_ms
    start_ms = int(now_s * 1000) - week_ms
    with Progress(transient=True) as progress:
        for low in progress.track(range(0, week_ms // 1000, 1000), description="a week of 1 Hz"):
            samples = tuple(
                Sample(
                    seq=i,
                    time_ms=start_ms + i * 1000,
                    heart_rate_bpm=60.0 + i % 30,
                    skin_temperature_c=33.0,
                )
                for i in range(low, low + 1000)
            )
            store.write([SampleBatch(patient_id="p1", device_id="band", samples=samples)])
    return manager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="requests per figure (median)")
    parser.add_argument("--store", choices=["sqlite", "influx"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flarewatch-bench-web-") as folder:
        influx = InfluxServer() if args.store == "influx" else None  # its own temporary folder
        store: SampleStore = (
            SqliteStore(Path(folder) / "samples.sqlite3")
            if influx is None
            else InfluxStore(influx.start().url)
        )
        manager = _world(Path(folder), store)
        with_chart, url = _serve(manager, store)
        without_chart, bare_url = _serve(manager, None)
        figures: dict[str, float] = {}
        with (
            Progress(transient=True) as progress,
            httpx.Client(base_url=url) as client,
            httpx.Client(base_url=bare_url) as bare,
        ):
            task = progress.add_task("requests", total=args.runs * (7 + 2 * len(CHART_SPANS)))

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
            figures["home page (her patients, where her alerts reach her)"] = _median_ms(
                lambda: bare.get("/app"), args.runs, tick
            )
            assert "ntfy topic fw-bench" in bare.get("/app/account").text
            figures["account page (her 3 channels, their last messages)"] = _median_ms(
                lambda: bare.get("/app/account"), args.runs, tick
            )
            end_ms = int(time.time() * 1000)
            six_hours_ms = CHART_SPANS["6h"].span_ms
            figures["baseline: every sample of 6 h read"] = _median_ms(
                lambda: store.samples(
                    patient_id="p1", start_ms=end_ms - six_hours_ms, end_ms=end_ms
                ),
                args.runs,
                tick,
            )
            for span in CHART_SPANS.values():
                figures[f"store's means of {span.name}"] = _median_ms(
                    partial(
                        store.interval_means, "p1", end_ms - span.span_ms, end_ms, span.step_ms
                    ),
                    args.runs,
                    tick,
                )
                path = f"/app/patients/p1?span={span.name}"
                page = client.get(path).text
                assert page.count('<polyline class="hr"') == 1, "the chart is missing"
                figures[f"patient page with its chart of {span.name}"] = _median_ms(
                    partial(client.get, path), args.runs, tick
                )
            with manager.db.session() as session:
                latest = session.scalar(select(func.max(Episode.id)))
            path = f"/app/patients/p1/episodes/{latest}"
            assert '<polyline class="hr"' in client.get(path).text, "the episode's chart"
            figures["an episode's page with its chart"] = _median_ms(
                partial(client.get, path), args.runs, tick
            )
        with_chart.should_exit = without_chart.should_exit = True
        store.close()
        if influx is not None:
            influx.stop()
        manager.db.dispose()
    width = max(map(len, figures))
    for name, ms in figures.items():
        print(f"{name:<{width}}  {ms:8.1f} ms")
    baseline_ms = figures["baseline: every sample of 6 h read"]
    for span in CHART_SPANS:
        chart_ms = (
            figures[f"patient page with its chart of {span}"] - figures["patient page, no chart"]
        )
        print(
            f"the chart of {span} adds {chart_ms:.0f} ms to the page, {chart_ms / baseline_ms:.0%}"
            " of reading 6 h of samples one by one"
        )
    print(json.dumps({name: round(ms, 2) for name, ms in figures.items()}))


if __name__ == "__main__":
    main()
