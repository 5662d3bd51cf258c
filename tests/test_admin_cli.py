"""``flarewatch admin``: set up a care team, see it redacted, list episodes/alerts/audit."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from flarewatch.cli import main
from flarewatch.payloads import DeviceStatus, LinkState
from models.alarm import Alarm, AlarmKind, Severity
from service.alerts.manager import AlertManager
from service.db import Contact, Database, Patient
from service.db.device_links import record_link
from service.episodes import EpisodeEngine

KEY = "admin-cli-test-key-0123456789"


@pytest.fixture
def admin(service_db_url, capsys, monkeypatch):
    """The admin CLI on an empty database, with a secret key of the deployment's own."""
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", KEY)
    url = service_db_url

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["admin", "--database-url", url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    run.url = url
    return run


def test_care_team_setup_and_listing_hides_secrets(admin):
    assert (
        admin(
            "patient",
            "add",
            "alex",
            "--name",
            "Alex",
            "--plan",
            "EpiPen, call 112",
            "--ack-timeout-s",
            "120",
            "--signal-window-s",
            "900",
            "--quiet-hours",
            "22:00-07:00",
            "--timezone",
            "Europe/Berlin",
        )[0]
        == 0
    )
    assert (
        admin(
            "caregiver",
            "add",
            "alex",
            "Ann",
            "--url",
            "ntfy://very-secret-topic",
            "--url",
            "mailto://ann:hunter2@example.org",
        )[0]
        == 0
    )
    assert admin("caregiver", "add", "alex", "Bob", "--url", "json://127.0.0.1:9/hook")[0] == 0
    assert (
        admin(
            "caregiver",
            "add",
            "alex",
            "EMS",
            "--role",
            "emergency",
            "--url",
            "json://127.0.0.1:9/ems",
        )[0]
        == 0
    )
    code, out, _ = admin("caregiver", "list", "alex")
    assert code == 0 and "Ann" in out and "example.org" in out
    assert "very-secret-topic" not in out and "hunter2" not in out
    assert admin("caregiver", "order", "alex", "2", "1")[0] == 0
    code, out, _ = admin("caregiver", "list", "alex")
    lines = [line for line in out.splitlines() if "caregiver" in line]
    assert [line.split()[3] for line in lines] == ["Bob", "Ann"]
    code, out, _ = admin("patient", "list")
    assert "60/900/120/60" in out and "22:00-07:00" in out
    assert admin("device", "add", "alex", "band1")[0] == 0
    assert "band1" in admin("device", "list")[1]


def test_device_list_shows_each_bands_link_as_last_reported(admin):
    assert admin("patient", "add", "alex")[0] == 0
    for band in ("band1", "band2"):
        assert admin("device", "add", "alex", band)[0] == 0
    database = Database(admin.url)
    with database.session() as session:
        record_link(
            session,
            DeviceStatus(
                patient_id="alex", device_id="band1", time_ms=1_764_400_000_000,
                state=LinkState.OFFLINE, reason="pairing", battery_percent=42,
            ),
        )  # fmt: skip
    database.dispose()
    out = admin("device", "list")[1]
    band1 = out.split("band1")[1].splitlines()[0]
    assert "offline (pairing)" in band1 and "2025-11-29 07:06:40Z" in band1 and "42 %" in band1
    assert out.split("band2")[1].splitlines()[0].split()[-3:] == ["-", "-", "-"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["patient", "add", "bad id"], "may only hold"),
        (
            ["patient", "set", "ghost", "--ack-timeout-s", "10"],
            "flarewatch admin patient add ghost",
        ),
        (["patient", "add", "p", "--quiet-hours", "late"], "22:00-07:00"),
        (["patient", "add", "p", "--timezone", "Mars/Base"], "unknown time zone"),
        # refused whatever the tzdata has (unknown there, or not a place's zone)
        (["patient", "add", "p", "--timezone", "localtime"], "time zone"),
        (["patient", "add", "p", "--timezone", "Factory"], "time zone"),
        (["patient", "add", "p", "--ack-timeout-s", "0"], "must be positive"),
        (
            ["patient", "add", "p", "--signal-window-s", "-1"],
            "signal_window_s must be positive or 0",
        ),
        (["patient", "add", "p", "--off-reminder-s", "nan"], "off_reminder_s must be a number"),
        (["patient", "add", "p", "--ack-timeout-s", "0"], "ack_timeout_s must be positive, got"),
        (["caregiver", "add", "nobody", "Ann", "--url", "json://127.0.0.1:9/x"], "not registered"),
        (["caregiver", "remove", "99"], "no contact"),
        # NaN passes `value < 0`; NaN or infinity would stop the escalation timer for good
        (["patient", "add", "p", "--ack-timeout-s", "nan"], "must be a number of seconds"),
        (["patient", "add", "p", "--repeat-interval-s", "inf"], "must be a number of seconds"),
        (["patient", "add", "p", "--cancel-window-s=-inf"], "must be a number of seconds"),
    ],
)
def test_bad_admin_input_gets_a_clear_error(admin, argv, message):
    code, _, err = admin(*argv)
    assert code == 1 and message in err


