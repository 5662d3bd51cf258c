"""Removed contacts stay for the record: ``contacts.removed_s``, NULL for every existing contact.

A contact that was ever notified is referenced by its deliveries, so ``admin caregiver remove``
marks it removed instead of deleting it; escalation skips removed contacts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column: every existing contact stays on its care team."""
    # a plain ADD COLUMN, as in 0003-0005: no rebuild of the contacts table, which channels and
    # deliveries reference by foreign key
    op.add_column("contacts", sa.Column("removed_s", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the column (removed contacts would be on their care team again)."""
    op.drop_column("contacts", "removed_s")
