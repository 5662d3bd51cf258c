"""The durable outbox: ordering, sequence numbers across restarts, acks, disk budget, SIGKILL."""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from collector.errors import OutboxError
from collector.outbox import Outbox
from collector.sources.base import Reading
from flarewatch.log_throttle import LogThrottle
from flarewatch.payloads import Sample

T0 = 1_764_081_600_000


class FakeClock:
    """A settable epoch-ms clock."""

    def __init__(self, now_ms: int = T0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def readings(n: int, start_ms: int = T0, hr: float = 70.0) -> list[Reading]:
    return [
        Reading(time_ms=start_ms + i * 1000, heart_rate_bpm=hr, skin_temperature_c=33.0)
        for i in range(n)
    ]


def test_seq_starts_at_clock_and_is_consecutive_per_device(tmp_path: Path) -> None:
    clock = FakeClock()
    with Outbox(tmp_path / "o.db", clock_ms=clock) as box:
        box.append("p1", "d1", readings(3))
        clock.now_ms += 50_000
        box.append("p2", "d2", readings(2))
        box.append("p1", "d1", readings(2, T0 + 3000))
        rows = box.read()
    seqs = {d: [r.seq for r in rows if r.device_id == d] for d in ("d1", "d2")}
    assert seqs["d1"] == [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4]
    assert seqs["d2"] == [T0 + 50_000, T0 + 50_001]
    # rows come back in insertion order and carry contract-valid bodies with their seq
    assert [r.row_id for r in rows] == sorted(r.row_id for r in rows)
    for row in rows:
        sample = Sample.model_validate_json(row.body)
        assert sample.seq == row.seq


def test_read_pages_with_a_cursor_and_ack_removes_rows(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.append("p1", "d1", readings(10))
        first = box.read(0, 4)
        second = box.read(first[-1].row_id, 100)
        assert len(first) == 4 and len(second) == 6
        assert box.ack(r.row_id for r in first) == 4
        assert box.ack(r.row_id for r in first) == 0  # a duplicate PUBACK changes nothing
        assert box.pending == 6
        assert [r.seq for r in box.read()] == [r.seq for r in second]
        stats = box.stats()
        assert (stats.appended, stats.acked, stats.pending) == (10, 4, 6)


def test_restart_keeps_pending_rows_and_continues_numbering(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        box.append("p1", "d1", readings(5))
        box.ack([r.row_id for r in box.read(0, 2)])
        last_row = box.read()[-1].row_id
        before = [r.seq for r in box.read()]
    with Outbox(path, clock_ms=FakeClock(T0 + 10**9)) as box:
        assert box.pending == 3
        assert [r.seq for r in box.read()] == before
        cursor = box.device("d1")
        assert cursor is not None
        assert cursor.last_time_ms == T0 + 4000
        box.append("p1", "d1", readings(2, T0 + 5000))
        assert [r.seq for r in box.read(last_row)] == [before[-1] + 1, before[-1] + 2]


def test_numbering_survives_a_fully_acked_outbox(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        box.append("p1", "d1", readings(3))
        rows = box.read()
        box.ack(r.row_id for r in rows)
        assert box.pending == 0
    with Outbox(path) as box:
        box.append("p1", "d1", readings(1, T0 + 3000))
        (row,) = box.read()
        assert row.seq == rows[-1].seq + 1
        assert row.row_id > rows[-1].row_id  # ids never reused, so publisher cursors stay valid


def test_invalid_readings_are_rejected_and_counted_while_good_ones_are_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [
        Reading(time_ms=T0 + 1000, heart_rate_bpm=math.nan),
        Reading(time_ms=T0 + 2000, heart_rate_bpm=900.0),
        Reading(time_ms=5, heart_rate_bpm=70.0),  # clock never set
        Reading(time_ms=T0 + 3000, rr_intervals_s=(0.01,)),
    ]
    good = readings(2, T0 + 10_000, hr=71.5)
    with caplog.at_level(logging.WARNING), Outbox(tmp_path / "o.db") as box:
        result = box.append("p1", "d1", [good[0], *bad, good[1]])
        rows = box.read()
        assert (result.accepted, result.rejected) == (2, 4)
        assert box.stats().rejected == 4
    # no gaps in numbering for rejected readings
    assert rows[1].seq == rows[0].seq + 1
    assert "rejected a reading of device d1" in caplog.text
    assert "900" not in caplog.text and "71.5" not in caplog.text  # no vital values in logs


def test_disk_budget_drops_the_oldest_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    budget = Outbox(tmp_path / "o.db", disk_budget_bytes=20_000, clock_ms=FakeClock())
    with caplog.at_level(logging.WARNING), budget as box:
        for i in range(30):
            box.append("p1", "d1", readings(10, T0 + i * 10_000))
        stats = box.stats()
        rows = box.read(0, 10_000)
    assert stats.pending_bytes <= 20_000
    assert stats.dropped_over_budget > 0
    assert stats.pending + stats.dropped_over_budget == 300
    assert len(rows) == stats.pending
    # what is kept is the newest, still in order and contiguous
    seqs = [r.seq for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert seqs[-1] == T0 + 299
    assert "% full" in caplog.text
    assert caplog.text.count("dropped the") == 1  # said once, then counted


def test_unusable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutboxError, match="cannot open the outbox"):
        Outbox(blocker / "o.db")


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from collector.outbox import Outbox
    from collector.sources.base import Reading
    box = Outbox(Path(sys.argv[1]))
    t = 1_764_081_600_000
    i = 0
    while True:
        batch = [Reading(time_ms=t + (i + k) * 1000, heart_rate_bpm=70.0) for k in range(50)]
        box.append("p1", "d1", batch)
        i += 50
        print(i, flush=True)
    """
)


def test_sigkill_loses_nothing_that_was_appended(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert proc.stdout is not None
    committed = 0
    deadline = time.monotonic() + 30
    while committed < 2000 and time.monotonic() < deadline:
        committed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert committed >= 2000
    with Outbox(path) as box:
        rows = box.read(0, 10**7)
        cursor = box.device("d1")
    assert len(rows) >= committed
    seqs = [r.seq for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert cursor is not None and cursor.next_seq == seqs[-1] + 1


def test_a_reading_rejected_again_and_again_is_logged_once_a_minute_and_always_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A board without a real-time clock stamps every reading 1970 until NTP sets its clock."""
    unset_clock = [Reading(time_ms=5 + i * 1000, heart_rate_bpm=70.0) for i in range(120)]
    with caplog.at_level(logging.WARNING), Outbox(tmp_path / "o.db") as box:
        for reading in unset_clock:  # one a second, as a band notifies
            box.append("p1", "d1", [reading])
        box.append("p1", "d2", [unset_clock[0]])  # another device is reported on its own
        assert box.stats().rejected == 121
        assert box.read() == []
    lines = [r.getMessage() for r in caplog.records if "rejected a reading" in r.getMessage()]
    assert len(lines) == 2
    assert "device d1" in lines[0] and "device d2" in lines[1]


def test_log_throttle_lets_one_line_a_minute_through_with_the_count_held_back() -> None:
    now = [0.0]
    throttle = LogThrottle(interval_s=60.0, clock_s=lambda: now[0])
    assert throttle.allow("clock") == 0
    for _ in range(59):
        now[0] += 1.0
        assert throttle.allow("clock") is None
    assert throttle.allow("other") == 0  # each kind on its own
    now[0] += 1.0
    assert throttle.allow("clock") == 59
    assert throttle.allow("clock") is None
