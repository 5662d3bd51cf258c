"""The confirmer artifact's life cycle, as an operator, a reader of its model card and someone who
can put a file where the model is expected see it: written whole (a crash mid-write leaves the
previous model), owner-only, named by a version that tells two models apart, refused when it is not
what training makes or was changed since, and described by a card that says what was measured."""

from __future__ import annotations

import logging
import os
import pickle
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn
import skops
import skops.io as sio
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from flarewatch.cli import main
from models import artifacts
from models.alarm import Alarm, AlarmKind, Severity
from models.artifact_identity import content_digest
from models.artifacts import ARTIFACT_DIR, CONFIRMER_FILE, load_confirmer, save_confirmer
from models.confirm import FEATURES, Confirmer
from models.errors import ArtifactError
from models.training import train_confirmer

RELEASED = ARTIFACT_DIR / CONFIRMER_FILE


def candidates(seed: int) -> list[tuple[Alarm, int]]:
    """Onset candidates of six wearers, enough for a model per kind (positives shifted)."""
    rng = np.random.default_rng(seed)
    out = []
    for wearer in range(6):
        for label, count in ((1, 40), (0, 25)):
            for _ in range(count):
                evidence = {name: float(rng.normal()) for name in FEATURES}
                evidence["surge_score"] = float(rng.normal(1.5 * label, 1.0))
                alarm = Alarm(
                    f"w{wearer}", 0.0, AlarmKind.ANAPHYLAXIS, Severity.WARNING, "t", False, evidence
                )
                out.append((alarm, label))
    return out


@pytest.fixture(scope="module")
def trained() -> Confirmer:
    confirmer, _ = train_confirmer(candidates(0), seed=1, version="confirm-1")
    assert "anaphylaxis" in confirmer.models
    return confirmer


@pytest.fixture
def umask_022() -> Iterator[None]:
    before = os.umask(0o022)  # the usual default: a file written plainly is world-readable
    yield
    os.umask(before)


# --- writing ----------------------------------------------------------------------------------


def test_a_save_killed_mid_write_leaves_the_previous_model_in_place(
    tmp_path: Path, trained: Confirmer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "confirmer.skops"
    save_confirmer(trained, path, {})
    before = load_confirmer(path).version
    real_dump = sio.dump

    def killed_mid_write(obj: Any, file: Path) -> None:
        real_dump(obj, file)
        with file.open("r+b") as half:  # the process dies with half the zip on disk
            half.truncate(file.stat().st_size // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(sio, "dump", killed_mid_write)
    other = Confirmer(trained.models, "confirm-2", trained.threshold / 2, trained.bounds)
    with pytest.raises(KeyboardInterrupt):
        save_confirmer(other, path, {})
    monkeypatch.undo()
    assert load_confirmer(path).version == before  # the service restarts on the old model
    assert [p.name for p in tmp_path.iterdir()] == ["confirmer.skops"]  # no half file left


def test_the_artifact_is_owner_only(tmp_path: Path, trained: Confirmer, umask_022: None) -> None:
    # trained on a care team's labelled episodes it holds their features' extremes (bounds)
    path = tmp_path / "confirmer.skops"
    save_confirmer(trained, path, {})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- versions ---------------------------------------------------------------------------------


def test_a_version_names_one_model(trained: Confirmer) -> None:
    again, _ = train_confirmer(candidates(0), seed=1, version="confirm-1")
    other, _ = train_confirmer(candidates(7), seed=1, version="confirm-1")  # other labels
    alarms = [a for a, _ in candidates(3)]
    # same inputs: the same model, scoring alike, under the same name (reproducible)
    assert again.version == trained.version
    assert again.probabilities(alarms) == trained.probabilities(alarms)
    # other inputs, same seed: another model, which the alarms it raises must name
    assert other.probabilities(alarms) != trained.probabilities(alarms)
    assert other.version != trained.version
    assert trained.version.startswith("confirm-1-")


def _dumped(path: Path, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Path:
    payload = sio.load(path, trusted=[])
    sio.dump(change(payload), path)
    return path


def _scaled_coefficients(payload: dict[str, Any]) -> dict[str, Any]:
    payload["models"]["anaphylaxis"][-1].coef_ *= 3.0
    return payload


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p: {**p, "threshold": p["threshold"] * 0.5}, id="threshold"),
        pytest.param(_scaled_coefficients, id="weights"),
        pytest.param(lambda p: {**p, "bounds": {}}, id="bounds"),
    ],
)
def test_a_model_changed_after_training_is_refused(
    tmp_path: Path, trained: Confirmer, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    # it would raise alarms under the version of the model it was made from
    path = tmp_path / "confirmer.skops"
    save_confirmer(trained, path, {})
    with pytest.raises(ArtifactError, match="changed since it was saved"):
        load_confirmer(_dumped(path, change))


def test_a_changed_model_cannot_keep_a_trained_models_name(
    tmp_path: Path, trained: Confirmer
) -> None:
    # changed with care: its digest recomputed, its probe too, but the trained model's version kept
    path = tmp_path / "confirmer.skops"
    save_confirmer(trained, path, {})
    lowered = Confirmer(trained.models, trained.version, trained.threshold / 2, trained.bounds)

    def disguised(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "threshold": lowered.threshold, "digest": content_digest(lowered)}

    with pytest.raises(ArtifactError, match="another model's name"):
        load_confirmer(_dumped(path, disguised))


def _veto_everything() -> DummyClassifier:
    return DummyClassifier(strategy="constant", constant=0).fit(
        np.zeros((2, len(FEATURES))), [0, 1]
    )


def _transformed(payload: dict[str, Any]) -> Any:
    return make_pipeline(FunctionTransformer(np.negative), payload["models"]["anaphylaxis"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda p: {**p, "models": {"anaphylaxis": _veto_everything()}},
            "is not what training makes",
            id="constant-veto",
        ),
        pytest.param(
            lambda p: {**p, "models": {"anaphylaxis": _transformed(p)}},
            "is not what training makes",
            id="function-transformer",
        ),
        pytest.param(lambda p: {**p, "threshold": 1.0}, "threshold", id="threshold-1"),
    ],
)
def test_what_training_cannot_make_is_refused(
    tmp_path: Path, change: Callable[[dict[str, Any]], dict[str, Any]], message: str
) -> None:
    # skops' default trust admits every scikit-learn estimator and numpy ufunc: nothing runs on
    # load, but a trusted estimator can still veto every anaphylaxis alarm
    path = tmp_path / "confirmer.skops"
    path.write_bytes(RELEASED.read_bytes())
    with pytest.raises(ArtifactError, match=message):
        load_confirmer(_dumped(path, change))


