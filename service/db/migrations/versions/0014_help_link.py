"""A patient's help link: ``accounts.help_link_hash``, NULL for every existing account.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column and its unique index (no table rebuilt)."""
    op.add_column("accounts", sa.Column("help_link_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_accounts_help_link_hash"), "accounts", ["help_link_hash"], unique=True)


def downgrade() -> None:
    """Drop it: every help link stops working."""
    op.drop_index(op.f("ix_accounts_help_link_hash"), table_name="accounts")
    op.drop_column("accounts", "help_link_hash")
