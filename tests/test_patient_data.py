"""A patient's rights over their data. ``admin patient export``: a copy of everything about them,
nobody else's, and no channel credentials. ``admin patient erase``: everything about one patient
goes, nobody else's data does, and a running service forgets what its detectors learnt of them."""

from __future__ import annotations

import csv
import gzip
import json
import stat
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from flarewatch.cli import main
from flarewatch.payloads import Sample, SampleBatch
from flarewatch.settings import load_settings
from flarewatch.topics import alerts_topic
from models.alarm import Alarm, AlarmKind, Severity
from models.bank import DetectorBank
from models.detector import PatientDetector
from service.alerts.runtime import AlertingRuntime
from service.db import (
    Alert,
    AuditEvent,
    Base,
    Channel,
    Contact,
    Database,
    Delivery,
    Device,
    Episode,
    Patient,
)
from service.db import session as db_session
from service.db.care_teams import PolicyUpdate, add_device, add_patient
from service.db.erasure import ERASED_PATIENT, PATIENT_ERASED
from service.episodes import EpisodeEngine
from service.episodes.profile_sync import ProfileSync
from service.processing import IngestCycle
from service.pseudonyms import pseudonym
from service.stores.sqlite import SqliteStore
from tests.alerting_helpers import SECRET, FakeClock, HttpReceiver, build_stack, register_team
from tests.broker_helpers import retained_payload

HOUR_MS = 3_600_000


