"""Versioned model artifacts saved with skops (never pickle), and the bank built from them.

An artifact holds only what :func:`models.training.train_confirmer` makes (a scaler and a logistic
regression per kind, a threshold no higher than ``CONFIRM_THRESHOLD``), a digest of everything
that decides its answers and its scores on a fixed probe. Loading checks all three, so the version
an alarm carries names the model that judged it: a file changed since it was saved, or a
scikit-learn that scores it otherwise, is refused rather than run under another model's name.
"""

from __future__ import annotations

import io
import json
import logging
import math
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops
import skops.io as sio
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.pipeline import Pipeline

from flarewatch.output_files import replacing_file, writing
from models.alarm import AlarmKind
from models.artifact_identity import (
    content_digest,
    is_number,
    named_digest,
    probe_scores,
    same_scores,
    software,
    trained_shape,
)
from models.bank import DetectorBank
from models.confirm import FEATURES, Confirmer
from models.const import CONFIRM_THRESHOLD, MODEL_VERSION
from models.detector import PatientDetector
from models.errors import ArtifactError

log = logging.getLogger(__name__)

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
"""Where the released artifacts live (shipped as package data)."""

CONFIRMER_FILE = "confirmer.skops"

TRUSTED_TYPES: tuple[str, ...] = ()
"""Types beyond skops' default-trusted scikit-learn/numpy ones that an artifact may hold: none."""

_PAYLOAD_KEYS = ("format", "rules_version", "version", "threshold", "features", "models", "bounds")
_ONSET_KINDS = frozenset({AlarmKind.FLUSH.value, AlarmKind.ANAPHYLAXIS.value})
_TRAINED_SHAPE = "a Pipeline of StandardScaler, LogisticRegression"


def save_confirmer(confirmer: Confirmer, path: Path, metadata: dict[str, Any]) -> None:
    """Write the confirmer, its feature list, the rules version and ``metadata`` to ``path``.

    The file is written whole or not at all (a temporary file beside it, renamed once complete):
    the service loads ``path`` at its next start, and half a file there would keep it from
    starting. It is its owner's only, since one trained on a care team's labelled episodes holds
    the extremes of their features (``bounds``).
    """
    for kind, model in confirmer.models.items():
        if not trained_shape(model):
            raise ArtifactError(path, f"the {kind} model is not {_TRAINED_SHAPE}; not saved")
    payload = {
        "format": 1,
        "rules_version": MODEL_VERSION,
        "version": confirmer.version,
        "threshold": confirmer.threshold,
        "features": list(FEATURES),
        "models": dict(confirmer.models),
        "bounds": {kind: [list(low), list(high)] for kind, (low, high) in confirmer.bounds.items()},
        "digest": content_digest(confirmer),
        "probe": probe_scores(confirmer),
        "metadata": {**metadata, "software": software()},
    }
    with writing("--model", path):
        path.parent.mkdir(parents=True, exist_ok=True)
    with replacing_file(path, "--model") as temporary:
        sio.dump(payload, temporary)


def load_confirmer(path: Path) -> Confirmer:
    """Load a confirmer saved by :func:`save_confirmer`, refusing unexpected types or versions.

    Anything else (another object, a damaged file, a model that cannot score the features, one
    that training does not make, changed since it was saved or scoring otherwise here) raises
    ArtifactError with what is wrong, never an error from deep inside the loader.
    """
    if path.is_dir():
        raise ArtifactError(path, "is a folder; name the model's .skops file in it")
    if not path.is_file():
        raise ArtifactError(
            path, "file not found; build one with `flarewatch evaluate --train --model PATH`"
        )
    try:
        data = path.read_bytes()  # once: what is checked below is what is loaded
    except OSError as exc:
        raise ArtifactError(path, f"cannot read ({exc.strerror or exc})") from exc
    if _is_pickle(data):
        raise ArtifactError(
            path,
            "is a pickle, which flarewatch never loads (unpickling can run any code): train a "
            "confirmer with `flarewatch evaluate --train --model PATH`, saved with skops",
        )
    try:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    except Exception as exc:  # skops raises many kinds on a corrupt zip
        raise _unreadable(path, data, exc) from exc
    if untrusted:
        raise ArtifactError(path, f"holds untrusted types {untrusted}; refusing to load")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            payload = sio.loads(data, trusted=list(TRUSTED_TYPES))
        except Exception as exc:  # a damaged member (array, schema) fails in as many ways
            raise _unreadable(path, data, exc) from exc
    saved_with = _other_scikit_learn(caught)
    confirmer = _confirmer_from(payload, path)
    _check_probe(payload, confirmer, path, saved_with)
    return confirmer


def _unreadable(path: Path, data: bytes, exc: Exception) -> ArtifactError:
    """Why skops cannot read ``data``: another skops wrote it (say which), or it is damaged."""
    saved_by = _skops_version_of(data)
    if saved_by is not None and saved_by != skops.__version__:
        return ArtifactError(
            path,
            f"saved by skops {saved_by}, this is {skops.__version__}, which cannot read it "
            f"({exc.__class__.__name__}): install skops {saved_by} or later, or train it again",
        )
    return ArtifactError(path, f"unreadable ({exc.__class__.__name__})")


