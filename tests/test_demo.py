"""``flarewatch demo`` end to end, as a user runs it: exit code and the stored-samples report."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.simulation.profile import random_profile
from collector.simulation.schedule import day_plan, local_day
from flarewatch.localservers import InfluxServer, MosquittoServer


def run_demo(tmp_path: Path, *extra: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "flarewatch.cli", "demo", "--patients", "3", *extra],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] is True
    assert set(report["stored_by_patient"]) == {"p1", "p2", "p3"}
    assert report["stored_by_patient"] == report["generated_by_patient"]  # nothing lost
    assert report["flush_samples_in_store"] > 0
    assert report["rejected"] == 0
    return report


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
def test_demo_on_embedded_defaults(tmp_path: Path, broker: str) -> None:
    report = run_demo(tmp_path, "--duration", "8", "--broker", broker)
    assert report["store"] == "sqlite"
    # 20 simulated minutes of history at 1 Hz (less the simulated radio's dropouts) and the live
    # seconds, per patient
    assert all(count >= 1150 for count in report["stored_by_patient"].values())


def test_demo_against_real_servers(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> None:
    report = run_demo(
        tmp_path,
        "--duration",
        "8",
        "--speed",
        "10",
        "--mqtt-url",
        mosquitto.url,
        "--influx-url",
        influxdb.url,
    )
    assert (report["broker"], report["store"]) == ("external", "influx")


def test_ctrl_c_before_the_flush_began_is_a_clean_stop(tmp_path: Path) -> None:
    """README: Ctrl-C stops cleanly. Before the flush of p1 (one minute in) it once said ok: false
    and exited 1, although nothing was missing: there was no flush window to check yet."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flarewatch.cli", "demo", "--patients", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # the live phase has begun: the history is stored
        if "demo live" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] is True
    # the 20 min of history at 1 Hz (less the simulated radio's dropouts), and nothing lost
    assert report["stored_by_patient"] == report["generated_by_patient"]
    assert report["stored_by_patient"]["p1"] >= 1150
    assert report["flush_patient"] is None  # no flush happened in this run


def quiet_seed(patients: int, start_ms: int, end_ms: int) -> int:
    """A seed whose simulated bands stay on and in contact from ``start_ms`` to ``end_ms``.

    The bands follow a daily schedule (a break off the wrist, brief losses of contact), so which
    seed has a quiet half hour depends on the time of day the test runs at.
    """
    warm_up_ms = 15 * 60_000  # a band put back on is still warming up
    for seed in range(1, 500):
        profiles = [random_profile(seed, i) for i in range(patients)]
        if not any(
            start < end_ms and stop + warm_up_ms > start_ms
            for profile in profiles
            for day in range(local_day(start_ms, profile) - 1, local_day(end_ms, profile) + 1)
            for plan in [day_plan(profile, seed, day)]
            for start, stop in [*plan.band_off, *plan.contact_glitches]
        ):
            return seed
    raise AssertionError("no seed with a quiet half hour")


def test_the_end_of_the_demo_is_no_signal_lost_during_the_flush(tmp_path: Path) -> None:
    """The gateway stops cleanly at the end and says its bands are offline: the service took
    that for every patient's signal lost, and the flush episode open then escalated.

    The seed is one whose bands stay on through the demo's simulated half hour (20 min of
    history, 10 min live, ending now): any signal lost is then the end's, not the data's. With a
    fixed seed the test failed at some hours of the day, when a band came off in that half hour.
    """
    now_ms = round(time.time() * 1000)
    seed = quiet_seed(3, now_ms - 40 * 60_000, now_ms + 5 * 60_000)
    data = tmp_path / "data"
    report = run_demo(
        tmp_path, "--duration", "30", "--speed", "20", "--seed", str(seed), "--data-dir", str(data)
    )
    assert [e["state"] for e in report["episodes"] if e["patient_id"] == "p1"] == ["open"]
    with sqlite3.connect(data / "flarewatch.sqlite3") as db:
        actions = [row[0] for row in db.execute("SELECT action FROM audit_events ORDER BY id")]
        reasons = [
            json.loads(row[0]).get("reason")
            for row in db.execute("SELECT detail FROM audit_events WHERE action = 'alert_worsened'")
        ]
    assert "episode_opened" in actions
    assert "signal_lost" not in actions
    assert all(reason == "episode_escalated" for reason in reasons)


def test_the_demo_offers_its_first_patients_web_app_with_their_chart(tmp_path: Path) -> None:
    import re

    import httpx

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flarewatch.cli",
            "demo",
            "--patients",
            "2",
            "--duration",
            "40",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stderr is not None
    said = ""
    deadline = time.monotonic() + 120
    while "web app:" not in said and time.monotonic() < deadline:
        said = proc.stderr.readline()
        assert said or proc.poll() is None, "the demo ended before offering its web app"
    found = re.search(r"web app: (\S+) \(sign in as (\S+) with the password in (\S+)\)", said)
    assert found is not None, said
    url, username, password_file = found.groups()
    password = Path(password_file).read_text().strip()
    assert password not in said  # the log names the file, not the password
    assert Path(password_file).stat().st_mode & 0o777 == 0o600
    with httpx.Client(base_url=url.removesuffix("/app"), timeout=10) as client:
        answer = client.post("/app/login", data={"username": username, "password": password})
        assert answer.status_code == 303
        page = client.get("/app/patients/p1")
        assert page.status_code == 200
        assert '<polyline class="hr"' in page.text  # the 20 minutes of history, charted
        assert client.get("/app/patients/p2").status_code == 404  # p1's own record only
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    assert password not in err