@pytest.fixture
def setting(service_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The admin CLI and a SQLite sample store, configured as a deployment's environment would."""
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", SECRET)
    monkeypatch.setenv("FLAREWATCH_STORE__SQLITE_PATH", str(tmp_path / "samples.sqlite3"))
    monkeypatch.delenv("FLAREWATCH_INFLUX__URL", raising=False)
    return service_db_url


def admin(url: str, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["admin", "--database-url", url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def store_samples(tmp_path: Path, patient_id: str, device_id: str, end_ms: int) -> None:
    """An hour of one-minute samples ending at ``end_ms``."""
    samples = tuple(
        Sample(seq=i, time_ms=end_ms - (59 - i) * 60_000, heart_rate_bpm=70.0 + i % 5)
        for i in range(60)
    )
    with SqliteStore(tmp_path / "samples.sqlite3") as store:
        store.write([SampleBatch(patient_id=patient_id, device_id=device_id, samples=samples)])


def sample_count(tmp_path: Path, patient_id: str) -> int:
    with SqliteStore(tmp_path / "samples.sqlite3") as store:
        return store.count(patient_id=patient_id)


def rows_of(url: str, patient_id: str) -> dict[str, int]:
    """How many rows of each table are about the patient."""
    stack = build_stack(url)
    try:
        with stack.db.session() as s:
            alert_ids = select(Alert.id).where(Alert.patient_id == patient_id)
            contact_ids = select(Contact.id).where(Contact.patient_id == patient_id)
            counts = {
                "patient": s.scalar(select(func.count()).where(Patient.id == patient_id)),
                "episodes": s.scalar(
                    select(func.count(Episode.id)).where(Episode.patient_id == patient_id)
                ),
                "alerts": s.scalar(
                    select(func.count(Alert.id)).where(Alert.patient_id == patient_id)
                ),
                "messages": s.scalar(
                    select(func.count(Delivery.id)).where(Delivery.alert_id.in_(alert_ids))
                ),
                "contacts": s.scalar(
                    select(func.count(Contact.id)).where(Contact.id.in_(contact_ids))
                ),
                "channels": s.scalar(
                    select(func.count(Channel.id)).where(Channel.contact_id.in_(contact_ids))
                ),
                "devices": s.scalar(
                    select(func.count()).select_from(Device).where(Device.patient_id == patient_id)
                ),
                "audit": s.scalar(
                    select(func.count(AuditEvent.id)).where(
                        AuditEvent.patient_id == patient_id, AuditEvent.action != PATIENT_ERASED
                    )
                ),
            }
    finally:
        stack.close()
    return {name: int(n or 0) for name, n in counts.items()}


def past_alarm(url: str, patient_id: str, at_s: float) -> None:
    """An anaphylaxis-like alarm that was raised, acknowledged and is over."""
    clock = FakeClock(at_s)
    stack = build_stack(url, clock)
    try:
        engine = EpisodeEngine(stack.manager)
        onset = Alarm(patient_id, at_s, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-test")
        engine.on_alarm(onset, {"heart_rate_bpm": 131.0})
        stack.scheduler.run_due()  # the caregiver's message
        with stack.db.session() as s:
            alert_id = s.scalars(select(Alert.id).where(Alert.patient_id == patient_id)).one()
        stack.manager.acknowledge(alert_id, by="ann", via="test")
        clock.advance(1800)
        engine.on_alarm(
            Alarm(
                patient_id, at_s + 1800, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-test", True
            )
        )
        stack.scheduler.run_until_idle()  # the all-clear
    finally:
        stack.close()


def registered(url: str, patient_id: str, device_id: str, at_s: float, channel: str) -> None:
    stack = build_stack(url)
    try:
        register_team(stack.db, patient_id, [("ann", [channel])], now_s=at_s)
        with stack.db.session() as s:
            add_device(s, patient_id, device_id, "left wrist")
    finally:
        stack.close()


def two_patients_with_history(
    url: str, tmp_path: Path, http: HttpReceiver, channel: str | None
) -> float:
    """p1 (band-1) and p2 (band-2), each with a care team on ``channel`` (None: their own), a
    past alarm and a day of samples up to an hour ago; returns that hour ago (s)."""
    hour_ago_s = time.time() - 3600
    for patient_id, device_id in (("p1", "band-1"), ("p2", "band-2")):
        registered(url, patient_id, device_id, hour_ago_s - 86_400, http.url(channel or patient_id))
        past_alarm(url, patient_id, hour_ago_s - 7200)
        store_samples(tmp_path, patient_id, device_id, int(hour_ago_s * 1000))
    return hour_ago_s


def test_erase_removes_every_record_and_sample_of_the_patient_and_nothing_else(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], http: HttpReceiver
) -> None:
    url = setting
    two_patients_with_history(url, tmp_path, http, "ann")
    before = rows_of(url, "p1")
    assert before["episodes"] == 1 and before["alerts"] == 1 and before["messages"] >= 1
    assert before["contacts"] == 1 and before["devices"] == 1 and before["audit"] > 3
    others = rows_of(url, "p2")

    # without --yes: what it would do, and nothing done
    code, out, err = admin(url, capsys, "patient", "erase", "p1")
    assert code == 0, err
    assert "would erase patient p1: 60 samples, 1 episode, 1 alert" in out
    assert "nothing was erased" in out
    assert rows_of(url, "p1") == before and sample_count(tmp_path, "p1") == 60

    code, out, _ = admin(url, capsys, "patient", "erase", "p1", "--yes")
    assert code == 0, out
    assert "erased patient p1: 60 samples, 1 episode, 1 alert" in out
    assert "broker-auth" in out
    assert set(rows_of(url, "p1").values()) == {0}
    assert sample_count(tmp_path, "p1") == 0
    assert rows_of(url, "p2") == others and sample_count(tmp_path, "p2") == 60

    # the one record kept: that the erasure was done, with counts and nobody's name
    code, out, _ = admin(url, capsys, "audit", "--patient", "p1")
    assert code == 0 and PATIENT_ERASED in out
    assert "Alex" not in out and "ann" not in out
    code, out, _ = admin(url, capsys, "patient", "list")
    assert "p1" not in out and "p2" in out

    # erasing again: nothing left, said so (a mistyped id is not "done")
    code, _, err = admin(url, capsys, "patient", "erase", "p1", "--yes")
    assert code == 1 and "nothing of patient 'p1' to erase" in err
    # the id can be used again, from scratch
    assert admin(url, capsys, "patient", "add", "p1")[0] == 0


def traces_of(url: str, patient_id: str) -> list[tuple[str, str]]:
    """Every row of every service table that holds ``patient_id``, but the erasure's own record.

    Read as text, column by column, so that an id inside a JSON detail is found too."""
    stack = build_stack(url)
    found: list[tuple[str, str]] = []
    try:
        with stack.db.session() as s:
            for table in Base.metadata.sorted_tables:
                for row in s.execute(select(table)).mappings():
                    if row.get("action") == PATIENT_ERASED:
                        continue
                    values = " ".join(
                        json.dumps(v) if isinstance(v, dict) else str(v) for v in row.values()
                    )
                    if patient_id in values:
                        found.append((table.name, values))
    finally:
        stack.close()
    return found


def test_an_erased_patient_leaves_no_trace_in_any_table_nor_on_another_patients_trail(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], http: HttpReceiver
) -> None:
    """Their band moved to someone else: the new owner's trail named them (``device_moved``),
    and the new owner's own copy must not name them either."""
    url = setting
    hour_ago_s = time.time() - 3600
    registered(url, "oldowner", "band-1", hour_ago_s - 86_400, http.url("ann"))
    past_alarm(url, "oldowner", hour_ago_s - 7200)
    assert admin(url, capsys, "patient", "add", "newowner")[0] == 0
    assert admin(url, capsys, "device", "add", "newowner", "band-1", "--move")[0] == 0
    assert traces_of(url, "oldowner")  # the test can see them

    copy = tmp_path / "for-newowner"
    code, _, err = admin(url, capsys, "patient", "export", "newowner", "--out", str(copy))
    assert code == 0, err
    audit = csv_rows(copy / "audit.csv")
    assert [a["action"] for a in audit if "band-1" in a["detail"]] == ["device_moved"]
    assert "oldowner" not in read_text(copy / "audit.csv")

    code, out, err = admin(url, capsys, "patient", "erase", "oldowner", "--yes")
    assert code == 0, err
    assert traces_of(url, "oldowner") == []
    # the band's retained status still names them on the broker, which only its admin may clear
    assert "mosquitto_pub -r -n -t flarewatch/v1/oldowner/band-1/status" in out
    code, trail, _ = admin(url, capsys, "audit", "--patient", "newowner")
    assert "device_moved" in trail and "oldowner" not in trail
    assert ERASED_PATIENT in trail


def test_an_erased_patient_in_a_research_export_leaves_only_their_subject_to_recall(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], http: HttpReceiver
) -> None:
    """The register of research exports knew them by id (to recall them on a withdrawal); the
    erasure names the export and subject to recall and leaves neither their id nor their trail."""
    url = setting
    hour_ago_s = time.time() - 3600
    registered(url, "walter", "band-1", hour_ago_s - 86_400, http.url("ann"))
    past_alarm(url, "walter", hour_ago_s - 7200)
    store_samples(tmp_path, "walter", "band-1", int(hour_ago_s * 1000))
    assert admin(url, capsys, "patient", "set", "walter", "--research-consent", "yes")[0] == 0
    study = tmp_path / "study"
    code, out, err = admin(url, capsys, "research", "export", "--out", str(study))
    assert code == 0, err
    export_id = json.loads((study / "export.json").read_text())["export_id"]
    assert traces_of(url, "walter")  # the register and the audit trail name them

    code, out, err = admin(url, capsys, "patient", "erase", "walter", "--yes")
    assert code == 0, err
    subject = pseudonym(SECRET, "walter")
    assert f"export {export_id}" in out and f"delete subject {subject}" in out
    assert traces_of(url, "walter") == []
    code, out, _ = admin(url, capsys, "research", "exports")
    assert code == 0 and export_id in out and "1 (1 recalled)" in out


def test_export_holds_everything_about_the_patient_and_nothing_else(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], http: HttpReceiver
) -> None:
    url = setting
    hour_ago_s = two_patients_with_history(url, tmp_path, http, None)
    for argv in (
        ("--role", "patient", "--patient", "p1"),
        ("--role", "caregiver", "--contact", "1"),  # ann, on p1's care team
    ):
        username = "alex" if "patient" in argv else "ann"
        assert admin(url, capsys, "account", "add", username, *argv, "--generate")[0] == 0
    out = tmp_path / "for-p1"
    code, stdout, err = admin(url, capsys, "patient", "export", "p1", "--out", str(out))
    assert code == 0, err
    assert "patient p1: 60 samples, 1 episodes, 1 alerts" in stdout
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        *("alerts.csv", "audit.csv", "diary.csv", "episodes.csv", "messages.csv"),
        "patient.json",
        "samples.csv.gz",
    ]
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = read_text(path)
        assert http.url("p1") not in text and "127.0.0.1" not in text  # channel credentials
        assert "p2" not in text and "band-2" not in text  # nobody else's data
    profile = json.loads((out / "patient.json").read_text())
    assert profile["name"] == "Alex" and "adrenaline" in profile["emergency_plan"]
    assert profile["care_team"] == [
        {
            "name": "ann",
            "role": "caregiver",
            "position": 0,
            "channels": 1,
            "removed": None,
            "away_until": None,
            "sees_the_record_in_the_web_app": True,
        }
    ]
    [account] = profile["web_app_accounts"]
    assert account["username"] == "alex" and account["last_sign_in"] is None
    assert profile["devices"] == [
        {
            "id": "band-1",
            "label": "left wrist",
            "link": None,  # no gateway reported on it here
            "link_reason": None,
            "link_since": None,
            "last_reported": None,
            "battery_percent": None,
            "skin_contact": None,
        }
    ]
    episodes = csv_rows(out / "episodes.csv")
    assert [(e["kind"], e["state"]) for e in episodes] == [("anaphylaxis", "closed")]
    messages = csv_rows(out / "messages.csv")
    assert messages and {m["to"] for m in messages} == {"ann"}
    assert any(a["action"] == "alert_opened" for a in csv_rows(out / "audit.csv"))
    samples = csv_rows(out / "samples.csv.gz")
    assert len(samples) == 60
    assert float(samples[-1]["time_s"]) == pytest.approx(hour_ago_s, abs=0.001)
    assert {s["hr_bpm"] for s in samples} == {"70.0", "71.0", "72.0", "73.0", "74.0"}

    code, _, err = admin(url, capsys, "patient", "export", "p1", "--out", str(out))
    assert code == 1 and "exists and is not an empty folder" in err
    code, _, err = admin(
        url, capsys, "patient", "export", "p1", "--out", str(out / "patient.json" / "x")
    )
    assert code == 1 and "patient.json is not a folder" in err
    code, _, err = admin(url, capsys, "patient", "export", "p9", "--out", str(tmp_path / "x"))
    assert code == 1 and "p9" in err and not (tmp_path / "x").exists()


