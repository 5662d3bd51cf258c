"""The production stack's files: compose validates against the Compose Specification, every file
it mounts exists, Grafana's provisioning parses and logs in as the InfluxDB read user compose
creates, the first start documented in docs/deploy.md works with the real CLI, and the broker's
entrypoint lets Mosquitto read secrets it could not read where they are mounted (real broker)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from flarewatch.cli import build_parser, main
from flarewatch.localservers import find_binary, free_port
from flarewatch.settings import load_settings
from service.broker_auth import acl_file, hash_password, new_password, password_file
from tests.broker_helpers import connack
from tests.test_publisher import make_certificates

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_follows_the_compose_specification() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose())


def test_every_mounted_repository_file_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.startswith("./var/"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_production_stack_has_no_default_secrets() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for variable in ("INFLUXDB_ADMIN_PASSWORD", "FLAREWATCH_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD"):
        assert f"${{{variable}:?" in text, f"{variable} must be required, not defaulted"


def test_grafana_provisioning_parses() -> None:
    for path in (ROOT / "dashboards" / "provisioning").rglob("*.yaml"):
        assert yaml.safe_load(path.read_text())["apiVersion"] == 1
    for path in (ROOT / "dashboards" / "json").glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["title"] and dashboard["panels"]


# -- what docs/deploy.md tells an operator to run, and what compose then hands each container --

DOCS = ROOT / "docs" / "deploy.md"
_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")
_ENV_FILE_BLOCK = re.compile(r"cat > \.env <<EOF\n(?P<body>.*?)\n\s*EOF\n", re.DOTALL)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}`` and ``$VAR`` like compose and
    Grafana's provisioning do; an unset variable without a default fails the test."""

    def value(match: re.Match[str]) -> str:
        name = match["name"] or match["bare"]
        found = env.get(name)
        if match["op"] in (":-", "-") and not found:
            return match["arg"]
        assert found, f"${name} is not set ({match['arg'] or 'no default'})"
        return found

    return _VARIABLE.sub(value, text)


def documented_env() -> dict[str, str]:
    """The .env that step 1 of docs/deploy.md writes, with fresh secrets where it makes them."""
    block = _ENV_FILE_BLOCK.search(DOCS.read_text())
    assert block, "docs/deploy.md no longer shows the .env file"
    env = {}
    for line in block["body"].splitlines():
        name, _, value = line.strip().partition("=")
        env[name] = secrets.token_urlsafe(24) if value.startswith("$(") else value
    return env


def service_environment(name: str, env: Mapping[str, str]) -> dict[str, str]:
    """The environment compose gives the container of service ``name`` with ``env`` as .env."""
    variables = compose()["services"][name].get("environment", {})
    return {key: interpolate(str(value), env) for key, value in variables.items()}


def grafana_datasource(env: Mapping[str, str]) -> Any:
    """The provisioned InfluxDB datasource as Grafana sees it (its ``$VAR``s expanded)."""
    grafana_env = service_environment("grafana", env)
    path = ROOT / "dashboards" / "provisioning" / "datasources" / "influxdb.yaml"
    (datasource,) = yaml.safe_load(path.read_text())["datasources"]
    return _expand(datasource, grafana_env)


def _expand(value: Any, env: Mapping[str, str]) -> Any:
    """Grafana expands the variables in every string value of a provisioning file."""
    if isinstance(value, dict):
        return {key: _expand(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, env) for item in value]
    return interpolate(value, env) if isinstance(value, str) else value


def test_documented_env_file_sets_every_required_variable() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert "INFLUXDB_READ_PASSWORD" in required
    assert required <= documented_env().keys()


