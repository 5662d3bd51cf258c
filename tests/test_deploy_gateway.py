"""The compose ``gateway`` profile: the collector container reads the device registry docs/ble.md
describes and verifies the broker's real certificate (real Mosquitto with TLS, openssl)."""

from __future__ import annotations

import re
import shlex
import socket
import ssl
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from collector.gateway import devices_of
from flarewatch.cli import build_parser
from flarewatch.localservers import MosquittoServer
from flarewatch.settings import load_settings
from tests.test_deploy import ROOT, compose, documented_env, interpolate, service_environment

BROKER_HOST = "flarewatch.example.org"
"""The name the operator's certificate is issued for (docs/deploy.md, step 2)."""


def _gateway_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The collector container's environment, its /etc/flarewatch mounted from ``tmp_path``."""
    env = {**documented_env(), "FLAREWATCH_BROKER_HOST": BROKER_HOST}
    container = service_environment("collector", env)
    (config_mount,) = [
        spec for spec in compose()["services"]["collector"]["volumes"] if ":/etc/flarewatch" in spec
    ]
    host_dir = tmp_path / "etc-flarewatch"
    host_dir.mkdir()
    target = config_mount.split(":")[1]
    mapped = {k: v.replace(target, str(host_dir)) for k, v in container.items()}
    return mapped, host_dir


def test_gateway_container_reads_the_documented_device_registry(
    tmp_path: Path, monkeypatch
) -> None:
    env, etc = _gateway_env(tmp_path)
    (heredoc,) = re.findall(
        r"cat > devices.toml <<'EOF'\n(.*?)\nEOF", (ROOT / "docs" / "ble.md").read_text(), re.S
    )
    (etc / "devices.toml").write_text(heredoc + "\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FLAREWATCH_CONFIG", "")
    monkeypatch.delenv("FLAREWATCH_CONFIG")
    command = [interpolate(str(arg), env) for arg in compose()["services"]["collector"]["command"]]
    args = build_parser().parse_args([_host(arg, etc) for arg in command])
    assert args.command == "collect", shlex.join(command)
    settings = load_settings(getattr(args, "config", None))  # as `flarewatch collect` does
    devices = devices_of(settings, getattr(args, "config", None))
    assert sorted(d.device_id for d in devices) == ["band-anna", "band-bob"]


def _host(arg: str, etc: Path) -> str:
    return arg.replace("/etc/flarewatch", str(etc))


def _certificates(directory: Path, name: str) -> None:
    """A CA (ca.crt, as the gateway gets it) and a broker certificate for ``name`` only."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=flarewatch-test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", f"/CN={name}")  # fmt: skip
    (directory / "ext.cnf").write_text(f"subjectAltName=DNS:{name}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2",
            "-extfile", "ext.cnf")  # fmt: skip


def test_gateway_container_verifies_the_broker_certificate_by_its_name(tmp_path: Path) -> None:
    """The collector connects to the name in its MQTT url, resolved as the container's
    /etc/hosts (compose ``extra_hosts``) says, and checks the certificate against that name."""
    env, etc = _gateway_env(tmp_path)
    _certificates(etc, BROKER_HOST)
    settings = load_settings(
        mqtt={"url": env["FLAREWATCH_MQTT__URL"], "ca_file": env["FLAREWATCH_MQTT__CA_FILE"]}
    )
    assert settings.mqtt.url is not None and settings.mqtt.ca_file is not None
    host = urlsplit(settings.mqtt.url).hostname
    assert host is not None
    hosts = dict(
        interpolate(entry, {"FLAREWATCH_BROKER_HOST": BROKER_HOST}).rsplit(":", 1)
        for entry in compose()["services"]["collector"].get("extra_hosts", [])
    )
    address = hosts.get(host, "127.0.0.1" if host == "localhost" else host)
    (tmp_path / "broker").mkdir()
    tls = f"certfile {etc}/server.crt\nkeyfile {etc}/server.key\nallow_anonymous true"
    with MosquittoServer(tmp_path / "broker", extra_config=tls) as broker:
        # the context flarewatch.mqtt.make_client builds for mqtts:// with mqtt.ca_file
        context = ssl.create_default_context(cafile=str(settings.mqtt.ca_file))
        with (
            socket.create_connection((address, broker.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls_socket,
        ):
            assert tls_socket.getpeercert()["subjectAltName"] == (("DNS", BROKER_HOST),)