def read_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode()


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(read_text(path).splitlines()))


def test_erase_is_refused_while_an_alarm_is_under_way(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], http: HttpReceiver
) -> None:
    url = setting
    hour_ago_s = time.time() - 3600
    registered(url, "p1", "band-1", hour_ago_s - 86_400, http.url("ann"))
    store_samples(tmp_path, "p1", "band-1", int(hour_ago_s * 1000))
    stack = build_stack(url, FakeClock(hour_ago_s))
    try:
        EpisodeEngine(stack.manager).on_alarm(
            Alarm("p1", hour_ago_s, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-test")
        )
    finally:
        stack.close()
    before = rows_of(url, "p1")
    code, _, err = admin(url, capsys, "patient", "erase", "p1", "--yes")
    assert code == 1 and "has an open episode" in err
    assert rows_of(url, "p1") == before and sample_count(tmp_path, "p1") == 60


def test_erase_is_refused_while_the_band_still_sends_unless_forced(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], http: HttpReceiver
) -> None:
    url = setting
    registered(url, "p1", "band-1", time.time() - 86_400, http.url("ann"))
    store_samples(tmp_path, "p1", "band-1", int(time.time() * 1000) - 120_000)
    code, _, err = admin(url, capsys, "patient", "erase", "p1", "--yes")
    assert code == 1 and "band sent data 2 min ago" in err and "--force" in err
    assert sample_count(tmp_path, "p1") == 60 and rows_of(url, "p1")["patient"] == 1
    code, out, _ = admin(url, capsys, "patient", "erase", "p1", "--yes", "--force")
    assert code == 0 and "erased patient p1: 60 samples" in out
    assert sample_count(tmp_path, "p1") == 0 and rows_of(url, "p1")["patient"] == 0


