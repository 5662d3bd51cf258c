"""One ``flarewatch serve`` per service database: a second one started by mistake is refused.

Two services on one database would both run the escalation scheduler: the second's start-up puts
every delivery the first is sending back in the queue ("interrupted by a crash"), so caregivers
get messages twice, both write the same detector checkpoint, and with the same instance name they
throw each other off the broker. The second start must fail at once with a clear message, the
first must go on, and a service that crashed (SIGKILL) must not block its own restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from flarewatch.localservers import MosquittoServer, free_port
from tests.alerting_helpers import SECRET

READY_S = 60.0
"""Generous bound for a ``serve`` to import, migrate and connect on a busy machine."""


def serve(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "flarewatch.cli", "--log-level", "INFO", "serve"]
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_serving(process: subprocess.Popen[str]) -> str:
    """The output up to the line that says the service serves (the lock is held by then)."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "serving: broker" in line:
            return "".join(seen)
    raise AssertionError("serve did not start:\n" + "".join(seen)[-3000:])


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def test_a_second_serve_on_the_same_database_is_refused_and_a_killed_one_restarts(
    service_db_url: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAREWATCH_")}
    env |= {
        "FLAREWATCH_SERVICE__SECRET_KEY": SECRET,
        "FLAREWATCH_SERVICE__DATABASE_URL": service_db_url,
        "FLAREWATCH_SERVICE__API_PORT": str(free_port()),
        "FLAREWATCH_MQTT__URL": mosquitto.url,
        "FLAREWATCH_STORE__KIND": "sqlite",
        "FLAREWATCH_STORE__SQLITE_PATH": str(tmp_path / "samples.sqlite3"),
    }
    first = serve(env, tmp_path)
    second = None
    try:
        wait_serving(first)
        second = serve(env, tmp_path)
        try:
            out, _ = second.communicate(timeout=READY_S)
        except subprocess.TimeoutExpired:
            second.kill()
            out, _ = second.communicate(timeout=10)
            raise AssertionError(
                "a second serve on the same database ran:\n" + out[-3000:]
            ) from None
        assert second.returncode == 1, out[-3000:]
        assert "Traceback" not in out
        assert "another flarewatch serve" in out and f"pid {first.pid}" in out
        assert SECRET not in out
        assert first.poll() is None, "the first service must go on"

        first.send_signal(signal.SIGKILL)  # a crash: the lock must not outlive its process
        first.wait(10)
        third = serve(env, tmp_path)
        try:
            wait_serving(third)
        finally:
            stop(third)
        assert third.returncode == 0
    finally:
        stop(first)
        if second is not None:
            stop(second)
