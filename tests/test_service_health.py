"""The service says whether it does its job: ``/readyz`` and a heartbeat to an outside monitor.

A real ``flarewatch serve`` on a real Mosquitto: healthy, it answers ``/readyz`` 200 and calls
the monitor's URL every second; with the broker gone it answers 503 naming the broker and calls
the failure URL instead; with the broker back, the first again; stopped, it calls nothing. The
monitor's URLs (their tokens) never reach the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from flarewatch.localservers import MosquittoServer, free_port
from service.health import Check, HealthBoard
from service.heartbeat import Heartbeat
from tests.test_ops_single_service import ServeProcess, serve_env

TOKEN = "5e1f0c2a-heartbeat-token"
"""In the monitor's URLs, as healthchecks.io's check UUID is: a secret."""
WAIT_S = 30.0


class Monitor:
    """A loopback heartbeat monitor: every POST's path and body, in order; ``status`` answered."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.status = 200
        self._changed = threading.Condition()
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                with monitor._changed:
                    monitor.calls.append((self.path, body))
                    monitor._changed.notify_all()
                self.send_response(monitor.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, found: Callable[[tuple[str, str]], bool], count: int = 1) -> None:
        """Wait until ``count`` calls after the ones seen so far satisfy ``found``."""
        with self._changed:
            start = len(self.calls)
            ok = self._changed.wait_for(
                lambda: sum(map(found, self.calls[start:])) >= count, WAIT_S
            )
            assert ok, self.calls[start:]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    built = Monitor()
    yield built
    built.close()


def _ready(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)


def _wait_ready(port: int, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            answer = _ready(port)
            if answer.status_code == status:
                return dict(answer.json())
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"/readyz never answered {status}"
        time.sleep(0.3)


def test_a_served_service_reports_its_parts_and_beats_only_while_healthy(
    tmp_path: Path, mosquitto: MosquittoServer, monitor: Monitor
) -> None:
    env = serve_env(f"sqlite:///{tmp_path / 'service.sqlite3'}", mosquitto, tmp_path) | {
        "FLAREWATCH_SERVICE__HEARTBEAT_URL": monitor.url,
        "FLAREWATCH_SERVICE__HEARTBEAT_FAIL_URL": f"{monitor.url}/fail",
        "FLAREWATCH_SERVICE__HEARTBEAT_INTERVAL_S": "1",
    }
    port = int(env["FLAREWATCH_SERVICE__API_PORT"])
    served = ServeProcess(env, tmp_path)
    try:
        served.wait_for("serving: broker")
        monitor.wait_for(lambda call: call == (f"/ping/{TOKEN}", "ok"), 2)
        ready = _wait_ready(port, 200)
        assert ready["status"] == "ok"
        assert set(ready["checks"]) == {
            "escalation",
            "broker (alerts)",
            "web app",
            "broker (ingest)",
            "sample store (sqlite)",
        }
        assert all(check["ok"] for check in ready["checks"].values())

        assert "service degraded" not in served.output, "a start is no outage"
        mosquitto.stop()
        degraded = _wait_ready(port, 503)
        assert degraded["status"] == "degraded"
        assert degraded["checks"]["broker (ingest)"] == {
            "ok": False,
            "detail": "not connected to the MQTT broker",
        }
        assert degraded["checks"]["escalation"]["ok"], "alerts still go out without the broker"
        monitor.wait_for(
            lambda call: (
                call[0].endswith("/fail")
                and "broker (ingest): not connected to the MQTT broker" in call[1]
            ),
            2,
        )
        served.wait_for("service degraded: ")

        assert "service healthy again" not in served.output
        mosquitto.start()
        _wait_ready(port, 200)
        monitor.wait_for(lambda call: call == (f"/ping/{TOKEN}", "ok"))
        served.wait_for("service healthy again")
    finally:
        code = served.stop()
    assert code == 0, served.output[-3000:]
    calls = len(monitor.calls)
    time.sleep(2.5)
    assert len(monitor.calls) == calls, "a stopped service calls nobody"
    assert TOKEN not in served.output and "heartbeat to 127.0.0.1 every 1 s" in served.output


def test_a_monitor_out_of_reach_is_told_once_and_a_broken_check_fails(
    monitor: Monitor, caplog: pytest.LogCaptureFixture
) -> None:
    board = HealthBoard()
    board.add("store", lambda: Check("store", True, "writes succeed"))

    def broken() -> Check:
        raise RuntimeError("bug")

    heartbeat = Heartbeat(board, monitor.url, None, 60)
    caplog.set_level(logging.INFO, "service.heartbeat")
    assert heartbeat.beat().ok and monitor.calls == [(f"/ping/{TOKEN}", "ok")]

    monitor.status = 500
    heartbeat.beat()
    heartbeat.beat()
    said = [r.getMessage() for r in caplog.records]
    assert sum("not reached (HTTP 500)" in line for line in said) == 1, said
    monitor.status = 200
    heartbeat.beat()
    assert any("reached again" in r.getMessage() for r in caplog.records)

    board.add("bridge", broken)
    calls = len(monitor.calls)
    found = heartbeat.beat()
    assert not found.ok and len(monitor.calls) == calls, "no fail URL: nothing called"
    assert found.summary() == "degraded - bridge: could not be checked (RuntimeError)"

    healthy = HealthBoard()
    healthy.add("store", lambda: Check("store", True, "writes succeed"))
    away = Heartbeat(healthy, f"http://127.0.0.1:{free_port()}/ping/{TOKEN}", None, 60)
    caplog.clear()
    away.beat()
    away.beat()
    said = [r.getMessage() for r in caplog.records]
    assert sum("heartbeat monitor 127.0.0.1 not reached (ConnectError)" in s for s in said) == 1
    assert all(TOKEN not in line for line in said)
    heartbeat.stop()
    away.stop()
