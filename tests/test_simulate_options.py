"""`flarewatch simulate --start-ms` before 2010 is a usage error, not a traceback from numpy.

No sample before ``MIN_VALID_TIME_MS`` passes the wire contract, and a start before 1970 made the
day plan seed numpy with a negative number.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flarewatch.cli import main


@pytest.mark.parametrize("start_ms", ["0", "-86400000", "1000000000000"])
def test_a_start_before_2010_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], start_ms: str
) -> None:
    argv = ["simulate", "--mqtt-url", "mqtt://127.0.0.1:1", "--outbox", str(tmp_path / "o.db")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--duration", "3", "--flush-timeout", "0.5", "--start-ms", start_ms])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --start-ms: must be UTC epoch milliseconds from 1262304000000" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.db").exists()
