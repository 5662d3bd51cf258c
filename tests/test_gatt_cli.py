"""``flarewatch gatt decode``: one JSON object on stdout, or a clear error and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from flarewatch.cli import main

HR_EXAMPLE = {
    "heart_rate_bpm": 72,
    "contact_supported": True,
    "contact_detected": True,
    "energy_expended_kj": None,
    "rr_intervals_s": [259 / 1024],
}


def test_issue_example_as_a_subprocess() -> None:
    """The installed entry point, as a user runs it with a capture from nRF Connect."""
    result = subprocess.run(
        [sys.executable, "-m", "flarewatch.cli", "gatt", "decode", "--uuid", "2a37",
         "--hex", "16480301"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == HR_EXAMPLE
    assert result.stdout.count("\n") == 1


def test_malformed_payload_as_a_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flarewatch.cli", "gatt", "decode", "--uuid", "2a37",
         "--hex", "01"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stdout == ""
    assert "truncated" in result.stderr and "2a37" in result.stderr


@pytest.mark.parametrize(
    "hex_text",
    ["16480301", "16 48 03 01", "16:48:03:01", "(0x) 16-48-03-01", "0x16,0x48,0x03,0x01"],
)
@pytest.mark.parametrize("uuid", ["2a37", "0x2A37", "00002a37-0000-1000-8000-00805f9b34fb"])
def test_uuid_and_hex_forms(uuid: str, hex_text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gatt", "decode", "--uuid", uuid, "--hex", hex_text]) == 0
    assert json.loads(capsys.readouterr().out) == HR_EXAMPLE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uuid", "2a19", "--hex", "65"], "above 100"),
        (["--uuid", "2a37", "--hex", "164"], "hexadecimal"),
        (["--uuid", "2a37", "--hex", "zz"], "hexadecimal"),
        (["--uuid", "nope", "--hex", "00"], "UUID"),
        (["--uuid", "2a00", "--hex", "00"], "no parser"),
        (["--uuid", "2a1c", "--hex", "00010080 00"], "reserved"),
    ],
)
def test_errors_exit_non_zero_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gatt", "decode", *args]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_temperature_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gatt", "decode", "--uuid", "2a1c", "--hex", "07da0300ffe2070b190e1e0004"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "temperature_c": 37.0,
        "temperature_special": None,
        "reported_unit": "fahrenheit",
        "timestamp": "2018-11-25T14:30:00",
        "temperature_type": "finger",
    }


def test_special_value_is_null_not_nan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gatt", "decode", "--uuid", "2a1e", "--hex", "00ffff7f00"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["temperature_c"] is None and out["temperature_special"] == "nan"


def test_plug_in_characteristic(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["gatt", "decode", "--uuid", "7f6f0002-3c4e-4a1b-9d1e-5a1f1ae70000",
            "--hex", "03a00e0a001400"]  # fmt: skip
    assert main(args) == 1  # unknown without the plug-in
    assert "no parser" in capsys.readouterr().err
    plugin = ["--plugin", "collector.profiles.plugins.example_skin_motion"]
    assert main([*args, *plugin]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "skin_temperature_c": 37.44,
        "acceleration_g": 0.01,
        "acceleration_sd_g": 0.02,
    }


def test_missing_plugin_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["gatt", "decode", "--uuid", "2a37", "--hex", "0048", "--plugin", "no.such.module"]
    assert main(args) == 1
    assert "cannot import device profile plug-in" in capsys.readouterr().err
