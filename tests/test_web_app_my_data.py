"""A patient downloads their own copy of everything flarewatch holds about them (right of access).

The same folder as ``admin patient export``, as a ZIP, from the real server with a SQLite sample
store: their record, history, diary and every reading; nobody else may download it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service.db.models import AuditEvent
from service.stores.sqlite import SqliteStore
from tests.web_app_helpers import RECEIVER, CareWorld, care_world


@pytest.fixture
def world(tmp_path) -> Iterator[CareWorld]:
    with (
        SqliteStore(tmp_path / "samples.sqlite3") as store,
        care_world(f"sqlite:///{tmp_path / 'service.sqlite3'}", RECEIVER, store) as built,
    ):
        yield built


def test_the_patient_downloads_everything_and_nobody_else_can(world):
    world.record_vitals("p2", range(0, 3), lambda minute: 70.0)
    world.record_vitals("p1", range(0, 2), lambda minute: 90.0)  # Alex's: not in Bo's copy
    world.episode("p2")
    bo = world.signed_in("bo")
    page = bo.get("/app/patients/p2").text
    assert 'href="/app/patients/p2/my-data.zip"' in page
    answer = bo.get("/app/patients/p2/my-data.zip")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    assert 'filename="flarewatch-data.zip"' in answer.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    names = set(archive.namelist())
    assert {f"flarewatch-data/{n}" for n in ("patient.json", "episodes.csv", "diary.csv")} <= names
    profile = json.loads(archive.read("flarewatch-data/patient.json"))
    assert profile["id"] == "p2"
    samples = list(
        csv.DictReader(
            io.StringIO(gzip.decompress(archive.read("flarewatch-data/samples.csv.gz")).decode())
        )
    )
    assert len(samples) == 3 * 60 and {s["hr_bpm"] for s in samples} == {"70.0"}
    episodes = archive.read("flarewatch-data/episodes.csv").decode().splitlines()
    assert len(episodes) == 2  # the header and Bo's one episode

    assert world.signed_in("ben").get("/app/patients/p2/my-data.zip").status_code == 403
    assert world.signed_in("rita").get("/app/patients/p2/my-data.zip").status_code == 404
    assert bo.get("/app/patients/p1/my-data.zip").status_code == 404
    assert world.client().get("/app/patients/p2/my-data.zip").status_code == 303
    with world.stack.db.session() as session:
        (event,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "patient_data_downloaded")
        ).all()
    assert event.patient_id == "p2" and event.detail["username"] == "bo"
