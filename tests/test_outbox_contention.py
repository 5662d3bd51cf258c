"""The outbox shared with another program: one holding its write lock, or a second writer.

Real Mosquitto (paused with SIGSTOP so that its PUBACKs arrive while the lock is held), a second
SQLite connection on the same outbox file, and a second process appending to it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from collector.mqtt_reconnect import round_retry_delay_s
from collector.outbox import Outbox
from collector.publisher import MqttPublisher
from flarewatch.localservers import MosquittoServer
from flarewatch.settings import MqttSettings
from tests.alerting_helpers import FakeClock as MonotonicClock
from tests.test_publisher import T0, Recorder, reading
from tests.test_publisher_clocks import wait_until


def test_acks_settled_while_the_outbox_is_locked_are_deleted_once_it_is_free(
    mosquitto: MosquittoServer, recorder: Recorder, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.db"
    monotonic = MonotonicClock()
    outbox = Outbox(path, clock_ms=lambda: T0, busy_timeout_ms=100)
    publisher = MqttPublisher(
        MqttSettings(url=mosquitto.url),
        outbox,
        gateway_id="gw-1",
        clock_ms=lambda: T0,
        monotonic_s=monotonic,
    )
    assert mosquitto.proc is not None
    broker_pid = mosquitto.proc.pid
    with publisher:
        assert publisher.submit("p1", "d1", [reading(0)]) == 1
        assert publisher.wait_until_sent(10), publisher.status()
        os.kill(broker_pid, signal.SIGSTOP)  # the broker holds its PUBACKs back
        try:
            assert publisher.submit("p1", "d1", [reading(i) for i in range(1, 6)]) == 5
            assert wait_until(lambda: publisher.status().published_batches >= 2)
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another program takes the write lock
        finally:
            os.kill(broker_pid, signal.SIGCONT)
        # the PUBACK arrives, but deleting its rows fails while the lock is held
        assert wait_until(lambda: publisher.status().failed_rounds >= 1), publisher.status()
        other.execute("ROLLBACK")
        other.close()
        monotonic.advance(round_retry_delay_s(1))
        assert publisher.wait_until_sent(10), publisher.status()
        status = publisher.status()
        assert status.outbox.pending == 0 and status.outbox.acked == 6
    outbox.close()
    recorder.wait_for(6)
    order, _ = recorder.per_device()
    assert order == {"d1": list(range(T0, T0 + 6))}
    # nothing is left behind to be sent again after a restart
    with Outbox(path, clock_ms=lambda: T0) as reopened:
        assert reopened.pending == 0


SECOND_GATEWAY = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from collector.outbox import Outbox
    from collector.sources.base import Reading
    with Outbox(Path(sys.argv[1])) as box:
        box.append("p1", "d1", [Reading(time_ms=int(sys.argv[2]), heart_rate_bpm=72.0)])
    """
)


def test_a_second_process_appending_to_the_outbox_never_reuses_a_seq(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, clock_ms=lambda: T0) as box:
        assert box.append("p1", "d1", [reading(0)]).accepted == 1
        # a second gateway started by mistake on the same outbox_path appends to it meanwhile
        subprocess.run(
            [sys.executable, "-c", SECOND_GATEWAY, str(path), str(T0 + 1000)],
            check=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        assert box.append("p1", "d1", [reading(2)]).accepted == 1
        rows = box.read()
        cursor = box.device("d1")
    assert [(r.seq, json.loads(r.body)["time_ms"]) for r in rows] == [
        (T0, T0),
        (T0 + 1, T0 + 1000),
        (T0 + 2, T0 + 2000),
    ]
    assert cursor is not None and cursor.next_seq == T0 + 3


def test_stopping_while_the_outbox_is_locked_still_disconnects_cleanly(
    mosquitto: MosquittoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, clock_ms=lambda: T0, busy_timeout_ms=100)
    publisher = MqttPublisher(
        MqttSettings(url=mosquitto.url), outbox, gateway_id="gw-1", clock_ms=lambda: T0
    )
    assert mosquitto.proc is not None
    broker_pid = mosquitto.proc.pid
    publisher.start()
    assert publisher.submit("p1", "d1", [reading(0)]) == 1
    assert publisher.wait_until_sent(10), publisher.status()
    os.kill(broker_pid, signal.SIGSTOP)
    try:
        assert publisher.submit("p1", "d1", [reading(i) for i in range(1, 6)]) == 5
        assert wait_until(lambda: publisher.status().published_batches >= 2)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
    finally:
        os.kill(broker_pid, signal.SIGCONT)
    # the PUBACKs arrive during the stop; deleting their rows fails: the stop must still end
    # with the offline status and a clean disconnect (an exception here kills the thread)
    publisher.stop(flush_timeout_s=0.5)
    other.execute("ROLLBACK")
    other.close()
    assert not publisher.status().connected
    assert "acknowledged samples stay in the outbox" in caplog.text
    assert outbox.pending == 5  # sent again by the next run; receivers drop them by seq
    outbox.close()
