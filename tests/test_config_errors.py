"""Configuration mistakes give one clear line, never a traceback, and never echo a secret.

Settings files, database URLs (the password in them) and command-line options are checked
through the real ``flarewatch`` command and the real database servers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flarewatch.cli import main
from flarewatch.errors import ConfigError
from flarewatch.localservers import PostgresServer, free_port
from flarewatch.mqtt import BrokerAddress
from flarewatch.settings import MqttSettings, load_settings
from service.db import Database

PASSWORD = "hunter2-not-for-your-eyes"


@pytest.fixture(autouse=True)
def _config_env(monkeypatch):
    # load_settings() exports FLAREWATCH_CONFIG; let monkeypatch undo it after each test
    monkeypatch.setenv("FLAREWATCH_CONFIG", "")
    monkeypatch.delenv("FLAREWATCH_CONFIG")


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        # a production key in the wrong table (top level instead of [service])
        (f'secret_key = "{PASSWORD}"\n', "secret_key: Extra inputs are not permitted"),
        ("[mqtt]\npassword = 12345678987\n", "mqtt.password: Input should be a valid string"),
        (
            f'[service]\nsecret_key = "{PASSWORD}"\napi_port = "{PASSWORD}"\n',
            "service.api_port: Input should be a valid integer",
        ),
    ],
)
def test_settings_errors_say_where_but_never_quote_the_value(tmp_path, capsys, toml, where):
    config = tmp_path / "flarewatch.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert where in str(error.value)
    assert PASSWORD not in str(error.value) and "12345678987" not in str(error.value)
    code, err = run(capsys, "--config", str(config), "admin", "patient", "list")
    assert code == 1 and where in err
    assert PASSWORD not in err and "12345678987" not in err


def test_unreachable_postgresql_is_a_config_error_without_the_password(capsys):
    url = f"postgresql+psycopg://flarewatch:{PASSWORD}@127.0.0.1:{free_port()}/flarewatch"
    with pytest.raises(ConfigError) as error:
        Database(url)
    message = str(error.value)
    assert "cannot open the service database" in message and "refused" in message
    assert "check service.database_url" in message
    assert PASSWORD not in message and "flarewatch:***@127.0.0.1" in message
    code, err = run(capsys, "admin", "--database-url", url, "patient", "list")
    assert code == 1 and "cannot open the service database" in err and PASSWORD not in err


def test_refused_login_is_a_config_error_without_the_password(postgres: PostgresServer, capsys):
    # the test cluster trusts every known user; an unknown one is refused like a wrong password
    url = postgres.database_url("flarewatch").replace("://flarewatch@", f"://intruder:{PASSWORD}@")
    code, err = run(capsys, "admin", "--database-url", url, "patient", "list")
    assert code == 1 and '"intruder" does not exist' in err
    assert PASSWORD not in err and "intruder:***@" in err


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://u:{PASSWORD}@db.example:notaport/flarewatch",  # ValueError
        f"postgresql+psycopg://flarewatch@db.example:{PASSWORD}/flarewatch",  # the port's place
        f"not a url, but a password: //u:{PASSWORD}@x",  # ArgumentError
    ],
)
def test_malformed_database_url_is_a_config_error_without_the_password(url, capsys):
    code, err = run(capsys, "admin", "--database-url", url, "patient", "list")
    assert code == 1 and "is not a database URL" in err
    assert PASSWORD not in err


def test_unusable_sqlite_location_is_a_config_error(tmp_path: Path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = run(
        capsys, "admin", "--database-url", f"sqlite:///{blocker}/fw.sqlite3", "patient", "list"
    )
    assert code == 1 and f"cannot create {blocker} for the SQLite service database" in err
    folder = tmp_path / "a-folder"  # the database path is a directory: SQLite cannot open it
    folder.mkdir()
    code, err = run(capsys, "admin", "--database-url", f"sqlite:///{folder}", "patient", "list")
    assert code == 1 and "unable to open database file" in err


def test_unknown_log_level_is_a_usage_error_and_any_case_works(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--log-level", "bogus", "admin", "patient", "list"])
    assert stop.value.code == 2 and "invalid choice: 'BOGUS'" in capsys.readouterr().err
    url = f"sqlite:///{tmp_path}/fw.sqlite3"
    code, _ = run(
        capsys, "--log-level", "warning", "admin", "--database-url", url, "patient", "list"
    )
    assert code == 0


def test_credentials_in_the_mqtt_url_are_refused_without_echoing_them() -> None:
    settings = MqttSettings(url="mqtts://gateway-7:S3cretPw@broker.example:8883")
    with pytest.raises(ConfigError, match=r"mqtt\.username and mqtt\.password") as refused:
        BrokerAddress.from_settings(settings)
    assert "S3cretPw" not in str(refused.value)
    address = BrokerAddress.from_settings(MqttSettings(url="mqtts://broker.example"))
    assert str(address) == "mqtts://broker.example:8883"
