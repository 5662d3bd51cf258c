"""``flarewatch admin …``: patients, devices, care teams, policies and the service database.

The web API replaces these later; until then they are how a deployment is set up. Channel URLs
are printed redacted; vital values are never printed by the listings. Under the built-in (public)
or a short ``service.secret_key`` the commands warn, and refuse to encrypt channel URLs. This
module builds the whole ``admin`` command tree; the listings of episodes, alerts and audit are
in :mod:`service.history_cli`, episode labels in :mod:`service.episode_labels_cli`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flarewatch.cli_text import print_table
from flarewatch.errors import ConfigError
from flarewatch.payloads import LinkState
from flarewatch.settings import ServiceSettings, load_settings, read_secret_file, require_secret_key
from models.alarm import Severity
from models.profiles import DetectionProfile
from service.account_cli import add_account_commands
from service.alerts.absence import away_length_s, come_back, go_away
from service.alerts.away_schedule import (
    AwaySchedule,
    absences_follow_timezone,
    parse_days,
    schedule_of,
    set_away_schedule,
)
from service.alerts.drill_schedule import drills_follow_timezone, schedule_drills
from service.alerts.render import on_patient_clock
from service.broker_auth_cli import add_broker_auth_command
from service.channel_cli import add_channel_commands, cli_notifier, require_own_key
from service.cli_tables import parse_time, row_number, when
from service.db.care_teams import (
    PolicyUpdate,
    add_contact,
    add_device,
    add_patient,
    get_contact,
    get_patient,
    remove_contact,
    remove_device,
    reorder_contacts,
    set_policy,
    set_research_consent,
)
from service.db.channel_crypto import ChannelCipher, open_url, reseal_channels
from service.db.emergency_plan import change_plan
from service.db.models import Contact, Device, Patient, Role
from service.db.research_register import change_consent
from service.db.session import Database, backup_database
from service.episode_labels_cli import Handler, add_episode_commands
from service.history_cli import add_history_commands
from service.patient_data_cli import add_patient_data_commands
from service.profile_review_cli import add_profile_review_command
from service.research_cli import add_research_commands, print_recall


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load_settings(getattr(args, "config", None))
        db = Database(
            args.database_url or settings.service.database_url,
            secret_key=settings.service.secret_key.get_secret_value(),
        )
        try:
            with db.session() as session:
                code = handler(args, session)
        finally:
            db.dispose()
        _warn_of_a_public_key(settings.service)  # after: a refusal has said it already
        return code

    return run


def _warn_of_a_public_key(service: ServiceSettings) -> None:
    """Say on stderr that the command ran under a key anyone can know or guess.

    It cannot be the service's key (``serve`` refuses it): most likely the shell lacks the
    service's settings, and so may name another database than the service's.
    """
    try:
        require_secret_key(service)
    except ConfigError as exc:
        print(
            f"flarewatch: warning: {exc}. Run the admin commands with the service's settings",
            file=sys.stderr,
        )


def _policy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", dest="display_name", help="name used in messages")
    parser.add_argument(
        "--timezone", help="IANA zone for quiet hours and times, e.g. Europe/Berlin"
    )
    parser.add_argument("--plan", dest="emergency_plan", help="emergency plan text (what to do)")
    parser.add_argument("--cancel-window-s", type=float, help="wearer's time to cancel a warning")
    parser.add_argument(
        "--signal-window-s",
        type=float,
        help="wearer's time to answer a lost-signal notice before caregivers are told",
    )
    parser.add_argument(
        "--off-reminder-s",
        type=float,
        help="after the wearer says they took the band off, remind them it is still off after "
        "this long, then twice as long each time (default 7200; 0 = never)",
    )
    parser.add_argument(
        "--off-notice-s",
        type=float,
        help="a band the wearer took off and still silent this long after it went silent: "
        "the caregivers are told once (default 86400; 0 = never)",
    )
    parser.add_argument(
        "--drills-every-days",
        type=int,
        metavar="DAYS",
        help="a drill (a practice alert to the care team) every DAYS days at --drills-at; "
        "0 = only when started (docs/alerts.md#drills)",
    )
    parser.add_argument(
        "--drills-at", metavar="HH:MM", default="18:00", help="on the patient's clock (18:00)"
    )
    parser.add_argument("--ack-timeout-s", type=float, help="escalate to the next person after")
    parser.add_argument("--repeat-interval-s", type=float, help="repeat critical alerts every")
    parser.add_argument("--quiet-hours", help='e.g. "22:00-07:00" (warnings only); "" = off')
    parser.add_argument(
        "--detection-profile",
        metavar="{" + ",".join(p.value for p in DetectionProfile) + "}",
        help="how eager surge detection is: earlier alarms cost more false alarms "
        "(docs/alerts.md); default balanced",
    )
    parser.add_argument(
        "--research-consent",
        choices=["yes", "no"],
        help="whether the patient consented to research exports of their pseudonymised "
        "episodes and recordings (docs/research.md); default no",
    )


def _policy_update(args: argparse.Namespace) -> PolicyUpdate:
    return PolicyUpdate(
        cancel_window_s=args.cancel_window_s,
        signal_window_s=args.signal_window_s,
        off_reminder_s=args.off_reminder_s,
        off_notice_s=args.off_notice_s,
        ack_timeout_s=args.ack_timeout_s,
        repeat_interval_s=args.repeat_interval_s,
        quiet_hours=args.quiet_hours,
        emergency_plan=args.emergency_plan,
        timezone=args.timezone,
        display_name=args.display_name,
        detection_profile=args.detection_profile,
    )


def _patient_add(args: argparse.Namespace, session: Session) -> int:
    now_s = time.time()
    patient = add_patient(session, args.patient_id, now_s, _policy_update(args))
    if args.research_consent is not None:
        set_research_consent(session, patient, args.research_consent == "yes", now_s)
    _drills(args, session, patient, now_s)
    print(f"patient {patient.id} added")
    return 0


def _patient_set(args: argparse.Namespace, session: Session) -> int:
    patient = get_patient(session, args.patient_id)
    update = _policy_update(args)
    clock_before = patient.timezone
    set_policy(patient, replace(update, emergency_plan=None))
    if patient.timezone != clock_before:  # drills and weekly absences go by the new clock
        drills_follow_timezone(patient, time.time())
        absences_follow_timezone(session, patient.id, time.time())
    if update.emergency_plan is not None:
        change_plan(
            session,
            patient,
            update.emergency_plan,
            was=None,
            by="administrator",
            now_s=time.time(),
            via="cli",
        )
    # exports already handed over keep them: the recipients are to be asked to delete them
    found = (
        change_consent(session, patient, args.research_consent == "yes", time.time())
        if args.research_consent is not None
        else []
    )
    _drills(args, session, patient, time.time())
    print(f"patient {args.patient_id} updated")
    print_recall(args.patient_id, "research consent withdrawn", found)
    return 0


def _drills(args: argparse.Namespace, session: Session, patient: Patient, now_s: float) -> None:
    """Drills on a schedule, if asked (``--drills-every-days``)."""
    if args.drills_every_days is None:
        return
    days = args.drills_every_days or None
    schedule_drills(session, patient, days, args.drills_at, now_s, by="administrator", via="cli")
    if patient.next_drill_s is not None:
        print(f"next drill: {on_patient_clock(patient.next_drill_s, now_s, patient.timezone)}")


def _patient_list(args: argparse.Namespace, session: Session) -> int:
    rows = [
        (
            p.id,
            p.display_name,
            p.timezone,
            f"{p.cancel_window_s:g}/{p.signal_window_s:g}/{p.ack_timeout_s:g}/"
            f"{p.repeat_interval_s:g}",
            f"{p.quiet_start}-{p.quiet_end}" if p.quiet_start else "-",
            "yes" if p.emergency_plan else "NO",
            p.detection_profile,
            "yes" if p.research_consent_s is not None else "no",
        )
        for p in session.scalars(select(Patient).order_by(Patient.id))
    ]
    print_table(
        [
            *("patient", "name", "timezone", "cancel/signal/ack/repeat s", "quiet", "plan"),
            *("profile", "research"),
        ],
        rows,
    )
    return 0


def _device_add(args: argparse.Namespace, session: Session) -> int:
    device = session.get(Device, args.device_id)
    owner = device.patient_id if device is not None else None
    move_at_s = time.time() if args.move else None
    add_device(session, args.patient_id, args.device_id, args.label or "", move_at_s=move_at_s)
    if owner is not None and owner != args.patient_id:
        print(
            f"device {args.device_id} moved from {owner} to {args.patient_id}; run "
            "`flarewatch admin broker-auth` again to update the broker's ACL"
        )
    else:
        print(f"device {args.device_id} assigned to {args.patient_id}")
    return 0


def _device_remove(args: argparse.Namespace, session: Session) -> int:
    device = remove_device(session, args.device_id, time.time())
    print(
        f"device {device.id} removed from patient {device.patient_id} (its samples stay): "
        "take it off its gateway's devices file and run `flarewatch admin broker-auth` again "
        "without it, so that the gateway may no longer publish for it"
    )
    return 0


def _device_list(args: argparse.Namespace, session: Session) -> int:
    rows = [
        (
            d.id,
            d.patient_id,
            d.label,
            _link(d),
            when(d.link_since_s) if d.link_since_s is not None else "-",
            "-" if d.battery_percent is None else f"{d.battery_percent} %",
        )
        for d in session.scalars(select(Device).order_by(Device.id))
    ]
    print_table(["device", "patient", "label", "link", "since", "battery"], rows)
    return 0


def _link(device: Device) -> str:
    """A band's link as its gateway last reported it: ``offline (pairing)``; ``-``: never."""
    if device.link_state is None:
        return "-"
    if device.link_reason and device.link_state != LinkState.ONLINE:
        return f"{device.link_state} ({device.link_reason})"
    return device.link_state


