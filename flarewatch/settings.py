"""Settings of every component: one pydantic-settings class, built by :func:`load_settings`.

Sources, strongest first: keyword overrides (CLI flags), ``FLAREWATCH_*`` environment variables
(nested with ``__``, e.g. ``FLAREWATCH_MQTT__URL``), an optional TOML file
(``--config`` or ``FLAREWATCH_CONFIG``), then the defaults below. Nothing is built at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from flarewatch.const import MIN_SECRET_KEY_CHARS
from flarewatch.errors import ConfigError, describe_validation_error

_PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "admin"})
_DEMO_SECRET_KEY = "demo-only-secret-key"
"""The built-in ``service.secret_key``: public, so good for the demo only."""


def read_secret_file(path: Path, what: str) -> str:
    """The secret held in ``path``, stripped; a ConfigError naming ``what`` if unreadable or empty.

    The error never quotes the file's content.
    """
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from exc
    if not secret:
        raise ConfigError(f"{what} {path} is empty")
    return secret


class _Section(BaseModel):
    """One table of the settings; an unknown key (a typo) is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Section):
    """How to reach the MQTT broker; ``url=None`` means: start an embedded broker (demo only)."""

    url: str | None = Field(None, description="mqtt://host:1883 or mqtts://host:8883")
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = Field(None, description="CA bundle for mqtts:// (system CAs if unset)")
    client_id: str | None = Field(
        None,
        description="a gateway's fixed client id (else flarewatch-gateway-{gateway_id}); the "
        "service's ids come from service.instance",
    )
    keepalive_s: int = Field(30, ge=5, le=3600)
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "auto",
        description="a gateway's MQTT version: auto tries 5 (a denied publish is reported) and "
        "falls back to 3.1.1 when the broker refuses it; the service speaks 3.1.1",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in {"mqtt", "mqtts", "tcp", "ssl"}:
            raise ValueError("MQTT url must start with mqtt:// or mqtts://")
        return value


class InfluxSettings(_Section):
    """InfluxDB through its v1-compatible HTTP API (1.x, 2.x with DBRP mapping, 3.x Core)."""

    url: str | None = Field(None, description="http://host:8086; unset means the SQLite store")
    database: str = "flarewatch"
    retention_policy: str | None = None
    token: SecretStr | None = Field(None, description="InfluxDB 2.x/3.x token (Authorization)")
    username: str | None = None
    password: SecretStr | None = None
    batch_size: int = Field(5000, ge=1, le=50_000)
    flush_interval_s: float = Field(0.2, gt=0, le=60)
    gzip: bool = True
    timeout_s: float = Field(10.0, gt=0)


class StoreSettings(_Section):
    """Which sample store the service writes to."""

    kind: Literal["auto", "influx", "sqlite"] = "auto"
    sqlite_path: Path = Path("var/samples.sqlite3")


