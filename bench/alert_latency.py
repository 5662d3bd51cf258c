"""Alert latency: publish of the sample that makes an episode critical → notification received.

500 simulated patients stream 1 Hz samples in real time through a real Mosquitto into the real
service (ingest, SQLite sample store, detector bank, episode engine, escalation scheduler,
Apprise) which notifies each patient's caregiver on a local HTTP receiver. A shadow copy of the
same (deterministic) detector bank in this process tells which published sample makes each
episode critical; the latency is from that ``publish()`` call to the HTTP request's arrival.

Detectors judge nobody during their warm-up (``models.const.WARMUP_S``), so that much history
plus 2 min is back-filled first (fast), then every patient streams in real time and episodes
start staggered.

Baselines measured in the same run: one Apprise delivery to the same receiver (the floor of the
notification leg) and an MQTT publish → subscriber round trip through the same broker.

    .venv/bin/python bench/alert_latency.py [--patients 500] [--episodes 60]

The last line is JSON: ``p50_ms``, ``p99_ms``, ``episodes``, ``missed`` (+ baselines).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

# Run as a script: make the repository importable (tests/ holds the receivers and the patients).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from flarewatch.localservers import MosquittoServer
from flarewatch.payloads import Sample, SampleBatch, encode
from flarewatch.settings import load_settings
from flarewatch.topics import samples_topic
from models.alarm import AlarmKind, Severity
from models.artifacts import default_bank
from models.const import WARMUP_S
from service.alerts.apprise_notifier import AppriseNotifier
from service.alerts.notifier import Message
from service.alerts.runtime import AlertingRuntime
from service.db.care_teams import PolicyUpdate, add_contact, add_patient
from service.ingest import IngestService
from tests.alerting_helpers import HttpReceiver, Inbox, SyntheticPatient

HISTORY_S = int(WARMUP_S) + 2 * 60
"""Back-filled history: the detectors judge nobody before their warm-up."""
BACKFILL_BATCH = 60
EPISODE_SPACING_S = 2.0
MAX_DETECTION_S = 420
"""Longest wait for the detectors to call an episode critical (they take ~2-4 min)."""
TARGET_P99_MS = 2000.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def apprise_baseline(http: HttpReceiver, inbox: Inbox, runs: int = 30) -> float:
    notifier = AppriseNotifier()
    latencies = []
    for i in range(runs):
        start = time.monotonic()
        notifier.send(http.url(f"baseline{i}"), Message("t", "b", Severity.CRITICAL))
        got = inbox.wait_for(f"/baseline{i}", 1, 5)
        if got:
            latencies.append((got[-1].at_monotonic - start) * 1000)
    return statistics.median(latencies)


def mqtt_rtt(url_port: int, runs: int = 50) -> float:
    got = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-rtt")
    client.on_message = lambda *_: got.set()
    client.connect("127.0.0.1", url_port)
    client.subscribe("bench/rtt", qos=1)
    client.loop_start()
    time.sleep(0.3)
    latencies = []
    for _ in range(runs):
        got.clear()
        start = time.monotonic()
        client.publish("bench/rtt", b"x", qos=1)
        if got.wait(5):
            latencies.append((time.monotonic() - start) * 1000)
    client.loop_stop()
    client.disconnect()
    return statistics.median(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--episodes", type=int, default=60)
    args = parser.parse_args()
    inbox = Inbox()
    with (
        tempfile.TemporaryDirectory(prefix="fw-bench-") as tmp_dir,
        MosquittoServer(Path(tmp_dir)) as broker,
        HttpReceiver(inbox) as http,
    ):
        tmp = Path(tmp_dir)
        port = int(broker.url.rsplit(":", 1)[1])
        settings = load_settings(
            mqtt={"url": broker.url},
            store={"kind": "sqlite", "sqlite_path": tmp / "samples.sqlite3"},
            service={"database_url": f"sqlite:///{tmp}/service.sqlite3"},
        )
        runtime = AlertingRuntime(settings, bank=default_bank(), serve_api=False)
        ids = [f"b{i}" for i in range(args.patients)]
        with runtime.db.session() as session:
            for pid in ids:
                add_patient(session, pid, time.time(), PolicyUpdate(ack_timeout_s=600))
                add_contact(session, pid, "carer", [http.url(pid)])
        baseline_apprise_ms = apprise_baseline(http, inbox)
        rtt_ms = mqtt_rtt(port)
        print(
            f"baseline: apprise json delivery p50 {baseline_apprise_ms:.1f} ms, "
            f"mqtt round trip p50 {rtt_ms:.2f} ms",
            flush=True,
        )

        runtime.start()
        ingest = IngestService.from_settings(settings, processor=runtime.processor)
        ingest.start()
        assert ingest.wait_ready(15)
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-gateway")
        publisher.max_inflight_messages_set(1000)
        publisher.connect("127.0.0.1", port)
        publisher.loop_start()

        start_s = int(time.time()) + 1
        start_ms = start_s * 1000
        episode_patients = ids[: args.episodes]
        patients = {
            pid: SyntheticPatient(
                n,
                resting_bpm=58 + n % 20,
                onset_ms=(
                    start_ms + int(10_000 + EPISODE_SPACING_S * 1000 * n)
                    if pid in episode_patients
                    else None
                ),
            )
            for n, pid in enumerate(ids)
        }
        shadow = default_bank()
        seq = dict.fromkeys(ids, 0)

        def batch(pid: str, times_ms: range) -> tuple[SampleBatch, list[Sample]]:
            samples = []
            for t in times_ms:
                samples.append(Sample(seq=seq[pid], **patients[pid].reading(t).fields()))
                seq[pid] += 1
            return SampleBatch(
                patient_id=pid, device_id=f"{pid}-band", samples=tuple(samples)
            ), samples

        print(f"back-filling {HISTORY_S} s of history for {len(ids)} patients", flush=True)
        for chunk in range(start_ms - HISTORY_S * 1000, start_ms, BACKFILL_BATCH * 1000):
            for pid in ids:
                message, samples = batch(pid, range(chunk, chunk + BACKFILL_BATCH * 1000, 1000))
                shadow.update([(pid, samples)])
                publisher.publish(samples_topic(pid, f"{pid}-band"), encode(message), qos=1)
        while ingest.stats().stored_samples < len(ids) * HISTORY_S:
            time.sleep(0.5)
        print(f"history stored: {ingest.stats().stored_samples} samples; streaming", flush=True)

        critical_published: dict[str, float] = {}
        last_onset_s = 10 + EPISODE_SPACING_S * args.episodes
        stream_s = int(last_onset_s + MAX_DETECTION_S)
        for second in range(stream_s):
            if len(critical_published) == len(episode_patients):
                break
            now_ms = start_ms + second * 1000
            while time.time() * 1000 < now_ms:
                time.sleep(0.002)
            for pid in ids:
                message, samples = batch(pid, range(now_ms, now_ms + 1000, 1000))
                published = time.monotonic()
                publisher.publish(samples_topic(pid, f"{pid}-band"), encode(message), qos=1)
                for alarm in shadow.update([(pid, samples)]):
                    critical = (
                        alarm.kind is AlarmKind.ANAPHYLAXIS and alarm.severity is Severity.CRITICAL
                    )
                    if critical and not alarm.resolved and pid not in critical_published:
                        critical_published[pid] = published
            if second % 30 == 0:
                print(
                    f"t+{second:4d} s: {len(critical_published)} critical so far, "
                    f"{len(inbox.items)} notifications",
                    flush=True,
                )
        time.sleep(10)
        latencies = []
        missed = 0
        for pid, published in critical_published.items():
            arrivals = [
                m.at_monotonic
                for m in list(inbox.items)
                if m.path_or_rcpt == f"/{pid}" and "CRITICAL" in m.title
            ]
            if arrivals:
                latencies.append((arrivals[0] - published) * 1000)
            else:
                missed += 1
        missed += len(episode_patients) - len(critical_published)
        publisher.loop_stop()
        publisher.disconnect()
        ingest.stop()
        runtime.stop()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(
        f"{len(latencies)} episodes: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max "
        f"{max(latencies, default=float('nan')):.0f} ms, missed {missed} "
        f"(target p99 <= {TARGET_P99_MS:.0f} ms)"
    )
    print(
        json.dumps(
            {
                # null, not NaN (which is no JSON), when no episode was measured
                "p50_ms": round(p50, 1) if latencies else None,
                "p99_ms": round(p99, 1) if latencies else None,
                "episodes": len(latencies),
                "missed": missed,
                "patients": len(ids),
                "baseline_apprise_p50_ms": round(baseline_apprise_ms, 1),
                "baseline_mqtt_rtt_p50_ms": round(rtt_ms, 2),
            }
        )
    )
    return 0 if latencies and p99 <= TARGET_P99_MS and missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
