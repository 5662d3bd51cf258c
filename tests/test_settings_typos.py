"""A misspelt setting is an error naming it, never silently left at its default (nor echoed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flarewatch.cli import main
from flarewatch.errors import ConfigError
from flarewatch.settings import load_settings

PASSWORD = "hunter2-not-for-your-eyes"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings() exports FLAREWATCH_CONFIG; monkeypatch undoes it after each test
    monkeypatch.setenv("FLAREWATCH_CONFIG", "")
    monkeypatch.delenv("FLAREWATCH_CONFIG")


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("mqtt", "pasword"),
        ("influx", "passwrd"),
        ("store", "sqlite_file"),
        ("service", "secret_key_fle"),
        ("collector", "gateway"),
    ],
)
def test_a_misspelt_key_in_a_toml_table_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, key: str
) -> None:
    config = tmp_path / "flarewatch.toml"
    config.write_text(f'[{table}]\n{key} = "{PASSWORD}"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert f"{table}.{key}: Extra inputs are not permitted" in str(error.value)
    assert PASSWORD not in str(error.value)
    code = main(["--config", str(config), "admin", "patient", "list"])
    err = capsys.readouterr().err
    assert code == 1 and f"{table}.{key}" in err and PASSWORD not in err


def test_a_misspelt_key_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAREWATCH_MQTT__URL", "mqtt://broker:1883")
    monkeypatch.setenv("FLAREWATCH_MQTT__PASWORD", PASSWORD)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "mqtt.pasword: Extra inputs are not permitted" in str(error.value)
    assert PASSWORD not in str(error.value)


def test_a_misspelt_table_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAREWATCH_SERVCE__SECRET_KEY", PASSWORD)
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert "FLAREWATCH_SERVCE__SECRET_KEY" in message and "SERVICE" in message
    assert PASSWORD not in message


def test_the_documented_variables_are_still_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every table and flat setting still loads from the environment and from TOML."""
    key_file = tmp_path / "key"
    key_file.write_text(PASSWORD)
    monkeypatch.setenv("FLAREWATCH_ENVIRONMENT", "production")
    monkeypatch.setenv("FLAREWATCH_MQTT__URL", "mqtts://broker:8883")
    monkeypatch.setenv("FLAREWATCH_INFLUX__DATABASE", "vitals-db")
    monkeypatch.setenv("FLAREWATCH_STORE__KIND", "sqlite")
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY_FILE", str(key_file))
    monkeypatch.setenv("FLAREWATCH_E2E_SHORT", "1")  # not a setting, and no table: left alone
    config = tmp_path / "flarewatch.toml"
    config.write_text('[collector]\ngateway_id = "pi-kitchen"\n')
    settings = load_settings(config)
    assert settings.mqtt.url == "mqtts://broker:8883"
    assert settings.influx.database == "vitals-db"
    assert settings.store.kind == "sqlite"
    assert settings.service.secret_key.get_secret_value() == PASSWORD
    assert settings.collector.gateway_id == "pi-kitchen"
