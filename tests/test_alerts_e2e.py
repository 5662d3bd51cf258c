"""The whole path, for real: simulated patient with an injected anaphylaxis → gateway publisher →
Mosquitto → ingest → detectors → episode → caregiver 1 (webhook) → repeats → caregiver 2 (e-mail)
→ acknowledgement through the link (real HTTP API) stops the repeats.

Timeouts are the patient's policy, set to seconds here, so the test runs in real time quickly.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from flarewatch.localservers import free_port
from flarewatch.settings import MqttSettings, load_settings
from models.artifacts import default_bank
from models.const import WARMUP_S
from service.alerts.runtime import AlertingRuntime
from service.db import Alert, AlertState, AuditEvent, Episode
from service.db.care_teams import PolicyUpdate
from service.ingest import IngestService
from tests.alerting_helpers import (
    SyntheticPatient,
    register_team,
)

ONSET_AGO_MIN = 8
HISTORY_MIN = int(WARMUP_S // 60) + ONSET_AGO_MIN + 4
"""The detectors judge nobody during their warm-up: the surge starts 4 min after it."""
REPEAT_S = 1.5
ACK_TIMEOUT_S = 4.0


def publish_simulated_patient(publisher: MqttPublisher) -> int:
    """A resting wearer (band on for warm-up + 12 min); anaphylaxis-like surge 8 min ago.

    Not the collector's physiological simulator: its day plans (sleep, activity) depend on the
    calendar day and hour, so whether the detectors judge its wearer at rest would depend on
    when the test runs. The gateway stays up afterwards: stopping it would (rightly) raise a
    "no data" alert.
    """
    now_ms = int(time.time() * 1000) // 1000 * 1000
    onset_ms = now_ms - ONSET_AGO_MIN * 60_000
    patient = SyntheticPatient(7, resting_bpm=62.0, onset_ms=onset_ms)
    start_ms = now_ms - HISTORY_MIN * 60_000
    readings = [patient.reading(t) for t in range(start_ms, now_ms, 1000)]
    publisher.submit("p1", "p1-band", readings)
    assert publisher.wait_until_sent(30)
    return onset_ms


@pytest.mark.slow
def test_injected_anaphylaxis_reaches_caregivers_escalates_and_ack_link_stops_it(
    tmp_path, mosquitto, inbox, http, smtp
):
    api_port = free_port()
    settings = load_settings(
        mqtt={"url": mosquitto.url},
        store={"kind": "sqlite", "sqlite_path": tmp_path / "samples.sqlite3"},
        service={
            "database_url": f"sqlite:///{tmp_path}/service.sqlite3",
            "api_port": api_port,
            "public_base_url": f"http://127.0.0.1:{api_port}",
            "secret_key": "e2e-secret-key-0123456789",
        },
    )
    runtime = AlertingRuntime(settings, bank=default_bank())
    register_team(
        runtime.db,
        "p1",
        [("ann", [http.url("ann")]), ("bob", [smtp.url("bob@example.org")])],
        policy=PolicyUpdate(
            cancel_window_s=1,
            ack_timeout_s=ACK_TIMEOUT_S,
            repeat_interval_s=REPEAT_S,
            emergency_plan="Adrenaline auto-injector in the blue bag; call 112.",
            display_name="Alex",
        ),
    )
    runtime.start()
    ingest = IngestService.from_settings(settings, processor=runtime.processor)
    ingest.start()
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    publisher = MqttPublisher(MqttSettings(url=mosquitto.url), outbox, gateway_id="gw1")
    try:
        assert ingest.wait_ready(15), "ingest did not subscribe"
        publisher.start()
        onset_ms = publish_simulated_patient(publisher)

        first = inbox.wait_for("/ann", 1, timeout_s=30)
        if not first:
            with runtime.db.session() as session:
                story = [(e.action, e.detail) for e in session.scalars(select(AuditEvent))]
            pytest.fail(
                f"caregiver 1 was never notified; ingest {ingest.stats().summary()}, "
                f"alarms {runtime.processor.alarms_seen}, audit {story[:20]}"
            )
        assert "anaphylaxis" in first[0].title and "Alex" in first[0].title
        assert "Adrenaline auto-injector" in first[0].body and "heart rate" in first[0].body
        repeats = inbox.wait_for("/ann", 3, timeout_s=10)
        assert any(m.title.startswith("REPEAT") for m in repeats)
        bob = inbox.wait_for("bob@example.org", 1, timeout_s=ACK_TIMEOUT_S + 10)
        assert bob, "caregiver 2 was never notified after the ack timeout"
        assert "CRITICAL" in bob[0].title

        token = re.search(r"/ack/(\S+)", bob[-1].body).group(1)
        link = f"http://127.0.0.1:{api_port}/ack/{token}"
        assert "<form" in httpx.get(link).text
        assert "Acknowledged" in httpx.post(link).text
        with runtime.db.session() as session:
            alert = session.scalars(select(Alert).where(Alert.patient_id == "p1")).one()
            assert alert.state == AlertState.ACKNOWLEDGED and alert.acked_by == "bob"
            episode = session.get_one(Episode, alert.episode_id)
            assert episode.kind == "anaphylaxis" and episode.model_version
            assert episode.opened_s * 1000 >= onset_ms
        count = len(inbox.items)
        # No timer is left: the next repeat would have come within REPEAT_S.
        assert runtime.scheduler.next_due_s() is None
        time.sleep(2 * REPEAT_S)
        assert len(inbox.items) == count, "repeats continued after the acknowledgement"
        with runtime.db.session() as session:
            actions = session.scalars(select(AuditEvent.action)).all()
        assert "acknowledged" in actions and actions.count("delivery_attempt") >= 4
    finally:
        publisher.stop()
        outbox.close()
        ingest.stop()
        runtime.stop()


GATEWAY_SCRIPT = """
import sys, time
from pathlib import Path
from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from flarewatch.settings import MqttSettings
sys.path.insert(0, sys.argv[3])
from tests.alerting_helpers import SyntheticPatient
patient = SyntheticPatient(3)
now_ms = int(time.time() * 1000) // 1000 * 1000
outbox = Outbox(Path(sys.argv[2]))
publisher = MqttPublisher(MqttSettings(url=sys.argv[1]), outbox, gateway_id="gw9")
publisher.start()
publisher.submit("p9", "p9-band", [patient.reading(now_ms - k * 1000) for k in range(60, 0, -1)])
assert publisher.wait_until_sent(30)
print("ready", flush=True)
time.sleep(600)
"""


def test_gateway_killed_gives_no_data_alert_through_its_last_will(tmp_path, mosquitto, inbox, http):
    settings = load_settings(
        mqtt={"url": mosquitto.url},
        store={"kind": "sqlite", "sqlite_path": tmp_path / "samples.sqlite3"},
        service={"database_url": f"sqlite:///{tmp_path}/service.sqlite3"},
    )
    runtime = AlertingRuntime(settings, bank=default_bank(), serve_api=False)
    register_team(
        runtime.db,
        "p9",
        [("ann", [http.url("ann")])],
        policy=PolicyUpdate(
            cancel_window_s=1, signal_window_s=1, ack_timeout_s=60, repeat_interval_s=60
        ),
    )
    runtime.start()
    ingest = IngestService.from_settings(settings, processor=runtime.processor)
    ingest.start()
    root = str(Path(__file__).resolve().parent.parent)
    gateway = subprocess.Popen(
        [sys.executable, "-c", GATEWAY_SCRIPT, mosquitto.url, str(tmp_path / "gw.sqlite3"), root],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert ingest.wait_ready(15)
        assert gateway.stdout is not None and gateway.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 15
        while ingest.stats().stored_samples < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        gateway.kill()  # no clean disconnect: the broker publishes the gateway's Last Will
        gateway.wait(10)
        notices = inbox.wait_for("/ann", 1, timeout_s=20)
        assert notices and "no data" in notices[0].title and "WARNING" in notices[0].title
        with runtime.db.session() as session:
            assert session.scalars(select(Episode)).all() == []
            alert = session.scalars(select(Alert)).one()
            assert (alert.kind, alert.signal) == ("no_data", "gateway_offline")
    finally:
        gateway.kill()
        gateway.wait(10)
        if gateway.stdout is not None:
            gateway.stdout.close()
        ingest.stop()
        runtime.stop()
