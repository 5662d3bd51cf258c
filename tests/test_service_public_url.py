"""What the running service's web side tells the outside: the address in its links and its header.

The links in messages carry their token in the URL, so a plain-HTTP public address off this host
is warned about when the service starts; the API answers without naming its server software.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from flarewatch.localservers import free_port
from flarewatch.settings import Settings, load_settings
from service.alerts.runtime import AlertingRuntime


def _settings(tmp_path: Path, public_base_url: str, port: int = 8000) -> Settings:
    return load_settings(
        store={"kind": "sqlite", "sqlite_path": tmp_path / "samples.sqlite3"},
        service={
            "database_url": f"sqlite:///{tmp_path}/service.sqlite3",
            "public_base_url": public_base_url,
            "api_port": port,
        },
    )


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://alerts.example.org", True),
        ("http://user:hunter2@192.0.2.7:8000/fw", True),
        ("https://alerts.example.org", False),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
    ],
)
def test_a_plain_http_public_address_off_this_host_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, url: str, warned: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="service.alerts.runtime")
    AlertingRuntime(_settings(tmp_path, url), serve_api=False)
    warnings = [r.getMessage() for r in caplog.records if "plain HTTP" in r.getMessage()]
    assert len(warnings) == (1 if warned else 0)
    assert "hunter2" not in caplog.text and "user:" not in caplog.text


def test_the_api_does_not_name_its_server_software(tmp_path: Path) -> None:
    port = free_port()
    runtime = AlertingRuntime(_settings(tmp_path, f"http://127.0.0.1:{port}", port), serve_api=True)
    runtime.start()
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        runtime.stop()
    assert answer.status_code == 200
    assert "server" not in answer.headers
