"""A care-team member away: ``contacts.away_until_s``, NULL (available) for every existing one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 05:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (no table rebuilt)."""
    op.add_column("contacts", sa.Column("away_until_s", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop it: everyone away is available again, in their place in the order."""
    op.drop_column("contacts", "away_until_s")
