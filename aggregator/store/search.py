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

PostgreSQL checks positions and weights by reading the tsvector of every paper its GIN index
gives (16,676 papers and half a second for "any data" at a million, the words' holders). So a
phrase of the title or abstract is asked instead of a second table, `paper_pairs(paper_id, pairs
tsvector)`: each pair of adjacent words of the title and of the abstract as one token (PAIR joins
them; no atom holds it), without positions or weights, which its own GIN index answers alone. A
table apart, not a column of `paper_index`: their values would share one TOAST table, and every
search that reads `doc` to check weights would read twice as many pages (a scan took 45 % longer).
FTS5 reads positions from its own index and needs no pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise

from sqlalchemy import Connection, Integer, TextClause, text
from sqlalchemy.sql.selectable import TextualSelect

from aggregator.store.bulk import chunks
from aggregator.topics.index_query import UNMATCHABLE, AllOf, AnyOf, IndexedPaper, IndexQuery, Tokens

FTS5_TOKENIZER = "unicode61 remove_diacritics 0 tokenchars ':'"
# FTS5 merges its segments inside the write transaction whenever this many share a level (its
# default is 4). At 16 the index's writes over a million papers cost a quarter less and most
# batches of 10k cost what the first did (at 4, every few cost up to twice that; at 16 a whole
# level's merge still lands on one batch now and then), while searches visit more segments for
# no measurable cost (docs/benchmarks.md, "Repeated titles").
FTS5_AUTOMERGE = 16
# Seconds FTS5 may run on after an interrupt while it merges the posting lists of a prefix's
# tokens (0.25 s measured at a million papers, 0.4 s on a machine in a slow phase): the watchdog
# interrupts such a statement that much before its deadline (Deadline.coarse).
PREFIX_TAIL = 0.3
# A walk's batch is screened by the index when its ids span no more than this many times its size.
SCREEN_SPAN = 64
# ... and when the query has no more tokens than this: about 1-2 ms a token for each question at
# the newest end of a million papers, where matching a paper costs about 0.1 ms.
SCREEN_TOKENS = 4
# PostgreSQL keeps positions up to this and this many positions a token (more are cut).
MAX_POSITION = 16_383
MAX_POSITIONS_PER_TOKEN = 256
# A facet token no facet value makes (those start with a kind letter and hex digits of a value):
# the paper's positions did not fit.
CUT = "p"
# Joins two adjacent words into one token of `pairs`; atoms hold letters, digits and ':' only.
PAIR = "_"
# Fields whose phrases are asked of `paper_pairs` ("text": title or abstract, the default field).
_PAIRED_FIELDS = ("text", "title", "abstract")
# PostgreSQL's tables of the index and their tsvector columns.
_PG_TABLES = (("paper_index", "doc"), ("paper_pairs", "pairs"))
_WEIGHTS = {"title": "A", "abstract": "B", "author": "C", "facet": "D", "text": "AB"}
_FTS_COLUMNS = {
    "title": "title",
    "abstract": "abstract",
    "author": "authors",
    "facet": "facets",
    "text": "{title abstract}",
}


def create_index(conn: Connection, *, filled_first: bool = False) -> None:
    """The index tables (empty) for this connection's database. `filled_first`: PostgreSQL's GIN
    indexes wait for `finish_index`, after the tables are filled (built at once, they take a
    fraction of the time of growing them a row at a time)."""
    if conn.dialect.name == "postgresql":
        for table, column in _PG_TABLES:
            conn.execute(
                text(
                    f"CREATE TABLE {table} (paper_id INTEGER PRIMARY KEY "
                    f"REFERENCES papers(id) ON DELETE CASCADE, {column} TSVECTOR NOT NULL)"
                )
            )
        if not filled_first:
            finish_index(conn)
    else:
        conn.execute(
            text(
                "CREATE VIRTUAL TABLE paper_index USING fts5(title, abstract, authors, facets, "
                f'tokenize = "{FTS5_TOKENIZER}")'
            )
        )
        tune_index(conn)


def tune_index(conn: Connection) -> None:
    """SQLite: FTS5's merge setting, kept in the index itself (its `paper_index_config`)."""
    if conn.dialect.name == "sqlite":
        setting = f"INSERT INTO paper_index (paper_index, rank) VALUES ('automerge', {FTS5_AUTOMERGE})"
        conn.execute(text(setting))


def finish_index(conn: Connection) -> None:
    """PostgreSQL's GIN indexes of the index tables, where missing (SQLite: nothing to do)."""
    if conn.dialect.name == "postgresql":
        # PostgreSQL's default (64 MB) makes a GIN index of a million papers in many passes.
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        for table, column in _PG_TABLES:
            conn.execute(
                text(f"CREATE INDEX IF NOT EXISTS ix_{table}_{column} ON {table} USING GIN ({column})")
            )


def drop_index(conn: Connection) -> None:
    for table, _ in _PG_TABLES:  # SQLite has only the first
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))