def _contact_add(args: argparse.Namespace, session: Session) -> int:
    notifier = cli_notifier(args)
    for url in args.url:
        problem = notifier.validate(url)
        if problem:
            raise ConfigError(f"{notifier.redact(url)}: {problem}")
    require_own_key(args, "refusing to store channel URLs encrypted with this key")
    contact = add_contact(session, args.patient_id, args.name, args.url, role=Role(args.role))
    print(f"{args.role} {contact.name} added with id {contact.id}")
    return 0


def _contact_list(args: argparse.Namespace, session: Session) -> int:
    get_patient(session, args.patient_id)
    notifier = cli_notifier(args)
    contacts = session.scalars(
        select(Contact)
        .where(Contact.patient_id == args.patient_id, Contact.removed_s.is_(None))
        .order_by(Contact.role, Contact.position, Contact.id)
    )
    rows = [
        (
            c.id,
            c.role,
            c.position,
            c.name,
            when(c.away_until_s) if c.away_until_s is not None else "",
            schedule.words() if (schedule := schedule_of(c)) else "",
            " | ".join(notifier.redact(open_url(session, ch)) for ch in c.live_channels),
        )
        for c in contacts
    ]
    heads = ["id", "role", "order", "name", "away until", "away every week", "channels (redacted)"]
    print_table(heads, rows)
    return 0


