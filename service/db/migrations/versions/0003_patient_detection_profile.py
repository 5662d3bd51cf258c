"""Per-patient detection profile: ``patients.detection_profile``, "balanced" for existing rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column; the server default fills every existing patient with "balanced"."""
    # A plain ADD/DROP COLUMN (SQLite >= 3.35, PostgreSQL): no rebuild of the patients table,
    # whose rebuild would cascade through the contacts' and devices' foreign keys.
    op.add_column(
        "patients",
        sa.Column(
            "detection_profile",
            sa.String(length=16),
            server_default="balanced",
            nullable=False,
        ),
    )


def downgrade() -> None:
    """Drop the column (every patient is then balanced again)."""
    op.drop_column("patients", "detection_profile")
