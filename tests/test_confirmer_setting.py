"""A care team's own confirmer: `evaluate --train` writes it only where told, and the service and
the profile replay run the one `service.confirmer_path` names (or refuse a missing one clearly)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from flarewatch.cli import main
from flarewatch.settings import Settings, load_settings
from models.artifacts import ARTIFACT_DIR, CONFIRMER_FILE, load_confirmer, save_confirmer
from models.confirm import Confirmer
from models.errors import ArtifactError
from service.alerts.runtime import AlertingRuntime


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_without_model_is_refused_and_leaves_the_released_confirmer_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    released = ARTIFACT_DIR / CONFIRMER_FILE
    card = ARTIFACT_DIR / "MODEL_CARD.md"
    before = _digest(released), _digest(card)
    args = ["evaluate", "--train", "--split", "holdout", "--max-sessions", "1"]
    assert main([*args, "--max-fitbit-days", "1", "--out", str(tmp_path)]) == 2
    assert "--model PATH" in capsys.readouterr().err
    assert (_digest(released), _digest(card)) == before
    assert not list(tmp_path.iterdir())  # nothing evaluated, nothing written


def _settings(tmp_path: Path, confirmer: Path | None) -> Settings:
    return load_settings(
        mqtt={"url": "mqtt://127.0.0.1:1"},
        store={"kind": "sqlite", "sqlite_path": tmp_path / "samples.sqlite3"},
        service={
            "database_url": f"sqlite:///{tmp_path}/service.sqlite3",
            "confirmer_path": confirmer,
        },
    )


def test_the_service_runs_the_confirmer_its_settings_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.alerts.runtime")
    own = tmp_path / "ours" / "confirmer.skops"
    released = load_confirmer(ARTIFACT_DIR / CONFIRMER_FILE)
    save_confirmer(Confirmer(released.models, "ours-labelled", 0.4), own, {"note": "test"})
    runtime = AlertingRuntime(_settings(tmp_path, own), serve_api=False)
    assert runtime.processor.bank.model_version.endswith("+ours-labelled")
    assert any(r.getMessage().endswith("+ours-labelled") for r in caplog.records)  # says which
    default = AlertingRuntime(_settings(tmp_path, None), serve_api=False)
    assert default.processor.bank.model_version.endswith(f"+{released.version}")


def test_a_missing_confirmer_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    absent = tmp_path / "nowhere" / "confirmer.skops"
    with pytest.raises(ArtifactError, match=r"nowhere/confirmer\.skops.*file not found"):
        AlertingRuntime(_settings(tmp_path, absent), serve_api=False)
