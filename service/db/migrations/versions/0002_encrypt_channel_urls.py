"""Channel URLs encrypted at rest: ``channels.apprise_url`` becomes ``sealed_url``.

Existing rows are encrypted with the key the database is opened with (``service.secret_key``);
downgrading decrypts them again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 19:00:00
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from service.db.channel_crypto import MIGRATION_CIPHER_KEY, ChannelCipher, is_sealed
from service.errors import ChannelKeyError

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rewrite(column: str, keep: Callable[[str], bool], what: str) -> None:
    """Apply the cipher to every value of ``channels.column`` that ``keep`` does not accept."""
    if context.is_offline_mode():
        raise ChannelKeyError(
            "channel URLs are encrypted on a live database: run the migration online "
            "(`flarewatch admin db upgrade`), not as generated SQL"
        )
    channels = sa.table("channels", sa.column("id", sa.Integer), sa.column(column, sa.Text))
    bind = op.get_bind()
    rows = [
        (i, v) for i, v in bind.execute(sa.select(channels.c.id, channels.c[column])) if not keep(v)
    ]
    if not rows:
        return
    cipher = context.config.attributes.get(MIGRATION_CIPHER_KEY)
    if not isinstance(cipher, ChannelCipher):
        raise ChannelKeyError(
            f"{len(rows)} channel URLs must be {what}, which needs service.secret_key "
            "(FLAREWATCH_SERVICE__SECRET_KEY): set it and open the database again"
        )
    convert = cipher.open if what == "decrypted" else cipher.seal
    for channel_id, value in rows:
        bind.execute(
            channels.update().where(channels.c.id == channel_id).values({column: convert(value)})
        )


def upgrade() -> None:
    """Rename the column and encrypt every plaintext URL in it."""
    # A plain RENAME COLUMN (SQLite >= 3.25, PostgreSQL): no table rebuild, so the deliveries'
    # foreign keys to channels stay untouched.
    op.alter_column("channels", "apprise_url", new_column_name="sealed_url")
    _rewrite("sealed_url", is_sealed, "encrypted")


def downgrade() -> None:
    """Decrypt every URL and restore the plaintext column."""
    _rewrite("sealed_url", lambda value: not is_sealed(value), "decrypted")
    op.alter_column("channels", "sealed_url", new_column_name="apprise_url")
