"""Fixtures: a fresh store per test (SQLite, or PostgreSQL when AGGREGATOR_TEST_DATABASE_URL names one),
a store of its own for a module's read-only fixtures, a config built from text."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from aggregator.config import Config, config_from_text
from aggregator.store.repository import Store

DATA = Path(__file__).parent / "data"
POSTGRES_URL = os.environ.get(
    "AGGREGATOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("AGGREGATOR_REQUIRE_POSTGRES") == "1"


def reset_postgres(url: str) -> None:
    """An empty public schema: each test starts from nothing and migrates from scratch."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


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
def database_url(tmp_path: Path) -> str:
    """The store every test uses: a fresh SQLite file, or the PostgreSQL CI names, emptied."""
    url = os.environ.get("AGGREGATOR_TEST_DATABASE_URL")
    if url and url.startswith("postgresql"):
        if not postgres_available(url):
            if REQUIRE_POSTGRES:
                pytest.fail(f"PostgreSQL required but not reachable at {url}")
            pytest.skip("PostgreSQL not reachable")
        reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'store.db'}"


def shared_database_url(folder: Path, name: str) -> str:
    """The store of a module-scoped fixture (a site many read-only tests share), which the per-test
    resets of the main PostgreSQL database must leave alone: a SQLite file in `folder`, or the
    PostgreSQL database `<main database>_<name>` beside the main one (made when missing), emptied."""
    url = os.environ.get("AGGREGATOR_TEST_DATABASE_URL")
    if not (url and url.startswith("postgresql")):
        return f"sqlite:///{folder / 'store.db'}"
    if not postgres_available(url):
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL required but not reachable at {url}")
        pytest.skip("PostgreSQL not reachable")
    main = make_url(url)
    shared = main.set(database=f"{main.database}_{name}")
    admin = create_engine(main, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": shared.database}
            )
            if not found:
                conn.execute(text(f'CREATE DATABASE "{shared.database}"'))
    finally:
        admin.dispose()
    shared_url = shared.render_as_string(hide_password=False)
    reset_postgres(shared_url)
    return shared_url


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
