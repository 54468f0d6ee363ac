"""The full-text index under the query language: written with the papers, in the same
transaction, and asked for the candidates of a query (topics/index_query.py says what goes in
and why a candidate set is never smaller than the matches).

SQLite: an FTS5 table `paper_index` (rowid = papers.id; columns title, abstract, authors,
facets) over our own tokens separated by spaces; ':' is part of a token (`n:m`). It keeps token
positions, so a phrase is found as a phrase: phrases of common words ("language model") are
what people search for, and narrowing them to their words alone left tens of times more papers
to confirm. PostgreSQL: `paper_index(paper_id, doc tsvector)` with a GIN index; the tsvector is
built here from the same tokens, never by PostgreSQL's text parser, weighted by field (A title,
B abstract, C authors, D facets), with each token's positions and a gap between fields, so a
phrase is found as a phrase there too. PostgreSQL keeps positions up to 16,383 and 256 a token:
a paper past either keeps one position per field instead, and the token CUT, which makes it a
candidate of every phrase of its words (a phrase search must never miss a paper). The matcher
checks word order on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, TextClause, text
from sqlalchemy.sql.selectable import TextualSelect

from aggregator.store.bulk import chunks
from aggregator.topics.index_query import UNMATCHABLE, AllOf, AnyOf, IndexedPaper, IndexQuery, Tokens

FTS5_TOKENIZER = "unicode61 remove_diacritics 0 tokenchars ':'"
# PostgreSQL keeps positions up to this and this many positions a token (more are cut).
MAX_POSITION = 16_383
MAX_POSITIONS_PER_TOKEN = 256
# A facet token no facet value makes (those start with a kind letter and hex digits of a value):
# the paper's positions did not fit.
CUT = "p"
_WEIGHTS = {"title": "A", "abstract": "B", "author": "C", "facet": "D", "text": "AB"}
_FTS_COLUMNS = {
    "title": "title",
    "abstract": "abstract",
    "author": "authors",
    "facet": "facets",
    "text": "{title abstract}",
}


def create_index(conn: Connection) -> None:
    """The index table (empty) for this connection's database."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "CREATE TABLE paper_index (paper_id INTEGER PRIMARY KEY "
                "REFERENCES papers(id) ON DELETE CASCADE, doc TSVECTOR NOT NULL)"
            )
        )
        conn.execute(text("CREATE INDEX ix_paper_index_doc ON paper_index USING GIN (doc)"))
    else:
        conn.execute(
            text(
                "CREATE VIRTUAL TABLE paper_index USING fts5(title, abstract, authors, facets, "
                f'tokenize = "{FTS5_TOKENIZER}")'
            )
        )


def drop_index(conn: Connection) -> None:
    conn.execute(text("DROP TABLE IF EXISTS paper_index"))


def write_index(conn: Connection, entries: Sequence[tuple[int, IndexedPaper]], *, replace: bool) -> None:
    """Index these papers; `replace` first removes what they had (changed papers)."""
    if not entries:
        return
    if replace:
        delete_index(conn, [pid for pid, _ in entries])
    cursor_sql: str
    if conn.dialect.name == "postgresql":
        cursor_sql = "INSERT INTO paper_index (paper_id, doc) VALUES (%s, %s::tsvector)"
        params: list[tuple[Any, ...]] = [(pid, tsvector_text(entry)) for pid, entry in entries]
    else:
        cursor_sql = (
            "INSERT INTO paper_index (rowid, title, abstract, authors, facets) VALUES (?, ?, ?, ?, ?)"
        )
        params = [(pid, e.title, e.abstract, e.authors, e.facets) for pid, e in entries]
    conn.exec_driver_sql(cursor_sql, params)


def delete_index(conn: Connection, ids: Iterable[int]) -> None:
    """Forget these papers (PostgreSQL also does it by cascade when a paper is deleted)."""
    column = "paper_id" if conn.dialect.name == "postgresql" else "rowid"
    for chunk in chunks(sorted(set(ids))):
        conn.execute(text(f"DELETE FROM paper_index WHERE {column} IN ({', '.join(map(str, chunk))})"))


