"""Numbers on the command line are checked where they are typed: a usage error, no traceback."""

from __future__ import annotations

import pytest

from flarewatch.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--seed", "-1"], "argument --seed: must be from 0 to 4294967295"),
        (["evaluate", "--max-sessions", "0"], "argument --max-sessions: must be at least 1"),
        (["evaluate", "--max-fitbit-days", "nan"], "must be a finite number"),
        (["demo", "--speed", "nan"], "argument --speed: must be a finite number, got 'nan'"),
        (["demo", "--duration", "inf"], "argument --duration: must be a finite number"),
        (["demo", "--duration", "-5"], "argument --duration: must be more than 0"),
        (["demo", "--seed", "-3"], "argument --seed: must be from 0"),
        (["demo", "--flush-at", "-1"], "argument --flush-at: must be 0 or more"),
        (["simulate", "--duration", "nan"], "argument --duration: must be a finite number"),
        (["simulate", "--seed", "1e3"], "argument --seed: '1e3' is not a whole number"),
        (["simulate", "--speed", "-2"], "argument --speed: must be 0 or more"),
        (["simulate", "--patients", "0"], "argument --patients: must be at least 1"),
        (["simulate", "--flush-timeout", "inf"], "argument --flush-timeout: must be a finite"),
        (["ble-sim", "--hci-port", "99999"], "argument --hci-port: must be from 0 to 65535"),
        (["ble-sim", "--control-port", "-1"], "argument --control-port: must be from 0 to 65535"),
    ],
)
def test_bad_numbers_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
