"""``flarewatch admin broker-auth``: write Mosquitto's password and ACL files from the registry."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from flarewatch.output_files import make_folder, replacing, writing
from flarewatch.settings import load_settings
from service.broker_auth import (
    ALL_PATIENTS,
    AckGrant,
    DeviceRoute,
    ReadGrant,
    acl_file,
    hash_password,
    new_password,
    password_file,
)
from service.db.models import Device, Patient
from service.db.session import Database

SERVICE_USER = "flarewatch-service"
SERVICE_CLIENT_PREFIX = "flarewatch-"
"""The service's account and MQTT client ids start with this; no device may be named so."""
READER_EXAMPLE = f"siren=alex[,sam] (or display={ALL_PATIENTS} for a display of every patient)"


def add_broker_auth_command(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``admin broker-auth`` to the admin command group."""
    parser = groups.add_parser(
        "broker-auth",
        help="write Mosquitto password + ACL files: one user per gateway, own devices only",
        description="Gateways get a user that may publish only the topics of their devices (looked "
        "up in the service database); existing users keep their passwords unless rotated, and "
        "users no longer given are removed: give every user each time. New passwords are "
        "printed once, here, and stored only as PBKDF2-SHA512 hashes.",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for passwords and acl")
    parser.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="GATEWAY=DEVICE[,DEVICE…]",
        help="a gateway and the devices it reads (repeatable)",
    )
    parser.add_argument(
        "--alert-reader",
        action="append",
        default=[],
        metavar="USER=PATIENT[,PATIENT…]",
        help="a siren or display that may read these patients' alert events and publish nothing "
        f"(repeatable); USER={ALL_PATIENTS} reads every patient's, for a central display only",
    )
    parser.add_argument(
        "--ack-device",
        action="append",
        default=[],
        metavar="USER=PATIENT[,PATIENT…]",
        help="a hall button that may read and acknowledge these patients' alerts only (repeatable)",
    )
    parser.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="USER",
        help="issue a new password to this user, one given in this run (repeatable)",
    )
    parser.set_defaults(handler=run_broker_auth)


def _parse_assignments(specs: list[str], option: str, example: str) -> dict[str, list[str]]:
    """``USER=A,B`` options (repeatable) as user → names; a malformed one is a clear error."""
    assigned: dict[str, list[str]] = {}
    for spec in specs:
        user, _, names = spec.partition("=")
        listed = [name for name in names.split(",") if name]
        if not user or not listed:
            raise ConfigError(f"{option} {spec!r} must look like {example}")
        if ":" in user or not user.isprintable():
            # "user:hash" lines: Mosquitto would read another user, and refuse this one's login
            raise ConfigError(
                f"{option} user {user!r} cannot be a broker user: ':' and control characters "
                "do not fit Mosquitto's password file"
            )
        if user.startswith(SERVICE_CLIENT_PREFIX):
            # over TLS a device's client id is its user name (deploy/mosquitto/mosquitto.conf):
            # this one could take the service's (flarewatch-{instance}-ingest) and its session
            raise ConfigError(
                f"{option} user {user!r}: names starting with {SERVICE_CLIENT_PREFIX!r} are the "
                "service's own (its account and MQTT client ids); name the device otherwise"
            )
        assigned.setdefault(user, []).extend(listed)
    return assigned


def _device_routes(
    session: Session, gateways: dict[str, list[str]]
) -> dict[str, list[DeviceRoute]]:
    """Each gateway's devices with the patient each is registered to."""
    routes: dict[str, list[DeviceRoute]] = {}
    for gateway, device_ids in gateways.items():
        for device_id in device_ids:
            device = session.get(Device, device_id)
            if device is None:
                raise ConfigError(
                    f"device {device_id!r} is not registered: "
                    "`flarewatch admin device add PATIENT DEVICE` first"
                )
            routes.setdefault(gateway, []).append(DeviceRoute(device.patient_id, device_id))
    return routes


def _patient_grants(
    session: Session, assigned: dict[str, list[str]], option: str
) -> list[tuple[str, str]]:
    """Parsed ``USER=PATIENT,…`` options as (user, patient) pairs, each patient registered."""
    pairs: list[tuple[str, str]] = []
    for user, patient_ids in assigned.items():
        for patient_id in dict.fromkeys(patient_ids):
            if session.get(Patient, patient_id) is None:
                raise ConfigError(
                    f"patient {patient_id!r} of {option} {user} is not registered: "
                    "`flarewatch admin patient add PATIENT` first"
                )
            pairs.append((user, patient_id))
    return pairs


def _ack_grants(session: Session, specs: list[str]) -> list[AckGrant]:
    """The ``--ack-device`` grants, each for a registered patient."""
    assigned = _parse_assignments(specs, "--ack-device", "hall-button=alex")
    return [AckGrant(*pair) for pair in _patient_grants(session, assigned, "--ack-device")]


def _read_grants(session: Session, specs: list[str]) -> list[ReadGrant]:
    """The ``--alert-reader`` grants: registered patients, or every patient when asked explicitly.

    A bare ``USER`` (which once meant every patient) is refused: a siren in one home must not
    read the alerts of every other patient.
    """
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(
                f"--alert-reader {spec!r} must name the patients whose alerts it may read: "
                f"{spec}=alex[,sam], or {spec}={ALL_PATIENTS} for a central display that must "
                "see every patient's alerts"
            )
    assigned = _parse_assignments(specs, "--alert-reader", READER_EXAMPLE)
    everyone = [user for user, names in assigned.items() if ALL_PATIENTS in names]
    for user in everyone:
        if set(assigned.pop(user)) != {ALL_PATIENTS}:
            raise ConfigError(
                f"--alert-reader {user}: {ALL_PATIENTS} already means every patient; "
                f"give either {user}={ALL_PATIENTS} or a list of patients"
            )
    pairs = _patient_grants(session, assigned, "--alert-reader")
    return [ReadGrant(user, ALL_PATIENTS) for user in everyone] + [ReadGrant(*p) for p in pairs]


def _existing_hashes(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    hashes = {}
    for line in path.read_text().splitlines():
        user, sep, hashed = line.partition(":")
        if sep and user:
            hashes[user] = hashed
    return hashes


def run_broker_auth(args: argparse.Namespace) -> int:
    """Resolve devices to patients, (re)issue passwords, write both files."""
    settings = load_settings(getattr(args, "config", None))
    gateways = _parse_assignments(args.gateway, "--gateway", "gw-1=band-1,band-2")
    db = Database(
        getattr(args, "database_url", None) or settings.service.database_url,
        secret_key=settings.service.secret_key.get_secret_value(),
    )
    try:
        with db.session() as session:
            routes = _device_routes(session, gateways)
            grants = _ack_grants(session, args.ack_device)
            readers = _read_grants(session, args.alert_reader)
    finally:
        db.dispose()
    alert_users = [*(reader.user for reader in readers), *(grant.user for grant in grants)]
    users = [SERVICE_USER, *routes, *alert_users]
    for user in args.rotate:
        if user not in users:  # a typo would otherwise rotate nothing, silently
            raise ConfigError(
                f"--rotate {user}: no such user in this run (given: {', '.join(users)}); "
                "rotate a user given by --gateway, --alert-reader or --ack-device"
            )
    with writing("--out", args.out):
        kept, removed, issued = _write_files(args, users, routes, readers, grants)
    print(f"wrote {args.out / 'passwords'} ({kept} users) and {args.out / 'acl'}")
    if removed:
        print(
            f"removed {len(removed)} users no longer given: {', '.join(removed)} "
            "(restart Mosquitto for it to take effect)"
        )
    for user, password in issued.items():
        print(f"new password for {user}: {password}")
    if issued:
        print("These passwords are shown once; only their hashes were written.")
    return 0


def _write_files(
    args: argparse.Namespace,
    users: list[str],
    routes: dict[str, list[DeviceRoute]],
    readers: list[ReadGrant],
    grants: list[AckGrant],
) -> tuple[int, list[str], dict[str, str]]:
    """(Re)issue the passwords and write both files into ``args.out``.

    Returns the number of users written, the users removed and the new passwords, printed by
    the caller once both files are written.
    """
    make_folder(args.out, "--out")
    passwords_path = args.out / "passwords"
    existing = _existing_hashes(passwords_path)
    issued: dict[str, str] = {}
    # The file is this command's: only the users it is given now stay (with their passwords).
    # One dropped here has no ACL rules left, and a login it should no longer have.
    hashes: dict[str, str] = {}
    for user in dict.fromkeys(users):  # a user given twice gets one password
        if user not in existing or user in args.rotate:
            issued[user] = new_password()
            hashes[user] = hash_password(issued[user])
        else:
            hashes[user] = existing[user]
    removed = sorted(set(existing) - set(hashes))
    acl = acl_file(routes, service_user=SERVICE_USER, alert_readers=readers, ack_grants=grants)
    # Owner-only from the first byte (the hashes; the ACL names every patient and device) and
    # whole or not at all: both are complete on disk before either replaces the old one.
    with (
        replacing(passwords_path, "--out") as passwords_out,
        replacing(args.out / "acl", "--out") as acl_out,
    ):
        passwords_out.write(password_file(hashes))
        acl_out.write(acl)
    return len(hashes), removed, issued
