"""Walking the feed order: the papers a page's filters allow, newest first, in keyset batches
(each starting where the last one stopped, so a page deep in a feed costs what the first one
does), and the walk that confirms each paper with the exact matcher until a page is full."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Select, select, tuple_

from aggregator.store.bulk import among, chunks
from aggregator.store.deadline import Deadline
from aggregator.store.rows import paper_text
from aggregator.store.schema import paper_order_keys, paper_topics, papers, sightings
from aggregator.store.tagging import DOCUMENT_COLUMNS, sources_of

if TYPE_CHECKING:
    from aggregator.store.pages import PageQuery, TextQuery

FIRST_BATCH, LAST_BATCH = 64, 4_096
MIN_BATCH = 16  # the least a walk reads at a time
WALK_BATCH = 5_000  # ids read per step when walking the feed order through a candidate set
SCREEN_BATCH = 1_024  # keys read per step when the index screens each batch (its cost is per question)


class Walk:
    """The feed order of the papers a query's filters allow (and `among` holds), read in keyset
    batches."""

    def __init__(
        self,
        conn: Connection,
        query: PageQuery,
        among: Callable[[ColumnElement[int]], ColumnElement[bool]] | None = None,
    ) -> None:
        self.conn = conn
        self.published: ColumnElement[datetime]
        self.id: ColumnElement[int]
        where: list[ColumnElement[bool]] = []
        keys: Any = paper_topics
        if query.topic:  # straight off the (slug, published, paper_id) index
            self.published, self.id = paper_topics.c.published, paper_topics.c.paper_id
            where.append(paper_topics.c.slug == query.topic)
            if query.min_score:
                where.append(paper_topics.c.score >= query.min_score)
        else:  # a few ids' keys from the (id, published) index; all in order from (published, id)
            keys = paper_order_keys if among is not None else papers
            self.published, self.id = keys.c.published, keys.c.id
            if query.min_score:
                scored = select(paper_topics.c.paper_id).where(paper_topics.c.score >= query.min_score)
                where.append(self.id.in_(scored))
        if among is not None:
            where.append(among(self.id))
        if query.source:
            where.append(self.id.in_(select(sightings.c.paper_id).where(sightings.c.source == query.source)))
        base = select(self.published, self.id).where(*where)
        if query.since:
            if keys is not papers:
                base = base.join(papers, papers.c.id == self.id)
            base = base.where(papers.c.updated >= query.since)
        self.base: Select[Any] = base
        self.start = query.after

    def batches(
        self,
        deadline: Deadline,
        size: int = FIRST_BATCH,
        after: tuple[datetime, int] | None = None,
        *,
        from_start: bool = False,
        grow: Callable[[int], int] = lambda size: min(size * 4, LAST_BATCH),
    ) -> Iterator[list[tuple[datetime, int]]]:
        """(published, id) in feed order, a batch at a time (each `grow`n from the last): after
        `after`, else after the query's cursor (or from the very start)."""
        last = None if from_start else after or self.start
        while True:
            deadline.check()
            statement = self.base
            if last is not None:
                statement = statement.where(tuple_(self.published, self.id) < tuple_(*last))
            rows = self.conn.execute(
                statement.order_by(self.published.desc(), self.id.desc()).limit(size)
            ).all()
            if rows:
                yield [(r[0], r[1]) for r in rows]
            if len(rows) < size:
                return
            last = (rows[-1][0], rows[-1][1])
            size = grow(size)

    def keys(
        self, wanted: int, deadline: Deadline, *, from_start: bool = False
    ) -> list[tuple[datetime, int]]:
        """The first `wanted` (published, id) after the query's cursor (or `from_start`)."""
        found: list[tuple[datetime, int]] = []
        size = min(max(wanted, 1), LAST_BATCH)
        for batch in self.batches(deadline, size=size, from_start=from_start):
            found += batch[: wanted - len(found)]
            if len(found) >= wanted:
                break
        return found


@dataclass(slots=True)
class Walked:
    """How far a walk went: what matched (up to the page's need), the last key it read, how many
    it read, and how many of those matched (found may keep fewer). A walk that filled its page
    inside a batch has read up to the last key it matched."""

    found: list[tuple[datetime, int]]
    last: tuple[datetime, int] | None = None
    read: int = 0
    matched: int = 0
    ended: bool = False  # it reached the end of the feed