def write_index(conn: Connection, entries: Sequence[tuple[int, IndexedPaper]], *, replace: bool) -> None:
    """Index these papers; `replace` first removes what they had (changed papers)."""
    if not entries:
        return
    if replace:
        delete_index(conn, [pid for pid, _ in entries])
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "INSERT INTO paper_index (paper_id, doc) VALUES (%s, %s::tsvector)",
            [(pid, tsvector_text(entry)) for pid, entry in entries],
        )
        conn.exec_driver_sql(
            "INSERT INTO paper_pairs (paper_id, pairs) VALUES (%s, %s::tsvector)",
            [(pid, pairs_text(entry)) for pid, entry in entries],
        )
        return
    conn.exec_driver_sql(
        "INSERT INTO paper_index (rowid, title, abstract, authors, facets) VALUES (?, ?, ?, ?, ?)",
        [(pid, e.title, e.abstract, e.authors, e.facets) for pid, e in entries],
    )


def delete_index(conn: Connection, ids: Iterable[int]) -> None:
    """Forget these papers (PostgreSQL also does it by cascade when a paper is deleted)."""
    postgresql = conn.dialect.name == "postgresql"
    column = "paper_id" if postgresql else "rowid"
    tables = [table for table, _ in _PG_TABLES] if postgresql else ["paper_index"]
    for chunk in chunks(sorted(set(ids))):
        for table in tables:
            conn.execute(text(f"DELETE FROM {table} WHERE {column} IN ({', '.join(map(str, chunk))})"))


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
    """A tsvector whose positions would be cut: one position per field, and CUT at a position
    of its own (PostgreSQL keeps one weight a position: at a field's, a title word `p` took it)."""
    marks: dict[str, list[str]] = {CUT: [f"{len(fields) + 1}D"]}
    for position, (weight, value) in enumerate(fields, start=1):
        for token in dict.fromkeys(value.split()):
            marks.setdefault(token, []).append(f"{position}{weight}")
    return " ".join(f"'{token}':{','.join(found)}" for token, found in marks.items())


def pairs_text(entry: IndexedPaper) -> str:
    """The paper's `paper_pairs.pairs` as PostgreSQL's text form: every pair of adjacent words
    of its title and of its abstract once, and UNMATCHABLE if its facets hold it."""
    pairs: dict[str, None] = {}
    for value in (entry.title, entry.abstract):
        pairs.update(dict.fromkeys(map(PAIR.join, pairwise(value.split()))))
    if UNMATCHABLE in entry.facets.split():
        pairs[UNMATCHABLE] = None
    return " ".join(f"'{pair}'" for pair in pairs)