def _contact_away(args: argparse.Namespace, session: Session) -> int:
    now_s = time.time()
    if args.every is not None:
        return _contact_away_every_week(args, session, now_s)
    until_s = (
        parse_time(args.until, "--until") if args.until else now_s + away_length_s(args.length)
    )
    contact = get_contact(session, args.contact_id)
    go_away(session, contact, until_s, now_s)
    print(f"{contact.name} is away until {when(until_s)}: alerts go to everyone available first")
    return 0


def _contact_away_every_week(args: argparse.Namespace, session: Session, now_s: float) -> int:
    contact = get_contact(session, args.contact_id)
    every = args.every.strip().lower()
    schedule = None if every == "none" else AwaySchedule(parse_days(every), args.start, args.end)
    set_away_schedule(session, contact, schedule, now_s, by="administrator", via="cli")
    found = schedule_of(contact)
    if found is None:
        print(f"{contact.name} has no weekly absence")
        return 0
    print(f"{contact.name} is away every week: {found.words()} ({contact.patient.timezone})")
    if contact.away_until_s is not None:
        print(f"away now, until {when(contact.away_until_s)}")
    return 0


def _contact_back(args: argparse.Namespace, session: Session) -> int:
    contact = get_contact(session, args.contact_id)
    if come_back(session, contact, time.time(), reason="by_hand"):
        print(f"{contact.name} is back in their place in the escalation order")
    else:
        print(f"{contact.name} was not away")
    return 0


