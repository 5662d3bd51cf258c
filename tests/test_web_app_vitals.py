"""The patient page's vitals chart, read from the real sample stores (InfluxDB and SQLite).

Six hours of per-minute means as inline SVG: the surge of an episode shaded behind it, the line
broken where the band sent nothing, the same in words for a screen reader. A store that does not
answer costs the chart, not the page; another patient's readings never appear.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flarewatch.localservers import InfluxServer
from flarewatch.payloads import Sample, SampleBatch
from models.alarm import AlarmKind
from service.stores.base import SampleStore
from service.stores.influx import InfluxStore
from service.stores.sqlite import SqliteStore
from tests.web_app_helpers import RECEIVER, CareWorld, care_world, form_token


def resting_then_surge(minute: int) -> float:
    """62 a minute at rest; 120 during the 20 minutes from 40 to 20 minutes ago."""
    return 120.0 if 20 <= minute < 40 else 62.0


@pytest.fixture(params=["influx", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SampleStore]:
    if request.param == "influx":
        server: InfluxServer = request.getfixturevalue("influxdb")
        with InfluxStore(server.url) as influx:
            influx.prepare()
            yield influx
        return
    with SqliteStore(tmp_path / "samples.sqlite3") as sqlite:
        sqlite.prepare()
        yield sqlite


@pytest.fixture
def world(tmp_path: Path, store: SampleStore) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER, store) as built:
        yield built


def chart_of(page: str) -> tuple[str, str]:
    """The chart's SVG and its words."""
    svg = re.search(r"<svg .*?</svg>", page)
    words = re.search(r'<figcaption id="chart-words">(.*?)</figcaption>', page)
    assert svg is not None and words is not None, page
    return svg.group(0), html.unescape(words.group(1))


def test_the_chart_shows_the_last_hours_with_the_episode_and_the_gap(world):
    # 3 h of readings with the band off between 90 and 120 minutes ago; Bo's band elsewhere
    world.record_vitals("p1", range(0, 90), resting_then_surge)
    world.record_vitals("p1", range(120, 180), resting_then_surge)
    world.record_vitals("p2", range(0, 30), lambda minute: 150.0)
    world.clock.advance(-40 * 60)
    world.episode("p1", AlarmKind.ANAPHYLAXIS)
    world.clock.advance(40 * 60)
    ann = world.signed_in("ann")
    noted = dt.datetime.fromtimestamp(world.clock() - 45 * 60, ZoneInfo("Europe/Berlin"))
    ann.post(
        "/app/patients/p1/diary",
        data={
            "csrf": form_token(ann.get("/app").text),
            "when": noted.strftime("%Y-%m-%dT%H:%M"),
            "kind": "trigger",
            "text": "red wine",
        },
    )
    page = ann.get("/app/patients/p1").text
    svg, words = chart_of(page)
    assert svg.count('class="mark"') == 1 and "<title>A possible trigger</title>" in svg
    assert "Diary: a possible trigger at" in words and "red wine" not in svg
    assert 'role="img"' in svg and 'aria-labelledby="chart-words"' in svg
    heart = re.findall(r'<polyline class="hr" points="([^"]+)"', svg)
    skin = re.findall(r'<polyline class="temp" points="([^"]+)"', svg)
    assert len(heart) == 2 and len(skin) == 2  # broken at the 30 minutes without a reading
    assert sum(len(line.split()) for line in heart) == 150  # one point a minute
    assert svg.count('class="episode"') == 2  # shaded in both panels
    assert "The last 6 hours, one point a minute." in words
    # 150 of the 360 minutes had readings (the band wrote 3 hours, off for 30 min of them)
    assert "A heart rate came in 2 hours 30 min of these 6 hours (42 %)." in words
    assert "Heart rate 62 to 120 beats a minute" in words  # never Bo's 150
    assert "Skin temperature 33.0 to 34.0 °C" in words
    assert "Shaded: possible anaphylaxis from" in words


def test_without_readings_the_page_says_so(world):
    page = world.signed_in("ann").get("/app/patients/p1")
    assert page.status_code == 200
    assert "No readings in the last 6 hours." in page.text and "<svg" not in page.text


def test_a_store_that_does_not_answer_costs_the_chart_not_the_page(tmp_path, caplog):
    down = InfluxStore("http://127.0.0.1:9", timeout_s=1.0)
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER, down) as world:
        world.episode("p1")
        caplog.set_level(logging.WARNING)
        page = world.signed_in("ann").get("/app/patients/p1")
        assert page.status_code == 200
        assert "The readings cannot be read now" in page.text
        assert "possible flush" in page.text  # the rest of the page is there
    down.close()
    said = [r.getMessage() for r in caplog.records if "vitals for its chart" in r.getMessage()]
    assert said and all("p1" not in line and "Alex" not in line for line in said)


