"""A patient's consent to research exports: ``patients.research_consent_s``, NULL for everyone.

``admin research export`` shares only the episodes and recordings of patients who consented;
nobody has consented before this revision, so every existing patient starts without consent.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column: no existing patient has consented."""
    # a plain ADD COLUMN, as in 0003-0006: no rebuild of the patients table, which every other
    # table references by foreign key
    op.add_column("patients", sa.Column("research_consent_s", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the column (every consent is forgotten: export nothing until it is given again)."""
    op.drop_column("patients", "research_consent_s")
