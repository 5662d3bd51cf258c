"""``flarewatch simulate`` tells "connecting" from "DOWN": the broker is down only once a
connection attempt failed (real publisher, real refused port, real Mosquitto)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from collector.simulation.cli import broker_state
from flarewatch.localservers import MosquittoServer, free_port
from flarewatch.settings import MqttSettings
from tests.ingest_helpers import wait_for


def test_state_is_connecting_until_an_attempt_fails(tmp_path: Path) -> None:
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{free_port()}")
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        publisher = MqttPublisher(settings, outbox, gateway_id="gw-test")
        assert broker_state(publisher.status()) == "connecting"
        with publisher:
            wait_for(
                lambda: broker_state(publisher.status()) == "DOWN (refused)", 30, "the refusal"
            )


def test_first_progress_line_of_simulate_does_not_call_a_live_broker_down(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    options = ["--patients", "1", "--speed", "2000", "--duration", "60", "--mqtt-url"]
    options += [mosquitto.url, "--outbox", str(tmp_path / "outbox.sqlite3")]
    proc = subprocess.run(
        [sys.executable, "-m", "flarewatch.cli", "simulate", *options],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    progress = [
        line for line in proc.stderr.splitlines() if "simulate" in line and "broker" in line
    ]
    assert progress, proc.stderr[-2000:]
    assert "DOWN" not in progress[0] and "broker connect" in progress[0], progress[0]
    assert "broker connected" in progress[-1], progress[-1]
