"""The base of the local servers: a child process on a free loopback port, started and stopped.

Each server (:mod:`.mosquitto`, :mod:`.influxdb`, :mod:`.postgres`) says how it is started; this
module starts it, waits until it listens, and stops it and removes its temporary directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from flarewatch.errors import ConfigError

log = logging.getLogger(__name__)

DEPLOY_DIR: Final = Path(__file__).resolve().parent.parent.parent / "deploy"
PR_SET_PDEATHSIG: Final = 1  # from <linux/prctl.h>
START_TIMEOUT_S: Final = 20.0
"""InfluxDB 1.6 opens its stores in well under a second; 20 s covers a loaded CI machine."""
START_RETRY_DELAY_S: Final = 0.25
PORT_TAKEN_MESSAGE: Final = "address already in use"
"""What Mosquitto, influxd and postgres log (any case) when their port is taken (EADDRINUSE)."""


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


def die_with_parent() -> None:
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


class LocalServer:
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
        die_with_parent()

    def start(self) -> Self:
        """Start the process and wait until it accepts connections.

        A restart on the same port can find it briefly taken: a client reconnecting in a loop to
        a loopback port nobody listens on may be handed that very port as its ephemeral source
        (a TCP self-connect) until it gives up. Such a start is retried until
        ``START_TIMEOUT_S``; any other exit (a bad configuration) fails at once.
        """
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            log_file = (self.data_dir / f"{self.name}.log").open("ab")
            log_start = log_file.tell()
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
                attempt_log = (self.data_dir / f"{self.name}.log").read_bytes()[log_start:]
                port_taken = PORT_TAKEN_MESSAGE in attempt_log.decode(errors="replace").lower()
                if self.proc.poll() is None or not port_taken or time.monotonic() > deadline:
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
        # A failed start never reaches __exit__: stop what runs and remove our directory here.
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
