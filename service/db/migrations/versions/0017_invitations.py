"""Invitations: a link to set the first password, good for days; ``password_resets.expires_s``.

NULL for every existing link, which keeps the 30 minutes of a reset link.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 06:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (no table rebuilt)."""
    op.add_column("password_resets", sa.Column("expires_s", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop it: an invitation not used yet then lasts 30 minutes from when it was made."""
    op.drop_column("password_resets", "expires_s")
