"""A band the wearer took off on purpose: the patient's page says so, so nobody worries for nothing.

Alex's band goes silent; Alex answers "I took it off" within the signal window (caregivers are
not alerted). The page of Ann, Alex's caregiver, says the band is silent and that Alex said so;
a later loss that Alex did not answer says only that it is silent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service.db.models import Alert, AuditEvent, Patient
from service.episodes.signals import SignalKind
from tests.web_app_helpers import RECEIVER, CareWorld, care_world, form_token, words


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


def test_the_page_says_when_the_gateway_cannot_pair_with_the_band(world: CareWorld) -> None:
    world.engine.on_signal("p1", SignalKind.DEVICE_OFFLINE, True, world.clock(), "link_lost")
    assert "pairing mode" not in _status(world)
    assert world.signed_in("ann").get("/api/v1/patients/p1").json()["band_will_not_pair"] is False
    world.engine.on_signal("p1", SignalKind.DEVICE_OFFLINE, True, world.clock(), "pairing")
    status = _status(world)
    assert "The gateway cannot pair with the band" in status and "pairing mode" in status
    assert world.signed_in("ann").get("/api/v1/patients/p1").json()["band_will_not_pair"] is True
    world.engine.on_signal("p1", SignalKind.DEVICE_OFFLINE, False, world.clock())
    assert "pairing mode" not in _status(world)


def test_a_patient_chooses_when_to_be_reminded_of_a_band_taken_off(world: CareWorld) -> None:
    bo = world.signed_in("bo")
    page = bo.get("/app/patients/p2").text
    assert '<option value="7200" selected>2 hours</option>' in page  # the default
    token = form_token(page)
    assert '<option value="86400" selected>1 day</option>' in page
    chosen = {"csrf": token, "after": "14400", "notice": "0"}
    answer = bo.post("/app/patients/p2/band-reminder", data=chosen)
    assert answer.status_code == 303
    assert '<option value="14400" selected>4 hours</option>' in bo.get("/app/patients/p2").text
    with world.stack.db.session() as session:
        bo_record = session.get_one(Patient, "p2")
        assert (bo_record.off_reminder_s, bo_record.off_notice_s) == (14_400, 0)
        [changed] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "off_reminder_changed")
        ).all()
        assert changed.detail == {
            "off_reminder_s": 14_400.0, "off_notice_s": 0.0, "by": "Bo", "via": "web"
        }  # fmt: skip
    refused = bo.post(
        "/app/patients/p2/band-reminder", data={"csrf": token, "after": "5", "notice": "0"}
    )
    assert refused.status_code == 422
    other = bo.post("/app/patients/p1/band-reminder", data={"csrf": token, "after": "0"})
    assert other.status_code == 404
    ann = world.signed_in("ann")  # a caregiver: the patient's own choice
    ann_token = form_token(ann.get("/app/account").text)
    answer = ann.post("/app/patients/p1/band-reminder", data={"csrf": ann_token, "after": "0"})
    assert answer.status_code == 403
    assert "Remind me after" not in ann.get("/app/patients/p1").text
