"""Alembic environment of the service database; runs from the installed package."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from service.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Emit SQL for ``alembic upgrade --sql`` without a database connection."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply the migrations on the engine handed over by ``service.db.session``."""
    engine = config.attributes.get("engine")
    if not isinstance(engine, Engine):
        engine = create_engine(str(config.get_main_option("sqlalchemy.url")))
    with engine.begin() as connection:
        # batch mode: SQLite cannot ALTER most constraints in place.
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
