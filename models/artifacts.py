"""Versioned model artifacts saved with skops (never pickle), and the bank built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import skops.io as sio

from models.bank import DetectorBank
from models.confirm import FEATURES, Confirmer
from models.const import MODEL_VERSION
from models.detector import PatientDetector
from models.errors import ArtifactError

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
"""Where the released artifacts live (shipped as package data)."""

CONFIRMER_FILE = "confirmer.skops"

TRUSTED_TYPES: tuple[str, ...] = ()
"""Types beyond skops' default-trusted scikit-learn/numpy ones that an artifact may hold: none."""


def save_confirmer(confirmer: Confirmer, path: Path, metadata: dict[str, Any]) -> None:
    """Write the confirmer, its feature list, the rules version and ``metadata`` to ``path``."""
    payload = {
        "format": 1,
        "rules_version": MODEL_VERSION,
        "version": confirmer.version,
        "threshold": confirmer.threshold,
        "features": list(FEATURES),
        "models": dict(confirmer.models),
        "bounds": {kind: [list(low), list(high)] for kind, (low, high) in confirmer.bounds.items()},
        "metadata": metadata,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(payload, path)


def load_confirmer(path: Path) -> Confirmer:
    """Load a confirmer saved by :func:`save_confirmer`, refusing unexpected types or versions."""
    if not path.is_file():
        raise ArtifactError(path, "file not found; run `flarewatch evaluate --train` to build it")
    try:
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    except Exception as exc:  # skops raises many kinds on a corrupt zip
        raise ArtifactError(path, f"unreadable ({exc.__class__.__name__})") from exc
    if untrusted:
        raise ArtifactError(path, f"holds untrusted types {untrusted}; refusing to load")
    payload = sio.load(path, trusted=list(TRUSTED_TYPES))
    if payload.get("rules_version") != MODEL_VERSION:
        raise ArtifactError(
            path,
            f"built for rules {payload.get('rules_version')!r}, these are {MODEL_VERSION!r}: "
            "retrain it with `flarewatch evaluate --train`",
        )
    if tuple(payload.get("features", ())) != FEATURES:
        raise ArtifactError(path, "feature list differs from this code; retrain it")
    bounds = {kind: (low, high) for kind, (low, high) in payload.get("bounds", {}).items()}
    return Confirmer(
        payload["models"], str(payload["version"]), float(payload["threshold"]), bounds
    )


def default_bank(*, confirmer_path: Path | None = None, rules_only: bool = False) -> DetectorBank:
    """The bank the service and the replay CLI run: rules plus the released confirmer if any."""
    if rules_only:
        return DetectorBank(PatientDetector())
    path = confirmer_path or ARTIFACT_DIR / CONFIRMER_FILE
    if confirmer_path is None and not path.is_file():
        return DetectorBank(PatientDetector())
    return DetectorBank(PatientDetector(), load_confirmer(path))
