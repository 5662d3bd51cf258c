"""Local servers that cannot start say why at once and leave nothing behind (real binaries)."""

from __future__ import annotations

import logging
import socket
import tempfile
from pathlib import Path

import pytest

from flarewatch.errors import ConfigError
from flarewatch.localservers import InfluxServer, MosquittoServer

BASE_LOGGER = "flarewatch.localservers.base"


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the servers make their own directories in."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def test_a_broker_that_cannot_start_fails_at_once_and_leaves_nothing_behind(
    scratch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=BASE_LOGGER)
    server = MosquittoServer(extra_config="no_such_option 1")
    with pytest.raises(ConfigError) as error, server:
        pass
    assert "no_such_option" in str(error.value)  # its log, quoted in the error
    assert not [r for r in caplog.records if "retrying" in r.getMessage()], "a bad config is final"
    assert server.proc is not None and server.proc.poll() is not None
    assert list(scratch.iterdir()) == []


def test_influxdb_that_never_answers_is_stopped_and_removed(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What answers influxd's port is not InfluxDB: the start fails, and all is cleaned up."""
    for module in ("base", "influxdb"):  # give up after 2 s instead of 20
        monkeypatch.setattr(f"flarewatch.localservers.{module}.START_TIMEOUT_S", 2.0)
    server = InfluxServer()
    with socket.socket() as impostor:
        # Something else holds the HTTP port and never answers /ping; influxd cannot bind it.
        impostor.bind(("127.0.0.1", server.port))
        impostor.listen()
        with pytest.raises(ConfigError), server:
            pass
    assert server.proc is None or server.proc.poll() is not None
    assert list(scratch.iterdir()) == []


class _ReleaseOnRetry(logging.Handler):
    """Frees the port the first time the server says it retries (no sleeping in the test)."""

    def __init__(self, holder: socket.socket) -> None:
        super().__init__()
        self.holder = holder
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retries += 1
            self.holder.close()


@pytest.mark.parametrize("server_class", [MosquittoServer, InfluxServer])
def test_a_port_taken_for_a_moment_is_still_retried(
    scratch: Path, server_class: type[MosquittoServer] | type[InfluxServer]
) -> None:
    server = server_class()
    holder = socket.socket()
    holder.bind(("127.0.0.1", server.port))  # taken (EADDRINUSE for the server), not listening
    release = _ReleaseOnRetry(holder)
    logger = logging.getLogger(BASE_LOGGER)
    logger.addHandler(release)
    try:
        with server:
            assert server.proc is not None and server.proc.poll() is None
    finally:
        logger.removeHandler(release)
        holder.close()
    assert release.retries >= 1
    assert list(scratch.iterdir()) == []
