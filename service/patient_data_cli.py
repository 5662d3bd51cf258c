"""A patient's rights over their data: a copy of it, and its erasure.

``admin patient export ID``: everything the service holds about them
(:mod:`service.patient_export`), with a progress bar while the samples are read.

``admin patient erase ID``: for a patient who leaves the service or asks for their data to be
erased. Without ``--yes`` it only says what it would erase. It refuses while their band still
sends data (its next samples would bring them back) or while an alarm is under way for them
(:mod:`service.db.erasure`). The records go first, in one transaction: from then on nobody is
alerted about the patient. Then the samples and Grafana marks in the sample store; if that
fails, running the command again finishes the job. A running service drops the patient's
detector state and retained alert status within ``PROFILE_REFRESH_S``
(:mod:`service.episodes.profile_sync`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sqlalchemy.orm import Session

from flarewatch.errors import ConfigError
from flarewatch.progress import percent_progress
from flarewatch.settings import load_settings
from flarewatch.topics import device_status_topic
from service.const import ERASE_QUIET_S
from service.db.erasure import ErasedRecords, devices_of, erase_patient_records
from service.db.research_register import inclusions
from service.episode_labels_cli import CommandFactory
from service.errors import StoreError
from service.patient_export import read_patient_records, write_patient_export
from service.research_cli import print_recall
from service.stores.base import SampleStore
from service.stores.factory import STORE_SETTINGS_HINT, describe_store, opened_store


def _erase(args: argparse.Namespace, session: Session) -> int:
    settings = load_settings(getattr(args, "config", None))
    where = describe_store(settings)
    patient_id: str = args.patient_id
    with opened_store(settings) as store:
        samples = store.count(patient_id=patient_id)
        if not args.force:
            _refuse_while_sending(store, patient_id)
        devices = devices_of(session, patient_id)
        exported = inclusions(session, patient_id)  # erasing blanks the id there
        erased = erase_patient_records(session, patient_id, time.time())
        if not erased.registered and samples == 0:
            session.rollback()
            raise ConfigError(
                f"there is nothing of patient {patient_id!r} to erase: no such patient in the "
                f"service database and no samples in {where}. {STORE_SETTINGS_HINT}"
            )
        if not args.yes:
            session.rollback()
            print(f"would erase patient {patient_id}: {_counts(erased, samples)}")
            print_recall(patient_id, "to recall", exported)
            print("nothing was erased; run again with --yes to erase")
            return 0
        session.commit()  # nobody is alerted about them from here on
        # now, not after the samples: the register no longer finds them by id if that fails
        print_recall(patient_id, "erased", exported)
        try:
            store.erase_patient(patient_id)
        except StoreError as exc:
            raise ConfigError(
                f"the records of patient {patient_id} are erased, but not their samples in "
                f"{where}: {exc}. Run the same command again to erase them"
            ) from exc
    print(f"erased patient {patient_id}: {_counts(erased, samples)}")
    print(
        "also: take their bands off the gateways' devices files, run `flarewatch admin "
        "broker-auth` again (their gateway users keep the topics until then), and delete the "
        "episode labels exported and the backups that hold them (docs/deploy.md)"
    )
    if devices:
        # the service may read these topics, not clear them; a retained "offline" or "battery
        # low" would register the patient anew at the service's next start
        print(
            "and clear their bands' retained status on the broker, as its administrator: "
            + "; ".join(
                f"mosquitto_pub -r -n -t {device_status_topic(patient_id, d)}" for d in devices
            )
        )
    return 0


def _export(args: argparse.Namespace, session: Session) -> int:
    settings = load_settings(getattr(args, "config", None))
    records = read_patient_records(session, args.patient_id)
    # reading the samples takes a while: an open transaction would hold up every alert meanwhile
    session.commit()
    with opened_store(settings) as store, percent_progress() as progress:
        task = progress.add_task("reading the samples", total=None)
        export = write_patient_export(
            records,
            store,
            args.patient_id,
            args.out,
            on_spans=lambda spans: progress.update(task, total=spans),
            on_span=lambda: progress.advance(task),
        )
    print(
        f"patient {args.patient_id}: {export.samples} samples, {len(records.episodes)} episodes, "
        f"{len(records.alerts)} alerts, {len(records.messages)} messages and "
        f"{len(records.audit)} audit events written to {args.out}"
    )
    print("their health data: hand it to them only, over a channel fit for it")
    return 0


def _refuse_while_sending(store: SampleStore, patient_id: str) -> None:
    latest_ms = max((r.time_ms for r in store.latest_vitals(patient_id).values()), default=None)
    if latest_ms is None:
        return
    quiet_s = time.time() - latest_ms / 1000
    if quiet_s < ERASE_QUIET_S:
        raise ConfigError(
            f"patient {patient_id!r}'s band sent data {max(quiet_s, 0) / 60:.0f} min ago: its next "
            "samples would bring them back. Take the band off the gateway's devices file and "
            "run `flarewatch admin broker-auth` again first, or pass --force"
        )


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _counts(erased: ErasedRecords, samples: int) -> str:
    parts = (
        (samples, "sample"),
        (erased.episodes, "episode"),
        (erased.alerts, "alert"),
        (erased.messages, "message"),
        (erased.contacts, "care-team contact"),
        (erased.devices, "device"),
        (erased.audit_events, "audit event"),
        (erased.diary_entries, "diary entry"),
    )
    counted = ", ".join(f"{n} {noun if n == 1 else _plural(noun)}" for n, noun in parts)
    registration = "" if erased.registered else " (not registered: samples only)"
    return counted + registration


def add_patient_data_commands(
    patient_cmds: argparse._SubParsersAction[argparse.ArgumentParser], command: CommandFactory
) -> None:
    """Add ``admin patient export`` and ``admin patient erase``."""
    parser = command(
        patient_cmds,
        "export",
        _export,
        "a copy of everything held about a patient, for them: profile, care team, history, samples",
    )
    parser.add_argument("patient_id")
    parser.add_argument("--out", type=Path, required=True, help="folder to create")
    parser = command(
        patient_cmds,
        "erase",
        _erase,
        "erase everything held about a patient: samples, episodes, alerts, care team, devices, "
        "audit trail",
    )
    parser.add_argument("patient_id")
    parser.add_argument(
        "--yes", action="store_true", help="erase (without it: only say what would be erased)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"erase even though their band sent data in the last {ERASE_QUIET_S / 60:.0f} min",
    )