def matched_ids(query: IndexQuery) -> tuple[str, dict[str, str]]:
    """PostgreSQL: a SELECT of the `paper_id` of an ad-hoc query's candidates, and its
    parameters. A phrase of the title or abstract is asked of `paper_pairs`, the rest of
    `paper_index` (one tsquery, as before pairs, when the query has no such phrase). The parts
    of an AND or an OR that ask one table are asked in one tsquery: a topic's query has dozens
    of parts, and PostgreSQL reads a paper's tsvector again for every condition it checks. An OR
    of both tables is a UNION (an OR of conditions on two tables would be checked on every
    paper); an AND keeps the papers of its first part found by the others (IN: a semi-join,
    whichever side PostgreSQL finds cheaper to start from)."""
    params: dict[str, str] = {}

    def select(table: str, column: str, tsquery: str) -> str:
        name = f"q{len(params)}"
        params[name] = tsquery
        return f"SELECT paper_id FROM {table} WHERE {column} @@ CAST(:{name} AS tsquery)"

    def ids(node: IndexQuery) -> str:
        if not _has_pairs(node):
            return select("paper_index", "doc", f"{tsquery_text(node)} & !'{UNMATCHABLE}':D")
        if isinstance(node, Tokens):
            return select("paper_pairs", "pairs", f"{_pairs_tsquery(node)} & !'{UNMATCHABLE}'")
        both = AllOf if isinstance(node, AllOf) else AnyOf
        children = _flattened(node)
        words = [child for child in children if not _has_pairs(child)]
        phrases = [child for child in children if isinstance(child, Tokens) and _has_pairs(child)]
        parts = [ids(words[0] if len(words) == 1 else both(tuple(words)))] if words else []
        if phrases:
            joined = (" & " if both is AllOf else " | ").join(f"({_pairs_tsquery(p)})" for p in phrases)
            parts.append(select("paper_pairs", "pairs", f"({joined}) & !'{UNMATCHABLE}'"))
        parts += [ids(child) for child in children if child not in words and child not in phrases]
        if len(parts) == 1:
            return parts[0]
        if both is AnyOf:
            return " UNION ".join(f"({part})" for part in parts)
        # A paper no ad-hoc query can match is left out by every part: so by the AND of them.
        found = " AND ".join(f"paper_id IN ({part})" for part in parts[1:])
        return f"SELECT paper_id FROM ({parts[0]}) AS first_part WHERE {found}"

    return ids(query), params


def _flattened(node: AllOf | AnyOf) -> list[IndexQuery]:
    """The children of an AND, with those of the ANDs among them (an OR's, with its ORs')."""
    found: list[IndexQuery] = []
    for child in node.children:
        found += _flattened(child) if type(child) is type(node) else [child]
    return found


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
        found, params = matched_ids(query)
        statement: TextClause = text(f"SELECT paper_id AS id FROM ({found}) AS matched").bindparams(**params)
    else:
        statement = text("SELECT rowid AS id FROM paper_index WHERE paper_index MATCH :match").bindparams(
            match=_fts5_candidates(query)
        )
    return statement.columns(id=Integer)


def screen(conn: Connection, query: IndexQuery) -> Callable[[Sequence[int]], set[int] | None] | None:
    """A test of a batch of papers (their ids): which of them the index finds for the query,
    or None for a batch it cannot say that of for less than matching them would cost; None for
    a query it never can. SQLite only, and only for ids close together (a batch of a walk down
    the feed order, mostly papers stored together): FTS5 is asked for the range of the ids,
    which it seeks in each segment, where an IN list of the same ids made it read a common
    word's whole posting list (0.2-0.5 s at a million papers). Not for a range wider than
    SCREEN_SPAN times the batch, a prefix (FTS5 merges every token it stands for, whatever the
    range), or more than SCREEN_TOKENS tokens (each costs a question a seek in every segment,
    and an OR of many leaves little to screen out)."""
    if conn.dialect.name != "sqlite" or has_prefix(query) or _tokens(query) > SCREEN_TOKENS:
        return None
    match = _fts5_candidates(query)
    asked = text(
        "SELECT rowid FROM paper_index WHERE paper_index MATCH :match AND rowid BETWEEN :low AND :high"
    )

    def screened(ids: Sequence[int]) -> set[int] | None:
        if not ids:
            return set()
        low, high = min(ids), max(ids)
        if high - low >= SCREEN_SPAN * len(ids):
            return None
        found = conn.execute(asked, {"match": match, "low": low, "high": high}).scalars()
        return set(found).intersection(ids)

    return screened


def _fts5_candidates(query: IndexQuery) -> str:
    """The MATCH text of a query's candidates (papers no ad-hoc query can match left out)."""
    return f'{fts5_match(query)} NOT facets : "{UNMATCHABLE}"'


def _tokens(query: IndexQuery) -> int:
    if isinstance(query, Tokens):
        return len(query.tokens)
    return sum(_tokens(child) for child in query.children)


def has_prefix(query: IndexQuery) -> bool:
    """Whether any term of the query is a prefix (`word*`)."""
    if isinstance(query, Tokens):
        return query.prefix
    return any(has_prefix(child) for child in query.children)


def estimated_candidates(conn: Connection, query: IndexQuery) -> int:
    """PostgreSQL's estimate of how many papers its index finds for the query, from the
    planner's statistics of the tsvector columns (their most common tokens and their shares):
    nothing is searched."""
    found, params = matched_ids(query)
    plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) {found}"), params).scalar_one()
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
