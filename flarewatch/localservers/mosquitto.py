"""A local Mosquitto broker with the project's configuration from ``deploy/mosquitto``."""

from __future__ import annotations

import os
from pathlib import Path

from flarewatch.localservers.base import DEPLOY_DIR, LocalServer, find_binary


class MosquittoServer(LocalServer):
    """Mosquitto with flarewatch's no-loss settings (``deploy/mosquitto/conf.d``).

    ``extra_config`` lines are appended (password file, ACL, TLS listener in security tests).
    """

    name = "mosquitto"

    def __init__(self, data_dir: Path | None = None, extra_config: str = "") -> None:
        super().__init__(data_dir)
        self.extra_config = extra_config

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        shared = (DEPLOY_DIR / "mosquitto" / "conf.d" / "flarewatch.conf").read_text()
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(
            f"{shared}\n"
            f"persistence_location {self.data_dir}/\n"
            f"listener {self.port} 127.0.0.1\n"
            # As root, mosquitto would switch to the `mosquitto` user and lose access to our
            # temporary (0700) directory; a local test broker keeps the caller's identity.
            f"{'user root' if os.geteuid() == 0 else ''}\n"
            f"{self.extra_config or 'allow_anonymous true'}\n"
        )
        return [find_binary("mosquitto"), "-c", str(conf)]
