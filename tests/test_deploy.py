"""The production stack's files: compose validates against the Compose Specification, every file
it mounts exists, and Grafana's provisioning parses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

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
