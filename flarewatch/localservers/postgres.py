"""A throw-away local PostgreSQL cluster (Debian's server binaries) for the service database."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final, Self

from flarewatch.errors import ConfigError
from flarewatch.localservers.base import START_TIMEOUT_S, LocalServer, die_with_parent

POSTGRES_BIN_GLOB: Final = "/usr/lib/postgresql/*/bin"
"""Where Debian's ``postgresql`` package installs the server binaries (one directory per major)."""
POSTGRES_USER: Final = "flarewatch"
"""Superuser of a local test cluster; loopback connections are trusted (no password)."""
POSTGRES_OS_USERS: Final = ("postgres", "nobody")
"""Unprivileged accounts the server runs as when we are root (postgres refuses to run as root)."""


def find_postgres_binary(name: str) -> str:
    """Locate a PostgreSQL server binary: the newest Debian major's bin directory, else PATH.

    Debian puts only wrappers (``pg_wrapper``, tied to the packaged clusters) on PATH, and
    ``initdb``/``postgres`` not at all, so the versioned directory comes first.
    """
    majors = sorted(
        (d for d in Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")) if d.parent.name.isdigit()),
        key=lambda d: int(d.parent.name),
        reverse=True,
    )
    found = next((str(d / name) for d in majors if (d / name).is_file()), None)
    found = found or shutil.which(name)
    if found is None:
        raise ConfigError(
            f"PostgreSQL's {name} not found: install it with `sudo apt-get install -y postgresql`"
        )
    return found


def _unprivileged_ids() -> tuple[int, int] | None:
    """``(uid, gid)`` to run postgres as when we are root, else ``None`` (keep our identity)."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in POSTGRES_OS_USERS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise ConfigError(f"running as root, and none of the users {POSTGRES_OS_USERS} exists")


class PostgresServer(LocalServer):
    """A throw-away PostgreSQL cluster (``initdb`` + ``postgres``) on a free loopback port.

    Durability settings are relaxed (``fsync=off``): the cluster lives for one test run, and a
    killed server still restarts with its committed data (only an OS crash could lose it).
    As root, the cluster belongs to an unprivileged user and lives in its own ``/tmp`` directory,
    because pytest's temporary directories are private to root.
    """

    name = "postgres"

    def __init__(self, data_dir: Path | None = None) -> None:
        super().__init__(data_dir)
        self._ids = _unprivileged_ids()
        self.cluster_dir = (
            Path(tempfile.mkdtemp(prefix="flarewatch-pgdata-"))
            if self._ids is not None
            else self.data_dir / "cluster"
        )
        self._databases = 0

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``flarewatch`` database (psycopg 3 driver)."""
        return self.database_url(POSTGRES_USER)

    def database_url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def _preexec(self) -> None:
        die_with_parent()
        if self._ids is not None:
            os.setgid(self._ids[1])
            os.setgroups([])
            os.setuid(self._ids[0])

    def _run_tool(self, argv: list[str]) -> None:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            timeout=START_TIMEOUT_S * 3,
            preexec_fn=self._preexec if sys.platform == "linux" else None,
        )
        if result.returncode != 0:
            raise ConfigError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-800:]}")

    def _command(self) -> list[str]:
        return [
            find_postgres_binary("postgres"),
            *("-D", str(self.cluster_dir / "data"), "-p", str(self.port)),
            *("-k", str(self.cluster_dir), "-c", "listen_addresses=127.0.0.1"),
            *("-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"),
        ]

    def start(self) -> Self:
        """Create the cluster on first start, start postgres and wait until it takes queries."""
        fresh = not (self.cluster_dir / "data" / "PG_VERSION").exists()
        if fresh:
            if self._ids is not None:
                os.chown(self.cluster_dir, *self._ids)
            self._run_tool(
                [
                    find_postgres_binary("initdb"),
                    *("-D", str(self.cluster_dir / "data"), "-U", POSTGRES_USER),
                    *("--auth=trust", "--encoding=UTF8", "--locale=C"),
                    *("--no-sync", "--no-instructions"),
                ]
            )
        super().start()
        self._wait_ready()
        if fresh:
            self.create_database(POSTGRES_USER)
        return self

    def _wait_ready(self) -> None:
        # postgres listens before its start-up recovery ends ("the database system is starting
        # up"); pg_isready says when it accepts sessions.
        deadline = time.monotonic() + START_TIMEOUT_S
        probe = [
            find_postgres_binary("pg_isready"),
            *("-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", POSTGRES_USER),
        ]
        while time.monotonic() < deadline:
            if subprocess.run(probe, check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise ConfigError(
            f"postgres on port {self.port} did not accept sessions; log:\n{self.log_text()[-800:]}"
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh name if ``None``); returns its SQLAlchemy URL."""
        self._databases += 1
        name = name or f"test_{os.getpid()}_{self._databases}"
        self._run_tool(
            [
                find_postgres_binary("createdb"),
                *("-h", "127.0.0.1", "-p", str(self.port), "-U", POSTGRES_USER, name),
            ]
        )
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` and end its sessions (a test's leftover connections must not block it)."""
        self._run_tool(
            [
                find_postgres_binary("dropdb"),
                *("-h", "127.0.0.1", "-p", str(self.port), "-U", POSTGRES_USER),
                *("--force", "--if-exists", name),
            ]
        )

    def close(self) -> None:
        """Stop postgres and remove the cluster and the temporary directories we created."""
        super().close()  # removes cluster_dir with data_dir when we created data_dir
        if self._ids is not None:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