def test_samples_of_an_unregistered_id_can_be_erased(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_samples(tmp_path, "stray", "band-9", int(time.time() * 1000) - 2 * HOUR_MS)
    code, out, _ = admin(setting, capsys, "patient", "erase", "stray", "--yes")
    assert code == 0 and "60 samples" in out and "not registered: samples only" in out
    assert sample_count(tmp_path, "stray") == 0


def test_a_running_service_forgets_an_erased_patients_detector_state_and_retained_alert(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], mosquitto: Any
) -> None:
    url = setting
    now_s = time.time()
    stack = build_stack(url)
    try:  # no care team: nothing to send, so the alert below is over once resolved
        for patient_id in ("p1", "p2"):
            with stack.db.session() as s:
                add_patient(s, patient_id, now_s - 86_400, PolicyUpdate())
    finally:
        stack.close()
    state_path = tmp_path / "state.json"
    settings = load_settings(
        service={"database_url": url, "detector_state_path": str(state_path), "secret_key": SECRET},
        mqtt={"url": mosquitto.url},
    )
    bank = DetectorBank(PatientDetector())
    runtime = AlertingRuntime(settings, bank=bank, serve_api=False)
    runtime.start()
    topic = alerts_topic("p1")
    try:
        assert runtime.bridge is not None and runtime.bridge.wait_ready()
        start_ms = int((now_s - 3 * 3600) * 1000)
        batches = tuple(
            SampleBatch(
                patient_id=pid,
                device_id=f"band-{pid}",
                samples=tuple(
                    Sample(seq=i, time_ms=start_ms + i * 60_000, heart_rate_bpm=64.0)
                    for i in range(60)
                ),
            )
            for pid in ("p1", "p2")
        )
        runtime.processor.process(IngestCycle(now_ms=start_ms + HOUR_MS, batches=batches))
        assert set(bank.detectors) == {"p1", "p2"}
        # an alarm of p1 that is over: the bridge keeps its state retained on the broker
        onset = Alarm("p1", now_s - 7200, AlarmKind.ANAPHYLAXIS, Severity.CRITICAL, "fw-test")
        runtime.engine.on_alarm(onset)
        runtime.engine.on_alarm(replace(onset, time_s=now_s - 5400, resolved=True))
        assert rows_of(url, "p1")["alerts"] == 1
        wait_for(lambda: retained_payload(mosquitto.port, topic) is not None)

        assert admin(url, capsys, "patient", "erase", "p1", "--yes")[0] == 0
        assert set(bank.detectors) == {"p1", "p2"}  # not polled yet
        assert runtime.profiles is not None and runtime.profiles.poll()
        runtime.processor.process(IngestCycle(now_ms=start_ms + HOUR_MS + 1000))
        assert set(bank.detectors) == {"p2"}
        wait_for(lambda: retained_payload(mosquitto.port, topic) is None)
        # hours of silence later, nothing is raised about p1 (no "no data" brings them back)
        runtime.processor.process(IngestCycle(now_ms=start_ms + 3 * HOUR_MS))
        assert rows_of(url, "p1")["patient"] == 0
        assert rows_of(url, "p2")["patient"] == 1
    finally:
        runtime.stop()
    saved = json.loads(state_path.read_text())
    assert set(saved["patients"]) == {"p2"}


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_patient_registered_again_before_the_service_polls_is_still_forgotten(
    setting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Erased, then their id added again (or an alarm of their detector, not yet forgotten,
    registering them anew) within the poll interval: what was learnt before still goes."""
    url = setting
    assert admin(url, capsys, "patient", "add", "p1")[0] == 0
    bank = DetectorBank(PatientDetector())
    db = Database(url, secret_key=SECRET)
    try:
        sync = ProfileSync(db, bank)
        sync.refresh()  # at start
        bank.detector("p1")  # what the running service learns of them
        assert admin(url, capsys, "patient", "erase", "p1", "--yes")[0] == 0
        assert admin(url, capsys, "patient", "add", "p1")[0] == 0
        assert sync.poll()
        sync.apply_pending()
        assert "p1" not in bank.detectors
        # a restart later: the checkpoint holds what was learnt since they came back
        bank.detector("p1")
        ProfileSync(db, bank).refresh()
        assert "p1" in bank.detectors
    finally:
        db.dispose()


def band_cycle(patient_ids: tuple[str, ...], start_ms: int, minutes: int = 60) -> IngestCycle:
    """An hour of resting readings of each patient, received at its end."""
    batches = tuple(
        SampleBatch(
            patient_id=pid,
            device_id=f"band-{pid}",
            samples=tuple(
                Sample(seq=i, time_ms=start_ms + i * 60_000, heart_rate_bpm=64.0)
                for i in range(minutes)
            ),
        )
        for pid in patient_ids
    )
    return IngestCycle(now_ms=start_ms + minutes * 60_000, batches=batches)


def two_patients_service(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """p1 and p2 registered; the settings of a service on ``url`` without a broker."""
    for pid in ("p1", "p2"):
        assert admin(url, capsys, "patient", "add", pid)[0] == 0
    return load_settings(
        service={
            "database_url": url,
            "detector_state_path": str(tmp_path / "state.json"),
            "secret_key": SECRET,
        },
        mqtt={"url": None},
    )


def test_a_patient_erased_while_the_service_is_stopped_is_forgotten_at_its_start(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The checkpoint saved at the stop holds what was learnt of the patient before their
    erasure; registered again before the start, that must not come back with it. What is learnt
    of them after the start is theirs and survives the next restart."""
    url = setting
    settings = two_patients_service(url, tmp_path, capsys)

    def run(learn: tuple[str, ...]) -> set[str]:
        """Start a service, let it learn of ``learn``, stop it; what it restored at start."""
        bank = DetectorBank(PatientDetector())
        runtime = AlertingRuntime(settings, bank=bank, serve_api=False)
        restored = set(bank.detectors)
        if learn:
            start_ms = int((time.time() - 3600) * 1000)
            runtime.processor.process(band_cycle(learn, start_ms))
            assert set(learn) <= set(bank.detectors)
        runtime.stop()  # the checkpoint is saved
        return restored

    assert run(("p1", "p2")) == set()
    assert admin(url, capsys, "patient", "erase", "p1", "--yes")[0] == 0
    assert admin(url, capsys, "patient", "add", "p1")[0] == 0
    assert run(("p1",)) == {"p2"}  # p1's old state dropped; what it learns now is theirs
    assert run(()) == {"p1", "p2"}  # that erasure is settled: nothing dropped again

    # a checkpoint of a version that did not record its erasures: trusted as that version did
    assert admin(url, capsys, "patient", "erase", "p1", "--yes")[0] == 0
    assert admin(url, capsys, "patient", "add", "p1")[0] == 0
    state_path = tmp_path / "state.json"
    saved = json.loads(state_path.read_text())
    del saved["erasures_applied"]
    state_path.write_text(json.dumps(saved))
    assert run(()) == {"p1", "p2"}


def test_a_call_for_an_erased_patient_waiting_for_the_database_is_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "no data" of the patient's detector queued while the database was busy, flushed after
    their erasure, registered them again (and opened an episode about them)."""
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", SECRET)
    monkeypatch.setenv("FLAREWATCH_STORE__SQLITE_PATH", str(tmp_path / "samples.sqlite3"))
    monkeypatch.delenv("FLAREWATCH_INFLUX__URL", raising=False)
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.1)
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    settings = two_patients_service(url, tmp_path, capsys)
    bank = DetectorBank(PatientDetector())
    runtime = AlertingRuntime(settings, bank=bank, serve_api=False)
    try:
        start_ms = int((time.time() - 3 * 3600) * 1000)
        runtime.processor.process(band_cycle(("p1",), start_ms))
        holder = runtime.db.engine.connect()
        held = holder.begin()  # another writer holds the database
        runtime.processor.process(IngestCycle(now_ms=start_ms + 2 * HOUR_MS))  # "no data"
        assert runtime.processor.undelivered >= 1
        held.rollback()
        holder.close()
        assert admin(url, capsys, "patient", "erase", "p1", "--yes")[0] == 0
        assert runtime.profiles is not None and runtime.profiles.poll()
        runtime.processor.process(IngestCycle(now_ms=start_ms + 2 * HOUR_MS + 1000))
        assert runtime.processor.undelivered == 0
        assert rows_of(url, "p1")["patient"] == 0
        assert rows_of(url, "p1")["episodes"] == 0
        assert "p1" not in bank.detectors
    finally:
        runtime.stop()
