"""Pick and build the sample store the settings ask for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from flarewatch.errors import ConfigError
from flarewatch.redaction import address_of
from flarewatch.settings import Settings
from service.errors import StoreError
from service.stores.base import SampleStore


def store_kind(settings: Settings) -> str:
    """``influx`` or ``sqlite``: what ``store.kind`` resolves to (``auto`` follows the URL)."""
    kind = settings.store.kind
    if kind == "auto":
        kind = "influx" if settings.influx.url else "sqlite"
    return kind


STORE_SETTINGS_HINT: Final = (
    "The store is chosen by FLAREWATCH_STORE__KIND (auto: InfluxDB if FLAREWATCH_INFLUX__URL is "
    "set, else SQLite at FLAREWATCH_STORE__SQLITE_PATH): run this command with the service's "
    "settings (its environment or --config)."
)
"""Where the store settings are, for messages of commands that read the store."""


def describe_store(settings: Settings) -> str:
    """Which store the settings select and where it is, without credentials (for messages)."""
    if store_kind(settings) == "influx" and settings.influx.url is not None:
        where = address_of(settings.influx.url)
        return f"the InfluxDB store at {where}, database {settings.influx.database!r}"
    return f"the SQLite store {settings.store.sqlite_path.resolve()}"


def create_store(settings: Settings) -> SampleStore:
    """InfluxDB when ``store.kind`` is ``influx`` (or ``auto`` with an InfluxDB URL), else SQLite.

    Nothing is contacted here: call :meth:`SampleStore.prepare` before use.
    """
    kind = store_kind(settings)
    if kind == "influx":
        from service.stores.influx import InfluxStore

        influx = settings.influx
        if influx.url is None:
            raise ConfigError(
                "store.kind is 'influx' but influx.url is unset: set FLAREWATCH_INFLUX__URL "
                "or pass --influx-url"
            )
        return InfluxStore(
            influx.url,
            database=influx.database,
            retention_policy=influx.retention_policy,
            token=influx.token,
            username=influx.username,
            password=influx.password,
            gzip_body=influx.gzip,
            timeout_s=influx.timeout_s,
            lines_per_request=influx.batch_size,
        )
    from service.stores.sqlite import SqliteStore

    return SqliteStore(settings.store.sqlite_path)


@contextmanager
def opened_store(settings: Settings) -> Iterator[SampleStore]:
    """The store the settings select, prepared, for a command that reads it; closed after.

    A store error escaping the block becomes a :class:`ConfigError` naming the store and where
    its settings come from: run with other settings than the service's, a command would
    otherwise read an empty store, or fail with no hint why.
    """
    store = create_store(settings)
    try:
        with store:
            store.prepare()
            yield store
    except StoreError as exc:
        raise ConfigError(
            f"cannot read {describe_store(settings)}: {exc}. {STORE_SETTINGS_HINT}"
        ) from exc