def test_unknown_apprise_url_is_refused(admin):
    admin("patient", "add", "alex")
    code, _, err = admin("caregiver", "add", "alex", "Ann", "--url", "nope://what")
    assert code == 1 and "Apprise does not understand" in err


def test_episodes_alerts_and_audit_listings(admin):
    admin("patient", "add", "alex")
    db = Database(admin.url)
    manager = AlertManager(db, lambda: 1_764_000_000.0, secret_key="k", public_base_url="http://x")
    EpisodeEngine(manager).on_alarm(
        Alarm(
            "alex",
            1_764_000_000.0,
            AlarmKind.ANAPHYLAXIS,
            Severity.CRITICAL,
            "fw-9",
            evidence={"hr_rise_bpm": 33.0},
        )
    )
    db.dispose()
    code, out, _ = admin("episodes")
    assert code == 0 and "anaphylaxis" in out and "fw-9" in out
    code, out, _ = admin("alerts", "--patient", "alex")
    assert code == 0 and "critical" in out
    code, out, _ = admin("audit", "--patient", "alex")
    assert "episode_opened" in out and "alert_opened" in out
    assert "hr_rise" not in out, "evidence (vital values) must not be in the audit listing"


def test_a_retired_device_is_removed_audited_and_refused_by_broker_auth(admin, tmp_path):
    admin("patient", "add", "alex")
    admin("device", "add", "alex", "band-1")
    admin("device", "add", "alex", "band-2")
    code, out, _ = admin("device", "remove", "band-1")
    assert code == 0 and "removed from patient alex" in out and "broker-auth" in out
    assert "band-1" not in admin("device", "list")[1]
    assert "band-2" in admin("device", "list")[1]
    code, out, _ = admin("audit", "--patient", "alex")
    assert "device_removed" in out and "band-1" in out
    code, _, err = admin("device", "remove", "band-1")
    assert code == 1 and "there is no device 'band-1'" in err
    argv = ["broker-auth", "--out", str(tmp_path / "auth"), "--gateway"]
    code, _, err = admin(*argv, "gw-a=band-1,band-2")
    assert code == 1 and "device 'band-1' is not registered" in err
    assert admin(*argv, "gw-a=band-2")[0] == 0


def test_text_longer_than_its_column_is_refused_not_crashed(admin):
    """PostgreSQL refuses text longer than a column where SQLite stores it: both say so clearly."""
    code, _, err = admin("patient", "add", "alex", "--name", "A" * 201)
    assert code == 1 and "at most 200 fit" in err
    assert admin("patient", "add", "alex")[0] == 0
    code, _, err = admin("caregiver", "add", "alex", "N" * 201, "--url", "json://127.0.0.1:9/x")
    assert code == 1 and "contact name is 201 characters long" in err
    code, _, err = admin("device", "add", "alex", "band1", "--label", "L" * 201)
    assert code == 1 and "at most 200 fit" in err
    assert admin("patient", "set", "alex", "--quiet-hours", "0022:0030-7:5")[0] == 0
    assert "22:30-07:05" in admin("patient", "list")[1]


