"""Channels their owners take off: ``channels.removed_s``.

Every channel is in use; the column is only ever set by a removal.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29 11:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column (no table rebuilt)."""
    op.add_column("channels", sa.Column("removed_s", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop it: a channel taken off would be used again, its URL overwritten, so it fails."""
    op.drop_column("channels", "removed_s")