def _skops_version_of(data: bytes) -> str | None:
    """The skops version recorded in an artifact's schema, if it can be read at all."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, RuntimeError, zlib.error):
        return None  # damaged (or compressed as zipfile cannot read): said as unreadable
    version = schema.get("_skops_version") if isinstance(schema, dict) else None
    return version if isinstance(version, str) else None


def _is_pickle(data: bytes) -> bool:
    """Whether ``data`` starts as a pickle does (protocol 2 to 5: joblib's and pickle's dumps)."""
    return len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def _other_scikit_learn(caught: list[warnings.WarningMessage]) -> str | None:
    """The scikit-learn an artifact was saved with, if not this one; other warnings go on."""
    saved_with = None
    for warning in caught:
        if isinstance(warning.message, InconsistentVersionWarning):
            saved_with = warning.message.original_sklearn_version
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return saved_with


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
    if not (is_number(threshold) and 0.0 <= threshold <= CONFIRM_THRESHOLD) or not isinstance(
        version, str
    ):
        raise ArtifactError(
            path,
            f"threshold must be a number in [0, {CONFIRM_THRESHOLD:g}] (training sets none "
            "higher) and version a string",
        )
    models = _models(payload["models"], path)
    confirmer = Confirmer(models, version, float(threshold), _bounds(payload["bounds"], path))
    actual = content_digest(confirmer)
    digest = payload.get("digest")  # none in artifacts saved before digests were recorded
    if digest is not None and digest != actual:
        raise ArtifactError(
            path,
            f"changed since it was saved (its content does not match its digest), yet it "
            f"names itself {version!r}: restore the file `flarewatch evaluate --train` wrote, "
            "or train it again",
        )
    named = named_digest(version)
    if named is not None and not actual.startswith(named):
        # the alarms would carry the trained model's name for what another model decided
        raise ArtifactError(
            path,
            f"is not the model its version {version!r} names (its content digest starts "
            f"{actual[: len(named)]}): a changed model under another model's name; restore the "
            "file `flarewatch evaluate --train` wrote, or train it again",
        )
    return confirmer


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
        if not trained_shape(model):
            # skops trusts every scikit-learn estimator by default: nothing runs on load, but a
            # constant classifier would veto every alarm as quietly as a fitted one confirms
            raise ArtifactError(
                path, f"the {kind} model, {_described(model)}, is not what training makes"
            )
    return models


def _described(model: object) -> str:
    """A model's class, with its steps' for a pipeline: ``a Pipeline of A, B``."""
    if isinstance(model, Pipeline):
        steps = ", ".join(type(step).__name__ for _, step in model.steps)
        return f"a Pipeline of {steps}"
    return f"a {type(model).__name__}"


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
            and all(is_number(v) and math.isfinite(v) for v in side)
            for side in low_high
        ):
            raise ArtifactError(path, shape)
        out[kind] = ([float(v) for v in low_high[0]], [float(v) for v in low_high[1]])
    return out


def _check_probe(
    payload: dict[str, Any], confirmer: Confirmer, path: Path, saved_with: str | None
) -> None:
    """Refuse a confirmer that scores its probe otherwise here; say so when scikit-learn differs."""
    here = sklearn.__version__
    probe = payload.get("probe")  # none in artifacts saved before probes were recorded
    if probe is None:
        if saved_with is not None:
            log.warning(
                "model artifact %s was saved with scikit-learn %s, this is %s, and holds no "
                "probe to check its scores with: train it again with this flarewatch",
                path,
                saved_with,
                here,
            )
        return
    actual = probe_scores(confirmer)
    if not same_scores(probe, actual):
        there = f"{saved_with} there, {here} here" if saved_with else here
        raise ArtifactError(
            path,
            f"scores differently here than where it was saved (scikit-learn {there}): train it "
            "again with this flarewatch",
        )
    if saved_with is not None:
        log.warning(
            "model artifact %s was saved with scikit-learn %s, this is %s: it gives the same "
            "scores on its saved probe",
            path,
            saved_with,
            here,
        )


def default_bank(*, confirmer_path: Path | None = None, rules_only: bool = False) -> DetectorBank:
    """The bank the service and the replay CLI run: rules plus the released confirmer if any."""
    if rules_only:
        return DetectorBank(PatientDetector())
    path = confirmer_path or ARTIFACT_DIR / CONFIRMER_FILE
    if confirmer_path is None and not path.is_file():
        # a source checkout before its first training, or a package built without its data
        log.warning(
            "no confirmer at %s (none released with this flarewatch): the rules alone decide",
            path,
        )
        return DetectorBank(PatientDetector())
    return DetectorBank(PatientDetector(), load_confirmer(path))
