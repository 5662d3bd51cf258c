"""Away on a schedule: ``contacts.away_days``, ``away_from``, ``away_to`` and ``away_next_s``.

NULL for every existing contact: nobody is away on a schedule until they say so.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable columns (no table rebuilt) and the index the scheduler reads them by."""
    op.add_column("contacts", sa.Column("away_days", sa.String(length=7), nullable=True))
    op.add_column("contacts", sa.Column("away_from", sa.String(length=5), nullable=True))
    op.add_column("contacts", sa.Column("away_to", sa.String(length=5), nullable=True))
    op.add_column("contacts", sa.Column("away_next_s", sa.Float(), nullable=True))
    op.create_index("ix_contacts_away_next_s", "contacts", ["away_next_s"])


def downgrade() -> None:
    """Drop them: absences are then only set by hand."""
    op.drop_index("ix_contacts_away_next_s", table_name="contacts")
    op.drop_column("contacts", "away_next_s")
    op.drop_column("contacts", "away_to")
    op.drop_column("contacts", "away_from")
    op.drop_column("contacts", "away_days")
