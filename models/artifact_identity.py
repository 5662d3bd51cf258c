"""What a confirmer's answers are: a digest of what decides them, and its scores on a probe.

The digest names a model exactly (two trainings from the same inputs give the same one, any
change another); the probe scores tell whether another scikit-learn or numpy computes them
alike. :mod:`models.artifacts` saves both and checks them when it loads an artifact.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
from typing import Any, Final, TypeGuard

import numpy as np
import sklearn
import skops
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.confirm import FEATURES, Confirmer
from models.const import MODEL_VERSION

PROBE_TOLERANCE: Final = 1e-9
"""Largest difference in a probe score between where an artifact was saved and here: another
scikit-learn or numpy moves a logistic regression's probabilities by ~1e-16, a change in how it
scores by far more."""


DIGEST_IN_VERSION_CHARS: Final = 12
"""Hex digits of the content digest in a trained confirmer's version: 48 bits, so two models of
one deployment never share a name, short enough to read in an alarm."""

_NAMED_DIGEST = re.compile(rf"-([0-9a-f]{{{DIGEST_IN_VERSION_CHARS}}})$")


def versioned(name: str, confirmer: Confirmer) -> str:
    """``name`` followed by the start of the confirmer's digest: the version training gives it."""
    return f"{name}-{content_digest(confirmer)[:DIGEST_IN_VERSION_CHARS]}"


def named_digest(version: str) -> str | None:
    """The start of a digest a version names (as :func:`versioned` makes it), if any."""
    found = _NAMED_DIGEST.search(version)
    return None if found is None else found.group(1)


def software() -> dict[str, str]:
    """The versions that trained (or load) an artifact, for its metadata and model card."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
    }


def trained_shape(model: object) -> TypeGuard[Pipeline]:
    """Whether ``model`` is what training makes: a StandardScaler, then a LogisticRegression."""
    if not isinstance(model, Pipeline) or type(model) is not Pipeline or len(model.steps) != 2:
        return False
    (_, scaler), (_, regression) = model.steps
    return type(scaler) is StandardScaler and type(regression) is LogisticRegression


def is_number(value: object) -> TypeGuard[float]:
    """A real number (Python or numpy), not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def content_digest(confirmer: Confirmer) -> str:
    """SHA-256 of everything that decides the confirmer's answers (not its name).

    Exact (floats in hex), so two trainings from the same inputs give the same digest and any
    other model another one; training names its version after it (``confirm-SEED-DIGEST``).
    """
    described = {
        "rules_version": MODEL_VERSION,
        "features": list(FEATURES),
        "threshold": float(confirmer.threshold).hex(),
        "bounds": {
            kind: [[float(v).hex() for v in side] for side in low_high]
            for kind, low_high in sorted(confirmer.bounds.items())
        },
        "models": {kind: _parameters(model) for kind, model in sorted(confirmer.models.items())},
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _parameters(model: Pipeline) -> dict[str, Any]:
    """What a scaler-and-logistic-regression pipeline scores with."""
    scaler, regression = model[0], model[-1]
    arrays = {
        "mean": scaler.mean_,
        "scale": scaler.scale_,
        "coef": regression.coef_,
        "intercept": regression.intercept_,
        "classes": regression.classes_,
    }
    return {
        "with_mean": bool(scaler.with_mean),
        "with_std": bool(scaler.with_std),
        **{
            name: [] if array is None else [float(v).hex() for v in np.ravel(array)]
            for name, array in arrays.items()
        },
    }


def probe_scores(confirmer: Confirmer) -> dict[str, list[float]]:
    """Each model's probabilities on fixed rows (zeros, ones, its bounds and their middle)."""
    out = {}
    for kind, model in sorted(confirmer.models.items()):
        rows = [np.zeros(len(FEATURES)), np.ones(len(FEATURES))]
        if kind in confirmer.bounds:
            low, high = (np.asarray(side, dtype=float) for side in confirmer.bounds[kind])
            rows += [low, (low + high) / 2.0, high]
        out[kind] = [float(p) for p in model.predict_proba(np.vstack(rows))[:, 1]]
    return out


def same_scores(saved: object, actual: dict[str, list[float]]) -> bool:
    """Whether a saved probe (as loaded: anything) holds the scores computed here."""
    if not isinstance(saved, dict) or set(saved) != set(actual):
        return False
    for kind, scores in actual.items():
        expected = saved[kind]
        if not (
            isinstance(expected, list)
            and len(expected) == len(scores)
            and all(is_number(v) and math.isfinite(v) for v in expected)
        ):
            return False
        if not np.allclose(expected, scores, rtol=0.0, atol=PROBE_TOLERANCE):
            return False
    return True
