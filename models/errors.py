"""Errors of the detection package.

::

    FlarewatchError
    └── ModelError                 a detector, a recording or a model artifact cannot be used
        ├── RecordingError         a replay/evaluation recording is unreadable (file, column, row)
        └── ArtifactError          a saved model is missing, untrusted or of another version
"""

from __future__ import annotations

from pathlib import Path

from flarewatch.errors import FlarewatchError


class ModelError(FlarewatchError):
    """A detector or its inputs cannot be used; the message says what to change."""


class RecordingError(ModelError):
    """A recording file cannot be read as a flarewatch recording (see docs/models.md)."""

    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = str(path)
        self.detail = detail


class ArtifactError(ModelError):
    """A model artifact is missing, holds untrusted types or was saved for another version."""

    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(f"model artifact {path}: {detail}")
        self.path = str(path)
        self.detail = detail
