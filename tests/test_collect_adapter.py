"""`flarewatch collect` refuses what it cannot run with (no usable Bluetooth adapter, an unknown
device profile) with a clear error at start, never a traceback or a retry loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from flarewatch.cli import main
from flarewatch.localservers import MosquittoServer, free_port


@pytest.fixture(autouse=True)
def _restore_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings() exports FLAREWATCH_CONFIG; let monkeypatch undo it after each test
    monkeypatch.setenv("FLAREWATCH_CONFIG", "")
    monkeypatch.delenv("FLAREWATCH_CONFIG")


def gateway_files(folder: Path, broker_url: str, device_line: str = "") -> Path:
    """A gateway's settings file and its devices file (one band) in ``folder``; the settings."""
    config = folder / "flarewatch.toml"
    config.write_text(
        f'[mqtt]\nurl = "{broker_url}"\n[collector]\ndevices_file = "devices.toml"\n'
        f'outbox_path = "{folder / "outbox.db"}"\n'
    )
    (folder / "devices.toml").write_text(
        '[[devices]]\nid = "band-1"\npatient = "anna"\naddress = "C0:5E:00:00:00:01"\n'
        + device_line
    )
    return config


def test_an_unreachable_hci_transport_is_a_clear_error(
    mosquitto: MosquittoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = gateway_files(tmp_path, mosquitto.url)
    transport = f"bumble:tcp-client:127.0.0.1:{free_port()}"  # nothing listens there
    code = main(["collect", "--config", str(config), "--ble-backend", transport])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert f"cannot scan for wearables with the {transport} Bluetooth backend" in err


def test_an_unknown_profile_in_the_devices_file_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profiles = 'profiles = ["heart_rate", "hart_rate"]\n'
    config = gateway_files(tmp_path, "mqtt://127.0.0.1:1", profiles)
    # the transport does not exist: the profile must be refused before any Bluetooth is touched
    transport = f"bumble:tcp-client:127.0.0.1:{free_port()}"
    code = main(["collect", "--config", str(config), "--ble-backend", transport])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert "device band-1: unknown device profile 'hart_rate'; known: " in err
    assert "cannot scan" not in err


@pytest.mark.parametrize("named_by", ["environment", "global option"])
def test_the_devices_file_is_found_beside_the_settings_however_they_are_named(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    named_by: str,
) -> None:
    """``devices_file`` is relative to the settings file with FLAREWATCH_CONFIG and with
    ``flarewatch --config FILE collect`` too, not to the folder collect runs in."""
    config = gateway_files(tmp_path, "mqtt://127.0.0.1:1", 'profiles = ["hart_rate"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    transport = f"bumble:tcp-client:127.0.0.1:{free_port()}"
    if named_by == "environment":
        monkeypatch.setenv("FLAREWATCH_CONFIG", str(config))
        code = main(["collect", "--ble-backend", transport])
    else:
        code = main(["--config", str(config), "collect", "--ble-backend", transport])
    err = capsys.readouterr().err
    assert code == 1
    assert "does not exist" not in err
    assert "device band-1: unknown device profile 'hart_rate'" in err  # the file was read
