"""Output files named on a command line: checked before long work, write errors made clear.

:func:`replacing` writes a file whole or not at all, through a temporary file beside it. A run
killed mid-write (SIGKILL, the OOM killer, a power cut) cannot remove its temporary file; the
next run writing the same file does, once it knows the writer is gone: the name holds the
writer's host and process id (``.NAME.PID@HOST.RANDOM.tmp``).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from flarewatch.const import HOST_TAG_MAX_CHARS, STALE_TEMPORARY_AGE_S
from flarewatch.errors import ConfigError


def same_file(path: Path, other: Path | None) -> bool:
    """Whether both name one existing file (through links, relative paths or case)."""
    if other is None:
        return False
    try:
        return path.samefile(other)
    except OSError:  # either does not exist (yet): not the same file
        return False


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


@contextmanager
def replacing(path: Path, option: str) -> Iterator[TextIO]:
    """A text file that replaces ``path`` once complete (see :func:`replacing_file`)."""
    with replacing_file(path, option) as temporary, temporary.open("w", encoding="utf-8") as out:
        yield out


@contextmanager
def replacing_file(path: Path, option: str) -> Iterator[Path]:
    """A file that replaces ``path`` once complete: readers see the old file or the new one.

    The block writes to the owner-only temporary file it is given, beside ``path`` (outputs may
    be health data); it is synced to disk and renamed over ``path`` when the ``with`` block ends;
    an error or an interruption in the block removes it and leaves ``path`` as it was. The folder
    must exist (a mistyped one is an error, not a new folder). A folder, a named pipe or a device
    at ``path`` is refused: the rename would put a plain copy in place of the pipe a reader (say,
    an encryption) waits on. Stale temporary files of earlier, killed writers are removed first.
    """
    target = path.resolve()
    with writing(option, path):
        if target.exists() and not target.is_file():
            raise OSError(errno.EINVAL, "not a regular file; name a file to replace")
        _remove_stale_temporaries(target)
        handle, name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}@{_host_tag()}.", suffix=".tmp", dir=target.parent
        )
        os.close(handle)
    temporary = Path(name)
    try:
        with writing(option, path):
            yield temporary
            with temporary.open("rb+") as written:
                os.fsync(written.fileno())
            temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)  # gone already once renamed


def _remove_stale_temporaries(target: Path) -> None:
    """Remove the temporary files :func:`replacing` left beside ``target`` in runs now gone.

    A temporary file is stale when its writer ran on this host and no process of its id is alive,
    or when it was not touched for ``STALE_TEMPORARY_AGE_S``. A writer still at work keeps its
    file. Files that cannot be removed (another user's folder) are left.
    """
    pattern = re.compile(
        rf"\.{re.escape(target.name)}\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[a-z0-9_]+\.tmp"
    )
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return  # the caller's own attempt to write there will say why
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if found is None:
            continue
        try:
            info = entry.lstat()
            gone = found["host"] == _host_tag() and not _alive(int(found["pid"]))
            if stat.S_ISREG(info.st_mode) and (
                gone or time.time() - info.st_mtime > STALE_TEMPORARY_AGE_S
            ):
                entry.unlink()
        except OSError:
            continue  # removed by another writer meanwhile, or not ours to remove


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (of any user)."""
    if pid <= 0:
        return False  # no writer has it; kill(0, …) would ask about our own process group
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OverflowError:
        return False  # not a process id at all
    return True


def _host_tag() -> str:
    """The name of this host as it may stand in a file name (letters, digits and ``-``)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:HOST_TAG_MAX_CHARS] or "host"


def make_folder(path: Path, option: str, *, private: bool = False) -> None:
    """Create the output folder of ``option`` (and its parents), or fail clearly before work.

    ``private``: a folder it creates is its owner's only (what goes in is health data); one that
    exists keeps its permissions, which its owner chose.
    """
    with writing(option, path):
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700 if private else 0o777, exist_ok=True)


def owner_only_file(path: Path) -> Path:
    """Create ``path`` readable by its owner only (health data) before anything is written.

    A file already there is an error: the folders this is used in are new.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


@contextmanager
def building_folder(out: Path, option: str) -> Iterator[Path]:
    """An owner-only folder beside ``out``, renamed to it when the block ends without error.

    ``out`` must not exist or be an empty folder, and its parent must exist. A reader never sees
    a half-written folder under that name; an error or an interruption removes the partial one.
    """
    with writing(option, out):
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"{option} {out}: exists and is not an empty folder; name a new one")
        if not out.parent.is_dir():
            problem = "is not a folder" if out.parent.exists() else "does not exist"
            raise ConfigError(f"{option} {out}: {out.parent} {problem}")
        folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
        try:
            yield folder
            if out.exists():
                out.rmdir()  # empty (checked above): the rename takes its place
            folder.replace(out)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