def tsvector_text(entry: IndexedPaper) -> str:
    """The paper's tsvector as PostgreSQL's text form: each token once with its positions, a gap
    between fields, weighted by field. Tokens hold only letters, digits and ':'."""
    fields = (("A", entry.title), ("B", entry.abstract), ("C", entry.authors), ("D", entry.facets))
    marks: dict[str, list[str]] = {}
    position = 0
    for weight, value in fields:
        for token in value.split():
            position += 1
            marks.setdefault(token, []).append(f"{position}{weight}")
        position += 1  # no phrase spans two fields
    if position > MAX_POSITION or any(len(m) > MAX_POSITIONS_PER_TOKEN for m in marks.values()):
        return _per_field(fields)
    return " ".join(f"'{token}':{','.join(found)}" for token, found in marks.items())


def _per_field(fields: Sequence[tuple[str, str]]) -> str:
    """A tsvector whose positions would be cut: one position per field, and CUT."""
    marks: dict[str, list[str]] = {CUT: ["1D"]}
    for position, (weight, value) in enumerate(fields, start=1):
        for token in dict.fromkeys(value.split()):
            marks.setdefault(token, []).append(f"{position}{weight}")
    return " ".join(f"'{token}':{','.join(found)}" for token, found in marks.items())


def candidates(conn: Connection, query: IndexQuery) -> TextualSelect:
    """SELECT id of every paper the index matches for this query (an ad-hoc one: papers no
    ad-hoc query can match are left out)."""
    if conn.dialect.name == "postgresql":
        statement: TextClause = text(
            "SELECT paper_id AS id FROM paper_index WHERE doc @@ CAST(:tsquery AS tsquery)"
        ).bindparams(tsquery=_ad_hoc_tsquery(query))
    else:
        statement = text("SELECT rowid AS id FROM paper_index WHERE paper_index MATCH :match").bindparams(
            match=f'{fts5_match(query)} NOT facets : "{UNMATCHABLE}"'
        )
    return statement.columns(id=Integer)


def estimated_candidates(conn: Connection, query: IndexQuery) -> int:
    """PostgreSQL's estimate of how many papers its index finds for the query, from the
    planner's statistics of the tsvector column (its most common tokens and their shares):
    nothing is searched."""
    plan = conn.execute(
        text("EXPLAIN (FORMAT JSON) SELECT 1 FROM paper_index WHERE doc @@ CAST(:tsquery AS tsquery)"),
        {"tsquery": _ad_hoc_tsquery(query)},
    ).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])


def _ad_hoc_tsquery(query: IndexQuery) -> str:
    return f"{tsquery_text(query)} & !'{UNMATCHABLE}':D"


def fts5_match(query: IndexQuery) -> str:
    """FTS5 query syntax: each term a quoted phrase of its tokens under its column filter."""
    if isinstance(query, Tokens):
        phrase = '"' + " ".join(query.tokens) + '"' + ("*" if query.prefix else "")
        return f"{_FTS_COLUMNS[query.field]} : {phrase}"
    joiner = " AND " if isinstance(query, AllOf) else " OR "
    return "(" + joiner.join(fts5_match(c) for c in query.children) + ")"


def tsquery_text(query: IndexQuery) -> str:
    """tsquery syntax: each token quoted (taken as written), with its field's weights."""
    if isinstance(query, Tokens):
        weight = _WEIGHTS[query.field]
        last = len(query.tokens) - 1
        words = [
            f"'{token}':{'*' if query.prefix and n == last else ''}{weight}"
            for n, token in enumerate(query.tokens)
        ]
        if len(words) == 1:
            return words[0]
        # In order and side by side, or all present in a paper whose positions were cut.
        return f"(({' <-> '.join(words)}) | ({' & '.join(words)} & '{CUT}':D))"
    assert isinstance(query, AllOf | AnyOf)
    joiner = " & " if isinstance(query, AllOf) else " | "
    return "(" + joiner.join(tsquery_text(c) for c in query.children) + ")"
