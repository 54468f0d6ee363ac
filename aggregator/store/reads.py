"""The store's reads: papers in feed order (pages, digests, one paper), the candidates of a
query for previews, counts, the store's version, and the sources' fetch state. Every read that a
request can make costly runs under a deadline the database itself enforces.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, get_origin, get_type_hints

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import OperationalError

from aggregator.records import PaperText
from aggregator.store import meta
from aggregator.store.bulk import among, chunks
from aggregator.store.codec import decode_hints
from aggregator.store.deadline import WATCHDOG, Deadline
from aggregator.store.digests import digest_newest, digest_top
from aggregator.store.meta import STAMP_EPOCH
from aggregator.store.pages import (
    PageQuery,
    candidate_ids,
    page_ids,
)
from aggregator.store.rows import paper_text
from aggregator.store.schema import paper_topics, papers, sightings, sources, store_meta
from aggregator.store.search_turns import SearchTurns
from aggregator.store.tagging import sources_of, topic_counts, topics_of
from aggregator.topics.index_query import IndexQuery
from aggregator.types import (
    EPOCH,
    DigestEntry,
    PaperView,
    Period,
    SightingView,
    SourceState,
    TopicMatch,
)

QUERY_BUDGET = 0.8  # CPU seconds a page may take to find (and 4x that in all): then a 503
# On PostgreSQL the server does part of a query's work outside this process (reading the papers a
# walk visits: about 45 % of what this process spent on them at 1M papers, and 85-95 % since
# this process reads a page's rows at once), so this process keeps to this share of the budget:
# the two together stay under a second, with room for the work between two checks of the deadline.
OWN_SHARE_ON_POSTGRESQL = 0.5


@dataclass(frozen=True, slots=True)
class Page:
    """A page of papers in feed order, whether more follow, and how many match in all."""

    papers: list[PaperView]
    more: bool
    last: tuple[datetime, int] | None  # (published, id) of the last paper: the next page's cursor
    total: int | None  # None when the query did not ask for it
    exact: bool = True  # False: total is an estimate (an upper bound, or a capped count)


class StoreReads:
    """The read half of `Store` (repository.py): everything here only reads."""

    engine: Engine
    searches: SearchTurns  # searches (`q=`, previews) take turns: at most so many at once

    def source_states(self) -> list[SourceState]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sources).order_by(sources.c.name)).mappings().all()
        return [_source_state(r) for r in rows]

    def source_state(self, name: str) -> SourceState | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(sources).where(sources.c.name == name)).mappings().first()
        return _source_state(row) if row else None

    def version(self) -> int:
        return self.version_stamp()[0]

    def version_stamp(self) -> tuple[int, datetime]:
        """The store's version and when it last changed (the epoch for a store never written)."""
        with self.engine.connect() as conn:
            values = {
                name: value for name, value in conn.execute(select(store_meta.c.name, store_meta.c.value))
            }
        changed = STAMP_EPOCH + timedelta(seconds=values["changed_at"]) if "changed_at" in values else EPOCH
        return int(values.get("version", 0)), changed

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def papers_page(
        self, query: PageQuery, *, budget: float | None = None, with_sightings: bool = True
    ) -> Page:
        """Papers in feed order (newest published first, ties by id); BudgetExceeded when
        finding them would take more than `budget` CPU seconds (default QUERY_BUDGET). A search
        (`query.text`) first waits for its turn (SearchesBusy when none comes in time).
        `with_sightings=False` leaves every paper's `sightings` empty, unread: feeds and pages
        that never show them save a read of the sightings table."""
        with self.searches.turn() if query.text is not None else nullcontext():
            deadline = self._deadline(QUERY_BUDGET if budget is None else budget)
            with self._reading(deadline) as conn:
                found = page_ids(conn, query, deadline)
                views = self._views(conn, found.ids, with_sightings=with_sightings)
        return Page(views, found.more, found.last, found.total, found.exact)

    def digest(
        self,
        slug: str | None,
        kind: str,
        *,
        top: int,
        periods: int,
        now: datetime,
        with_sightings: bool = True,
    ) -> list[DigestEntry]:
        """The last `periods` periods of `kind` that ended before `now` and hold papers of the
        topic (`None`: of all papers), newest first, each with its `top` papers: by score, then
        upvotes, then date. Two index reads a period and its own papers, never the store.
        `with_sightings` as for papers_page."""
        deadline = self._deadline(QUERY_BUDGET)
        found: list[tuple[Period, list[int]]] = []
        with self._reading(deadline) as conn:
            before = Period.of(kind, now).start  # the running period is not over: not yet digested
            while len(found) < periods:
                newest = conn.scalar(digest_newest(slug, before))
                if newest is None:
                    break
                period = Period.of(kind, newest)
                found.append((period, digest_top(conn, slug, period.start, period.end, top)))
                before = period.start
            shown = [i for _, ids in found for i in ids]
            views = {v.id: v for v in self._views(conn, shown, with_sightings=with_sightings)}
        return [DigestEntry(period, [views[i] for i in ids if i in views]) for period, ids in found]

    def paper(self, paper_id: int) -> PaperView | None:
        """One paper as readers see it, with every sighting and topic; None if there is none."""
        with self.engine.connect() as conn:
            found = self._views(conn, [paper_id])
        return found[0] if found else None

    def _views(self, conn: Connection, ids: list[int], *, with_sightings: bool = True) -> list[PaperView]:
        """These papers as readers see them, in the order of `ids` (without their sightings
        unless `with_sightings`)."""
        rows = {r[_VIEW_ID]: r for r in self._rows(conn, ids)}
        seen = self._sightings_of(conn, ids) if with_sightings else {}
        tagged = topics_of(conn, ids)
        return [_paper_view(rows[i], seen.get(i, ()), tuple(tagged.get(i, ()))) for i in ids if i in rows]

    @staticmethod
    def _rows(conn: Connection, ids: list[int]) -> list[Any]:
        """The papers' rows, the view's columns only (in _VIEW_COLUMNS order)."""
        found: list[Any] = []
        for listed in among(conn, papers.c.id, ids):
            found += conn.execute(select(*(papers.c[name] for name in _VIEW_COLUMNS)).where(listed)).all()
        return found

    def _deadline(self, budget: float) -> Deadline:
        """A request's deadline for `budget` CPU seconds of work in all: on PostgreSQL, this
        process's share of it (OWN_SHARE_ON_POSTGRESQL)."""
        if self.engine.dialect.name == "postgresql":
            return Deadline(budget * OWN_SHARE_ON_POSTGRESQL, work=budget)
        return Deadline(budget)

    @contextmanager
    def _reading(self, deadline: Deadline) -> Iterator[Connection]:
        """A read connection that the database itself stops at the deadline: SQLite through a
        progress handler, PostgreSQL through statement_timeout."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                with conn.begin():
                    left = deadline.wall_left()
                    timeout = max(int(left * 1000), 1) if math.isfinite(left) else 0  # 0: none
                    # Both for this transaction only, in one round trip (every page read pays it).
                    # No parallel workers: the budget counts the database's work, which they
                    # would spend several times over in the same wall time (a broad topic's OR of
                    # 78 terms on a sequential scan: 1.2 s of the server's CPU in 0.86 s); and a
                    # server busy with concurrent requests has no idle cores for them anyway.
                    conn.execute(
                        text(
                            "SELECT set_config('statement_timeout', :timeout, true), "
                            "set_config('max_parallel_workers_per_gather', '0', true)"
                        ),
                        {"timeout": str(timeout)},
                    )
                    try:
                        yield conn
                    except OperationalError as exc:
                        if "statement timeout" in str(exc):  # ours: the budget, or what was left of it
                            raise deadline.exceeded() from exc
                        raise
                return
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.set_progress_handler(deadline.expired, 10_000)
            # The handler is not called inside one step of SQLite's machine (FTS5 expanding a
            # short prefix is one): the watchdog interrupts those from its own thread.
            bounded = math.isfinite(deadline.left())
            try:
                with WATCHDOG.watching(deadline, raw.interrupt) if bounded else nullcontext():
                    yield conn
            except OperationalError as exc:
                if "interrupted" in str(exc):  # the progress handler or the watchdog: the budget
                    raise deadline.exceeded() from exc
                raise
            finally:
                raw.set_progress_handler(None, 0)

    def documents(
        self, narrowed: IndexQuery | None = None, *, budget: float | None = None
    ) -> Generator[tuple[str, str, datetime, PaperText], None, None]:
        """Stored papers as (id, title, published, PaperText), for previews of a query: those
        the index finds for `narrowed`, or every one; BudgetExceeded past `budget` seconds.
        Like any search, it waits for its turn first, and holds it until the iteration ends:
        close it (contextlib.closing) when stopping early or on an error."""
        with self.searches.turn():
            yield from self._documents(narrowed, budget)

    def _documents(
        self, narrowed: IndexQuery | None, budget: float | None
    ) -> Iterator[tuple[str, str, datetime, PaperText]]:
        deadline = self._deadline(budget if budget is not None else math.inf)
        with self._reading(deadline) as conn:
            ids = candidate_ids(conn, narrowed, deadline=deadline) if narrowed is not None else None
            if ids is None:
                batches: Iterable[list[int]] = _id_batches(conn, deadline)
            else:
                batches = (list(chunk) for chunk in chunks(sorted(ids)))
            for batch in batches:
                deadline.check()
                seen = sources_of(conn, batch)
                for row in conn.execute(select(papers).where(papers.c.id.in_(batch)).order_by(papers.c.id)):
                    deadline.check()  # the caller's work on each paper (matching it) is ours too
                    yield row.feed_id, row.title, row.published, paper_text(row, seen.get(row.id, []))

    def paper_count(self) -> int:
        with self.engine.connect() as conn:
            return meta.paper_count(conn)

    def topic_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return topic_counts(conn)

    def topic_count_since(self, slug: str, since: datetime) -> int:
        """How many papers of a topic were published since `since`: one range of its index."""
        query = select(func.count()).where(paper_topics.c.slug == slug, paper_topics.c.published >= since)
        with self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def _sightings_of(self, conn: Connection, ids: list[int]) -> dict[int, tuple[SightingView, ...]]:
        found: dict[int, list[SightingView]] = {}
        query = select(
            sightings.c.paper_id,
            sightings.c.source,
            sightings.c.entry_id,
            sightings.c.link,
            sightings.c.first_seen,
        ).order_by(sightings.c.first_seen, sightings.c.id)
        for listed in among(conn, sightings.c.paper_id, ids):
            # .all(): one fetch of the rows; iterating a PostgreSQL result fetches them one by one
            for paper_id, source, entry_id, link, first_seen in conn.execute(query.where(listed)).all():
                found.setdefault(paper_id, []).append(SightingView(source, entry_id, link, first_seen))
        return {k: tuple(v) for k, v in found.items()}


_SOURCE_COLUMNS = tuple(f.name for f in fields(SourceState) if f.name != "hints")  # each a column


def _source_state(row: Any) -> SourceState:
    return SourceState(**{name: row[name] for name in _SOURCE_COLUMNS}, hints=decode_hints(row["hints"]))


def _id_batches(conn: Connection, deadline: Deadline, size: int = 1000) -> Iterator[list[int]]:
    """Every paper id, in order, a batch at a time."""
    last = 0
    while True:
        deadline.check()
        ids = list(
            conn.scalars(select(papers.c.id).where(papers.c.id > last).order_by(papers.c.id).limit(size))
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


# PaperView's fields that are columns of papers, read off the dataclass: a field added to both is
# shown with no edit here. Tuples and dicts come from JSON columns as lists and dicts.
_VIEW_COLUMNS = tuple(f.name for f in fields(PaperView) if f.name in papers.c)
_VIEW_TUPLES = frozenset(n for n, hint in get_type_hints(PaperView).items() if get_origin(hint) is tuple)
_VIEW_ID = _VIEW_COLUMNS.index("id")


def _paper_view(row: Any, seen: tuple[SightingView, ...], tagged: tuple[TopicMatch, ...]) -> PaperView:
    values = dict(zip(_VIEW_COLUMNS, row, strict=True))
    for name in _VIEW_TUPLES.intersection(values):
        values[name] = tuple(values[name])
    return PaperView(**values, sightings=seen, topics=tagged)