def test_grafana_logs_in_as_the_read_user_the_influxdb_service_creates() -> None:
    """InfluxDB runs with auth on; Grafana's datasource carries the read user's credentials."""
    env = documented_env()
    influx = service_environment("influxdb", env)
    datasource = grafana_datasource(env)
    assert influx["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    # influxdb:1.8's init-influxdb.sh creates INFLUXDB_READ_USER with READ on INFLUXDB_DB only.
    assert (
        influx["INFLUXDB_READ_USER"] and influx["INFLUXDB_READ_USER"] != env["INFLUXDB_ADMIN_USER"]
    )
    assert datasource["user"] == influx["INFLUXDB_READ_USER"]
    assert datasource["secureJsonData"]["password"] == influx["INFLUXDB_READ_USER_PASSWORD"]
    assert influx["INFLUXDB_READ_USER_PASSWORD"] == env["INFLUXDB_READ_PASSWORD"]
    assert datasource["jsonData"]["dbName"] == influx["INFLUXDB_DB"]
    assert "password" not in datasource, "a plain password would be stored unencrypted"


def _shell_commands(markdown: str) -> list[str]:
    """Command lines of the ``sh`` blocks, continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.DOTALL):
        pending = ""
        for line in block.splitlines():
            pending += line.strip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            commands.append(pending)
            pending = ""
    return commands


def _compose_run(argv: list[str]) -> tuple[str, set[str], dict[str, str], list[str]]:
    """Split ``docker compose run [OPTIONS] SERVICE ARGS`` into service, flags, mounts, args."""
    flags: set[str] = set()
    mounts: dict[str, str] = {}  # container path -> host path
    rest = iter(argv[3:])
    for token in rest:
        if token in ("--rm", "--no-deps"):
            flags.add(token)
        elif token in ("-v", "--volume"):
            source, target = next(rest).split(":")[:2]
            mounts[target] = source.replace("$PWD/", "./")
        else:
            assert not token.startswith("-"), f"teach this test docker compose run {token}"
            return token, flags, mounts, list(rest)
    raise AssertionError(f"no service in {shlex.join(argv)}")


def _host_path(container_path: str, mounts: Mapping[str, Path]) -> str:
    for target, host in mounts.items():
        if container_path == target or container_path.startswith(target + "/"):
            return str(host) + container_path[len(target) :]
    return container_path


def test_documented_first_start_works_with_the_real_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ``flarewatch`` command line of docs/deploy.md parses; the ``docker compose run``
    ones run in order as the service container would (its environment, its volumes) and end
    with broker files in the directory the broker mounts."""
    markdown = DOCS.read_text()
    parser = build_parser()
    inline = [shlex.split(span)[1:] for span in re.findall(r"`(flarewatch [^`]+)`", markdown)]
    for argv in inline:
        assert parser.parse_args(argv).handler, argv
    service_env = service_environment("service", documented_env())
    for name in [key for key in os.environ if key.startswith("FLAREWATCH_")]:
        monkeypatch.delenv(name)
    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    volumes = {
        spec.split(":")[1]: tmp_path / spec.split(":")[0]
        for spec in compose()["services"]["service"]["volumes"]
    }
    database = service_env["FLAREWATCH_SERVICE__DATABASE_URL"].removeprefix("sqlite:///")
    monkeypatch.setenv(
        "FLAREWATCH_SERVICE__DATABASE_URL", f"sqlite:///{_host_path(database, volumes)}"
    )
    for host in volumes.values():
        host.mkdir(parents=True)
    broker_mounts = {
        spec.split(":")[1]: spec.split(":")[0]
        for spec in compose()["services"]["mosquitto"]["volumes"]
    }
    ran: list[list[str]] = []
    for command in _shell_commands(markdown):
        if command.startswith("flarewatch "):
            assert parser.parse_args(shlex.split(command)[1:]).handler, command
        if not command.startswith("docker compose run "):
            continue
        service, flags, mounts, argv = _compose_run(shlex.split(command))
        assert service == "service" and "--rm" in flags
        assert "--no-deps" in flags, f"the broker cannot start yet: {command}"
        run_volumes = dict(volumes)
        for target, source in mounts.items():
            # The one mount the docs add is the broker's auth directory.
            assert broker_mounts["/flarewatch/auth"] == source, command
            run_volumes[target] = tmp_path / source
            (tmp_path / source).mkdir(parents=True, exist_ok=True)
        argv = [_host_path(arg, run_volumes) for arg in argv]
        assert parser.parse_args(argv).handler, command
        assert main(argv) == 0, (command, capsys.readouterr())
        ran.append(argv)
    assert [argv[:2] for argv in ran][-1] == ["admin", "broker-auth"], "broker-auth runs last"
    auth = tmp_path / broker_mounts["/flarewatch/auth"]
    passwords = (auth / "passwords").read_text()
    printed = capsys.readouterr().out
    for user in ("flarewatch-service", "pi-kitchen", "phone-anna"):
        assert f"\n{user}:$7$" in f"\n{passwords}" and f"new password for {user}: " in printed
    assert "topic write flarewatch/v1/anna/band-7/samples" in (auth / "acl").read_text()


def test_image_entrypoint_and_user_match_the_documented_steps() -> None:
    """``docker compose run service admin …`` needs the flarewatch entrypoint; the auth
    directory the docs create must belong to the image's user, who writes into it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", dockerfile, re.MULTILINE)
    assert json.loads(entrypoint) == ["flarewatch"]
    (uid,) = re.findall(r"^ARG FLAREWATCH_UID=(\d+)$", dockerfile, re.MULTILINE)
    (owner,) = re.findall(
        r"install -d -o (\d+) -g (\d+) -m 0700 var/mosquitto/auth", DOCS.read_text()
    )
    assert owner == (uid, uid)
    assert '--uid "$FLAREWATCH_UID"' in dockerfile and "USER flarewatch" in dockerfile


def test_image_copies_every_file_the_package_build_reads() -> None:
    """``pip install .`` in the image reads the readme and the licence files pyproject names:
    each must be copied before it (a missing one fails the image build, which no test here runs)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    before_install = dockerfile[: dockerfile.index("RUN pip install")]
    copied = {
        name
        for line in re.findall(r"^COPY (.+)$", before_install, re.MULTILINE)
        for name in line.split()[:-1]
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = {project["readme"], "pyproject.toml", *project.get("license-files", [])}
    assert needed <= copied, f"not copied before pip install: {sorted(needed - copied)}"


# -- the broker container reads secrets it could not read where they are mounted --------------

START_BROKER = ROOT / "deploy" / "mosquitto" / "start-broker.sh"
HOST_OWNER_UID = 4242  # someone who is neither root nor the broker's user


def _broker_user() -> str:
    """As root, Mosquitto drops to ``mosquitto`` as in the container; otherwise it stays us."""
    return "mosquitto" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def _host_secrets(directory: Path) -> dict[str, str]:
    """var/mosquitto/{auth,certs} as an operator leaves them: mode 0600, not the broker's."""
    (directory / "auth").mkdir(parents=True)
    (directory / "certs").mkdir()
    users = {"flarewatch-service": new_password()}
    (directory / "auth" / "passwords").write_text(
        password_file({user: hash_password(pw) for user, pw in users.items()})
    )
    (directory / "auth" / "acl").write_text(acl_file({}, service_user="flarewatch-service"))
    (directory / "ca").mkdir()
    _, cert, key = make_certificates(directory / "ca")
    cert.rename(directory / "certs" / "server.crt")
    key.rename(directory / "certs" / "server.key")
    shutil.rmtree(directory / "ca")
    for path in directory.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
        if os.geteuid() == 0:
            os.chown(path, HOST_OWNER_UID, HOST_OWNER_UID)
    return users


def _broker_config(path: Path, runtime: Path, port: int, tls_port: int) -> Path:
    """deploy/mosquitto/mosquitto.conf's auth and TLS lines, pointed at ``runtime``."""
    path.write_text(
        f"log_dest stdout\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {runtime}/auth/passwords\nacl_file {runtime}/auth/acl\n"
        f"listener {tls_port} 127.0.0.1\n"
        f"certfile {runtime}/certs/server.crt\nkeyfile {runtime}/certs/server.key\n"
    )
    return path


def test_broker_reads_secrets_that_are_unreadable_where_they_are_mounted(tmp_path: Path) -> None:
    """Mosquitto 2 opens its password file and TLS key after dropping root: in place it exits;
    through start-broker.sh (the container's entrypoint) it starts and checks passwords."""
    # Only the modes and owners of the secrets may stand in the broker's way, as in the
    # container: pytest's tmp_path is private to us, so everything lives in an open directory.
    base = Path(tempfile.mkdtemp(prefix="flarewatch-broker-"))
    base.chmod(0o755)
    host, runtime = base / "host", base / "runtime"
    users = _host_secrets(host)
    mosquitto = find_binary("mosquitto")
    port, tls_port = free_port(), free_port()
    user_line = f"user {_broker_user()}\n"
    try:
        if os.geteuid() == 0:  # the failure the script prevents, with the container's broker user
            in_place = _broker_config(tmp_path / "in-place.conf", host, port, tls_port)
            in_place.write_text(user_line + in_place.read_text())
            failed = subprocess.run(
                [mosquitto, "-c", str(in_place)], capture_output=True, text=True, timeout=20
            )
            assert failed.returncode != 0 and "Unable to open pwfile" in failed.stdout
        config = _broker_config(tmp_path / "broker.conf", runtime, port, tls_port)
        config.write_text(user_line + config.read_text())
        env = {
            **os.environ,
            "FLAREWATCH_BROKER_SECRETS": str(host),
            "FLAREWATCH_BROKER_RUNTIME": str(runtime),
            "FLAREWATCH_BROKER_USER": _broker_user(),
        }
        with subprocess.Popen(
            ["sh", str(START_BROKER), mosquitto, "-c", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        ) as broker:
            try:
                _wait_for_listener(tls_port, broker)
                ((user, password),) = users.items()
                assert not connack(port, user, password).is_failure
                assert connack(port, user, "wrong").is_failure
            finally:
                broker.terminate()
                broker.wait(10)
        copied = sorted(p.relative_to(runtime).as_posix() for p in runtime.rglob("*"))
        assert copied == ["auth", "auth/acl", "auth/passwords", "certs", "certs/server.crt",
                          "certs/server.key"]  # fmt: skip
        broker_uid = pwd.getpwnam(_broker_user()).pw_uid
        for path in runtime.rglob("*"):
            assert path.stat().st_uid == broker_uid
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600)
        # A missing file is named, and nothing is started.
        (host / "auth" / "acl").unlink()
        refused = subprocess.run(
            ["sh", str(START_BROKER), "true"], env=env, capture_output=True, text=True, timeout=20
        )
        assert refused.returncode == 1 and "auth/acl" in refused.stderr
    finally:
        shutil.rmtree(base)


def _wait_for_listener(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def test_the_service_container_makes_researchers_sign_in_in_two_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [key for key in os.environ if key.startswith("FLAREWATCH_")]:
        monkeypatch.delenv(name)
    for extra, roles in (({}, ["researcher"]), ({"FLAREWATCH_SECOND_FACTOR_ROLES": "[]"}, [])):
        for name, value in service_environment("service", documented_env() | extra).items():
            monkeypatch.setenv(name, value)
        assert load_settings(None).service.second_factor_roles == roles
