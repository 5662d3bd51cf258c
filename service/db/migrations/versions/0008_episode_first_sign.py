"""When a reaction really began: ``episodes.first_sign_s``, NULL for every existing episode.

An episode opens when the detectors' alarm comes; the care team may know the first sign came
earlier (``admin episode label ID --as reaction --first-sign TIME``), and a reaction the
detectors missed is added by hand with its first sign (``admin episode add``). Research exports
and evaluations measure delays from it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column: no existing episode has a first sign recorded."""
    op.add_column("episodes", sa.Column("first_sign_s", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the column (first signs are forgotten; episodes added by hand stay)."""
    op.drop_column("episodes", "first_sign_s")
