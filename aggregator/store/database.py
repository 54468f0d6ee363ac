"""Engines and migrations: SQLite tuned for one writer beside many readers, or PostgreSQL.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout, and every
write transaction starts with BEGIN IMMEDIATE: a deferred transaction that later wants to
write can fail with "database is locked" without waiting, an immediate one waits its turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StoreError
from aggregator.store.codec import json_text

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0011"  # the newest file in migrations/versions; a test keeps the two in step
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, connections: int = 5) -> Engine:
    """An engine for this URL; a SQLite file's folder is created if missing. On PostgreSQL the
    pool keeps `connections` (one for each thread that may hold one at once: fetches waiting for
    their locks hold theirs) and opens up to 10 more when busy."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=connections,
        max_overflow=10,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
    )


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        json_serializer=json_text,
        json_deserializer=orjson.loads,  # four JSON columns a paper: the stdlib's was a tenth of a page
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def upgrade(engine: Engine) -> None:
    """Apply every pending migration (at start, and by `aggregator db upgrade`)."""
    try:
        if current_revision(engine) == HEAD_REVISION:
            return  # the common start: nothing to do, and no need to load Alembic at all
        from alembic import command
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.connect().execution_options(write=True) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
    except SQLAlchemyError as exc:
        raise StoreError(
            f"store: cannot migrate {engine.url.render_as_string(hide_password=True)}: {exc}"
        ) from exc


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
