"""``flarewatch demo`` refuses option combinations it cannot honour instead of ignoring them."""

from __future__ import annotations

import pytest

from flarewatch.cli import main


@pytest.mark.parametrize("option", [["--speed", "20"], ["--flush-at", "30"]])
def test_ble_sim_refuses_accelerated_time_and_a_scripted_flush(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Virtual bands run in real time with no scripted episode: the option would do nothing."""
    code = main(["demo", "--ble-sim", "--patients", "1", "--duration", "1", *option])
    err = capsys.readouterr().err
    assert code == 1
    assert "--ble-sim" in err and option[0] in err