class _RunsOnUnpickling:
    """Unpickled, it would create ``path``: what a pickle planted as a model can do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


def test_a_pickle_is_refused_unopened_and_named(tmp_path: Path) -> None:
    path = tmp_path / "confirmer.skops"
    ran = tmp_path / "ran"
    path.write_bytes(pickle.dumps(_RunsOnUnpickling(ran)))
    with pytest.raises(ArtifactError, match="a pickle, which flarewatch never loads"):
        load_confirmer(path)
    assert not ran.exists()


def test_a_folder_named_as_the_model_is_not_called_missing(tmp_path: Path) -> None:
    # FLAREWATCH_SERVICE__CONFIRMER_PATH=/var/lib/flarewatch (the folder, not the file)
    with pytest.raises(ArtifactError, match=r"is a folder; name the model's \.skops file in it"):
        load_confirmer(tmp_path)


def _as_saved_by_scikit_learn(path: Path, version: str) -> None:
    """Rewrite the artifact as another scikit-learn would have written it."""
    original = path.with_suffix(".orig")
    path.replace(original)
    mine = f'\\"{sklearn.__version__}\\"'.encode()
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(path, "w") as dst:
        for member in src.infolist():
            data = src.read(member.filename)
            if member.filename == "schema.json":
                assert mine in data
                data = data.replace(mine, f'\\"{version}\\"'.encode())
            dst.writestr(member, data)
    original.unlink()


def test_an_artifact_of_another_scikit_learn_is_checked_and_said(
    tmp_path: Path, trained: Confirmer, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "confirmer.skops"
    save_confirmer(trained, path, {})
    _as_saved_by_scikit_learn(path, "1.2.0")
    caplog.set_level(logging.INFO, logger="models.artifacts")
    # no InconsistentVersionWarning (an error under pytest, a stray stderr line in the service)
    loaded = load_confirmer(path)
    assert loaded.version == trained.version
    said = caplog.text
    assert "scikit-learn 1.2.0" in said and sklearn.__version__ in said and "same scores" in said


def test_an_artifact_of_a_newer_skops_says_so(tmp_path: Path) -> None:
    path = tmp_path / "confirmer.skops"
    with zipfile.ZipFile(RELEASED) as src, zipfile.ZipFile(path, "w") as dst:
        for member in src.infolist():
            data = src.read(member.filename)
            if member.filename == "schema.json":
                saved_by = f'"_skops_version": "{skops.__version__}"'.encode()
                assert saved_by in data and b'"protocol": ' in data
                data = data.replace(saved_by, b'"_skops_version": "9.1.0"')
                data = data.replace(b'"protocol": ', b'"protocol": 9', 1)  # 2 -> 92
            dst.writestr(member, data)
    with pytest.raises(
        ArtifactError, match=rf"saved by skops 9\.1\.0, this is {skops.__version__}"
    ):
        load_confirmer(path)


def test_an_artifact_scoring_otherwise_here_is_refused(tmp_path: Path, trained: Confirmer) -> None:
    # what a scikit-learn that computes differently would do: its scores on the saved probe differ
    path = tmp_path / "confirmer.skops"
    save_confirmer(trained, path, {})

    def drifted(payload: dict[str, Any]) -> dict[str, Any]:
        payload["probe"] = {k: [v + 0.01 for v in s] for k, s in payload["probe"].items()}
        return payload

    with pytest.raises(ArtifactError, match="scores differently"):
        load_confirmer(_dumped(path, drifted))


# --- the command ------------------------------------------------------------------------------

QUICK = ["--max-sessions", "2", "--max-fitbit-days", "1"]


def test_train_to_a_model_path_that_cannot_be_written_fails_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    model = blocker / "confirmer.skops"
    out = tmp_path / "out"
    assert main(["evaluate", "--train", "--model", str(model), *QUICK, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"--model {model}: cannot write" in err and "Traceback" not in err
    assert "training" not in err  # said before the minutes of training, not after
    assert not out.exists() or not any(out.iterdir())  # nothing evaluated


def test_evaluate_with_a_model_that_cannot_be_used_says_so_before_the_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model is loaded first: with a damaged one, nothing is replayed, and no data is read."""
    model = tmp_path / "confirmer.skops"
    model.write_bytes(b"PK\x03\x04 not a zip")
    missing_data = tmp_path / "no-such-data"
    assert main(["evaluate", "--model", str(model), "--data", str(missing_data)]) == 1
    err = capsys.readouterr().err
    assert str(model) in err and "Traceback" not in err
    assert "evaluating split" not in err


