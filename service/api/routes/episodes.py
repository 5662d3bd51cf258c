"""JSON endpoint to say whether an episode was a real reaction, with the link token of its alert."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import AlertManagerDep
from service.api.schemas import EpisodeLabelled, LabelIn
from service.episodes.labels import label_by_link, parse_label

router = APIRouter(prefix="/episodes", tags=["episodes"])


@router.post("/label")
def label(body: LabelIn, manager: AlertManagerDep) -> EpisodeLabelled:
    """Label the episode of the alert the token was sent about (the latest label wins)."""
    done = label_by_link(manager, body.token, parse_label(body.label), via="api")
    return EpisodeLabelled(
        episode_id=done.episode_id, label=done.label, labelled_by=done.labelled_by
    )
