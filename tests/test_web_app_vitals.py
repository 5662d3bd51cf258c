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