def _contact_order(args: argparse.Namespace, session: Session) -> int:
    reorder_contacts(session, args.patient_id, args.contact_ids, time.time())
    print(f"escalation order of {args.patient_id}: {args.contact_ids}")
    return 0


def _contact_remove(args: argparse.Namespace, session: Session) -> int:
    remove_contact(session, args.contact_id, time.time())
    print(f"contact {args.contact_id} removed (kept in the alert history)")
    return 0


def _contact_test(args: argparse.Namespace, session: Session) -> int:
    from service.alerts.notifier import Message

    contact = get_contact(session, args.contact_id)
    notifier = cli_notifier(args)
    message = Message("flarewatch test", f"Test message for {contact.name}.", Severity.WARNING)
    urls = [open_url(session, channel) for channel in contact.live_channels]
    # each send may take seconds (a timeout, a slow SMTP server): the transaction holds the
    # service's one-writer lock (service/db/session.py), and with it every alert, until it ends
    session.commit()
    failures = 0
    for url in urls:
        result = notifier.send(url, message)
        failures += not result.ok
        status = "ok" if result.ok else f"FAILED ({result.reason})"
        print(f"{notifier.redact(url)}: {status}")
    return 1 if failures else 0


def _db_upgrade(args: argparse.Namespace) -> int:
    """Migrate the service database to this version's schema and say what was done."""
    settings = load_settings(getattr(args, "config", None))
    db = Database(  # migrates on opening; refuses a database newer than this code
        args.database_url or settings.service.database_url,
        secret_key=settings.service.secret_key.get_secret_value(),
    )
    db.dispose()
    before, head = db.schema_before, db.schema_head
    if before == head:
        print(f"database schema is up to date (revision {head})")
    elif before is None:
        print(f"database schema created (revision {head})")
    else:
        print(f"database schema upgraded from revision {before} to {head}")
    _warn_of_a_public_key(settings.service)
    return 0


def _db_backup(args: argparse.Namespace) -> int:
    """Copy the SQLite service database, consistently, while the service runs."""
    settings = load_settings(getattr(args, "config", None))
    revision = backup_database(args.database_url or settings.service.database_url, args.out)
    size_kib = args.out.stat().st_size / 1024
    print(
        f"service database (schema revision {revision}) backed up to {args.out} "
        f"({size_kib:.0f} KiB); its channel URLs open only with service.secret_key: keep the key "
        "apart from the backup"
    )
    return 0


