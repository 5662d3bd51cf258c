"""`flarewatch collect` and `flarewatch ble-sim` refuse bad configuration with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from flarewatch.cli import main


@pytest.fixture(autouse=True)
def _restore_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings() exports FLAREWATCH_CONFIG; let monkeypatch undo it after each test
    monkeypatch.setenv("FLAREWATCH_CONFIG", "")
    monkeypatch.delenv("FLAREWATCH_CONFIG")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


DEVICES = '[[devices]]\nid = "band-1"\npatient = "anna"\naddress = "C0:5E:00:00:00:01"\n'


@pytest.mark.parametrize(
    ("settings", "devices", "message"),
    [
        ('[mqtt]\nurl = "mqtt://127.0.0.1:1"\n', None, "devices_file"),
        ('[collector]\ndevices_file = "devices.toml"\n', DEVICES, "needs a broker"),
        (
            '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n[collector]\ndevices_file = "devices.toml"\n'
            'ble_backend = "winrt"\n',
            DEVICES,
            "ble_backend",
        ),
        (
            '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n[collector]\ndevices_file = "devices.toml"\n',
            '[[devices]]\nid = "band-1"\npatient = "anna"\n',
            "address",
        ),
        (
            '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n[collector]\ndevices_file = "nope.toml"\n',
            None,
            "does not exist",
        ),
    ],
)
def test_collect_explains_what_to_fix(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    settings: str,
    devices: str | None,
    message: str,
) -> None:
    config = tmp_path / "flarewatch.toml"
    config.write_text(settings)
    if devices is not None:
        (tmp_path / "devices.toml").write_text(devices)
    code, err = run(["collect", "--config", str(config)], capsys)
    assert code == 1
    assert message in err
    assert "Traceback" not in err


def test_ble_sim_refuses_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["ble-sim", "--devices", "0"], capsys)
    assert code == 1 and "--devices" in err
