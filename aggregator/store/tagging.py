"""Topics in the store: re-tag stored papers, notice changed topic definitions, read topics back.

Re-tagging walks the papers in id order, a batch per transaction, and writes only the
paper-topic pairs that differ from what is stored, so that a re-tag after editing one topic
touches exactly the pairs that topic gains, loses or rescores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, tuple_, update

from aggregator.records import PaperTagger
from aggregator.store.bulk import among, bulk_insert, chunks
from aggregator.store.rows import paper_text
from aggregator.store.schema import paper_topics, papers, sightings, topic_state
from aggregator.types import TopicMatch

RETAG_BATCH = 2000

# The columns of papers that `paper_text` reads (with the paper's sightings) to match it.
DOCUMENT_COLUMNS = (
    papers.c.id,
    papers.c.title,
    papers.c.abstract,
    papers.c.authors,
    papers.c.categories,
    papers.c.arxiv_id,
    papers.c.version,
    papers.c.doi,
    papers.c.announce_types,
)


@dataclass(frozen=True, slots=True)
class RetagResult:
    """What a re-tag changed."""

    papers: int = 0
    added: int = 0
    removed: int = 0
    rescored: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.removed + self.rescored


def retag(
    conn_factory: Callable[[], Any],
    tagger: PaperTagger,
    *,
    slugs: Iterable[str] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> RetagResult:
    """Re-apply topics (all, or these slugs) to every stored paper; returns what changed."""
    wanted = set(slugs) if slugs is not None else set(tagger.slugs)
    total = RetagResult()
    last_id = 0
    while True:
        with conn_factory() as conn:
            rows = conn.execute(
                select(*DOCUMENT_COLUMNS, papers.c.published)
                .where(papers.c.id > last_id)
                .order_by(papers.c.id)
                .limit(RETAG_BATCH)
            ).all()
            if not rows:
                break
            result = _retag_batch(conn, tagger, rows, wanted)
        total = RetagResult(*(a + b for a, b in zip(_fields(total), _fields(result), strict=True)))
        last_id = rows[-1].id
        if on_batch:
            on_batch(len(rows))
    return total


def _fields(r: RetagResult) -> tuple[int, int, int, int]:
    return r.papers, r.added, r.removed, r.rescored


def _retag_batch(conn: Connection, tagger: PaperTagger, rows: Sequence[Any], wanted: set[str]) -> RetagResult:
    ids = [r.id for r in rows]
    seen = sources_of(conn, ids)
    fresh: dict[tuple[int, str], tuple[float, list[str], Any]] = {}
    for row in rows:
        for match in tagger.tag_paper(paper_text(row, seen.get(row.id, []))):
            if match.slug in wanted:
                fresh[(row.id, match.slug)] = (match.score, list(match.matched), row.published)
    stored = {
        (r.paper_id, r.slug): (r.score, list(r.matched), r.published)
        for chunk in chunks(ids)
        for r in conn.execute(
            select(paper_topics).where(
                paper_topics.c.paper_id.in_(chunk), paper_topics.c.slug.in_(sorted(wanted))
            )
        )
    }
    added = [k for k in fresh if k not in stored]
    removed = [k for k in stored if k not in fresh]
    rescored = [k for k in fresh if k in stored and fresh[k] != stored[k]]
    if removed:
        for chunk in chunks(removed):
            conn.execute(
                delete(paper_topics).where(tuple_(paper_topics.c.paper_id, paper_topics.c.slug).in_(chunk))
            )
    if added:
        bulk_insert(conn, paper_topics, [_row(k, fresh[k]) for k in added])
    for key in rescored:
        score, matched, published = fresh[key]
        conn.execute(
            update(paper_topics)
            .where(and_(paper_topics.c.paper_id == key[0], paper_topics.c.slug == key[1]))
            .values(score=score, matched=matched, published=published)
        )
    return RetagResult(len(rows), len(added), len(removed), len(rescored))


def _row(key: tuple[int, str], value: tuple[float, list[str], Any]) -> dict[str, Any]:
    return {"slug": key[1], "paper_id": key[0], "score": value[0], "matched": value[1], "published": value[2]}


def sources_of(conn: Connection, ids: list[int]) -> dict[int, list[tuple[str, int]]]:
    """(source, authority) of every sighting of these papers."""
    found: dict[int, list[tuple[str, int]]] = {}
    query = select(sightings.c.paper_id, sightings.c.source, sightings.c.authority)
    for listed in among(conn, sightings.c.paper_id, ids):
        for paper_id, source, authority in conn.execute(query.where(listed)).all():  # one fetch
            found.setdefault(paper_id, []).append((source, authority))
    return found


def changed_topics(conn: Connection, current: Mapping[str, str]) -> tuple[set[str], set[str]]:
    """(topics added or edited since they were last applied, topics no longer configured), from
    each configured topic's fingerprint (slug -> topics.match.fingerprints)."""
    stored = {slug: fp for slug, fp in conn.execute(select(topic_state.c.slug, topic_state.c.fingerprint))}
    edited = {slug for slug, fp in current.items() if stored.get(slug) != fp}
    return edited, set(stored) - set(current)


def forget_topics(conn: Connection, slugs: Iterable[str]) -> None:
    gone = sorted(slugs)
    if gone:
        conn.execute(delete(paper_topics).where(paper_topics.c.slug.in_(gone)))
        conn.execute(delete(topic_state).where(topic_state.c.slug.in_(gone)))


def remember_topics(conn: Connection, fingerprints: Mapping[str, str]) -> None:
    conn.execute(delete(topic_state))
    rows = [{"slug": slug, "fingerprint": fp} for slug, fp in fingerprints.items()]
    if rows:
        conn.execute(insert(topic_state), rows)


def topic_counts(conn: Connection) -> dict[str, int]:
    query = select(paper_topics.c.slug, func.count()).group_by(paper_topics.c.slug)
    return {slug: int(n) for slug, n in conn.execute(query)}


def topics_of(conn: Connection, ids: list[int]) -> dict[int, list[TopicMatch]]:
    """The topics of these papers, best score first."""
    found: dict[int, list[TopicMatch]] = {}
    query = select(paper_topics.c.paper_id, paper_topics.c.slug, paper_topics.c.score, paper_topics.c.matched)
    for listed in among(conn, paper_topics.c.paper_id, ids):
        for paper_id, slug, score, matched in conn.execute(query.where(listed)).all():  # one fetch
            found.setdefault(paper_id, []).append(TopicMatch(slug, score, tuple(matched)))
    for matches in found.values():
        matches.sort(key=lambda m: (-m.score, m.slug))
    return found