def record_every(world: CareWorld, step_s: int, count: int, skip: range = range(0)) -> None:
    """Alex's band: one reading every ``step_s`` back from now, ``count`` of them (not ``skip``)."""
    assert world.store is not None
    now_ms = int(world.clock() * 1000)
    samples = tuple(
        Sample(
            seq=k,
            time_ms=now_ms - k * step_s * 1000 - 1000,
            heart_rate_bpm=60.0 + k % 7,
            skin_temperature_c=33.0,
        )
        for k in range(count)
        if k not in skip
    )
    for start in range(0, len(samples), 500):
        world.store.write(
            [
                SampleBatch(
                    patient_id="p1", device_id="band-p1", samples=samples[start : start + 500]
                )
            ]
        )


def test_a_day_and_a_week_are_one_link_away(world):
    record_every(world, 300, 30 * 12)  # 30 hours, every 5 minutes
    ann = world.signed_in("ann")
    page = ann.get("/app/patients/p1").text
    assert '<strong aria-current="page">6 hours</strong>' in page
    assert 'href="/app/patients/p1?span=24h#chart"' in page
    assert 'href="/app/patients/p1?span=7d#chart"' in page
    day = ann.get("/app/patients/p1", params={"span": "24h"}).text
    svg, words = chart_of(day)
    assert '<strong aria-current="page">24 hours</strong>' in day
    assert "The last 24 hours, one point every 5 minutes." in words
    heart = re.findall(r'<polyline class="hr" points="([^"]+)"', svg)
    assert len(heart) == 1 and len(heart[0].split()) == 24 * 12  # a reading in each 5 minutes
    labels = re.findall(r'text-anchor="middle">([^<]+)</text>', svg)
    assert labels and all(re.fullmatch(r"(00|04|08|12|16|20):00", label) for label in labels)


def test_a_week_charts_half_hours_labels_days_and_breaks_at_a_gap(world):
    record_every(world, 1800, 8 * 48, skip=range(100, 110))  # 8 days; 5 hours off the wrist
    week = world.signed_in("ann").get("/app/patients/p1?span=7d").text
    svg, words = chart_of(week)
    assert "The last 7 days, one point every 30 minutes." in words
    heart = re.findall(r'<polyline class="hr" points="([^"]+)"', svg)
    assert len(heart) == 2 and sum(len(line.split()) for line in heart) == 7 * 48 - 10
    days = re.findall(r'text-anchor="middle">([^<]+)</text>', svg)
    assert len(days) == 2 * 6 or len(days) == 2 * 7  # each panel: the midnights inside the week
    assert set(days) <= {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
    assert "Heart rate 60 to 66 beats a minute" in words


def test_a_span_that_is_not_offered_is_refused_plainly(world):
    answer = world.signed_in("ann").get("/app/patients/p1?span=1y")
    assert answer.status_code == 422
    assert "there is no chart span '1y': one of 6h, 24h, 7d" in html.unescape(answer.text)


def test_the_json_api_gives_the_same_series(world):
    record_every(world, 300, 30 * 12)
    world.record_vitals("p2", range(0, 5), lambda minute: 150.0)
    ann = world.signed_in("ann")
    day = ann.get("/api/v1/patients/p1/vitals", params={"span": "24h"})
    assert day.status_code == 200
    body = day.json()
    assert body["span"] == "24h" and body["step_s"] == 300
    assert body["end_s"] - body["start_s"] == 24 * 3600
    assert len(body["heart_rate_bpm"]) == 24 * 12 and len(body["skin_temperature_c"]) == 24 * 12
    assert all(body["start_s"] <= t < body["end_s"] for t, _ in body["heart_rate_bpm"])
    assert {v for _, v in body["heart_rate_bpm"]} <= {60.0 + k for k in range(7)}
    assert len(ann.get("/api/v1/patients/p1/vitals").json()["heart_rate_bpm"]) == 6 * 12
    assert ann.get("/api/v1/patients/p2/vitals").status_code == 404  # Bo is not Ann's
    assert ann.get("/api/v1/patients/p1/vitals?span=1y").status_code == 422
    assert world.client().get("/api/v1/patients/p1/vitals").status_code == 401
