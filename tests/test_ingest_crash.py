"""``flarewatch serve`` killed with SIGKILL mid-stream and restarted loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from flarewatch.localservers import InfluxServer, MosquittoServer
from service.stores.influx import InfluxStore
from tests.ingest_helpers import RawPublisher, make_batch, stored_seqs, wait_for

DEVICES = 4
BATCHES = 150
SAMPLES_PER_BATCH = 20
TOTAL = DEVICES * BATCHES * SAMPLES_PER_BATCH


def serve(mosquitto: MosquittoServer, influxdb: InfluxServer, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "flarewatch.cli", "--log-level", "INFO", "serve"]
    command += ["--mqtt-url", mosquitto.url, "--influx-url", influxdb.url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAREWATCH_")}
    env["FLAREWATCH_SERVICE__SECRET_KEY"] = "test-secret-key-not-for-production"
    with log.open("ab") as out:
        # cwd: the service database (alerting) lives under ./var by default
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent
        )


def test_sigkill_mid_stream_then_restart_loses_nothing(
    mosquitto: MosquittoServer, influxdb: InfluxServer, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    store = InfluxStore(influxdb.url)
    store.prepare()
    service = serve(mosquitto, influxdb, log)
    try:
        raw = RawPublisher(mosquitto.url)

        def probe_stored() -> bool:  # the service subscribed once a probe gets through
            raw.batch(make_batch("probe", "probe", range(1))).wait_for_publish(5)
            return store.count(device_id="probe") > 0

        wait_for(probe_stored, 30, f"service ready ({log.read_text()[-2000:]})")

        stop_publishing = threading.Event()

        def publish() -> None:
            for b in range(BATCHES):
                for d in range(DEVICES):
                    seqs = range(b * SAMPLES_PER_BATCH, (b + 1) * SAMPLES_PER_BATCH)
                    raw.batch(make_batch(f"p{d}", f"d{d}", seqs))
                if stop_publishing.wait(0.004):
                    return

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        wait_for(lambda: store.count() > TOTAL // 4, 30, "a quarter of the stream stored")
        service.send_signal(signal.SIGKILL)
        service.wait(10)
        at_kill = store.count()
        assert publisher.is_alive() and at_kill < TOTAL, "the kill must hit mid-stream"

    finally:
        if service.poll() is None:  # a failure above must not leave it running
            service.kill()
            service.wait(10)
    publisher.join(60)
    restarted = serve(mosquitto, influxdb, log)
    try:
        wait_for(lambda: store.count() >= TOTAL + 1, 60, f"all stored ({log.read_text()[-2000:]})")
        for d in range(DEVICES):
            assert stored_seqs(store, f"d{d}") == list(range(BATCHES * SAMPLES_PER_BATCH))
    finally:
        stop_publishing.set()
        restarted.send_signal(signal.SIGTERM)
        code = restarted.wait(20)
        raw.close()
        store.close()
    assert code == 0, log.read_text()[-2000:]
    assert "stopped:" in log.read_text()
