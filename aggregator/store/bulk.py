"""SQL helpers for the bulk paths: id lists as conditions, driver-level executemany, insert-or-ignore."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, JSON, ColumnElement, Connection, Integer, Table, any_, bindparam

from aggregator.store.codec import json_text
from aggregator.store.schema import UTCDateTime

CHUNK = 900  # stays under SQLite's bound-parameter limit on old builds


def chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def among(conn: Connection, column: Any, ids: Sequence[int]) -> Iterator[ColumnElement[bool]]:
    """`column IN ids` as the conditions of one statement each. On PostgreSQL one condition,
    `column = ANY(:ids)` with the ids as one array: a statement text that does not change with the
    list (psycopg converts it once, then prepares it), where an IN list of 200 ids cost a page read
    more than the database did. On SQLite an IN list per CHUNK ids (its bound-parameter limit)."""
    if not ids:
        return
    if conn.dialect.name == "postgresql":
        yield column == any_(bindparam("ids", list(ids), type_=ARRAY(Integer), unique=True))
        return
    for chunk in chunks(ids):
        yield column.in_(chunk)


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """executemany straight to the driver: the ingest hot path, where SQLAlchemy's per-value
    processing would cost more than the database itself. Values are converted here as the
    column types would: JSON as text, datetimes as SQLite's text form (PostgreSQL takes them)."""
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join([mark] * len(names))})"
    )
    convert = [_converter(table.c[n].type, conn.dialect.name) for n in names]
    params = [tuple(f(row[n]) if f else row[n] for n, f in zip(names, convert, strict=True)) for row in rows]
    conn.exec_driver_sql(sql, params)


def _converter(column_type: Any, dialect: str) -> Callable[[Any], Any] | None:
    if isinstance(column_type, JSON):
        return _json_text
    if isinstance(column_type, UTCDateTime) and dialect == "sqlite":
        return _sqlite_datetime
    return None


def _json_text(value: Any) -> str | None:
    return None if value is None else json_text(value)


@lru_cache(maxsize=4096)  # a listing's entries share a handful of dates
def _sqlite_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")  # strftime's %f is slow


def insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT that leaves an existing key to the paper that already holds it."""
    if conn.dialect.name == "postgresql":  # imported here: the PostgreSQL dialect costs 50 ms at start
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()
