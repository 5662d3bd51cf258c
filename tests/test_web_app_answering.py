"""How fast the care team answers, on the patient's page: alerts and drills of the last 90 days.

Alex's team is Ann then Dee; messages go for real to a local HTTP receiver, time is a fake clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from models.alarm import Alarm, AlarmKind, Severity
from tests.alerting_helpers import HttpReceiver, Inbox
from tests.web_app_helpers import CareWorld, form_token, words, world_with_dee


@pytest.fixture
def world(tmp_path, http: HttpReceiver) -> Iterator[CareWorld]:
    with world_with_dee(tmp_path, http) as built:
        yield built


def _step(world: CareWorld, seconds: float, every_s: float = 30.0) -> None:
    for _ in range(round(seconds / every_s)):
        world.clock.advance(every_s)
        world.stack.scheduler.run_until_idle()


def _answer(world: CareWorld, inbox: Inbox, who: str) -> None:
    link = re.search(r"/ack/[A-Za-z0-9_-]+", inbox.to(f"/{who}")[-1].body)
    assert link is not None
    assert world.client().post(link.group(0)).status_code == 200


def _over(world: CareWorld) -> None:
    world.engine.on_alarm(
        Alarm("p1", world.clock(), AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-test",
              resolved=True)
    )  # fmt: skip
    _step(world, 600, every_s=300)


def _answering(world: CareWorld) -> str:
    page = words(world.signed_in("ann").get("/app/patients/p1").text)
    return page.split("Answering, last 90 days")[1].split("Quiet hours")[0]


def test_the_page_says_how_fast_the_team_took_on_alerts_and_drills(
    world: CareWorld, inbox: Inbox
) -> None:
    ann = world.signed_in("ann")
    assert "No alert or drill reached the care team in the last 90 days." in words(
        ann.get("/app/patients/p1").text
    )
    world.episode("p1", AlarmKind.ANAPHYLAXIS)  # Ann answers after 1 min 30 s
    _step(world, 90)
    _answer(world, inbox, "ann")
    _over(world)
    world.episode("p1", AlarmKind.ANAPHYLAXIS)  # nobody for 3 min, then Dee, after 4 min
    _step(world, 240)
    _answer(world, inbox, "dee")
    _over(world)
    world.episode("p1", AlarmKind.ANAPHYLAXIS)  # over before anyone answered
    _step(world, 60)
    _over(world)

    said = _answering(world)
    assert (
        "Alerts: 3 reached the care team, 2 taken on, after 2 min 45 s at the median (the "
        "slowest after 4 min 0 s), by Ann 1, Dee 1; 1 nobody took on." in said
    )
    assert "Drills" not in said and "slower than the 5 minutes" not in said

    page = ann.get("/app/patients/p1").text  # a drill Dee answers after 6 min
    assert ann.post("/app/patients/p1/drill", data={"csrf": form_token(page)}).status_code == 303
    world.stack.scheduler.run_until_idle()  # Ann is told at once
    _step(world, 360)
    _answer(world, inbox, "dee")
    said = _answering(world)
    assert "Drills: 1 reached the care team, 1 taken on, after 6 min 0 s at the median" in said
    assert "That is slower than the 5 minutes a severe reaction may leave." in said

    alerts = ann.get("/api/v1/patients/p1").json()["answering"]["alerts"]
    assert (alerts["reached"], alerts["answered"], alerts["median_s"]) == (3, 2, 165.0)

    _step(world, 91 * 86_400, every_s=7 * 86_400)  # three months on: nothing in the period
    assert "No alert or drill reached the care team in the last 90 days." in words(
        world.signed_in("ann").get("/app/patients/p1").text
    )
