"""Alembic environment: runs on the connection the application hands over."""

from __future__ import annotations

from alembic import context

from aggregator.store.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` run by hand: build an engine from the configured URL
    from aggregator.store.database import make_engine

    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite:///var/aggregator.db")
    connection = engine.connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
