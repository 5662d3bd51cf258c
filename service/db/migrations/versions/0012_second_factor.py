"""A second factor for web app accounts: TOTP secrets, recovery codes, sessions awaiting a code.

Every existing account keeps signing in with its password alone until its owner turns the
second factor on; every existing session is a complete one.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add nullable columns (plain ADD COLUMN, as in 0006) and the new table."""
    op.add_column("accounts", sa.Column("totp_secret", sa.String(length=300), nullable=True))
    op.add_column("accounts", sa.Column("totp_enrolling", sa.String(length=300), nullable=True))
    op.add_column("accounts", sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.add_column(
        "web_sessions",
        sa.Column("second_factor_due", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    op.create_index(
        op.f("ix_recovery_codes_account_id"), "recovery_codes", ["account_id"], unique=False
    )


def downgrade() -> None:
    """Drop them: every account signs in with its password alone again."""
    op.drop_index(op.f("ix_recovery_codes_account_id"), table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_column("web_sessions", "second_factor_due")
    op.drop_column("accounts", "totp_last_step")
    op.drop_column("accounts", "totp_enrolling")
    op.drop_column("accounts", "totp_secret")
