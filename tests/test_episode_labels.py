"""Episode labels: caregivers mark episodes real reactions or false alarms with the admin CLI,
and the labelled onsets are exported, pseudonymised, for training the detectors' confirmer.

Episodes are made by the real episode engine from detector alarms; both database backends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from flarewatch.cli import main
from flarewatch.errors import ConfigError
from flarewatch.output_files import replacing
from models.alarm import Alarm, AlarmKind, Severity
from models.detector import PatientDetector
from models.labels import load_labelled_onsets
from service.alerts.audit import record
from service.alerts.manager import AlertManager
from service.db import AuditEvent, Database, Episode
from service.db.session import alembic_config, make_engine
from service.episodes import EpisodeEngine
from service.episodes.labels import export_labels, reviewed_episodes
from service.pseudonyms import episode_key, pseudonym, time_shift_s
from tests.alerting_helpers import insert_legacy_patient
from tests.test_models_detector import make_samples
from tests.test_profile_review_cli import service_writes_possible

T0 = 1_764_000_000.0
KEY = "episode-label-test-key"
MODEL = "fw-test-7"


@dataclass
class Admin:
    """``flarewatch admin`` run in-process on one database, as an operator would run it."""

    url: str
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        try:
            code = main(["admin", "--database-url", self.url, *argv])
        except SystemExit as exc:  # argparse refusing the command line
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def admin(service_db_url, capsys, monkeypatch) -> Admin:
    monkeypatch.delenv("FLAREWATCH_CONFIG", raising=False)
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", KEY)
    return Admin(service_db_url, capsys)


def alarm(
    patient: str,
    t: float,
    kind: AlarmKind = AlarmKind.FLUSH,
    severity: Severity = Severity.WARNING,
    *,
    onset: bool = False,
    resolved: bool = False,
    trend: float = 14.0,
) -> Alarm:
    evidence = {"hr_trend_bpm": trend, "hr_rise_bpm": trend + 10}
    if onset:
        evidence["onset"] = 1.0
    return Alarm(patient, t, kind, severity, MODEL, resolved=resolved, evidence=evidence)


@pytest.fixture
def episodes(admin) -> dict[str, int]:
    """Four episodes: p1 "a" (flush then anaphylaxis), p1 "b", p2 "c" closed, p2 "d" open."""
    assert admin("patient", "add", "p1")[0] == 0
    assert admin("patient", "add", "p2")[0] == 0
    db = Database(admin.url, secret_key=KEY)
    engine = EpisodeEngine(
        AlertManager(db, lambda: T0, secret_key=KEY, public_base_url="http://127.0.0.1:9")
    )
    for item in (
        alarm("p1", T0, onset=True, trend=12.0),
        alarm("p1", T0 + 60, trend=15.0),  # continuing: not an onset
        alarm("p1", T0 + 120, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, onset=True, trend=30.0),
        alarm("p1", T0 + 600, AlarmKind.ANAPHYLAXIS, resolved=True),
        alarm("p2", T0 + 1800, onset=True, trend=9.0),
        alarm("p2", T0 + 2400, resolved=True),
        alarm("p1", T0 + 3600, onset=True, trend=11.0),
        alarm("p1", T0 + 4000, resolved=True),
        alarm("p2", T0 + 7200, onset=True, trend=8.0),
    ):
        engine.on_alarm(item)
    with db.session() as session:
        ids = {(e.patient_id, e.opened_s): e.id for e in session.scalars(select(Episode))}
    db.dispose()
    return {
        "a": ids[("p1", T0)],
        "b": ids[("p1", T0 + 3600)],
        "c": ids[("p2", T0 + 1800)],
        "d": ids[("p2", T0 + 7200)],
    }


def stored(url: str) -> tuple[dict[int, tuple[str | None, str | None, float | None]], list]:
    """Every episode's (label, labelled_by, labelled_s) and the labelling audit events."""
    db = Database(url, secret_key=KEY)
    with db.session() as session:
        labels = {
            e.id: (e.label, e.labelled_by, e.labelled_s) for e in session.scalars(select(Episode))
        }
        events = [
            (e.patient_id, e.detail)
            for e in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "episode_labelled")
                .order_by(AuditEvent.id)
            )
        ]
    db.dispose()
    return labels, events


