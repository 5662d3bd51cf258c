"""``flarewatch admin db backup``: a consistent copy of the SQLite service database while it is
written, restored by the documented steps (docs/deploy.md, "Backup and restore")."""

from __future__ import annotations

import shutil
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flarewatch.cli import main
from service.db import AuditEvent, Database
from tests.alerting_helpers import SECRET
from tests.test_ops_upgrade import HEAD

URL_OF_ANN = "json://127.0.0.1:9/ann-secret-token"


def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["admin", "--database-url", url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLAREWATCH_CONFIG", raising=False)
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", SECRET)


def test_backup_under_concurrent_writes_is_consistent_and_restores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = tmp_path / "var" / "flarewatch.sqlite3"
    url = f"sqlite:///{db_path}"
    assert run(capsys, url, "patient", "add", "alex", "--timezone", "Europe/Berlin")[0] == 0
    assert run(capsys, url, "caregiver", "add", "alex", "Ann", "--url", URL_OF_ANN)[0] == 0
    db = Database(url, secret_key=SECRET)
    stop = threading.Event()
    written = [0]

    def writer() -> None:  # the running service: two rows per transaction, all the time
        while not stop.is_set():
            with db.session() as session:
                for _ in range(2):
                    session.add(AuditEvent(time_s=1.0, action="test_write", detail={}))
            written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 20:  # the writer is under way
            thread.join(0.01)
        backup = tmp_path / "backups" / "service.sqlite3"
        backup.parent.mkdir()
        code, out, err = run(capsys, url, "db", "backup", "--out", str(backup))
        assert code == 0, err
    finally:
        stop.set()
        thread.join(30)
    assert "backed up to" in out and f"revision {HEAD}" in out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # health data
    assert not list(backup.parent.glob(".*partial"))
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(AuditEvent))
    db.dispose()

    # restore as docs/deploy.md says: service stopped, WAL files gone, the copy in place
    for leftover in db_path.parent.glob("flarewatch.sqlite3-*"):
        leftover.unlink()
    shutil.copyfile(backup, db_path)
    restored = Database(url, secret_key=SECRET)  # migrates and checks every channel opens
    try:
        with restored.session() as session:
            copied = session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "test_write")
            )
    finally:
        restored.dispose()
    assert copied is not None and total is not None
    assert copied % 2 == 0, "the copy holds half a transaction"
    assert 0 < copied <= total
    code, out, _ = run(capsys, url, "caregiver", "list", "alex")
    assert code == 0 and "Ann" in out and "ann-secret-token" not in out


def test_backup_refuses_what_it_cannot_do_with_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"sqlite:///{tmp_path}/nothing.sqlite3"
    code, _, err = run(capsys, missing, "db", "backup", "--out", str(tmp_path / "b.sqlite3"))
    assert code == 1 and "no SQLite service database" in err
    assert not (tmp_path / "nothing.sqlite3").exists()  # not created by the attempt

    url = f"sqlite:///{tmp_path}/fw.sqlite3"
    assert run(capsys, url, "patient", "add", "alex")[0] == 0
    code, _, err = run(capsys, url, "db", "backup", "--out", str(tmp_path / "no" / "b.sqlite3"))
    assert code == 1 and "b.sqlite3: cannot write" in err and "Traceback" not in err

    postgres = "postgresql+psycopg://fw:secret-pw@127.0.0.1:9/fw"
    code, _, err = run(capsys, postgres, "db", "backup", "--out", str(tmp_path / "b"))
    assert code == 1 and "pg_dump" in err and "secret-pw" not in err
