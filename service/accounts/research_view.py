"""What a researcher sees in the web app: consenting patients' episodes, pseudonymised.

The same pseudonyms and time shifts as the research and label exports
(:mod:`service.pseudonyms`): a subject here is the subject of the files a study was handed, and
no time here lines up with a record of the patient. No name, patient id, device, care team,
message or vital value. A patient who withdraws their consent, or is erased, is gone from it
at the next page.
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass, fields
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.alerts.audit import record
from service.db.models import Account, Episode, Patient
from service.episodes.labels import withdrawn_addition
from service.pseudonyms import episode_key, pseudonym, time_shift_s

RESEARCH_EPISODES_MAX: Final = 10_000
"""Most episodes one page or download holds (newest first): years of a large deployment."""


@dataclass(frozen=True, slots=True)
class ResearchEpisode:
    """One consenting patient's episode as a researcher sees it."""

    subject: str
    episode: str
    kind: str
    severity: str
    onset_s: float
    """The alarm (or the first sign the care team recorded), moved back by the subject's shift."""
    end_s: float | None
    label: str | None
    model_version: str


def research_episodes(
    session: Session, secret_key: str, *, limit: int = RESEARCH_EPISODES_MAX
) -> list[ResearchEpisode]:
    """Episodes of patients who consent now, pseudonymised, newest first."""
    rows = session.execute(
        select(Episode, Patient.id)
        .join(Patient, Patient.id == Episode.patient_id)
        .where(Patient.research_consent_s.is_not(None), ~withdrawn_addition())
        .order_by(Episode.opened_s.desc(), Episode.id.desc())
        .limit(limit)
    ).all()
    episodes = []
    for episode, patient_id in rows:
        shift_s = time_shift_s(secret_key, patient_id)
        onset_s = episode.first_sign_s or episode.opened_s
        episodes.append(
            ResearchEpisode(
                subject=pseudonym(secret_key, patient_id),
                episode=episode_key(secret_key, episode.id),
                kind=episode.kind,
                severity=episode.severity,
                onset_s=onset_s - shift_s,
                end_s=None if episode.closed_s is None else episode.closed_s - shift_s,
                label=episode.label,
                model_version=episode.model_version,
            )
        )
    # subject by subject: an order across subjects would tell whose episode came first
    episodes.sort(key=lambda e: (e.subject, -e.onset_s, e.episode))
    return episodes


def research_csv(episodes: list[ResearchEpisode]) -> str:
    """The episodes as CSV, one header line (what the download gives)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f.name for f in fields(ResearchEpisode)])
    for episode in episodes:
        writer.writerow(["" if value is None else value for value in astuple(episode)])
    return out.getvalue()


def note_research_read(
    session: Session, account: Account, episodes: list[ResearchEpisode], now_s: float, via: str
) -> None:
    """Audit that a researcher took the episodes away (a download or an API read): how many."""
    record(
        session,
        now_s,
        "research_episodes_read",
        username=account.username,
        episodes=len(episodes),
        subjects=len({e.subject for e in episodes}),
        via=via,
    )