def listing(out: str) -> tuple[list[str], dict[int, str]]:
    """Header of ``admin episodes`` and each listed episode's label (the last column)."""
    header, *rows = out.splitlines()
    return header.split(), {int(row.split()[0]): row.split()[-1] for row in rows}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_label_relabel_and_refuse_unknown_episode(admin, episodes):
    a, d = episodes["a"], episodes["d"]
    code, out, _ = admin("episode", "label", str(a), "--as", "reaction", "--by", "Dr Ann")
    assert code == 0
    assert out.strip() == f"episode {a} (p1, anaphylaxis, closed) labelled reaction by Dr Ann"
    labels, _ = stored(admin.url)
    assert labels[a][:2] == ("reaction", "Dr Ann") and labels[a][2] is not None
    assert all(labels[e] == (None, None, None) for e in labels if e != a)

    # relabelling is allowed: the latest label wins
    assert admin("episode", "label", str(a), "--as", "false-alarm", "--by", "Bo")[0] == 0
    # an open episode may be labelled too (the default labeller is the login name)
    assert admin("episode", "label", str(d), "--as", "reaction")[0] == 0
    before = stored(admin.url)
    labels, events = before
    assert labels[a][:2] == ("false_alarm", "Bo")
    assert labels[d][0] == "reaction" and labels[d][1]
    assert [(pid, detail["episode_id"], detail["label"]) for pid, detail in events] == [
        ("p1", a, "reaction"),
        ("p1", a, "false_alarm"),
        ("p2", d, "reaction"),
    ]
    assert events[1][1]["previous_label"] == "reaction"
    assert not any("hr_" in json.dumps(detail) for _, detail in events), "no vitals in the audit"

    code, out, err = admin("episode", "label", "999", "--as", "reaction")
    assert code == 1 and out == "" and "no episode with id 999" in err
    code, _, err = admin("episode", "label", str(a), "--as", "reaction", "--by", "N" * 101)
    assert code == 1 and "at most 100 fit" in err
    code, _, err = admin("episode", "label", str(a), "--as", "reaction", "--by", " ")
    assert code == 1 and "say who labelled" in err
    code, _, err = admin("episode", "label", str(a), "--as", "maybe")
    assert code == 2 and "invalid choice" in err
    assert stored(admin.url) == before, "a refused label changes nothing"


def test_listing_shows_labels_and_what_is_left_to_review(admin, episodes):
    a, b, c, d = (episodes[k] for k in "abcd")
    assert admin("episode", "label", str(c), "--as", "false-alarm")[0] == 0
    code, out, _ = admin("episodes")
    header, labels = listing(out)
    assert code == 0 and header[-2:] == ["model", "label"]
    assert labels == {a: "-", b: "-", c: "false_alarm", d: "-"}
    # to review: closed and unlabelled (the open one is still going on)
    assert listing(admin("episodes", "--unlabelled")[1])[1] == {a: "-", b: "-"}
    assert listing(admin("episodes", "--unlabelled", "--patient", "p2")[1])[1] == {}
    assert admin("episode", "label", str(a), "--as", "reaction")[0] == 0
    assert listing(admin("episodes", "--unlabelled")[1])[1] == {b: "-"}


