"""What every export derives per patient from the service key: their pseudonym and time shift.

The label export (``admin episode export-labels``) and the research export (``admin research
export``) are handed over together: one patient must be one subject in both, and their times
moved back by the same shift in both, or the files side by side would give the shift away.
Both exports take them from here, so they cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

PSEUDONYM_CONTEXT: Final = b"episode-labels:"
"""HMAC message prefix: the same secret key gives unrelated pseudonyms in other contexts."""
PSEUDONYM_HEX_CHARS: Final = 16
"""64 bits of the HMAC: collisions are negligible for the patients of one deployment."""
EPISODE_CONTEXT: Final = b"episode:"
"""HMAC context of an episode's export key (unrelated to the subject's pseudonym)."""

SHIFT_CONTEXT: Final = b"research-time-shift:"
"""HMAC context of the time shift (unrelated to the subject's pseudonym)."""
SHIFT_MIN_WEEKS: Final = 52
SHIFT_SPAN_WEEKS: Final = 468
"""Times move back 52 to 519 weeks: far enough that no date lines up with a record of the patient,
by whole weeks, so that weekdays and times of day stay what they were."""
WEEK_S: Final = 7 * 86_400.0


def keyed_digest(secret_key: str, context: bytes, patient_id: str) -> bytes:
    """HMAC-SHA256(secret key, context + patient id): what exports derive per patient from.

    Each ``context`` gives unrelated values; without the key none leads back to the patient.
    """
    return hmac.new(secret_key.encode(), context + patient_id.encode(), hashlib.sha256).digest()


def pseudonym(secret_key: str, patient_id: str) -> str:
    """The patient's stable export key: HMAC-SHA256(secret key, context + id), 16 hex chars.

    Without the service's secret key it cannot be traced back to the patient id. The label and
    research exports share it, so that one patient's labels and recordings go together.
    """
    return keyed_digest(secret_key, PSEUDONYM_CONTEXT, patient_id).hex()[:PSEUDONYM_HEX_CHARS]


def episode_key(secret_key: str, episode_id: int) -> str:
    """An episode's stable key in exports, 16 hex chars, in no order.

    The database's episode ids count up across every patient: handed over, they would tell
    whose episode came first, and so how two patients' time shifts differ (whole weeks: a few
    interleaved episodes pin it down). Whoever holds the key can still find the episode.
    """
    return keyed_digest(secret_key, EPISODE_CONTEXT, str(episode_id)).hex()[:PSEUDONYM_HEX_CHARS]


def time_shift_s(secret_key: str, patient_id: str) -> float:
    """How far back the patient's times are moved in every export (whole weeks)."""
    number = int.from_bytes(keyed_digest(secret_key, SHIFT_CONTEXT, patient_id)[:4], "big")
    return (SHIFT_MIN_WEEKS + number % SHIFT_SPAN_WEEKS) * WEEK_S