def _db_rekey(args: argparse.Namespace) -> int:
    """Re-encrypt the channel URLs after ``service.secret_key`` was changed."""
    require_own_key(args, "refusing to re-encrypt the channel URLs with this key")
    settings = load_settings(getattr(args, "config", None))
    url = args.database_url or settings.service.database_url
    old_key = read_secret_file(args.old_key_file, "--old-key-file")
    new_key = settings.service.secret_key.get_secret_value()
    db = Database(url, secret_key=old_key)  # refuses an old key that does not open every row
    try:
        with db.session() as session:
            count = reseal_channels(session, ChannelCipher(old_key), ChannelCipher(new_key))
    finally:
        db.dispose()
    Database(url, secret_key=new_key).dispose()  # proves the new key opens every row
    print(f"{count} channel URLs re-encrypted with the configured service.secret_key")
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``flarewatch admin`` and its subcommands."""
    admin = subparsers.add_parser("admin", help="manage patients, devices, care teams; list alerts")
    admin.add_argument("--database-url", help="service database (default: settings)")
    groups = admin.add_subparsers(dest="admin_command", metavar="WHAT", required=True)

    def command(
        parent: Any, name: str, handler: Handler, help_text: str
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        parser.set_defaults(handler=_run(handler))
        return parser

    patient = groups.add_parser("patient", help="patients and their alerting policy")
    patient_cmds = patient.add_subparsers(dest="patient_command", metavar="ACTION", required=True)
    for name, handler, text in (
        ("add", _patient_add, "register a patient"),
        ("set", _patient_set, "change a patient's policy"),
    ):
        parser = command(patient_cmds, name, handler, text)
        parser.add_argument("patient_id")
        _policy_args(parser)
    command(patient_cmds, "list", _patient_list, "list patients and policies")
    add_profile_review_command(patient_cmds, command)
    add_patient_data_commands(patient_cmds, command)

    device = groups.add_parser("device", help="wearables")
    device_cmds = device.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    parser = command(device_cmds, "add", _device_add, "assign a wearable to a patient")
    parser.add_argument("patient_id")
    parser.add_argument("device_id")
    parser.add_argument("--label")
    parser.add_argument(
        "--move",
        action="store_true",
        help="move a device registered to another patient (recorded in the audit trail)",
    )
    parser = command(
        device_cmds, "remove", _device_remove, "take a lost, broken or retired wearable off"
    )
    parser.add_argument("device_id")
    command(device_cmds, "list", _device_list, "list wearables")

    caregiver = groups.add_parser("caregiver", help="care team: caregivers, emergency contact")
    cg_cmds = caregiver.add_subparsers(dest="caregiver_command", metavar="ACTION", required=True)
    parser = command(cg_cmds, "add", _contact_add, "add a contact with one or more Apprise URLs")
    parser.add_argument("patient_id")
    parser.add_argument("name")
    parser.add_argument("--url", action="append", required=True, help="Apprise URL (repeatable)")
    parser.add_argument("--role", choices=[r.value for r in Role], default=Role.CAREGIVER.value)
    parser = command(cg_cmds, "list", _contact_list, "show the care team (URLs redacted)")
    parser.add_argument("patient_id")
    parser = command(cg_cmds, "order", _contact_order, "set the escalation order")
    parser.add_argument("patient_id")
    parser.add_argument("contact_ids", type=row_number, nargs="+")
    parser = command(cg_cmds, "remove", _contact_remove, "remove a contact")
    parser.add_argument("contact_id", type=row_number)
    parser = command(cg_cmds, "test", _contact_test, "send a test message to every channel")
    parser.add_argument("contact_id", type=row_number)
    parser = command(
        cg_cmds, "away", _contact_away, "set a contact away: last in the escalation order"
    )
    parser.add_argument("contact_id", type=row_number)
    length = parser.add_mutually_exclusive_group(required=True)
    length.add_argument("--for", dest="length", help="how long: 90m, 8h, 3d, 1w (30 days at most)")
    length.add_argument("--until", help="until an ISO 8601 time (UTC unless it says otherwise)")
    length.add_argument(
        "--every",
        metavar="DAYS",
        help="every week on DAYS (mon-fri, mon,wed,fri, weekdays, weekends, daily) from --from "
        "to --to on the patient's clock; none: no weekly absence",
    )
    parser.add_argument("--from", dest="start", default="08:00", help="with --every (08:00)")
    parser.add_argument("--to", dest="end", default="17:00", help="with --every (17:00)")
    parser = command(cg_cmds, "back", _contact_back, "end a contact's absence now")
    parser.add_argument("contact_id", type=row_number)
    add_channel_commands(cg_cmds, command)

    add_history_commands(groups, command)
    add_episode_commands(groups, command)
    add_research_commands(groups, command)
    add_account_commands(groups, command)
    add_broker_auth_command(groups)
    db = groups.add_parser("db", help="service database")
    db_cmds = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_cmds.add_parser("upgrade", help="apply schema migrations").set_defaults(handler=_db_upgrade)
    backup = db_cmds.add_parser(
        "backup",
        help="copy the SQLite service database consistently, while the service runs",
        description="Writes one consistent snapshot of the SQLite service database to FILE "
        "(mode 0600), through SQLite's online backup API: the service goes on meanwhile. "
        "Replaces FILE only once the copy is complete and checked. PostgreSQL: use pg_dump.",
    )
    backup.add_argument("--out", type=Path, required=True, metavar="FILE", help="the copy")
    backup.set_defaults(handler=_db_backup)
    rekey = db_cmds.add_parser(
        "rekey",
        help="re-encrypt channel URLs after changing service.secret_key",
        description="Channel URLs are encrypted with a key derived from service.secret_key. "
        "After setting a new key, run this with the old key in a file (not on the command line, "
        "where other users could read it).",
    )
    rekey.add_argument("--old-key-file", type=Path, required=True, help="file holding the old key")
    rekey.set_defaults(handler=_db_rekey)
