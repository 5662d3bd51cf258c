"""A local InfluxDB 1.x server with the project's configuration from ``deploy/influxdb``."""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from flarewatch.errors import ConfigError
from flarewatch.localservers.base import (
    DEPLOY_DIR,
    START_TIMEOUT_S,
    LocalServer,
    find_binary,
    free_port,
)


class InfluxServer(LocalServer):
    """InfluxDB 1.x (``influxd``) with ``deploy/influxdb/influxdb.conf``."""

    name = "influxd"

    def __init__(self, data_dir: Path | None = None, *, auth_enabled: bool = False) -> None:
        super().__init__(data_dir)
        self.rpc_port = free_port()
        self.auth_enabled = auth_enabled

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        template = (DEPLOY_DIR / "influxdb" / "influxdb.conf").read_text()
        conf = self.data_dir / "influxdb.conf"
        conf.write_text(
            template.format(
                data_dir=self.data_dir,
                rpc_port=self.rpc_port,
                http_bind=f"127.0.0.1:{self.port}",
                auth_enabled=str(self.auth_enabled).lower(),
            )
        )
        return [find_binary("influxd"), "run", "-config", str(conf)]

    def start(self) -> Self:
        """Start influxd and wait until ``/ping`` answers."""
        super().start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp,
            ):
                if resp.status == 204:
                    return self
            time.sleep(0.05)
        raise ConfigError(f"influxd at {self.url} did not answer /ping")
