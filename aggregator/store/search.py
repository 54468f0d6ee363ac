"""The full-text index under the query language: written with the papers, in the same
transaction, and asked for the candidates of a query (topics/index_query.py says what goes in
and why a candidate set is never smaller than the matches).

SQLite: an FTS5 table `paper_index` (rowid = papers.id; columns title, abstract, authors,
facets) over our own tokens separated by spaces; ':' is part of a token (`n:m`). It keeps token
positions, so a phrase is found as a phrase: phrases of common words ("language model") are
what people search for, and narrowing them to their words alone left tens of times more papers
to confirm. PostgreSQL: `paper_index(paper_id, doc tsvector)` with a GIN index; the tsvector is
built here from the same tokens, never by PostgreSQL's text parser, weighted by field (A title,
B abstract, C authors, D facets), one position per field (real positions would be cut at 256 a
word and 16,383 a paper, and a phrase search would then miss papers): there a phrase is
narrowed to its words in its field. The matcher checks word order on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, TextClause, text
from sqlalchemy.sql.selectable import TextualSelect

from aggregator.store.bulk import chunks
from aggregator.topics.index_query import UNMATCHABLE, AllOf, AnyOf, IndexedPaper, IndexQuery, Tokens

FTS5_TOKENIZER = "unicode61 remove_diacritics 0 tokenchars ':'"
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
    """The paper's tsvector as PostgreSQL's text form: each token once, with a position per field
    it occurs in, weighted by that field. Tokens hold only letters, digits and ':'."""
    weights: dict[str, list[str]] = {}
    for position, (field, value) in enumerate(
        (("A", entry.title), ("B", entry.abstract), ("C", entry.authors), ("D", entry.facets)), start=1
    ):
        for token in set(value.split()):
            weights.setdefault(token, []).append(f"{position}{field}")
    return " ".join(f"'{token}':{','.join(marks)}" for token, marks in weights.items())


def candidates(conn: Connection, query: IndexQuery) -> TextualSelect:
    """SELECT id of every paper the index matches for this query (an ad-hoc one: papers no
    ad-hoc query can match are left out)."""
    if conn.dialect.name == "postgresql":
        statement: TextClause = text(
            "SELECT paper_id AS id FROM paper_index WHERE doc @@ CAST(:tsquery AS tsquery)"
        ).bindparams(tsquery=f"{tsquery_text(query)} & !'{UNMATCHABLE}':D")
    else:
        statement = text("SELECT rowid AS id FROM paper_index WHERE paper_index MATCH :match").bindparams(
            match=f'{fts5_match(query)} NOT facets : "{UNMATCHABLE}"'
        )
    return statement.columns(id=Integer)


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
        return words[0] if len(words) == 1 else "(" + " & ".join(words) + ")"
    assert isinstance(query, AllOf | AnyOf)
    joiner = " & " if isinstance(query, AllOf) else " | "
    return "(" + joiner.join(tsquery_text(c) for c in query.children) + ")"
