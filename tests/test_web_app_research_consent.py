"""A patient gives and withdraws their research consent themselves, in the web app.

Withdrawing is as easy as giving (GDPR Art. 7(3)): one button; researchers stop seeing the
patient's episodes at once, and exports already handed over are marked to be asked back.
"""

from __future__ import annotations

from sqlalchemy import select

from service.db.models import AuditEvent, ResearchExport, ResearchExportSubject
from service.db.research_register import register_export
from tests import web_app_helpers
from tests.web_app_helpers import form_token, words

world = web_app_helpers.world
"""The care world on SQLite and PostgreSQL (Bo, patient p2, consents)."""


def test_the_patient_withdraws_and_gives_consent_with_one_button(world):
    world.episode("p2")
    with world.stack.db.session() as session:
        export = ResearchExport(
            id="x1", created_s=world.clock() - 60, since_s=0, until_s=world.clock(), folder="/x"
        )
        register_export(session, export, {"p2": "subject-b"})
    rita = world.signed_in("rita")
    assert "1 episode of 1 consenting subject" in words(rita.get("/app/research").text)
    bo = world.signed_in("bo")
    page = bo.get("/app/patients/p2").text
    assert "You share your episodes with researchers" in words(page)
    assert bo.get("/api/v1/patients/p2").json()["research_consent"] is True

    withdrawn = bo.post(
        "/app/patients/p2/research", data={"csrf": form_token(page), "consent": "no"}
    )
    assert withdrawn.status_code == 200
    assert "1 research export(s) made before held your pseudonymised episodes" in words(
        withdrawn.text
    )
    assert "0 episodes of 0 consenting subjects" in words(rita.get("/app/research").text)
    with world.stack.db.session() as session:
        (subject,) = session.scalars(select(ResearchExportSubject)).all()
        assert subject.recalled_s is not None  # to be asked back
        actions = [e.action for e in session.scalars(select(AuditEvent))]
    assert "research_consent_withdrawn" in actions

    page = bo.get("/app/patients/p2").text
    assert "You do not share your episodes with researchers" in words(page)
    given = bo.post("/app/patients/p2/research", data={"csrf": form_token(page), "consent": "yes"})
    assert given.status_code == 303
    assert "1 episode of 1 consenting subject" in words(rita.get("/app/research").text)


def test_only_the_patient_decides(world):
    ben = world.signed_in("ben")
    page = ben.get("/app/patients/p2").text
    assert "Stop sharing with researchers" not in page
    refused = ben.post(
        "/app/patients/p2/research", data={"csrf": form_token(page), "consent": "no"}
    )
    assert refused.status_code == 403
    bo = world.signed_in("bo")
    token = form_token(bo.get("/app").text)
    odd = bo.post("/app/patients/p2/research", data={"csrf": token, "consent": "maybe"})
    assert odd.status_code == 422
    assert (
        bo.post("/app/patients/p1/research", data={"csrf": token, "consent": "no"}).status_code
        == 404
    )
    assert bo.post("/app/patients/p2/research", data={"consent": "no"}).status_code == 403
    assert bo.get("/api/v1/patients/p2").json()["research_consent"] is True  # unchanged