def test_export_writes_the_labelled_onsets_pseudonymised(admin, episodes, tmp_path):
    a, c = episodes["a"], episodes["c"]
    assert admin("episode", "label", str(a), "--as", "reaction")[0] == 0
    assert admin("episode", "label", str(c), "--as", "false-alarm")[0] == 0
    (tmp_path / "export").mkdir()
    out_file = tmp_path / "export" / "labels.jsonl"
    code, out, _ = admin("episode", "export-labels", "--out", str(out_file))
    assert code == 0
    assert out.strip() == f"3 onset alarms of 2 labelled episodes written to {out_file}"
    records = read_jsonl(out_file)
    p1, p2 = pseudonym(KEY, "p1"), pseudonym(KEY, "p2")
    shift1, shift2 = time_shift_s(KEY, "p1"), time_shift_s(KEY, "p2")
    # each patient's times moved back by their research-export shift; subject by subject
    assert records == sorted(
        [
            {
                "episode": episode_key(KEY, a),
                "subject": p1,
                "label": "reaction",
                "kind": "flush",
                "time_s": T0 - shift1,
                "severity": "warning",
                "model_version": MODEL,
                "evidence": {"hr_trend_bpm": 12.0, "hr_rise_bpm": 22.0, "onset": 1.0},
            },
            {
                "episode": episode_key(KEY, a),
                "subject": p1,
                "label": "reaction",
                "kind": "anaphylaxis",
                "time_s": T0 + 120 - shift1,
                "severity": "critical",
                "model_version": MODEL,
                "evidence": {"hr_trend_bpm": 30.0, "hr_rise_bpm": 40.0, "onset": 1.0},
            },
            {
                "episode": episode_key(KEY, c),
                "subject": p2,
                "label": "false_alarm",
                "kind": "flush",
                "time_s": T0 + 1800 - shift2,
                "severity": "warning",
                "model_version": MODEL,
                "evidence": {"hr_trend_bpm": 9.0, "hr_rise_bpm": 19.0, "onset": 1.0},
            },
        ],
        key=lambda r: (r["subject"], r["time_s"]),
    )
    # the pseudonym: 16 hex chars, not the id, one per patient, keyed by the secret
    spec = hmac.new(KEY.encode(), b"episode-labels:p1", hashlib.sha256).hexdigest()[:16]
    assert p1 == spec and p1 != p2
    assert "p1" not in out_file.read_text().replace(p1, "").replace(p2, "")
    assert pseudonym(KEY, "p1") == p1 and pseudonym("another-key", "p1") != p1
    first = out_file.read_bytes()
    assert admin("episode", "export-labels", "--out", str(out_file))[0] == 0
    assert out_file.read_bytes() == first, "a second export is identical"
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600, "health data: owner-only"
    assert [p.name for p in out_file.parent.iterdir()] == ["labels.jsonl"], "no temporary left"

    code, out, _ = admin("episode", "export-labels", "--out", str(out_file), "--patient", "p2")
    assert code == 0 and out.startswith("1 onset alarms of 1 labelled episodes")
    assert [(r["episode"], r["subject"]) for r in read_jsonl(out_file)] == [
        (episode_key(KEY, c), p2)
    ]


def test_export_depends_on_the_key_and_refuses_bad_requests(admin, episodes, tmp_path, monkeypatch):
    assert admin("episode", "label", str(episodes["b"]), "--as", "reaction")[0] == 0
    out_file = tmp_path / "labels.jsonl"
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", "a-different-deployment-key")
    assert admin("episode", "export-labels", "--out", str(out_file))[0] == 0
    [record] = read_jsonl(out_file)
    assert record["subject"] == pseudonym("a-different-deployment-key", "p1")
    assert record["subject"] != pseudonym(KEY, "p1")

    code, _, err = admin("episode", "export-labels", "--out", str(out_file), "--patient", "zz")
    assert code == 1 and "patient 'zz' is not registered" in err
    code, _, err = admin("episode", "export-labels", "--out", str(tmp_path / "no" / "x.jsonl"))
    assert code == 1 and "cannot write" in err
    assert read_jsonl(out_file) == [record], "a refused export leaves the last file intact"


