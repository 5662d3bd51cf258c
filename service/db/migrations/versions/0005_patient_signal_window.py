"""The wearer's window on lost-signal notices: ``patients.signal_window_s`` (600 s for all).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 05:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column; the server default gives every existing patient the 10-min window."""
    # a plain ADD COLUMN, as in 0003: no rebuild of the patients table and its foreign keys
    op.add_column(
        "patients",
        sa.Column("signal_window_s", sa.Float(), server_default="600.0", nullable=False),
    )


def downgrade() -> None:
    """Drop the column (lost-signal notices then use the warning's cancel window again)."""
    op.drop_column("patients", "signal_window_s")
