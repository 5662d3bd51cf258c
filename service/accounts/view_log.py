"""Who read whose record: a ``record_viewed`` line on the patient's audit trail, hourly at most.

A patient may ask who has seen their data (their copy's ``audit.csv`` holds these lines), and an
administrator may have to find out after a caregiver's phone was lost. The lines name the
account and how (the app's pages or its JSON API); they go with the patient's erasure, as the
rest of their trail. Researchers read no record: their downloads are noted instead.
"""

from __future__ import annotations

from collections import OrderedDict

from sqlalchemy.orm import Session

from service.accounts.const import VIEW_NOTED_EVERY_S, VIEWS_REMEMBERED_MAX
from service.alerts.audit import record
from service.db.models import Account


class ViewLog:
    """Notes views on the audit trail, skipping repeats within :data:`VIEW_NOTED_EVERY_S`.

    The memory of the last noted view is this process's: a restart notes the next view again.
    """

    def __init__(
        self, every_s: float = VIEW_NOTED_EVERY_S, remembered: int = VIEWS_REMEMBERED_MAX
    ) -> None:
        self.every_s = every_s
        self.remembered = remembered
        self._noted: OrderedDict[tuple[int, str], float] = OrderedDict()

    def viewed(
        self, session: Session, account: Account, patient_ids: list[str], now_s: float, via: str
    ) -> int:
        """Note that ``account`` read these patients' records (in ``session``); lines written."""
        written = 0
        for patient_id in patient_ids:
            key = (account.id, patient_id)
            last = self._noted.get(key)
            if last is not None and now_s - last < self.every_s:
                continue
            record(
                session,
                now_s,
                "record_viewed",
                patient_id=patient_id,
                username=account.username,
                via=via,
            )
            self._noted[key] = now_s
            self._noted.move_to_end(key)
            written += 1
        while len(self._noted) > self.remembered:
            self._noted.popitem(last=False)
        return written
