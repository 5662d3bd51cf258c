"""Reminding a wearer whose band is still off: the patient's delay and each alert's schedule.

``patients.off_reminder_s``, ``alerts.remind_s``, ``alerts.reminders``.

Every patient gets the default of 2 hours; no alert has a reminder due (those answered "I took it
off" before this migration are reminded at the next loss of signal).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the columns (no table rebuilt) and the index the scheduler reads due reminders by."""
    op.add_column(
        "patients",
        sa.Column("off_reminder_s", sa.Float(), nullable=False, server_default="7200.0"),
    )
    op.add_column("alerts", sa.Column("remind_s", sa.Float(), nullable=True))
    op.add_column(
        "alerts", sa.Column("reminders", sa.Integer(), nullable=False, server_default="0")
    )
    op.create_index("ix_alerts_remind_s", "alerts", ["remind_s"])


def downgrade() -> None:
    """Drop them: a band taken off is then never mentioned again until it reports."""
    op.drop_index("ix_alerts_remind_s", table_name="alerts")
    op.drop_column("alerts", "reminders")
    op.drop_column("alerts", "remind_s")
    op.drop_column("patients", "off_reminder_s")