def confirmed_walk(
    conn: Connection,
    walk: Walk,
    ids: set[int] | None,
    text: TextQuery,
    wanted: int,
    deadline: Deadline,
    *,
    so_far: Walked | None = None,
    at_most: int | None = None,
    screen: Callable[[Sequence[int]], set[int] | None] | None = None,
) -> Walked:
    """Walk the feed order (through the candidate set, if any) until `wanted` papers match,
    the feed ends, or `at_most` papers were read; `so_far` continues an earlier walk. Without a
    candidate set, `screen` may say which papers of a batch are worth matching (None: it cannot
    say for that batch): the walk then reads SCREEN_BATCH keys at a time, one question to the
    index each, and matches their candidates a part at a time, as many as the page still needs."""
    done = so_far or Walked([])
    if len(done.found) >= wanted:
        return done
    if ids is not None:
        screen = None  # a walk through the index's candidates has nothing left to screen
    screening = screen is not None

    def grow(size: int) -> int:
        """The next batch: as many as the page still needs (`_next_size`)."""
        if ids is not None:
            return WALK_BATCH
        if screening:
            return screened_batch()
        return _next_size(wanted - len(done.found), done.read, len(done.found), size)

    def screened_batch() -> int:
        """SCREEN_BATCH, or what is left of `at_most` (which bounds what is read, not only matched)."""
        return SCREEN_BATCH if at_most is None else max(1, min(SCREEN_BATCH, at_most - done.read))

    size = WALK_BATCH if ids is not None else screened_batch() if screening else FIRST_BATCH
    shares = _Share()
    for batch in walk.batches(deadline, size=size, after=done.last, grow=grow):
        keys = [k for k in batch if k[1] in ids] if ids is not None else batch
        allowed = screen([i for _, i in batch]) if screen is not None else None
        if allowed is not None:
            keys = [k for k in batch if k[1] in allowed]
        for part in shares.parts(keys, lambda: wanted - len(done.found)) if screening else [keys]:
            accepted = matching(conn, part, text, deadline)
            done.found += accepted
            done.matched += len(accepted)
            shares.add(len(part), len(accepted))
            if len(done.found) >= wanted:  # full inside this batch: read up to this part's last
                done.last, done.read = part[-1], done.read + batch.index(part[-1]) + 1
                done.found = done.found[:wanted]
                return done
        done.last, done.read = batch[-1], done.read + len(batch)
        if at_most is not None and done.read >= at_most:
            return done
    done.ended = True
    return done


class _Share:
    """The share of the papers matched so far that matched: how many more to match for a page."""

    def __init__(self) -> None:
        self.examined = self.accepted = 0

    def add(self, examined: int, accepted: int) -> None:
        self.examined += examined
        self.accepted += accepted

    def parts(
        self, keys: list[tuple[datetime, int]], needed: Callable[[], int]
    ) -> Iterator[list[tuple[datetime, int]]]:
        """`keys` a part at a time, each as large as `_next_size` says the page still needs."""
        start, size = 0, 0
        while start < len(keys):
            size = _next_size(needed(), self.examined, self.accepted, size)
            yield keys[start : start + size]
            start += size


def _next_size(needed: int, examined: int, accepted: int, last: int) -> int:
    """How many papers to read for `needed` more matches: what the share matched so far says,
    with a margin (a broad query reads a third of what growing fourfold read), at least
    MIN_BATCH; all `needed` before any was examined; four times `last` while none matched."""
    if not examined:
        return max(MIN_BATCH, min(math.ceil(needed * 1.25), LAST_BATCH))
    if not accepted:
        return min(max(last, MIN_BATCH) * 4, LAST_BATCH)
    return max(MIN_BATCH, min(math.ceil(needed * 1.25 * examined / accepted), LAST_BATCH))


def matching(
    conn: Connection, keys: Sequence[tuple[datetime, int]], text: TextQuery, deadline: Deadline
) -> list[tuple[datetime, int]]:
    """The keys whose papers the matcher accepts, in the order given."""
    accepted: set[int] = set()
    for chunk in chunks(list(keys)):
        deadline.check()
        ids = [i for _, i in chunk]
        rows = [
            r
            for listed in among(conn, papers.c.id, ids)
            for r in conn.execute(select(*DOCUMENT_COLUMNS).where(listed)).all()
        ]
        seen = sources_of(conn, ids)
        accepted.update(r.id for r in rows if text.matches(paper_text(r, seen.get(r.id, []))))
    return [k for k in keys if k[1] in accepted]
