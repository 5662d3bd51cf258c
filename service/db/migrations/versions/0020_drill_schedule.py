"""Drills on a schedule: ``patients.drill_every_days``, ``drill_at`` and ``next_drill_s``.

NULL for every existing patient: no drill is scheduled until someone asks for one.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 09:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable columns (no table rebuilt) and the index the scheduler reads them by."""
    op.add_column("patients", sa.Column("drill_every_days", sa.Integer(), nullable=True))
    op.add_column("patients", sa.Column("drill_at", sa.String(length=5), nullable=True))
    op.add_column("patients", sa.Column("next_drill_s", sa.Float(), nullable=True))
    op.create_index("ix_patients_next_drill_s", "patients", ["next_drill_s"])


def downgrade() -> None:
    """Drop them: drills are then only started by hand."""
    op.drop_index("ix_patients_next_drill_s", table_name="patients")
    op.drop_column("patients", "next_drill_s")
    op.drop_column("patients", "drill_at")
    op.drop_column("patients", "drill_every_days")