def test_labelled_episode_without_onset_is_skipped_and_counted(admin, episodes, tmp_path):
    a, b = episodes["a"], episodes["b"]
    for episode_id in (a, b):
        assert admin("episode", "label", str(episode_id), "--as", "reaction")[0] == 0
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:  # a summary without its onset (should not happen)
        episode = session.get_one(Episode, b)
        alarms = [
            {**entry, "evidence": {"hr_trend_bpm": 1.0}} for entry in episode.summary["alarms"]
        ]
        episode.summary = {**episode.summary, "alarms": alarms}
    with db.session() as session:
        export = export_labels(session, KEY)
    db.dispose()
    assert (export.episodes, export.skipped_episodes) == (1, 1)
    assert {r["episode"] for r in export.records} == {episode_key(KEY, a)}
    out_file = tmp_path / "labels.jsonl"
    code, out, _ = admin("episode", "export-labels", "--out", str(out_file))
    assert code == 0 and out.strip() == (
        f"2 onset alarms of 1 labelled episodes written to {out_file}; "
        "1 labelled episodes without an onset alarm skipped"
    )


def test_migration_adds_unlabelled_columns_and_keeps_episodes(service_db_url, admin):
    engine = make_engine(service_db_url)
    command.upgrade(alembic_config(engine), "0003")  # a database from before the labels
    with engine.begin() as connection:
        insert_legacy_patient(connection)
        connection.execute(
            text(
                "INSERT INTO episodes (id, patient_id, kind, severity, state, opened_s, "
                "closed_s, model_version, signal_lost, summary) VALUES (7, 'p1', 'flush', "
                "'warning', 'closed', 10, 20, 'fw-old', false, :summary)"
            ),
            {"summary": json.dumps({"alarms": []})},
        )
    code, out, _ = admin("episodes", "--unlabelled")  # opening migrates to the newest revision
    assert code == 0 and listing(out)[1] == {7: "-"}
    assert admin("episode", "label", "7", "--as", "false-alarm")[0] == 0
    assert stored(service_db_url)[0][7][0] == "false_alarm"
    command.downgrade(alembic_config(engine), "0003")
    columns = {c["name"] for c in inspect(engine).get_columns("episodes")}
    assert columns.isdisjoint({"label", "labelled_by", "labelled_s"}) and "summary" in columns
    with engine.connect() as connection:  # the episode itself survives the downgrade
        assert connection.execute(text("SELECT id FROM episodes")).scalars().all() == [7]
    engine.dispose()


def test_exported_labels_of_real_detector_alarms_train_the_confirmer(admin, tmp_path):
    """The contract between the service's export and models.labels, end to end."""
    assert admin("patient", "add", "p1")[0] == 0
    db = Database(admin.url, secret_key=KEY)
    engine = EpisodeEngine(
        AlertManager(db, lambda: T0, secret_key=KEY, public_base_url="http://127.0.0.1:9")
    )
    detector = PatientDetector(patient_id="p1")
    raised = detector.update(make_samples(40, surge_at_min=25, surge_frac=0.5))
    assert [a.kind for a in raised if a.evidence.get("onset")] == [AlarmKind.ANAPHYLAXIS]
    for item in raised:
        engine.on_alarm(item)
    with db.session() as session:
        [episode_id] = [e.id for e in session.scalars(select(Episode))]
    db.dispose()
    assert admin("episode", "label", str(episode_id), "--as", "reaction")[0] == 0
    out_file = tmp_path / "labels.jsonl"
    assert admin("episode", "export-labels", "--out", str(out_file))[0] == 0
    read = load_labelled_onsets(out_file)
    assert (read.lines, read.rejected, read.other_rules) == (1, 0, 0)
    [(onset, label)] = read.candidates
    assert label == 1 and onset.kind is AlarmKind.ANAPHYLAXIS
    assert onset.patient_id == "real:" + pseudonym(KEY, "p1")
    onset_alarm = next(a for a in raised if a.evidence.get("onset"))
    assert onset.evidence == onset_alarm.evidence  # every feature the confirmer reads survives
    assert read.counts() == {"anaphylaxis_reactions": 1}


