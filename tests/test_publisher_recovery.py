"""A gateway process SIGKILLed mid-stream and restarted loses nothing; its Last Will fires."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from collector.outbox import Outbox
from flarewatch import topics
from flarewatch.localservers import MosquittoServer
from flarewatch.payloads import LinkState, decode_gateway_status
from tests.test_publisher import Recorder, assert_complete_and_ordered

ROOT = Path(__file__).resolve().parent.parent
START_MS = 1_764_028_800_000
PATIENTS = 3
DURATION_S = 3600


def simulate(url: str, outbox: Path) -> subprocess.Popen[bytes]:
    """``flarewatch simulate`` at 2000x real time: one simulated hour takes ~2 s."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flarewatch.cli",
            "simulate",
            "--patients",
            str(PATIENTS),
            "--mqtt-url",
            url,
            "--speed",
            "2000",
            "--duration",
            str(DURATION_S),
            "--start-ms",
            str(START_MS),
            "--outbox",
            str(outbox),
            "--gateway-id",
            "gw-sim",
            "--episode",
            "p2:anaphylaxis:1200",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


def test_sigkill_mid_stream_then_restart_loses_nothing(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    recorder = Recorder(mosquitto.url)
    outbox_path = tmp_path / "outbox.db"
    try:
        first = simulate(mosquitto.url, outbox_path)
        deadline = time.monotonic() + 30
        while len(recorder.received) < 1500 and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.communicate()
        received_before_kill = len(recorder.received)
        assert received_before_kill >= 1500
        # the broker publishes the Last Will as soon as the dead process's socket closes
        will_topic = topics.gateway_status_topic("gw-sim")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            payload = recorder.statuses.get(will_topic)
            if payload and decode_gateway_status(payload).state is LinkState.OFFLINE:
                break
            time.sleep(0.05)
        will = decode_gateway_status(recorder.statuses[will_topic])
        assert will.state is LinkState.OFFLINE and will.time_ms is None  # sent by the broker

        second = simulate(mosquitto.url, outbox_path)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err.decode()[-2000:]
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert summary["pending"] == 0

        with Outbox(outbox_path) as box:
            cursors = {c.device_id: c for c in box.devices()}
        total = sum(c.next_seq for c in cursors.values())
        first_seqs: dict[str, int] = {}
        for device, seq, _ in recorder.received:
            first_seqs[device] = min(seq, first_seqs.get(device, seq))
        expected = {d: (first_seqs[d], cursors[d].next_seq - first_seqs[d]) for d in cursors}
        recorder.wait_for(total - sum(first_seqs.values()))
        order, duplicates = recorder.per_device()
        print(f"SIGKILL: {total - sum(first_seqs.values())} samples, {duplicates} duplicates")
        assert_complete_and_ordered(order, expected)
        # the restarted run resumed each device after its newest stored sample: one simulated
        # hour at 1 Hz, no time repeated or skipped
        with recorder.lock:
            times: dict[str, dict[int, int]] = {}
            for device, seq, time_ms in recorder.received:
                times.setdefault(device, {})[seq] = time_ms
        for device, by_seq in times.items():
            ordered = [by_seq[s] for s in sorted(by_seq)]
            assert all(b > a for a, b in itertools.pairwise(ordered)), device
            assert ordered[-1] == START_MS + (DURATION_S - 1) * 1000
            # 0.2 % of samples are simulated BLE dropouts, never more
            assert len(ordered) > 0.99 * DURATION_S
        # only the batches in flight at the kill can arrive twice
        assert duplicates <= 64 * 500
        online = decode_gateway_status(recorder.statuses[topics.gateway_status_topic("gw-sim")])
        assert online.state is LinkState.OFFLINE and online.time_ms is not None  # clean stop
    finally:
        recorder.close()
