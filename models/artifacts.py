"""Versioned model artifacts saved with skops (never pickle), and the bank built from them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import skops.io as sio

from models.alarm import AlarmKind
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

_PAYLOAD_KEYS = ("format", "rules_version", "version", "threshold", "features", "models", "bounds")
_ONSET_KINDS = frozenset({AlarmKind.FLUSH.value, AlarmKind.ANAPHYLAXIS.value})


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
    """Load a confirmer saved by :func:`save_confirmer`, refusing unexpected types or versions.

    Anything else (another object, a damaged file, a model that cannot score the features)
    raises ArtifactError with what is wrong, never an error from deep inside the loader.
    """
    if not path.is_file():
        raise ArtifactError(
            path, "file not found; build one with `flarewatch evaluate --train --model PATH`"
        )
    try:
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    except Exception as exc:  # skops raises many kinds on a corrupt zip
        raise ArtifactError(path, f"unreadable ({exc.__class__.__name__})") from exc
    if untrusted:
        raise ArtifactError(path, f"holds untrusted types {untrusted}; refusing to load")
    try:
        payload = sio.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # a damaged member (array, schema) fails in as many ways
        raise ArtifactError(path, f"unreadable ({exc.__class__.__name__})") from exc
    return _confirmer_from(payload, path)


def _confirmer_from(payload: object, path: Path) -> Confirmer:
    """The confirmer a loaded payload describes, once every part of it has the expected shape."""
    if not isinstance(payload, dict):
        raise ArtifactError(
            path, f"holds a {type(payload).__name__}, not a confirmer saved by flarewatch"
        )
    missing = [key for key in _PAYLOAD_KEYS if key not in payload]
    if missing:
        raise ArtifactError(path, f"not a confirmer saved by flarewatch: no {missing}")
    if payload["format"] != 1:
        raise ArtifactError(path, f"saved in format {payload['format']!r}, this code reads 1")
    if payload["rules_version"] != MODEL_VERSION:
        raise ArtifactError(
            path,
            f"built for rules {payload['rules_version']!r}, these are {MODEL_VERSION!r}: "
            "retrain it with `flarewatch evaluate --train --model PATH`",
        )
    features = payload["features"]
    if not isinstance(features, list) or tuple(features) != FEATURES:
        raise ArtifactError(path, "feature list differs from this code; retrain it")
    threshold, version = payload["threshold"], payload["version"]
    if not (_is_number(threshold) and 0.0 <= threshold <= 1.0) or not isinstance(version, str):
        raise ArtifactError(path, "threshold must be a number in [0, 1] and version a string")
    models = _models(payload["models"], path)
    return Confirmer(models, version, float(threshold), _bounds(payload["bounds"], path))


def _models(models: object, path: Path) -> dict[str, Any]:
    """Per-kind classifiers that score one row of FEATURES into two class probabilities."""
    if not isinstance(models, dict) or not set(models) <= _ONSET_KINDS:
        raise ArtifactError(path, f"models must map some of {sorted(_ONSET_KINDS)} to a model")
    for kind, model in models.items():
        try:
            shape = np.shape(model.predict_proba(np.zeros((1, len(FEATURES)))))
        except Exception as exc:  # not a classifier, unfitted, fitted on other features...
            raise ArtifactError(
                path, f"the {kind} model cannot score the features ({exc.__class__.__name__})"
            ) from exc
        if shape != (1, 2):
            raise ArtifactError(path, f"the {kind} model gives {shape} scores, not 2 classes")
    return models


def _bounds(bounds: object, path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Per-kind lowest and highest training value of each feature (finite numbers)."""
    shape = f"bounds must map some of {sorted(_ONSET_KINDS)} to [low, high] of the features"
    if not isinstance(bounds, dict) or not set(bounds) <= _ONSET_KINDS:
        raise ArtifactError(path, shape)
    out: dict[str, tuple[list[float], list[float]]] = {}
    for kind, low_high in bounds.items():
        if not (isinstance(low_high, list | tuple) and len(low_high) == 2) or not all(
            isinstance(side, list | tuple)
            and len(side) == len(FEATURES)
            and all(_is_number(v) and math.isfinite(v) for v in side)
            for side in low_high
        ):
            raise ArtifactError(path, shape)
        out[kind] = ([float(v) for v in low_high[0]], [float(v) for v in low_high[1]])
    return out


def _is_number(value: object) -> TypeGuard[float]:
    """A real number (Python or numpy), not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def default_bank(*, confirmer_path: Path | None = None, rules_only: bool = False) -> DetectorBank:
    """The bank the service and the replay CLI run: rules plus the released confirmer if any."""
    if rules_only:
        return DetectorBank(PatientDetector())
    path = confirmer_path or ARTIFACT_DIR / CONFIRMER_FILE
    if confirmer_path is None and not path.is_file():
        return DetectorBank(PatientDetector())
    return DetectorBank(PatientDetector(), load_confirmer(path))
