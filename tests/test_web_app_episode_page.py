"""An episode's page: the readings around it, what the service did, the diary, its label.

Alex's band wrote three hours of 1-Hz readings to a real SQLite sample store, with a surge from
40 to 20 minutes ago; the detectors raised a critical alarm 40 minutes ago. Ann (first on the
care team) was told and told again; Dee's channel refused the message; Ann took it on after
5 min; it ended 20 minutes ago. Messages went for real to a local HTTP receiver.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from models.alarm import Alarm, AlarmKind, Severity
from service.stores.sqlite import SqliteStore
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.test_web_app_vitals import chart_of, resting_then_surge
from tests.web_app_helpers import CareWorld, form_token, words, world_with_dee


@pytest.fixture
def world(tmp_path: Path, http: HttpReceiver) -> Iterator[CareWorld]:
    with SqliteStore(tmp_path / "samples.sqlite3") as store:
        store.prepare()
        with world_with_dee(tmp_path, http, store) as built:
            yield built


def _note(world: CareWorld, minutes_ago: float, kind: str, text: str) -> None:
    ann = world.signed_in("ann")
    noted = dt.datetime.fromtimestamp(world.clock() - minutes_ago * 60, ZoneInfo("Europe/Berlin"))
    answer = ann.post(
        "/app/patients/p1/diary",
        data={
            "csrf": form_token(ann.get("/app").text),
            "when": noted.strftime("%Y-%m-%dT%H:%M"),
            "kind": kind,
            "text": text,
        },
    )
    assert answer.status_code == 303


def _step(world: CareWorld, seconds: float) -> None:
    world.clock.advance(seconds)
    world.stack.scheduler.run_until_idle()


@pytest.fixture
def surge(world: CareWorld, http: HttpReceiver, inbox: Inbox) -> int:
    """The episode, told, refused, taken on and over; its id."""
    world.record_vitals("p1", range(0, 180), resting_then_surge)
    http.refusing.add("/dee")
    world.clock.advance(-40 * 60)
    episode_id = world.episode("p1", AlarmKind.ANAPHYLAXIS)
    for _ in range(10):  # 5 min: Ann told and told again, Dee's message refused
        _step(world, 30)
    ann_link = re.search(r"/ack/[A-Za-z0-9_-]+", inbox.wait_for("/ann", 1)[0].body)
    assert ann_link is not None
    assert world.client().post(ann_link.group(0)).status_code == 200
    _step(world, 20 * 60 - 300)
    world.engine.on_alarm(
        Alarm("p1", world.clock(), AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-test",
              resolved=True)
    )  # fmt: skip
    _step(world, 0)  # the all-clear
    _step(world, 20 * 60)
    return episode_id


def test_the_page_shows_the_readings_around_it_and_its_course_in_order(
    world: CareWorld, surge: int
) -> None:
    _note(world, 45, "trigger", "red wine")
    _note(world, 35, "medication", "cetirizine 10 mg")
    _note(world, 60 * 24 * 2, "note", "two days before")
    ann = world.signed_in("ann")
    patient_page = ann.get("/app/patients/p1").text
    assert f'href="/app/patients/p1/episodes/{surge}"' in patient_page

    page = ann.get(f"/app/patients/p1/episodes/{surge}")
    assert page.status_code == 200
    said = words(page.text)
    assert "Possible anaphylaxis (critical)" in said and "over after 20 min" in said
    svg, chart_words = chart_of(page.text)
    assert svg.count('class="episode"') == 2  # shaded in both panels
    # from 30 min before it began to 30 min after it ended, but no further than now (it ended
    # 20 min ago): 70 one-minute points
    assert re.match(r"From \d\d:\d\d CET on \w{3} \d\d \w{3} to \d\d:\d\d CET", chart_words)
    assert "one point a minute" in chart_words
    assert "A heart rate came in 70 min of these 70 min (100 %)." in chart_words
    heart = re.findall(r'<polyline class="hr" points="([^"]+)"', svg)
    assert sum(len(line.split()) for line in heart) == 70
    assert "Heart rate 62 to 120 beats a minute" in chart_words
    assert svg.count('class="mark"') == 2, "the two diary entries in the window"

    course = [html.unescape(re.sub("<[^>]+>", "", item)) for item in re.findall(
        r"<li>(.*?)</li>", page.text.split("What happened")[1].split("</ol>")[0]
    )]  # fmt: skip
    steps = [item.split(": ", 1)[1] for item in course]
    assert steps == [
        "Alarm: possible anaphylaxis (critical)",
        "Ann was told",
        "Ann was told again, 5 times",
        "3 messages to Dee did not arrive",
        "Ann is on it (acknowledged)",
        "Ann got the all-clear",
        "Over: no longer detected",
    ]
    diary = words(page.text.split("Diary around it")[1])
    assert "A possible trigger: red wine (Ann)" in diary
    assert "A dose taken: cetirizine 10 mg (Ann)" in diary
    assert "two days before" not in page.text


def test_labelling_from_the_episode_page_comes_back_to_it(world: CareWorld, surge: int) -> None:
    ann = world.signed_in("ann")
    page = ann.get(f"/app/patients/p1/episodes/{surge}").text
    answer = ann.post(
        f"/app/patients/p1/episodes/{surge}/label",
        data={"csrf": form_token(page), "label": "reaction", "back": "episode"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/app/patients/p1/episodes/{surge}"
    assert "a real reaction, said by Ann." in words(ann.get(answer.headers["location"]).text)


def test_the_episode_as_json_and_who_may_see_it(world: CareWorld, surge: int) -> None:
    ann = world.signed_in("ann")
    found = ann.get(f"/api/v1/patients/p1/episodes/{surge}").json()
    assert found["episode"]["kind"] == "anaphylaxis" and found["episode"]["acked_by"] == "Ann"
    assert [step["what"] for step in found["course"]][:2] == [
        "Alarm: possible anaphylaxis (critical)",
        "Ann was told",
    ]
    assert [step["failed"] for step in found["course"]].count(True) == 1
    ben = world.signed_in("ben")  # Bo's caregiver
    assert ben.get(f"/app/patients/p1/episodes/{surge}").status_code == 404
    assert ben.get(f"/api/v1/patients/p1/episodes/{surge}").status_code == 404
    bos = world.episode("p2")
    assert ann.get(f"/app/patients/p1/episodes/{bos}").status_code == 404, "Bo's, via Alex"
    assert ann.get(f"/app/patients/p1/episodes/{surge + 100}").status_code == 404
    assert ann.get("/app/patients/p1/episodes/first").status_code == 422
    assert world.client().get(f"/app/patients/p1/episodes/{surge}").status_code in (303, 307)


def test_the_chart_of_an_episode_going_on_for_days_covers_its_first_week(
    world: CareWorld,
) -> None:
    world.clock.advance(-10 * 86_400)
    long_one = world.episode("p1")  # a flush nobody closed (added by hand, say)
    world.clock.advance(10 * 86_400)
    found = world.signed_in("ann").get(f"/api/v1/patients/p1/episodes/{long_one}").json()
    assert found["episode"]["state"] == "open"
    assert found["chart_end_s"] - found["chart_start_s"] == 7 * 86_400, "a week from its start"


def test_the_acknowledgement_page_links_to_the_episode(
    world: CareWorld, surge: int, inbox: Inbox
) -> None:
    link = re.search(r"/ack/[A-Za-z0-9_-]+", inbox.to("/ann")[0].body)
    assert link is not None
    page = world.client().get(link.group(0)).text
    assert f'href="/app/patients/p1/episodes/{surge}"' in page
    assert "The readings around it, minute by minute" in page