class ServiceSettings(_Section):
    """The service process: ingest, detection, episodes, alerts, API."""

    database_url: str = "sqlite:///var/flarewatch.sqlite3"
    queue_size: int = Field(20_000, ge=10, description="messages between MQTT thread and worker")
    public_base_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    secret_key: SecretStr = Field(
        SecretStr(_DEMO_SECRET_KEY),
        description="signs acknowledgement links and encrypts the channel URLs (Apprise "
        "credentials) in the service database: keep it, or re-encrypt with `admin db rekey`",
    )
    secret_key_file: Path | None = Field(
        None,
        description="read secret_key from this file instead (Docker/Kubernetes secrets)",
    )
    detector_state_path: Path | None = Field(
        None,
        description="per-patient detector baselines, saved every minute and restored on start; "
        "default: detector-state.json next to a SQLite database_url, else var/",
    )
    confirmer_path: Path | None = Field(
        None,
        description="the detectors' learned confirmer (.skops); default: the one released with "
        "flarewatch. One trained on your own labelled episodes: `flarewatch evaluate --train "
        "--labels labels.jsonl --model PATH`",
    )
    mail_url: SecretStr | None = Field(
        None,
        description="Apprise mailto:// or mailtos:// URL (SMTP server, login, from=) the web app "
        "sends links to set a new password with, to accounts that have an e-mail address; "
        "unset: the administrator resets passwords",
    )
    ntfy_url: SecretStr | None = Field(
        None,
        description="ntfy server (https://ntfy.sh or your own, at the root of its address; "
        "https://user:password@host with a login) on which caregivers and patients may ask "
        "the web app for a private topic of their own to receive alerts on; unset: not offered",
    )
    own_channel_urls: bool = Field(
        False,
        description="let caregivers and patients add any Apprise URL as a channel of their "
        "own in the web app; off (the default): only an e-mail address (through mail_url) and "
        "an ntfy topic (through ntfy_url), since a URL makes the service call whatever host it "
        "names, those of your own network too",
    )
    heartbeat_url: SecretStr | None = Field(
        None,
        description="URL the service calls (POST) every heartbeat_interval_s while every check of "
        "/readyz passes: an outside monitor (healthchecks.io, Uptime Kuma push, Better Stack) "
        "that hears nothing reports the service down, stopped or unreachable alike",
    )
    heartbeat_fail_url: SecretStr | None = Field(
        None,
        description="URL called instead while a check fails, e.g. healthchecks.io's URL with "
        "/fail (unset: the pings stop, which the monitor reports once it stops waiting)",
    )
    heartbeat_interval_s: float = Field(
        60.0, ge=1.0, le=3600.0, description="seconds between two heartbeats"
    )
    second_factor_roles: list[Literal["patient", "caregiver", "researcher"]] = Field(
        default_factory=list,
        description="web app accounts of these roles must turn on two-step sign-in (a code from "
        "an authenticator app after the password) before they see anything, e.g. "
        '["researcher", "caregiver"]; the others may',
    )
    instance: str = Field(
        "service",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$",
        description="name of this service on the broker: its MQTT client ids are "
        "flarewatch-{instance}-ingest and flarewatch-{instance}-alerts. Two services sharing a "
        "broker need different names; keep it across restarts (the broker queues samples for "
        "the service's session under that id)",
    )

    def mqtt_client_id(self, role: Literal["ingest", "alerts"]) -> str:
        """The MQTT client id of one of this service's connections (stable for its session)."""
        return f"flarewatch-{self.instance}-{role}"

    @field_validator("ntfy_url")
    @classmethod
    def _ntfy_server(cls, value: SecretStr | None) -> SecretStr | None:
        # ConfigError, not ValueError: pydantic would quote the input, a login may be in it.
        if value is None or not value.get_secret_value():
            return None  # empty: none (the Docker stack passes an unset variable as empty)
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path.strip("/"):
            raise ConfigError(
                "service.ntfy_url must be http(s)://host of an ntfy server at the root of its "
                "address (no path), e.g. https://ntfy.sh"
            )
        return value

    @model_validator(mode="after")
    def _key_from_file(self) -> ServiceSettings:
        # ConfigError, not ValueError: pydantic would quote the raw input (the key) in its error.
        if self.secret_key_file is not None:
            self.secret_key = SecretStr(
                read_secret_file(self.secret_key_file, "service.secret_key_file")
            )
        return self


class CollectorSettings(_Section):
    """The gateway process."""

    gateway_id: str = "gateway-1"
    outbox_path: Path = Path("var/outbox.sqlite3")
    devices_file: Path | None = None
    ble_backend: str | None = Field(None, description="None = BlueZ/OS default; 'bumble:usb:0'")
    bonds_file: Path = Field(
        Path("var/bonds.json"),
        description="where the Bumble backend keeps the keys of paired bands (mode 0600); "
        "BlueZ keeps its own",
    )
    ble_max_connections: int = Field(
        5, ge=1, le=64, description="links held at once per adapter (~5-7 on a Linux adapter)"
    )
    ble_watchdog_timeout_s: float = Field(
        10.0,
        ge=0.5,
        le=600,
        description="reconnect when a connected device sends nothing this long",
    )
    profile_plugins: tuple[str, ...] = Field(
        (),
        description="modules of vendor device profiles to load, e.g. "
        "'collector.profiles.plugins.example_skin_motion' (see docs/device-profiles.md)",
    )


