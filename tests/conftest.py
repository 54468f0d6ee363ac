"""Fixtures: a fresh store per test (SQLite, or PostgreSQL when AGGREGATOR_TEST_DATABASE_URL names one),
a store of its own for a module's read-only fixtures, a config built from text."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, make_url, text

from aggregator.config import Config, config_from_text
from aggregator.store import reads
from aggregator.store.repository import Store
from aggregator.store.schema import store_meta
from aggregator.web import api

DATA = Path(__file__).parent / "data"
POSTGRES_URL = os.environ.get(
    "AGGREGATOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("AGGREGATOR_REQUIRE_POSTGRES") == "1"
TEST_QUERY_BUDGET = 10.0  # seconds of work a search may take in tests (_generous_query_budget)


def reset_postgres(url: str) -> None:
    """An empty public schema: the test starts from nothing (and migrates from scratch)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


# What a PostgreSQL database migrated to head looks like, by URL: its schema's fingerprint.
_MIGRATED: dict[str, str] = {}
_SEEDED: dict[str, list[tuple[str, int]]] = {}  # by URL: the store_meta rows the migrations wrote
_FINGERPRINT = """
SELECT md5(string_agg(x, ';' ORDER BY x)) FROM (
  SELECT 'c ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
         || ' ' || coalesce(column_default, '') AS x
    FROM information_schema.columns WHERE table_schema = 'public'
  UNION ALL SELECT 'i ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT 'v ' || viewname || ' ' || definition FROM pg_views WHERE schemaname = 'public'
  UNION ALL SELECT 'k ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
) AS parts
"""


def reset_postgres_to_head(url: str) -> None:
    """A store migrated to head and empty: every table emptied, and the rows the migrations
    wrote put back, when the schema is still the one this session migrated (a test may have
    changed it, or left the revision elsewhere); else dropped and migrated again. About as fast
    as migrating from scratch, but it takes no lock on the whole schema."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            known = _MIGRATED.get(url)
            if known is not None and conn.scalar(text(_FINGERPRINT)) == known and _at_head(conn):
                tables = conn.scalars(
                    text(
                        "SELECT tablename FROM pg_tables "
                        "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                ).all()
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                for name, value in _SEEDED[url]:
                    conn.execute(store_meta.insert().values(name=name, value=value))
                conn.execute(text("ANALYZE"))  # no statistics left from an earlier test's papers
                return
        reset_postgres(url)
        Store.open(url).close()
        with engine.connect() as conn:
            _MIGRATED[url] = conn.scalar(text(_FINGERPRINT))
            _SEEDED[url] = [(r.name, r.value) for r in conn.execute(store_meta.select())]
    finally:
        engine.dispose()


def _at_head(conn: Connection) -> bool:
    from aggregator.store.database import HEAD_REVISION

    if conn.scalar(text("SELECT to_regclass('public.alembic_version')")) is None:
        return False
    return conn.scalars(text("SELECT version_num FROM alembic_version")).all() == [HEAD_REVISION]


def postgres_available(url: str = POSTGRES_URL) -> bool:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The store every test uses, migrated to head and empty: a copy of a SQLite file migrated
    once a session, or the PostgreSQL database CI names, emptied (`empty_database_url`: one
    with no schema at all, for the tests of migrations)."""
    url = _postgres_url()
    if url is not None:
        reset_postgres_to_head(url)
        return url
    path = tmp_path / "store.db"
    shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def empty_database_url(tmp_path: Path) -> str:
    """A database with nothing in it, not even the schema: a new SQLite file, or the PostgreSQL
    database CI names with its public schema dropped. Not to be combined with `database_url`
    (or `store`): on PostgreSQL both are the one database."""
    url = _postgres_url()
    if url is not None:
        reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated to head, with nothing in it: what each test's store is copied from."""
    path = tmp_path_factory.mktemp("migrated") / "store.db"
    Store.open(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:  # everything in the main file, none of it in the WAL
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _postgres_url() -> str | None:
    """The PostgreSQL database under test (AGGREGATOR_TEST_DATABASE_URL), or None for SQLite.
    Under pytest-xdist each worker has a database of its own beside it, `<name>_<worker>`."""
    url = os.environ.get("AGGREGATOR_TEST_DATABASE_URL")
    if not (url and url.startswith("postgresql")):
        return None
    if not postgres_available(url):
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL required but not reachable at {url}")
        pytest.skip("PostgreSQL not reachable")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return _beside(url, worker) if worker else url


def _beside(url: str, suffix: str) -> str:
    """The database `<name>_<suffix>` on the same server as `url`, made when missing."""
    main = make_url(url)
    other = main.set(database=f"{main.database}_{suffix}")
    admin = create_engine(main, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": other.database}
            )
            if not found:
                conn.execute(text(f'CREATE DATABASE "{other.database}"'))
    finally:
        admin.dispose()
    return other.render_as_string(hide_password=False)


def shared_database_url(folder: Path, name: str) -> str:
    """The store of a module-scoped fixture (a site many read-only tests share), which the per-test
    resets of the main PostgreSQL database must leave alone: a SQLite file in `folder`, or the
    PostgreSQL database `<main database>_<name>` beside the main one (made when missing), emptied
    (under pytest-xdist, beside the worker's own: `<main database>_<worker>_<name>`)."""
    url = _postgres_url()
    if url is None:
        return f"sqlite:///{folder / 'store.db'}"
    shared_url = _beside(url, name)
    reset_postgres(shared_url)
    return shared_url


@pytest.fixture(autouse=True)
def _generous_query_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches in tests may take 10 s of work, not the 0.8 s a server gives them: on a loaded
    machine (test processes side by side with PostgreSQL) a query of 50 ms could run out, and
    the budget is not what they test. The tests of the budget set their own."""
    monkeypatch.setattr(reads, "QUERY_BUDGET", TEST_QUERY_BUDGET)
    monkeypatch.setattr(api, "QUERY_BUDGET", TEST_QUERY_BUDGET)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, tag_authority="papers.example.org")
    yield s
    s.close()


class Clock:
    """A clock a test sets: what a Pipeline calls `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make_config(tmp_path: Path, body: str, database_url: str) -> Config:
    """A config from YAML text, with the test's store and file: URLs relative to tmp_path."""
    text_ = f"database: {database_url}\nsite:\n  title: Test\n  base_url: http://papers.example.org\n{body}"
    return config_from_text(text_, base_dir=tmp_path, env={})
