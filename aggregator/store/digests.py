"""The reads behind digest feeds: a period's newest date and its best papers, from the narrow
rows of a topic (or the upvoted papers' own index), never the whole period's papers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select

from aggregator.store.bulk import chunks
from aggregator.store.schema import paper_topics, papers

# Papers tied on score whose upvotes are read to order them; past this, the newest win the tie.
MAX_DIGEST_TIES = 1_000


def digest_newest(slug: str | None, before: datetime) -> Select[Any]:
    """The newest publication date before `before`, of a topic's papers or of all: one index read."""
    if slug is None:
        return select(func.max(papers.c.published)).where(papers.c.published < before)
    return select(func.max(paper_topics.c.published)).where(
        paper_topics.c.slug == slug, paper_topics.c.published < before
    )


def digest_top(conn: Connection, slug: str | None, start: datetime, end: datetime, top: int) -> list[int]:
    """The ids of a period's best papers: by topic score, then Hugging Face upvotes, then the
    newest; for all papers, by upvotes then the newest. Reads the period's narrow rows (a
    topic's pairs, or the upvoted papers through their own index), and papers rows only for
    the few that rank."""
    if slug is None:
        upvoted = list(
            conn.scalars(
                select(papers.c.id)
                .where(papers.c.upvotes.is_not(None), papers.c.published >= start, papers.c.published < end)
                .order_by(papers.c.upvotes.desc(), papers.c.published.desc(), papers.c.id.desc())
                .limit(top)
            )
        )
        if len(upvoted) == top:
            return upvoted
        newest = conn.scalars(
            select(papers.c.id)
            .where(papers.c.published >= start, papers.c.published < end, papers.c.upvotes.is_(None))
            .order_by(papers.c.published.desc(), papers.c.id.desc())
            .limit(top - len(upvoted))
        )
        return upvoted + list(newest)
    tagged = paper_topics.c
    period = select(tagged.paper_id, tagged.score, tagged.published).where(
        tagged.slug == slug, tagged.published >= start, tagged.published < end
    )
    rows = list(conn.execute(period).all())
    if not rows:
        return []
    rows.sort(key=lambda r: (r.score, r.published, r.paper_id), reverse=True)
    # Upvotes only break ties of score: read them for the papers that could still rank.
    cutoff = rows[min(top, len(rows)) - 1].score
    contending = [r for r in rows if r.score >= cutoff][:MAX_DIGEST_TIES]
    upvotes: dict[int, int | None] = {}
    for chunk in chunks([r.paper_id for r in contending]):
        votes_of = select(papers.c.id, papers.c.upvotes).where(papers.c.id.in_(chunk))
        upvotes.update((pid, votes) for pid, votes in conn.execute(votes_of))

    def rank(r: Any) -> tuple[float, int, datetime, int]:
        votes = upvotes.get(r.paper_id)
        return (r.score, -1 if votes is None else votes, r.published, r.paper_id)

    contending.sort(key=rank, reverse=True)
    return [r.paper_id for r in contending[:top]]
