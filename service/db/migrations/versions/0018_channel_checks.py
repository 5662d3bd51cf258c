"""A caregiver's test message per channel: ``channels.checked_s`` and ``channels.check_error``.

NULL for every existing channel: none was tested since the test's outcome is kept.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 08:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable columns (no table rebuilt)."""
    op.add_column("channels", sa.Column("checked_s", sa.Float(), nullable=True))
    op.add_column("channels", sa.Column("check_error", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop them: a channel's state is then read from alert messages alone."""
    op.drop_column("channels", "check_error")
    op.drop_column("channels", "checked_s")
