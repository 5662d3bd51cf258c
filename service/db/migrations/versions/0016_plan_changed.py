"""Who changed a patient's emergency plan last, and when: NULL for every existing patient.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 05:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the two nullable columns (no table rebuilt)."""
    op.add_column("patients", sa.Column("plan_changed_s", sa.Float(), nullable=True))
    op.add_column("patients", sa.Column("plan_changed_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Drop them (the audit trail still has every change)."""
    op.drop_column("patients", "plan_changed_by")
    op.drop_column("patients", "plan_changed_s")
