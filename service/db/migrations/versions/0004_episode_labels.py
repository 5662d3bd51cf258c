"""Episode labels: ``episodes.label``/``labelled_by``/``labelled_s``, NULL for existing episodes.

A caregiver or clinician marks an episode a real reaction or a false alarm; labelled real
episodes are what the detectors' learned confirmer is trained and validated on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 00:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("label", "labelled_by", "labelled_s")


def upgrade() -> None:
    """Add the three nullable columns: every existing episode starts unlabelled."""
    # Plain ADD COLUMN (SQLite >= 3.35, PostgreSQL): no rebuild of the episodes table, which the
    # alerts reference by foreign key.
    op.add_column("episodes", sa.Column("label", sa.String(length=16), nullable=True))
    op.add_column("episodes", sa.Column("labelled_by", sa.String(length=100), nullable=True))
    op.add_column("episodes", sa.Column("labelled_s", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the columns (the labels are lost; the episodes stay)."""
    for column in reversed(_COLUMNS):
        op.drop_column("episodes", column)
