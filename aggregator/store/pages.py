"""Pages of papers in feed order (newest published first, ties by id), at a cost bounded by the
page, not by the store.

A page is read through a keyset walk: batches of (published, id) off the feed-order index, each
starting where the last one stopped, so a page deep in a feed (or after a `next` cursor) costs
what the first one does. A `q=` query is narrowed by the full-text index (store/search.py) and
every candidate confirmed by the exact matcher:
- few candidates (at most SORT_LIMIT): they are put in feed order by their keys alone and
  confirmed in that order until the page is full; the total is their number, exact when the
  index answers the query exactly (index_query.is_exact) or when so few that all are confirmed;
- more, or a query the index cannot narrow: the feed order is walked and every paper matched,
  which fills the page of a broad query within a few hundred papers; the total is estimated
  from the share that matched. A sparser one stops after PROBE papers and walks on through the
  set of its candidate ids (up to CANDIDATE_CAP; past that, on matching every paper); the total
  is then the index's count (exact or an upper bound, as above). A query with a prefix asks the
  index once a page: expanding the prefix is the costly part. On SQLite the index screens each
  batch of such a walk where that is cheap (search.screen), so that only candidates are matched.
Work past the request's deadline stops with BudgetExceeded rather than blocking a worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Integer,
    any_,
    bindparam,
    func,
    select,
)

from aggregator.records import PaperText
from aggregator.store.deadline import Deadline
from aggregator.store.meta import paper_count
from aggregator.store.schema import paper_topics
from aggregator.store.search import PREFIX_TAIL, candidates, estimated_candidates, has_prefix, screen
from aggregator.store.walks import Walk, Walked, confirmed_walk, matching
from aggregator.topics.index_query import IndexQuery

SORT_LIMIT = 5_000
CONFIRM_ALL = 200  # an inexact query with no more candidates than this gets an exact total
CANDIDATE_CAP = 100_000
# PostgreSQL: a query its planner expects to match this share of the store (and this many papers
# at least) is walked first.
DENSE_SHARE, DENSE_MIN = 0.1, 1_000
PROBE = 600  # papers walked and matched before a query with many candidates reads their ids
COUNT_CAP = 100_000  # a filtered count stops here: "more than 100,000" is all a reader needs


@dataclass(frozen=True, slots=True)
class TextQuery:
    """`q=`: the exact matcher, and what the full-text index narrows it to (None: nothing)."""

    matches: Callable[[PaperText], bool]
    narrowed: IndexQuery | None
    exact: bool = False  # the index's candidates are exactly the matches


@dataclass(frozen=True, slots=True)
class PageQuery:
    """Which papers a reader asks for, in feed order."""

    source: str | None = None
    topic: str | None = None
    since: datetime | None = None
    limit: int = 50
    offset: int = 0
    after: tuple[datetime, int] | None = None  # keyset cursor: papers after this (published, id)
    text: TextQuery | None = None
    min_score: float | None = None  # in the topic (or, without one, in any topic)
    count: bool = True  # whether the total is wanted (feeds only need to know if more follow)


@dataclass(frozen=True, slots=True)
class PageIds:
    """A page as paper ids in feed order, what follows it, and how many match in all."""

    ids: list[int]
    more: bool
    last: tuple[datetime, int] | None  # the cursor of the page's last paper
    total: int | None  # None when not asked for
    exact: bool = True  # False: total is an upper bound (or a capped count)


def page_ids(conn: Connection, query: PageQuery, deadline: Deadline) -> PageIds:
    """The ids of the papers on this page, in feed order."""
    walk = Walk(conn, query)
    wanted = query.offset + query.limit + 1  # one more tells whether a next page exists
    if query.text is None:
        found = walk.keys(wanted, deadline)
        total, exact = _count(conn, query, walk) if query.count else (None, True)
        return _page(found, query, total, exact)
    narrowed = query.text.narrowed
    asked = _candidates(conn, narrowed, deadline) if narrowed is not None else None
    try:
        return _text_page(conn, query, walk, narrowed, asked, wanted, deadline)
    finally:
        if asked is not None and asked.pending is not None:
            asked.pending.close()


def _text_page(
    conn: Connection,
    query: PageQuery,
    walk: Walk,
    narrowed: IndexQuery | None,
    asked: _Found | None,
    wanted: int,
    deadline: Deadline,
) -> PageIds:
    """A `q=` page, from what the index said of its candidates (`asked`)."""
    assert query.text is not None
    if asked is not None and asked.few is not None:
        among = Walk(conn, query, among=asked.few)
        unfiltered = not (query.topic or query.source or query.since or query.min_score)
        total = asked.count if unfiltered else _count_all(conn, among)
        return _from_candidates(conn, among, query, query.text, total, wanted, deadline)
    # Many candidates, or no narrowing: walk and match. A dense query fills its page within
    # PROBE papers; a sparse one then walks on through the set of candidate ids.
    ids = asked.ids if asked is not None else None
    walked = Walked([])
    screened = None
    if ids is None:
        # Many candidates: the index screens each batch of the walk where it can (SQLite), so
        # that only its candidates are matched (a third of a broad word's batch, not all of it).
        screened = screen(conn, narrowed) if narrowed is not None else None
        walked = confirmed_walk(
            conn, walk, None, query.text, wanted, deadline, at_most=PROBE, screen=screened
        )
        if narrowed is not None and len(walked.found) < wanted and not walked.ended:
            if asked is None:
                ids = candidate_ids(conn, narrowed, CANDIDATE_CAP, deadline)
            elif asked.pending is not None:
                ids = asked.pending.rest()
    if len(walked.found) < wanted and not walked.ended:  # through the ids, or on, screened where it can
        walked = confirmed_walk(conn, walk, ids, query.text, wanted, deadline, so_far=walked, screen=screened)
    if ids is not None:  # the index's candidates, before the filters: exact only without them
        unfiltered = not (query.topic or query.source or query.since or query.min_score)
        return _page(walked.found, query, len(ids), exact=query.text.exact and unfiltered)
    if walked.ended:  # it saw every paper in scope: every match
        return _page(walked.found, query, len(walked.found), exact=query.after is None)
    return _page(walked.found, query, _estimate(conn, query, walked), exact=False)


def _estimate(conn: Connection, query: PageQuery, walked: Walked) -> int:
    """About how many papers match, from the share of the papers read that matched (all of them,
    not only those the page keeps); the matches found, at least, where filters leave the scope
    unknown."""
    unfiltered = not (query.topic or query.source or query.since or query.min_score or query.after)
    if not unfiltered or walked.read == 0:
        return len(walked.found)
    return max(len(walked.found), round(walked.matched / walked.read * paper_count(conn)))


def _page(found: list[tuple[datetime, int]], query: PageQuery, total: int | None, exact: bool) -> PageIds:
    page = found[query.offset : query.offset + query.limit]
    return PageIds(
        ids=[i for _, i in page],
        more=len(found) > query.offset + query.limit,
        last=page[-1] if page else None,
        total=total if query.count else None,
        exact=exact,
    )


def candidate_ids(
    conn: Connection, narrowed: IndexQuery, cap: int = CANDIDATE_CAP, deadline: Deadline | None = None
) -> set[int] | None:
    """Ids the index finds for the query, or None past `cap` (more than this use could take).
    One statement, which may be long (a query ORing many common prefixes): on PostgreSQL it is
    given only the `deadline`'s work left, and its time counts against the rest; on SQLite the
    progress handler and, while FTS5 expands a prefix, the watchdog (early) stop it."""
    left = deadline.database_left() if deadline is not None else math.inf
    if conn.dialect.name == "postgresql" and math.isfinite(left):
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(left * 1000))}")
    with _asking_index(conn, narrowed, deadline):
        found = conn.execute(select(candidates(conn, narrowed).subquery().c.id).limit(cap + 1))
        ids = set(found.scalars())
    return ids if len(ids) <= cap else None


@contextmanager
def _asking_index(conn: Connection, narrowed: IndexQuery, deadline: Deadline | None) -> Iterator[None]:
    """A search of the index for a query's candidates, under the deadline: on PostgreSQL its
    time counts against the work left (the server does it); a prefix is expanded as coarse work
    (SQLite's FTS5 heeds an interrupt only between pieces of the merge)."""
    with ExitStack() as spent:
        if deadline is not None and conn.dialect.name == "postgresql":
            spent.enter_context(deadline.elsewhere())
        if deadline is not None and has_prefix(narrowed):
            spent.enter_context(deadline.coarse(PREFIX_TAIL))
        yield


@dataclass(frozen=True, slots=True)
class _Found:
    """What the index said of a query's candidates: how many (exact up to where it stopped
    counting), and either a test of an id column for them (at most SORT_LIMIT), or, on
    PostgreSQL, their ids (up to CANDIDATE_CAP), or, on SQLite, those still to read."""

    count: int
    few: Callable[[ColumnElement[int]], ColumnElement[bool]] | None = None
    ids: set[int] | None = None
    pending: _PendingIds | None = None  # SQLite, a prefix: the rest of its ids, read if needed


class _PendingIds:
    """The ids of a query's candidates past the first SORT_LIMIT, left in the open result: read
    only when a walk needs them (a broad prefix fills its page first, and reading 100,000 ids
    it never needed cost more than the page)."""

    def __init__(self, result: Any, first: list[int]) -> None:
        self._result, self._first = result, first

    def rest(self) -> set[int] | None:
        """All the ids, or None past CANDIDATE_CAP."""
        ids = set(self._first)
        ids.update(self._result.scalars())
        self.close()
        return ids if len(ids) <= CANDIDATE_CAP else None

    def close(self) -> None:
        self._result.close()


def _candidates(conn: Connection, narrowed: IndexQuery, deadline: Deadline) -> _Found | None:
    """The index's candidates for the query, when it is worth asking (None: walk first)."""
    if conn.dialect.name == "postgresql":
        # Each candidate costs PostgreSQL a read of its tsvector (weights and positions are not
        # in the GIN index), and a common word's whole posting list is read before the first
        # is returned: candidates are found once, as ids, and not at all when the planner
        # expects a good share of a store where that is many (walking the feed order fills
        # the page sooner; the total is then an estimate).
        if estimated_candidates(conn, narrowed) >= max(DENSE_MIN, DENSE_SHARE * paper_count(conn)):
            return None
        ids = candidate_ids(conn, narrowed, CANDIDATE_CAP, deadline)
        if ids is None:
            return None
        if len(ids) > SORT_LIMIT:
            return _Found(len(ids), ids=ids)
        listed = bindparam("candidates", sorted(ids), type_=ARRAY(Integer))
        return _Found(len(ids), few=lambda column: column == any_(listed))
    if has_prefix(narrowed):
        # FTS5 merges the posting lists of every token a prefix stands for before its first
        # candidate comes out (0.7 s and more for a two-letter prefix at 1M papers): the index is
        # asked once, and the ids past the first SORT_LIMIT are read only if a walk needs them.
        with _asking_index(conn, narrowed, deadline):  # the merge happens before the first id comes out
            result = conn.execute(select(candidates(conn, narrowed).subquery().c.id).limit(CANDIDATE_CAP + 1))
            first = list(result.scalars().fetchmany(min(SORT_LIMIT, CANDIDATE_CAP) + 1))
        if len(first) > CANDIDATE_CAP:  # too many to use: walk, without asking again
            result.close()
            return _Found(len(first))
        if len(first) > SORT_LIMIT:
            return _Found(len(first), pending=_PendingIds(result, first))
        result.close()
        return _Found(len(first), few=lambda column: column.in_(first))
    capped = select(candidates(conn, narrowed).subquery().c.id).limit(SORT_LIMIT + 1).subquery()
    count = int(conn.execute(select(func.count()).select_from(capped)).scalar_one())
    if count > SORT_LIMIT:
        return None
    found = candidates(conn, narrowed).subquery()  # SQLite's index answers again in well under 1 ms
    return _Found(count, few=lambda column: column.in_(select(found.c.id)))


def _count_all(conn: Connection, walk: Walk) -> int:
    return int(conn.execute(select(func.count()).select_from(walk.base.subquery())).scalar_one())


def _from_candidates(
    conn: Connection,
    walk: Walk,
    query: PageQuery,
    text: TextQuery,
    total: int,
    wanted: int,
    deadline: Deadline,
) -> PageIds:
    """A page of few candidates (`total` of them pass the filters): the database puts them in
    feed order (their keys never cross into Python), and they are confirmed in that order until
    the page is full."""
    if text.exact:  # the candidates are the matches: nothing to confirm
        return _page(walk.keys(wanted, deadline), query, total, exact=True)
    if total <= CONFIRM_ALL:  # so few that all are confirmed, for an exact total
        matched = matching(conn, walk.keys(total, deadline, from_start=True), text, deadline)
        following = [k for k in matched if query.after is None or k < query.after]
        return _page(following[:wanted], query, len(matched), exact=True)
    found = confirmed_walk(conn, walk, None, text, wanted, deadline).found
    return _page(found, query, total, exact=False)


def _count(conn: Connection, query: PageQuery, walk: Walk) -> tuple[int, bool]:
    """How many papers the filters allow, and whether that is exact: from paper_topics alone
    for a topic, from the store's own count for everything; capped at COUNT_CAP when other
    filters make it a walk over papers."""
    if query.topic and not (query.source or query.since or query.min_score):
        counted = select(func.count()).select_from(paper_topics).where(paper_topics.c.slug == query.topic)
        return int(conn.execute(counted).scalar_one()), True
    if not (query.topic or query.source or query.since or query.min_score):
        return paper_count(conn), True
    capped = walk.base.limit(COUNT_CAP).subquery()
    total = int(conn.execute(select(func.count()).select_from(capped)).scalar_one())
    return total, total < COUNT_CAP
