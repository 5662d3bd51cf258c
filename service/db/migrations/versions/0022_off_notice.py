"""Telling the caregivers of a band off for long: ``patients.off_notice_s``, ``alerts.notice_s``.

Every patient gets the default of a day; no alert has a notice due (bands taken off before this
migration are noticed at their next loss of signal).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29 09:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the columns (no table rebuilt) and the index the scheduler reads due notices by."""
    op.add_column(
        "patients",
        sa.Column("off_notice_s", sa.Float(), nullable=False, server_default="86400.0"),
    )
    op.add_column("alerts", sa.Column("notice_s", sa.Float(), nullable=True))
    op.create_index("ix_alerts_notice_s", "alerts", ["notice_s"])


def downgrade() -> None:
    """Drop them: caregivers then never hear of a band the wearer said they took off."""
    op.drop_index("ix_alerts_notice_s", table_name="alerts")
    op.drop_column("alerts", "notice_s")
    op.drop_column("patients", "off_notice_s")
