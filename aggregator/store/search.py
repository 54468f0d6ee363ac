"""The full-text index under the query language: written with the papers, in the same
transaction, and asked for the candidates of a query (topics/index_query.py says what goes in
and why a candidate set is never smaller than the matches).

SQLite: an FTS5 table `paper_index` (rowid = papers.id; columns title, abstract, authors,
facets) over our own tokens separated by spaces; ':' is part of a token (`n:m`). It keeps token
positions, so a phrase is found as a phrase: phrases of common words ("language model") are
what people search for, and narrowing them to their words alone left tens of times more papers
to confirm. PostgreSQL: `paper_index(paper_id, doc tsvector, pairs tsvector)`, a GIN index on
each; `doc` is built here from the same tokens, never by PostgreSQL's text parser, weighted by
field (A title, B abstract, C authors, D facets), with each token's positions and a gap between
fields, so a phrase is found as a phrase there too. PostgreSQL keeps positions up to 16,383 and 256 a token:
a paper past either keeps one position per field instead, and the token CUT, which makes it a
candidate of every phrase of its words (a phrase search must never miss a paper). The matcher
checks word order on both.

PostgreSQL checks positions and weights by reading the tsvector of every paper its GIN index
gives (16,676 papers and half a second for "any data" at a million, the words' holders). So a
phrase of the title or abstract is asked instead of a second column, `pairs`: each pair of
adjacent words of the title and of the abstract as one token (PAIR joins them; no atom holds it),
without positions or weights, which its own GIN index answers alone. Apart from `doc`, so that
the weighted searches of single words, which read `doc`, do not read the pairs too. FTS5 reads
positions from its own index and needs no pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
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
# Joins two adjacent words into one token of `pairs`; atoms hold letters, digits and ':' only.
PAIR = "_"
# Fields whose phrases are asked of `pairs` ("text": title or abstract, the default field).
_PAIRED_FIELDS = ("text", "title", "abstract")
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
                "REFERENCES papers(id) ON DELETE CASCADE, doc TSVECTOR NOT NULL, pairs TSVECTOR NOT NULL)"
            )
        )
        for column in ("doc", "pairs"):
            conn.execute(text(f"CREATE INDEX ix_paper_index_{column} ON paper_index USING GIN ({column})"))
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
        cursor_sql = "INSERT INTO paper_index (paper_id, doc, pairs) VALUES (%s, %s::tsvector, %s::tsvector)"
        params: list[tuple[Any, ...]] = [
            (pid, tsvector_text(entry), pairs_text(entry)) for pid, entry in entries
        ]
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


def pairs_text(entry: IndexedPaper) -> str:
    """The paper's `pairs` as PostgreSQL's text form: every pair of adjacent words of its title
    and of its abstract once, and UNMATCHABLE if its facets hold it."""
    pairs: dict[str, None] = {}
    for value in (entry.title, entry.abstract):
        pairs.update(dict.fromkeys(map(PAIR.join, pairwise(value.split()))))
    if UNMATCHABLE in entry.facets.split():
        pairs[UNMATCHABLE] = None
    return " ".join(f"'{pair}'" for pair in pairs)


def where_matched(query: IndexQuery) -> tuple[str, dict[str, str]]:
    """PostgreSQL: the condition on `paper_index` (doc, pairs) of an ad-hoc query's candidates,
    and its parameters. A phrase of the title or abstract is asked of `pairs`; the rest of the
    query of `doc`, in one tsquery where it can be (as it was before pairs, when no phrase)."""
    params: dict[str, str] = {}

    def matches(column: str, tsquery: str) -> str:
        name = f"q{len(params)}"
        params[name] = tsquery
        return f"{column} @@ CAST(:{name} AS tsquery)"

    def condition(node: IndexQuery) -> str:
        if not _has_pairs(node):
            return matches("doc", f"{tsquery_text(node)} & !'{UNMATCHABLE}':D")
        if isinstance(node, Tokens):
            return matches("pairs", f"{_pairs_tsquery(node)} & !'{UNMATCHABLE}'")
        # A paper no ad-hoc query can match is left out by every part: so by AND and OR of them.
        joiner = " AND " if isinstance(node, AllOf) else " OR "
        return "(" + joiner.join(condition(child) for child in node.children) + ")"

    return condition(query), params


def _has_pairs(query: IndexQuery) -> bool:
    if isinstance(query, Tokens):
        return query.field in _PAIRED_FIELDS and len(query.tokens) > 1
    return any(_has_pairs(child) for child in query.children)


def _pairs_tsquery(query: Tokens) -> str:
    """A phrase as its pairs of adjacent words, all present; the last a prefix when the phrase
    ends in one ("language mod*": pairs starting `language_mod`)."""
    pairs = list(map(PAIR.join, pairwise(query.tokens)))
    last = len(pairs) - 1
    return " & ".join(f"'{pair}'{':*' if query.prefix and n == last else ''}" for n, pair in enumerate(pairs))


def candidates(conn: Connection, query: IndexQuery) -> TextualSelect:
    """SELECT id of every paper the index matches for this query (an ad-hoc one: papers no
    ad-hoc query can match are left out)."""
    if conn.dialect.name == "postgresql":
        where, params = where_matched(query)
        statement: TextClause = text(f"SELECT paper_id AS id FROM paper_index WHERE {where}").bindparams(
            **params
        )
    else:
        statement = text("SELECT rowid AS id FROM paper_index WHERE paper_index MATCH :match").bindparams(
            match=f'{fts5_match(query)} NOT facets : "{UNMATCHABLE}"'
        )
    return statement.columns(id=Integer)


def estimated_candidates(conn: Connection, query: IndexQuery) -> int:
    """PostgreSQL's estimate of how many papers its index finds for the query, from the
    planner's statistics of the tsvector columns (their most common tokens and their shares):
    nothing is searched."""
    where, params = where_matched(query)
    plan = conn.execute(
        text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM paper_index WHERE {where}"), params
    ).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])


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