class Settings(BaseSettings):
    """Every setting of flarewatch; see the module docstring for where values come from."""

    model_config = SettingsConfigDict(
        env_prefix="FLAREWATCH_", env_nested_delimiter="__", extra="forbid"
    )

    environment: Literal["demo", "development", "production"] = "development"
    log_level: str = "INFO"
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    store: StoreSettings = StoreSettings()
    service: ServiceSettings = ServiceSettings()
    collector: CollectorSettings = CollectorSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the TOML file between the environment and the defaults."""
        toml = os.environ.get("FLAREWATCH_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml)))
        return tuple(sources)


_ENV_PREFIX: Final = "FLAREWATCH_"
_SECTIONS: Final = tuple(
    name
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, _Section)
)


def unknown_environment_sections(environ: Mapping[str, str]) -> list[str]:
    """Names of ``FLAREWATCH_X__KEY`` variables whose ``X`` is no settings table, sorted.

    pydantic-settings reads only the variables that match a setting, so a misspelt table
    (``FLAREWATCH_SERVCE__SECRET_KEY``) would leave the default in force without a word. Only
    names are returned, never values.
    """
    return sorted(
        name
        for name in environ
        if name.upper().startswith(_ENV_PREFIX)
        and "__" in name
        and name[len(_ENV_PREFIX) :].split("__", 1)[0].lower() not in _SECTIONS
    )


def config_file_in_use() -> Path | None:
    """The TOML file the settings come from (``--config`` or ``FLAREWATCH_CONFIG``), if any."""
    toml = os.environ.get("FLAREWATCH_CONFIG")
    return Path(toml) if toml else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; refuse placeholder secrets outside the demo and development."""
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        os.environ["FLAREWATCH_CONFIG"] = str(config_file)
    unknown = unknown_environment_sections(os.environ)
    if unknown:
        raise ConfigError(
            f"unknown settings in the environment: {', '.join(unknown)} (a FLAREWATCH_X__KEY "
            f"variable needs X to be one of {', '.join(_SECTIONS).upper()})"
        )
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid settings: {describe_validation_error(exc, root='settings')}"
        ) from exc
    except ValueError as exc:  # e.g. a TOML syntax error: says where, never quotes the value
        raise ConfigError(f"invalid settings: {exc}") from exc
    if settings.environment == "production":
        require_secret_key(settings.service)
    return settings


def require_secret_key(service: ServiceSettings) -> None:
    """Raise a ConfigError unless ``service.secret_key`` is one only this deployment knows.

    The key signs acknowledgement links: with the built-in (public) key or a guessable one,
    anyone can forge an acknowledgement and silence an alert. ``flarewatch serve`` calls this
    whatever the environment; :func:`load_settings` for every command in production. The error
    never quotes the key.
    """
    secret = service.secret_key.get_secret_value().strip()
    if secret in _PLACEHOLDER_SECRETS | {_DEMO_SECRET_KEY}:
        problem = "is the built-in demo key or a placeholder"
    elif len(secret) < MIN_SECRET_KEY_CHARS:
        problem = f"is shorter than {MIN_SECRET_KEY_CHARS} characters"
    else:
        return
    raise ConfigError(
        f"service.secret_key {problem}: anyone who knows or guesses it can forge the "
        "acknowledgement links and silence an alert. Set FLAREWATCH_SERVICE__SECRET_KEY (or "
        "service.secret_key_file, FLAREWATCH_SERVICE__SECRET_KEY_FILE, naming a file that holds "
        "it) to a random value, e.g. `python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'`, and keep it: it also encrypts the channel URLs "
        "stored in the service database"
    )
