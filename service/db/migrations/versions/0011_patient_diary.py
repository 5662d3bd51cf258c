"""A patient's diary: ``diary_entries`` (triggers, symptoms, doses, notes), empty.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table (a new table only: nothing existing is rebuilt)."""
    op.create_table(
        "diary_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("time_s", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("written_by", sa.String(length=200), nullable=False),
        sa.Column("written_s", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_diary_entries_patient_id"), "diary_entries", ["patient_id"], unique=False
    )
    op.create_index(op.f("ix_diary_entries_time_s"), "diary_entries", ["time_s"], unique=False)


def downgrade() -> None:
    """Drop the diary (every entry is lost)."""
    op.drop_index(op.f("ix_diary_entries_time_s"), table_name="diary_entries")
    op.drop_index(op.f("ix_diary_entries_patient_id"), table_name="diary_entries")
    op.drop_table("diary_entries")
