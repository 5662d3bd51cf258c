"""What the gateways last reported of each band: ``devices.link_state`` and the rest.

NULL everywhere until a gateway reports on the band.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("link_state", sa.String(16)),
    ("link_reason", sa.String(200)),
    ("link_since_s", sa.Float()),
    ("reported_s", sa.Float()),
    ("battery_percent", sa.Integer()),
    ("contact_detected", sa.Boolean()),
)


def upgrade() -> None:
    """Add the columns (no table rebuilt)."""
    for name, kind in COLUMNS:
        op.add_column("devices", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    """Drop them: the page shows the bands' names only again."""
    with op.batch_alter_table("devices") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