def test_nan_policy_is_refused_for_an_existing_patient_and_nothing_is_stored(admin):
    assert admin("patient", "add", "alex", "--ack-timeout-s", "120")[0] == 0
    code, _, err = admin("patient", "set", "alex", "--ack-timeout-s", "nan")
    assert code == 1 and "ack_timeout_s must be a number of seconds" in err
    assert "60/600/120/60" in admin("patient", "list")[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["alerts", "--limit", "-1"],  # PostgreSQL: LIMIT must not be negative
        ["episodes", "--limit", "0"],
        ["audit", "--limit", str(10**20)],  # PostgreSQL: bigint out of range
        ["audit", "--alert", str(10**20)],  # PostgreSQL: integer out of range
        ["caregiver", "remove", str(2**31)],
        ["caregiver", "test", "x"],
        ["episode", "label", str(10**20), "--as", "reaction"],  # SQLite: OverflowError
        ["episode", "label", "0", "--as", "reaction"],
    ],
)
def test_out_of_range_numbers_are_usage_errors_not_database_errors(admin, capsys, argv):
    with pytest.raises(SystemExit) as stop:
        admin(*argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert "must be from 1 to 2147483647" in err or "is not a whole number" in err


def test_in_range_limit_and_ids_work(admin):
    admin("patient", "add", "alex")
    assert admin("alerts", "--limit", "1")[0] == 0
    assert admin("audit", "--alert", str(2**31 - 1), "--limit", str(2**31 - 1))[0] == 0


def test_a_device_of_another_patient_moves_only_with_move_and_the_audit_says_so(admin):
    for patient in ("alex", "sam"):
        assert admin("patient", "add", patient)[0] == 0
    assert admin("device", "add", "alex", "band-1", "--label", "left wrist")[0] == 0
    code, _, err = admin("device", "add", "sam", "band-1")  # a typo for band-2
    assert code == 1 and "registered to patient alex" in err and "--move" in err
    assert "alex" in admin("device", "list")[1].split("band-1")[1].splitlines()[0]
    assert admin("device", "add", "alex", "band-1", "--label", "right wrist")[0] == 0  # same owner
    code, out, _ = admin("device", "add", "sam", "band-1", "--move")
    assert code == 0 and "moved from alex to sam" in out
    assert "sam" in admin("device", "list")[1].split("band-1")[1].splitlines()[0]
    code, out, _ = admin("audit", "--patient", "sam")
    assert "device_moved" in out and "alex" in out


def test_the_public_demo_key_never_encrypts_a_channel_and_is_warned_of(admin, monkeypatch):
    """Run without the service's settings, the admin commands would seal channel URLs with the
    built-in key, which anyone can read in the source, and ``serve`` refuses that key anyway."""
    assert admin("patient", "add", "alex") == (0, "patient alex added\n", "")
    monkeypatch.delenv("FLAREWATCH_SERVICE__SECRET_KEY")  # a shell without the settings
    code, out, err = admin("caregiver", "add", "alex", "Ann", "--url", "ntfy://secret-topic")
    assert code == 1 and out == "", err
    assert "refusing to store channel URLs" in err and "built-in demo key" in err
    assert "secret-topic" not in err
    code, out, err = admin("patient", "add", "sam")  # nothing secret: done, but said
    assert code == 0 and out == "patient sam added\n"
    assert err.startswith("flarewatch: warning: service.secret_key is the built-in demo key")
    assert "FLAREWATCH_SERVICE__SECRET_KEY" in err
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", "short")
    code, _, err = admin("caregiver", "add", "alex", "Ann", "--url", "ntfy://secret-topic")
    assert code == 1 and "shorter than 16 characters" in err
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:
        assert session.scalars(select(Contact)).all() == [], "nothing stored"
    db.dispose()


def test_rekey_to_the_public_demo_key_is_refused(admin, monkeypatch, tmp_path):
    assert admin("patient", "add", "alex")[0] == 0
    assert admin("caregiver", "add", "alex", "Ann", "--url", "ntfy://secret-topic")[0] == 0
    (tmp_path / "old.key").write_text(KEY + "\n")
    monkeypatch.delenv("FLAREWATCH_SERVICE__SECRET_KEY")
    code, out, err = admin("db", "rekey", "--old-key-file", str(tmp_path / "old.key"))
    assert code == 1 and out == "" and "built-in demo key" in err
    db = Database(admin.url, secret_key=KEY)  # still sealed with the deployment's key
    db.dispose()


def test_a_caregiver_away_and_back(admin):
    assert admin("patient", "add", "alex")[0] == 0
    for name in ("Ann", "Bob"):
        assert admin("caregiver", "add", "alex", name, "--url", "json://127.0.0.1:9/x")[0] == 0
    code, out, _ = admin("caregiver", "away", "1", "--for", "8h")
    assert code == 0 and "Ann is away until 20" in out
    code, out, _ = admin("caregiver", "list", "alex")
    ann = next(line for line in out.splitlines() if "Ann" in line)
    assert "Z" in ann, "the list says until when"
    for bad, said in (
        (["--for", "forever"], "not a length such as"),
        (["--for", "31d"], "30 days at most"),
        (["--until", "2011-01-01T00:00"], "must end in the future"),
        (["--until", "soon"], "not an ISO 8601 time"),
    ):
        code, _, err = admin("caregiver", "away", "2", *bad)
        assert code != 0 and said in err
    with pytest.raises(SystemExit):
        admin("caregiver", "away", "2")  # --for or --until is required
    code, out, _ = admin("caregiver", "back", "1")
    assert code == 0 and "Ann is back" in out
    code, out, _ = admin("caregiver", "back", "1")
    assert code == 0 and "Ann was not away" in out


def test_a_plan_set_by_the_administrator_is_tidied_and_audited(admin):
    assert admin("patient", "add", "alex", "--plan", "First.")[0] == 0
    assert admin("patient", "set", "alex", "--plan", "EpiPen.\r\nCall 112.  ")[0] == 0
    assert admin("patient", "set", "alex", "--plan", "x" * 10_001)[0] != 0
    code, out, _ = admin("audit", "--patient", "alex")
    assert code == 0 and out.count("emergency_plan_changed") == 1
    db = Database(admin.url)
    with db.session() as session:
        patient = session.get_one(Patient, "alex")
        assert patient.emergency_plan == "EpiPen.\nCall 112."
        assert patient.plan_changed_by == "administrator"
    db.dispose()


def test_drills_on_a_schedule_and_the_reminder_of_a_band_taken_off(admin):
    code, out, _ = admin(
        "patient", "add", "alex", "--timezone", "Europe/Berlin", "--off-reminder-s", "3600",
        "--drills-every-days", "28", "--drills-at", "07:15",
    )  # fmt: skip
    assert code == 0 and "next drill: 07:15 " in out
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:
        alex = session.get_one(Patient, "alex")
        assert (alex.drill_every_days, alex.drill_at, alex.off_reminder_s) == (28, "07:15", 3600)
        assert alex.next_drill_s is not None
    assert admin("patient", "set", "alex", "--drills-every-days", "0")[0] == 0
    with db.session() as session:
        alex = session.get_one(Patient, "alex")
        assert (alex.drill_every_days, alex.next_drill_s) == (None, None)
    code, _, err = admin("patient", "set", "alex", "--drills-every-days", "7", "--drills-at", "7")
    assert code == 1 and "must look like 18:00" in err
    db.dispose()


def test_a_caregiver_away_every_week(admin):
    assert admin("patient", "add", "alex", "--timezone", "Europe/Berlin")[0] == 0
    assert admin("caregiver", "add", "alex", "Ann", "--url", "json://127.0.0.1:9/x")[0] == 0
    code, out, _ = admin(
        "caregiver", "away", "1", "--every", "mon-fri", "--from", "22:00", "--to", "06:00"
    )
    assert code == 0
    assert "Ann is away every week: Mon, Tue, Wed, Thu, Fri from 22:00 to 06:00 the next day" in out
    code, out, _ = admin("caregiver", "list", "alex")
    assert "Mon, Tue, Wed, Thu, Fri from 22:00 to 06:00 the next day" in out
    code, _, err = admin("caregiver", "away", "1", "--every", "someday")
    assert code == 1 and "is not days of the week" in err
    code, out, _ = admin("caregiver", "away", "1", "--every", "none")
    assert code == 0 and "Ann has no weekly absence" in out


def test_drills_and_weekly_absences_follow_the_patient_to_another_clock(admin):
    assert admin("patient", "add", "alex", "--timezone", "Europe/Berlin",
                 "--drills-every-days", "7", "--drills-at", "07:15")[0] == 0  # fmt: skip
    assert admin("caregiver", "add", "alex", "Ann", "--url", "json://127.0.0.1:9/x")[0] == 0
    assert admin("caregiver", "away", "1", "--every", "daily", "--from", "09:00")[0] == 0
    assert admin("patient", "set", "alex", "--timezone", "America/New_York")[0] == 0
    db = Database(admin.url, secret_key=KEY)
    with db.session() as session:
        alex = session.get_one(Patient, "alex")
        ann = session.get_one(Contact, 1)
        assert alex.next_drill_s is not None and ann.away_next_s is not None
        new_york = ZoneInfo("America/New_York")
        drill = dt.datetime.fromtimestamp(alex.next_drill_s, new_york)
        away = dt.datetime.fromtimestamp(ann.away_next_s, new_york)
    assert (drill.hour, drill.minute) == (7, 15), "07:15 on the new clock"
    assert (away.hour, away.minute) == (9, 0), "09:00 on the new clock, today or tomorrow"
    db.dispose()


def test_a_contacts_channels_one_by_one_through_the_services_own_servers(
    admin, monkeypatch, smtp, http, inbox
):
    admin("patient", "add", "alex", "--name", "Alex")
    admin("caregiver", "add", "alex", "Sam", "--url", http.url("sam"))
    code, _, err = admin("caregiver", "channel-add", "1", "--email", "sam@example.org")
    assert code == 1 and "does not offer email channels (service.mail_url is not set)" in err
    monkeypatch.setenv("FLAREWATCH_SERVICE__MAIL_URL", smtp.url("nobody@example.org"))
    monkeypatch.setenv("FLAREWATCH_SERVICE__NTFY_URL", f"http://127.0.0.1:{http.port}")
    code, out, _ = admin("caregiver", "channel-add", "1", "--email", "Sam@Example.org")
    assert code == 0 and "channel 2 of Sam (contact 1): e-mail to sam@example.org" in out
    code, out, _ = admin("caregiver", "channel-add", "1", "--ntfy")
    topic = out.split("to topic ")[1].split(" ")[0]
    assert code == 0 and f"on http://127.0.0.1:{http.port} (keep it private" in out
    listed = admin("caregiver", "list", "alex")[1]
    assert "json://127.0.0.1 #" in listed and "flarewatch-mail://example.org #" in listed
    assert topic not in listed and "sam@" not in listed, "redacted"

    assert admin("caregiver", "test", "1")[0] == 0
    assert inbox.wait_for("/sam", 1) and inbox.wait_for("sam@example.org", 1)
    assert inbox.wait_for(f"/{topic}", 1)

    code, out, _ = admin("caregiver", "channel-remove", "1", "1")
    assert code == 0 and "channel 1 of Sam taken off" in out
    listed = admin("caregiver", "list", "alex")[1]
    assert "json://" not in listed and "flarewatch-mail://" in listed
    assert admin("caregiver", "channel-remove", "1", "2")[0] == 0
    code, _, err = admin("caregiver", "channel-remove", "1", "1")
    assert code == 1 and "the only channel alerts reach them by" in err
    code, _, err = admin("caregiver", "channel-remove", "1", "3")
    assert code == 1 and "give a place from 1 to 1" in err
    audit = admin("audit", "--patient", "alex")[1]
    assert audit.count("channel_added") == 2 and audit.count("channel_removed") == 2
    assert "sam@example.org" not in audit and topic not in audit
