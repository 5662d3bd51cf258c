"""Loading a confirmer artifact: anything but one saved by flarewatch for these rules, intact, is
refused with ArtifactError saying what is wrong (never a traceback from inside the loader)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from flarewatch.cli import main
from models.artifacts import ARTIFACT_DIR, CONFIRMER_FILE, load_confirmer
from models.confirm import FEATURES
from models.errors import ArtifactError

RELEASED = ARTIFACT_DIR / CONFIRMER_FILE


def released_payload() -> dict[str, Any]:
    payload = sio.load(RELEASED, trusted=[])
    assert isinstance(payload, dict)
    return payload


def fitted(n_features: int) -> LogisticRegression:
    x = np.arange(4 * n_features, dtype=float).reshape(4, n_features)
    return LogisticRegression().fit(x, [0, 1, 0, 1])


DAMAGES: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "plain-estimator": (lambda p: fitted(len(FEATURES)), "holds a LogisticRegression"),
    "list": (lambda p: [1, 2], "holds a list"),
    "no-models": (lambda p: {k: v for k, v in p.items() if k != "models"}, r"no \['models'\]"),
    "no-threshold": (lambda p: {k: v for k, v in p.items() if k != "threshold"}, "threshold"),
    "null-threshold": (lambda p: {**p, "threshold": None}, "threshold"),
    "bounds-3-parts": (lambda p: {**p, "bounds": {"anaphylaxis": [1, 2, 3]}}, "bounds"),
    "bounds-nan": (
        lambda p: {**p, "bounds": {"anaphylaxis": [[0.0] * 7, [float("nan")] * 7]}},
        "bounds",
    ),
    "model-is-text": (lambda p: {**p, "models": {"anaphylaxis": "notamodel"}}, "cannot score"),
    "model-of-3-features": (
        lambda p: {**p, "models": {"anaphylaxis": fitted(3)}},
        "cannot score",
    ),
    "unknown-kind": (lambda p: {**p, "models": {"no_data": fitted(len(FEATURES))}}, "models"),
    "other-format": (lambda p: {**p, "format": 2}, "format"),
}


@pytest.mark.parametrize("name", list(DAMAGES))
def test_a_foreign_or_damaged_payload_is_refused(tmp_path: Path, name: str) -> None:
    damage, message = DAMAGES[name]
    path = tmp_path / "confirmer.skops"
    sio.dump(damage(released_payload()), path)
    with pytest.raises(ArtifactError, match=message):
        load_confirmer(path)


def test_a_corrupt_array_inside_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "confirmer.skops"
    with zipfile.ZipFile(RELEASED) as src, zipfile.ZipFile(path, "w") as dst:
        members = src.infolist()
        assert any(m.filename.endswith(".npy") for m in members)
        for member in members:
            data = src.read(member.filename)
            dst.writestr(member, data[:20] if member.filename.endswith(".npy") else data)
    with pytest.raises(ArtifactError, match="unreadable"):
        load_confirmer(path)


def test_the_released_artifact_still_loads_and_scores() -> None:
    confirmer = load_confirmer(RELEASED)
    assert set(confirmer.models) <= {"anaphylaxis", "flush"}
    for low, high in confirmer.bounds.values():
        assert len(low) == len(high) == len(FEATURES)


def test_detect_with_a_damaged_model_says_so_without_a_traceback(tmp_path: Path, capsys) -> None:
    model = tmp_path / "confirmer.skops"
    sio.dump({**released_payload(), "models": {"anaphylaxis": "notamodel"}}, model)
    rec = tmp_path / "rec.csv"
    rec.write_text("time_s,hr_bpm\n" + "".join(f"{1_764_000_000 + 5 * i},70\n" for i in range(9)))
    assert main(["detect", "--input", str(rec), "--model", str(model)]) == 1
    err = capsys.readouterr().err
    assert "model artifact" in err and "cannot score" in err and "Traceback" not in err
