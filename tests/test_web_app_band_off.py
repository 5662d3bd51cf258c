"""A band the wearer took off on purpose: the patient's page says so, so nobody worries for nothing.

Alex's band goes silent; Alex answers "I took it off" within the signal window (caregivers are
not alerted). The page of Ann, Alex's caregiver, says the band is silent and that Alex said so;
a later loss that Alex did not answer says only that it is silent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service.db.models import Alert
from service.episodes.signals import SignalKind
from tests.web_app_helpers import RECEIVER, CareWorld, care_world, words


@pytest.fixture
def world(tmp_path) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER) as built:
        yield built


def _status(world: CareWorld) -> str:
    page = words(world.signed_in("ann").get("/app/patients/p1").text)
    return page.split("Emergency plan")[0]


def test_the_page_says_when_the_wearer_took_the_band_off(world: CareWorld) -> None:
    world.engine.on_signal("p1", SignalKind.NO_DATA, True, world.clock())
    with world.stack.db.session() as session:
        alert_id = session.scalars(select(Alert.id).where(Alert.kind == "no_data")).one()
    world.clock.advance(120)
    world.stack.manager.cancel(alert_id, via="test")  # "I took it off"
    status = _status(world)
    assert "no data from the band since " in status
    assert ": Alex said they took the band off." in status

    world.clock.advance(600)
    world.engine.on_signal("p1", SignalKind.NO_DATA, False, world.clock())
    assert "no data from the band" not in _status(world)
    world.clock.advance(600)
    world.engine.on_signal("p1", SignalKind.NO_DATA, True, world.clock())  # not answered
    status = _status(world)
    assert "no data from the band" in status and "took the band off" not in status
