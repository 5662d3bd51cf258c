"""Local Mosquitto, InfluxDB and PostgreSQL servers on free loopback ports (demo, tests, benches).

They run the real Debian binaries with the project's configuration from ``deploy/`` and a temporary
data directory. Nothing here is used in production, where the servers are managed by compose.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from flarewatch.errors import ConfigError

log = logging.getLogger(__name__)

DEPLOY_DIR: Final = Path(__file__).resolve().parent.parent / "deploy"
PR_SET_PDEATHSIG: Final = 1  # from <linux/prctl.h>
START_TIMEOUT_S: Final = 20.0
"""InfluxDB 1.6 opens its stores in well under a second; 20 s covers a loaded CI machine."""
START_RETRY_DELAY_S: Final = 0.25


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str) -> str:
    """Locate a server binary on PATH or in the sbin directories Debian installs servers to."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        raise ConfigError(
            f"{name} not found: install it with `sudo apt-get install -y "
            f"{'mosquitto' if name == 'mosquitto' else 'influxdb'}`"
        )
    return found


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``).

    A test run or benchmark that is killed would otherwise leave its brokers and databases
    running, because they live in their own session so that Ctrl-C reaches only the parent.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"{what} exited with code {proc.returncode} during start-up")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise ConfigError(f"{what} did not listen on port {port} within {START_TIMEOUT_S} s")


class _LocalServer:
    """A child process with a temporary directory; stopped and cleaned up on exit."""

    name: str = "server"

    def __init__(self, data_dir: Path | None = None) -> None:
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix=f"flarewatch-{self.name}-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _preexec(self) -> None:
        """Run in the child before exec (Linux only)."""
        _die_with_parent()

    def start(self) -> Self:
        """Start the process and wait until it accepts connections.

        A restart on the same port can find it briefly taken: a client reconnecting in a loop to
        a loopback port nobody listens on may be handed that very port as its ephemeral source
        (a TCP self-connect) until it gives up. The start is retried until ``START_TIMEOUT_S``.
        """
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            log_file = (self.data_dir / f"{self.name}.log").open("ab")
            self.proc = subprocess.Popen(
                self._command(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._preexec if sys.platform == "linux" else None,
            )
            log_file.close()
            try:
                _wait_for_port(self.port, self.proc, self.name)
                return self
            except ConfigError as exc:
                if self.proc.poll() is None or time.monotonic() > deadline:
                    self.kill()
                    raise ConfigError(f"{exc}; its log ends:\n{self.log_text()[-800:]}") from exc
                log.warning("%s exited during start-up; retrying on port %d", self.name, self.port)
                time.sleep(START_RETRY_DELAY_S)

    def kill(self) -> None:
        """Stop the process at once (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """Stop the process gracefully (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> Self:
        """Stop and start again on the same port with the same data (persistence check)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the process and remove the temporary directory if we created it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_text(self) -> str:
        """The server's own log, for test failure messages."""
        path = self.data_dir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MosquittoServer(_LocalServer):
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


class InfluxServer(_LocalServer):
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


class PostgresServer(_LocalServer):
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
        _die_with_parent()
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
