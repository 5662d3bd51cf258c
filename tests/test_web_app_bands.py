"""The patient's bands on their page: connected or not, since when, why not, battery, contact.

Device statuses go the service's real path (the processor, the engine, the database); the page
and its JSON are read as Ann, Alex's caregiver, would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flarewatch.payloads import DeviceStatus, LinkState
from service.db.care_teams import add_device
from service.episodes import AlertingProcessor
from service.episodes.signals import SignalKind
from service.processing import IngestCycle
from tests.test_episodes import NoAlarms
from tests.web_app_helpers import RECEIVER, CareWorld, care_world, words


@pytest.fixture
def world(tmp_path) -> Iterator[CareWorld]:
    with care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER) as built:
        with built.stack.db.session() as session:
            add_device(session, "p1", "band-wrist")
            add_device(session, "p1", "strap-chest")
            add_device(session, "p2", "band-bo")
        yield built


def _bands(world: CareWorld) -> str:
    page = words(world.signed_in("ann").get("/app/patients/p1").text)
    return page.split("Bands")[1].split("Your band")[0].split("Detection")[0]


def test_the_page_says_how_each_band_is_linked_and_why_not(world: CareWorld) -> None:
    processor = AlertingProcessor(NoAlarms(), world.engine)
    t0_ms = int(world.clock() * 1000)

    def report(device: str, state: LinkState, at_ms: int, patient: str = "p1", **kw: object):
        status = DeviceStatus(
            patient_id=patient, device_id=device, time_ms=at_ms, state=state, **kw
        )
        processor.process(IngestCycle(at_ms, device_statuses=[status]))

    assert "no gateway has reported on it yet" in _bands(world)
    report("band-wrist", LinkState.ONLINE, t0_ms, battery_percent=81, contact_detected=True)
    report("strap-chest", LinkState.ONLINE, t0_ms)
    report("strap-chest", LinkState.OFFLINE, t0_ms + 60_000, reason="pairing")
    report("band-wrist", LinkState.ONLINE, t0_ms + 120_000, battery_percent=79)
    report("band-wrist", LinkState.ONLINE, t0_ms - 600_000, battery_percent=99)  # older, retained
    report("band-bo", LinkState.OFFLINE, t0_ms, patient="p1")  # another patient's band: not kept
    bands = _bands(world)
    assert "band-wrist: connected since" in bands and "battery 79 %, on the skin" in bands
    assert "(last report" in bands
    assert "strap-chest: NOT connected since" in bands
    assert "the gateway cannot pair with it: it may have been reset" in bands
    [wrist, chest] = world.signed_in("ann").get("/api/v1/patients/p1").json()["bands"]
    assert wrist["id"] == "band-wrist" and wrist["link_state"] == "online"
    assert wrist["battery_percent"] == 79 and wrist["contact_detected"] is True
    assert wrist["link_since_s"] == t0_ms / 1000 and wrist["reported_s"] == t0_ms / 1000 + 120
    assert chest["link_reason"] == "pairing" and chest["battery_percent"] is None
    bo = world.signed_in("bo").get("/api/v1/patients/p2").json()["bands"]
    assert bo == [
        {
            "id": "band-bo",
            "link_state": None,
            "link_reason": None,
            "link_since_s": None,
            "reported_s": None,
            "battery_percent": None,
            "contact_detected": None,
        }
    ]

    report("strap-chest", LinkState.OFFLINE, t0_ms + 180_000, reason="not_found")
    assert "out of range, switched off, or its battery is flat" in _bands(world)
    report("strap-chest", LinkState.ONLINE, t0_ms + 240_000, contact_detected=False)
    bands = _bands(world)
    assert "strap-chest: connected since" in bands and "NO skin contact" in bands
    assert "pairing" not in bands
    assert "The gateway has been silent" not in bands

    # the gateway goes silent: what the page shows is what it said last, and the page says so
    world.engine.on_signal("p1", SignalKind.GATEWAY_OFFLINE, True, world.clock())
    bands = _bands(world)
    assert "The gateway has been silent since" in bands and "strap-chest: connected" in bands