def test_export_refuses_a_folder_or_a_pipe_and_keeps_them(admin, episodes, tmp_path):
    assert admin("episode", "label", str(episodes["a"]), "--as", "reaction")[0] == 0
    (tmp_path / "out").mkdir()
    folder = tmp_path / "out" / "exports"
    folder.mkdir()
    pipe = tmp_path / "out" / "to-encrypt"
    os.mkfifo(pipe)  # e.g. read by `gpg --encrypt`: a plain copy must not replace it
    for target in (folder, pipe):
        code, out, err = admin("episode", "export-labels", "--out", str(target))
        assert code == 1 and out == "", err
        assert f"--out {target}: cannot write (not a regular file" in err
    assert folder.is_dir() and stat.S_ISFIFO(pipe.stat().st_mode)
    assert sorted(p.name for p in folder.parent.iterdir()) == ["exports", "to-encrypt"]


def test_a_failed_write_is_a_clear_error_and_keeps_the_last_export(tmp_path):
    out_file = tmp_path / "labels.jsonl"
    out_file.write_text('{"episode_id": 1}\n')
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, limit[1]))  # a full disk: EFBIG past 64 B
    try:
        with (
            pytest.raises(ConfigError, match=f"--out {out_file}: cannot write"),
            replacing(out_file, "--out") as out,
        ):
            for n in range(50):
                out.write(json.dumps({"episode_id": n, "evidence": {"x": 1.0}}) + "\n")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, handler)
    assert read_jsonl(out_file) == [{"episode_id": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["labels.jsonl"], "no temporary left"


def test_an_escalated_episode_is_scored_from_its_own_kind_of_alarm(admin, episodes):
    """Episode "a" opened as a flush at T0 and became anaphylaxis-like at T0 + 120."""
    assert admin("episode", "label", str(episodes["a"]), "--as", "reaction")[0] == 0
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:
        [reviewed] = reviewed_episodes(session, "p1", T0 - 60, T0 + 3000)
    db.dispose()
    # a profile alarming exactly when the patient's anaphylaxis-like alarm came was not late
    assert (reviewed.kind, reviewed.opened_s) == (AlarmKind.ANAPHYLAXIS, T0 + 120)
    assert (reviewed.closed_s, reviewed.reaction) == (T0 + 600, True)


def test_export_refuses_the_public_demo_key(admin, episodes, tmp_path, monkeypatch):
    """Under the built-in key (public), anyone could hash guessed patient ids to the subjects."""
    assert admin("episode", "label", str(episodes["a"]), "--as", "reaction")[0] == 0
    monkeypatch.delenv("FLAREWATCH_SERVICE__SECRET_KEY")  # an admin shell without the settings
    out_file = tmp_path / "labels.jsonl"
    code, out, err = admin("episode", "export-labels", "--out", str(out_file))
    assert code == 1 and out == "", err
    assert "service.secret_key is the built-in demo key" in err
    assert not out_file.exists()


def test_listing_an_unknown_patient_says_so(admin, episodes):
    """A mistyped id must not look like a patient with nothing left to review."""
    for argv in (("episodes", "--unlabelled"), ("alerts",), ("audit",)):
        code, out, err = admin(*argv, "--patient", "P1")
        assert code == 1 and out == "", (argv, out, err)
        assert "patient 'P1' is not registered" in err
    assert admin("alerts", "--patient", "p1")[0] == 0


def long_audit_listing(url: str) -> subprocess.Popen[bytes]:
    """``flarewatch admin audit`` of 3000 events (far more than a pipe holds), into a pipe."""
    db = Database(url, secret_key=KEY)
    with db.session() as session:
        for n in range(3000):  # ~100 bytes a line, a pipe holds 64 KiB
            record(session, T0 + n, "episode_labelled", patient_id="p1", episode_id=n)
    db.dispose()
    command = "import sys; from flarewatch.cli import main; sys.exit(main())"
    argv = ["admin", "--database-url", url, "audit", "--limit", "3000"]
    return subprocess.Popen(
        [sys.executable, "-c", command, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_a_listing_read_in_a_pager_does_not_hold_up_the_service(admin, episodes):
    """``admin audit | less``: the listing waits on the pipe, the service must not wait on it."""
    listing = long_audit_listing(admin.url)
    try:
        assert listing.stdout is not None
        assert os.read(listing.stdout.fileno(), 1)  # the listing is printing
        assert service_writes_possible(admin.url), "the service database stayed locked"
    finally:
        out, err = listing.communicate(timeout=60)
    assert listing.returncode == 0, err
    assert out.rstrip().endswith(b'"episode_id": 2999}'), "the listing printed to its end"


def test_a_listing_cut_short_by_its_reader_ends_quietly(admin, episodes):
    """``admin audit | head``: the reader leaves after a line, no traceback follows."""
    with long_audit_listing(admin.url) as listing:
        assert listing.stdout is not None and listing.stderr is not None
        assert os.read(listing.stdout.fileno(), 1)
        listing.stdout.close()
        err = listing.stderr.read().decode()
        code = listing.wait(timeout=60)
    assert code == 0 and err == "", err


def paused_export(url: str, out_file: Path) -> subprocess.Popen[str]:
    """``flarewatch admin episode export-labels`` stopped with its export written but not yet in
    place (at the ``fsync`` before the rename); it goes on once its stdin is closed."""
    command = (
        "import os, sys\n"
        "def fsync(fd, real=os.fsync):\n"
        "    print('writing', flush=True)\n"
        "    sys.stdin.read()\n"
        "    real(fd)\n"
        "os.fsync = fsync\n"
        "from flarewatch.cli import main\n"
        "sys.exit(main())\n"
    )
    argv = ["admin", "--database-url", url, "episode", "export-labels", "--out", str(out_file)]
    writer = subprocess.Popen(
        [sys.executable, "-c", command, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert writer.stdout is not None
    line = writer.stdout.readline()  # blocks until the writer is mid-write (or has failed)
    assert line == "writing\n", writer.communicate(timeout=60)
    return writer


def test_an_export_killed_mid_write_leaves_no_temporary_after_the_next(admin, episodes, tmp_path):
    """A killed export cannot remove its owner-only temporary file; the next export does."""
    assert admin("episode", "label", str(episodes["a"]), "--as", "reaction")[0] == 0
    folder = tmp_path / "export"
    folder.mkdir()
    out_file = folder / "labels.jsonl"
    killed = paused_export(admin.url, out_file)
    killed.kill()  # SIGKILL: no handler, no finally runs
    killed.communicate(timeout=60)
    assert len(list(folder.iterdir())) == 1, "the killed export left its temporary file"
    assert not out_file.exists()
    assert admin("episode", "export-labels", "--out", str(out_file))[0] == 0
    assert [p.name for p in folder.iterdir()] == ["labels.jsonl"], "stale temporary removed"
    assert [r["episode"] for r in read_jsonl(out_file)] == [episode_key(KEY, episodes["a"])] * 2


def test_an_export_running_meanwhile_keeps_its_temporary_and_finishes(admin, episodes, tmp_path):
    assert admin("episode", "label", str(episodes["a"]), "--as", "reaction")[0] == 0
    folder = tmp_path / "export"
    folder.mkdir()
    out_file = folder / "labels.jsonl"
    running = paused_export(admin.url, out_file)
    try:
        assert admin("episode", "label", str(episodes["c"]), "--as", "false-alarm")[0] == 0
        assert admin("episode", "export-labels", "--out", str(out_file))[0] == 0
        assert len(read_jsonl(out_file)) == 3
        assert len(list(folder.iterdir())) == 2, "the running export's file was kept"
    finally:
        _, err = running.communicate(timeout=60)  # closes its stdin: it goes on
    assert running.returncode == 0, err
    assert [p.name for p in folder.iterdir()] == ["labels.jsonl"]
    assert len(read_jsonl(out_file)) == 2, "the running export finished last, with its records"


def test_temporaries_of_other_hosts_are_removed_only_when_old(admin, episodes, tmp_path):
    """Another host's processes cannot be seen: its temporary file goes once it is a day old."""
    assert admin("episode", "label", str(episodes["a"]), "--as", "reaction")[0] == 0
    folder = tmp_path / "export"
    folder.mkdir()
    out_file = folder / "labels.jsonl"
    old = folder / ".labels.jsonl.4242@other-host.abcd1234.tmp"
    recent = folder / ".labels.jsonl.4243@other-host.abcd1234.tmp"
    unrelated = folder / ".labels.jsonl.notes"
    for path in (old, recent, unrelated):
        path.write_text("{}\n")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(unrelated, (two_days_ago, two_days_ago))
    assert admin("episode", "export-labels", "--out", str(out_file))[0] == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [recent.name, unrelated.name, "labels.jsonl"]
    )


def iso(time_s: float) -> str:
    return dt.datetime.fromtimestamp(time_s, dt.UTC).isoformat()


def test_a_first_sign_before_the_alarm_is_recorded_with_a_reaction(admin, episodes):
    a = str(episodes["a"])
    code, out, _ = admin("episode", "label", a, "--as", "reaction", "--first-sign", iso(T0 - 240))
    assert code == 0 and "240 s before the alarm" in out
    code, out, _ = admin("audit", "--patient", "p1")
    assert "first_sign_s" in out
    refusals = [
        (("--as", "reaction", "--first-sign", iso(T0 + 60)), "after the alarm"),
        (("--as", "reaction", "--first-sign", iso(T0 - 7 * 3600)), "more than 6 h before"),
        (("--as", "false-alarm", "--first-sign", iso(T0 - 60)), "is for a real reaction"),
        (("--as", "reaction", "--first-sign", "yesterday"), "not an ISO 8601 time"),
    ]
    for argv, message in refusals:
        code, _, err = admin("episode", "label", a, *argv)
        assert code == 1 and message in err, (argv, err)
    # a false alarm after all: no first sign any more
    assert admin("episode", "label", a, "--as", "false-alarm")[0] == 0
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:
        assert session.get_one(Episode, episodes["a"]).first_sign_s is None
    db.dispose()


def test_a_reaction_the_detectors_missed_is_added_closed_and_labelled(admin, episodes, tmp_path):
    onset = T0 + 20_000
    code, out, _ = admin(
        "episode", "add", "p1", "--kind", "anaphylaxis", "--onset", iso(onset), "--by", "Dr Ann"
    )
    assert code == 0 and "a real reaction the detectors missed" in out
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:
        added = session.scalars(select(Episode).where(Episode.opened_s == onset)).one()
        assert (added.kind, added.state, added.label, added.model_version) == (
            "anaphylaxis",
            "closed",
            "reaction",
            "manual",
        )
        assert added.closed_s == onset + 1800 and added.first_sign_s == onset
        # what a comparison of profiles is scored on: a reaction to catch
        reviewed = reviewed_episodes(session, "p1", onset - 1, onset + 1)
        assert [(r.kind, r.reaction) for r in reviewed] == [(AlarmKind.ANAPHYLAXIS, True)]
    db.dispose()
    code, out, _ = admin("audit", "--patient", "p1")
    assert "episode_added" in out
    # recorded ten minutes after it began, still going on: it ends now, not in the future
    assert admin("patient", "add", "p3")[0] == 0
    recent = time.time() - 600
    code, _, err = admin("episode", "add", "p3", "--kind", "flush", "--onset", iso(recent))
    assert code == 0, err
    # the label export holds alarms' evidence: an added episode has none, and says so
    code, out, _ = admin("episode", "export-labels", "--out", str(tmp_path / "labels.jsonl"))
    assert code == 0 and "2 labelled episodes without an onset alarm skipped" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("p1", "--kind", "flush", "--onset", iso(T0 + 300)), "covers that time"),
        (("p9", "--kind", "flush", "--onset", iso(T0)), "not registered"),
        (("p1", "--kind", "flush", "--onset", "2099-01-01T00:00"), "in the future"),
        (
            ("p1", "--kind", "flush", "--onset", iso(T0 + 9000), "--end", iso(T0 + 8000)),
            "--end must be after --onset",
        ),
        (("p1", "--kind", "no_data", "--onset", iso(T0 + 9000)), "invalid choice"),
    ],
)
def test_an_added_reaction_that_cannot_be_right_is_refused(admin, episodes, argv, message):
    code, _, err = admin("episode", "add", *argv)
    assert code != 0 and message in err, err


def added_id(out: str) -> str:
    """The id ``admin episode add`` printed."""
    assert out.startswith("episode "), out
    return out.split()[1]


def test_an_added_reaction_inside_another_reactions_first_sign_lead_is_refused(admin, episodes):
    """The reaction of episode b began 25 min before its alarm: a reaction "missed" in those
    minutes is the same one, counted twice."""
    b = str(episodes["b"])
    assert admin("episode", "label", b, "--as", "reaction", "--first-sign", iso(T0 + 2100))[0] == 0
    argv = ("--kind", "flush", "--onset", iso(T0 + 2400), "--end", iso(T0 + 3000))
    code, _, err = admin("episode", "add", "p1", *argv)
    assert code == 1 and f"episode {b} (flush) of p1 covers that time" in err


def test_a_first_sign_before_a_reaction_added_by_hand_is_refused(admin, episodes):
    """Added as missed at T0+1000, then the alarm of episode b (T0+3600) turns out to be that
    reaction's: its first sign at T0+1200 would make one reaction two."""
    argv = ("--kind", "flush", "--onset", iso(T0 + 1000), "--end", iso(T0 + 1500))
    code, out, err = admin("episode", "add", "p1", *argv)
    assert code == 0, err
    added = added_id(out)
    b = str(episodes["b"])
    code, _, err = admin("episode", "label", b, "--as", "reaction", "--first-sign", iso(T0 + 1200))
    assert code == 1 and f"episode {added} (flush), added by hand" in err
    # withdrawn, the first sign is taken
    assert admin("episode", "label", added, "--as", "false-alarm")[0] == 0
    code, _, err = admin("episode", "label", b, "--as", "reaction", "--first-sign", iso(T0 + 1200))
    assert code == 0, err


def test_a_reaction_added_by_mistake_and_labelled_no_reaction_is_withdrawn(admin, episodes):
    """Nothing raised an alarm there: it is no false alarm a profile could be blamed for."""
    onset = T0 + 20_000
    code, out, err = admin("episode", "add", "p1", "--kind", "flush", "--onset", iso(onset))
    assert code == 0, err
    withdrawn = added_id(out)
    assert admin("episode", "label", withdrawn, "--as", "false-alarm")[0] == 0
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:
        assert reviewed_episodes(session, "p1", onset - 1, onset + 1) == []
    db.dispose()
    # and it no longer stands in the way of recording the reaction right
    code, out, err = admin("episode", "add", "p1", "--kind", "flush", "--onset", iso(onset + 60))
    assert code == 0, err
    # brought back, it would be that reaction twice
    code, _, err = admin("episode", "label", withdrawn, "--as", "reaction")
    assert code == 1 and f"episode {added_id(out)} (flush) of p1 covers that time" in err


def test_times_are_utc_unless_they_say_and_the_help_says_so(admin, episodes):
    code, out, _ = admin("episode", "add", "--help")
    assert code == 0 and " ".join(out.split()).count("UTC unless it says") == 2  # --onset, --end
    a = str(episodes["a"])
    local = dt.datetime.fromtimestamp(T0 - 600, dt.timezone(dt.timedelta(hours=5, minutes=30)))
    naive = dt.datetime.fromtimestamp(T0 - 300, dt.UTC).replace(tzinfo=None)
    db = Database(admin.url, secret_key=KEY)
    for given, expected in ((local.isoformat(), T0 - 600), (naive.isoformat(), T0 - 300)):
        assert admin("episode", "label", a, "--as", "reaction", "--first-sign", given)[0] == 0
        with db.session() as session:
            assert session.get_one(Episode, episodes["a"]).first_sign_s == expected
    db.dispose()
