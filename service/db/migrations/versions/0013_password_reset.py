"""Password reset by e-mail: ``accounts.email`` (NULL for every existing account) and the links.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (plain ADD COLUMN, as in 0006) and the new table."""
    op.add_column("accounts", sa.Column("email", sa.String(length=254), nullable=True))
    op.create_index(op.f("ix_accounts_email"), "accounts", ["email"], unique=False)
    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_s", sa.Float(), nullable=False),
        sa.Column("used_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(
        op.f("ix_password_resets_account_id"), "password_resets", ["account_id"], unique=False
    )


def downgrade() -> None:
    """Drop them: passwords are reset by the administrator only again."""
    op.drop_index(op.f("ix_password_resets_account_id"), table_name="password_resets")
    op.drop_table("password_resets")
    op.drop_index(op.f("ix_accounts_email"), table_name="accounts")
    op.drop_column("accounts", "email")
