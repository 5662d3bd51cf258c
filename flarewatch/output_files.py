"""Output files named on a command line: checked before long work, write errors made clear."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flarewatch.errors import ConfigError


def check_writable(path: Path, option: str) -> None:
    """Create the parent folders of an output file and make sure it can be written (or fail)."""
    with writing(option, path):
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with path.open("a", encoding="utf-8"):
            pass
        if not existed:
            path.unlink()  # written after the replay; nothing is left behind if that fails


@contextmanager
def writing(option: str, path: Path) -> Iterator[None]:
    """Turn a failure to write the file of ``option`` into a clear error, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write ({exc.strerror or exc})") from exc


def make_folder(path: Path, option: str) -> None:
    """Create the output folder of ``option`` (and its parents), or fail clearly before work."""
    with writing(option, path):
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder")
        path.mkdir(parents=True, exist_ok=True)
