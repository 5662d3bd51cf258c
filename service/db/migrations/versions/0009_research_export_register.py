"""A register of research exports: ``research_exports`` and ``research_export_subjects``.

``admin research export`` records each export it writes (when, the period and options, the
folder) and which patients went in under which subject, so that withdrawing a patient's consent
or erasing them can name the exports to recall. Exports written before this revision are not in
it (their folders' ``export.json`` has no export id either).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the two tables, empty: no earlier export was recorded."""
    op.create_table(
        "research_exports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_s", sa.Float(), nullable=False),
        sa.Column("since_s", sa.Float(), nullable=False),
        sa.Column("until_s", sa.Float(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("episodes", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "research_export_subjects",
        sa.Column("export_id", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=16), nullable=False),
        # no foreign key to patients: the row outlives the patient's erasure (blanked)
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("recalled_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["export_id"], ["research_exports.id"]),
        sa.PrimaryKeyConstraint("export_id", "subject"),
    )
    op.create_index(
        op.f("ix_research_export_subjects_patient_id"),
        "research_export_subjects",
        ["patient_id"],
        unique=False,
    )


def downgrade() -> None:
    """Drop the register (which exports held whom is forgotten: recalls can no longer be named)."""
    op.drop_index(
        op.f("ix_research_export_subjects_patient_id"), table_name="research_export_subjects"
    )
    op.drop_table("research_export_subjects")
    op.drop_table("research_exports")