@pytest.fixture(scope="module")
def card_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One quick training, measured on the tuning split with the sensitive profile."""
    folder = tmp_path_factory.mktemp("card")
    before = os.umask(0o022)
    try:
        model = folder / "model" / "confirmer.skops"
        args = ["evaluate", "--train", "--model", str(model), "--split", "tuning"]
        assert main([*args, "--profile", "sensitive", *QUICK, "--out", str(folder / "out")]) == 0
    finally:
        os.umask(before)
    return model, (model.parent / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_the_card_says_what_its_metrics_measured(card_run: tuple[Path, str]) -> None:
    _, card = card_run
    assert "Held-out metrics" not in card  # tuning subjects are the ones it was fitted on
    assert "split `tuning`" in card and "not held out" in card
    assert "profile `sensitive`" in card and "for the `balanced` detection profile" not in card
    assert "--max-sessions 2" in card and "--max-fitbit-days 1" in card


def test_the_card_records_provenance_and_the_version_alarms_carry(
    card_run: tuple[Path, str],
) -> None:
    model, card = card_run
    confirmer = load_confirmer(model)
    assert artifacts.default_bank(confirmer_path=model).model_version in card
    assert "seed 20261125" in card
    assert f"scikit-learn {sklearn.__version__}" in card and f"skops {skops.__version__}" in card
    assert "Iqbal" in card and "Mishra" in card  # the data sets, cited, with their licences
    assert "MIT" in card
    assert "S01" in card and "S03" in card  # the sessions it learnt from
    metadata = sio.load(model, trusted=[])["metadata"]
    assert metadata["software"]["scikit-learn"] == sklearn.__version__
    assert confirmer.version in card


def test_the_artifact_and_card_are_owner_only(card_run: tuple[Path, str]) -> None:
    model, _ = card_run
    for path in (model, model.parent / "MODEL_CARD.md"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# --- the service's bank -----------------------------------------------------------------------


def test_without_the_released_confirmer_the_log_says_the_rules_alone_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # a package built without its data files: the service runs, and says on what
    monkeypatch.setattr(artifacts, "ARTIFACT_DIR", tmp_path)
    caplog.set_level(logging.INFO, logger="models.artifacts")
    bank = artifacts.default_bank()
    assert bank.confirmer is None and "+" not in bank.model_version
    assert f"no confirmer at {tmp_path / CONFIRMER_FILE}" in caplog.text
    assert "the rules alone decide" in caplog.text
