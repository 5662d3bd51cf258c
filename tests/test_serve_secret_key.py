"""``flarewatch serve`` refuses a public or guessable secret key, whatever the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flarewatch.localservers import MosquittoServer


def serve(mosquitto: MosquittoServer, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``flarewatch serve`` with only the given ``FLAREWATCH_*`` variables; kill it at 60 s."""
    command = [sys.executable, "-m", "flarewatch.cli", "serve", "--mqtt-url", mosquitto.url]
    command += ["--sqlite", str(cwd / "samples.sqlite3")]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLAREWATCH_")}
    try:
        return subprocess.run(
            command, env=clean | env, cwd=cwd, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("flarewatch serve started with a secret key it must refuse")


@pytest.mark.parametrize(
    "env",
    [
        {},  # the built-in default, environment "development"
        {"FLAREWATCH_ENVIRONMENT": "demo"},
        {"FLAREWATCH_SERVICE__SECRET_KEY": "demo-only-secret-key"},
        {"FLAREWATCH_SERVICE__SECRET_KEY": "changeme"},
        {"FLAREWATCH_SERVICE__SECRET_KEY": "short-key-12345"},
    ],
    ids=["default", "demo-environment", "default-spelt-out", "placeholder", "too-short"],
)
def test_serve_refuses_a_public_or_short_secret_key(
    env: dict[str, str], mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    done = serve(mosquitto, tmp_path, **env)
    assert done.returncode == 1, done.stderr
    assert "FLAREWATCH_SERVICE__SECRET_KEY" in done.stderr
    assert "service.secret_key_file" in done.stderr
    assert "secrets.token_urlsafe(32)" in done.stderr
    for value in env.values():
        assert value == "demo" or value not in done.stderr, "the refused key was echoed"
    assert not (tmp_path / "var").exists(), "serve opened its database before refusing"
