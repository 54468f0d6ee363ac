"""What a paper becomes in the store: its row values and content digest (from its merged
record), its text as topic matching reads it and its full-text index entry (from its merged
record or its stored row). Pure: no queries here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from aggregator.records import ClusterPlan, PaperRecord, PaperText
from aggregator.store.codec import record_digest
from aggregator.store.schema import papers
from aggregator.topics.index_query import IndexedPaper, indexed_fields
from aggregator.types import Authority


def paper_text(paper: Any, seen: Sequence[tuple[str, int]]) -> PaperText:
    """A paper as topic matching reads it, from its merged record or its stored row (both carry
    title, abstract, authors, categories, arxiv_id, version, doi, announce_types) and the
    (source, authority) of its sightings."""
    return PaperText(
        title=paper.title,
        abstract=paper.abstract,
        authors=paper.authors,
        categories=paper.categories,
        sources={source for source, _ in seen},
        ids=paper_ids(paper.arxiv_id, paper.version, paper.doi),
        announce_types=paper.announce_types,
        only_listings=bool(seen) and all(authority == Authority.ARXIV_LISTING for _, authority in seen),
    )


def paper_ids(arxiv_id: str | None, version: int | None, doi: str | None) -> list[str]:
    """What `id:` matches: the arXiv id with and without its version, and the DOI."""
    found = [arxiv_id, f"{arxiv_id}v{version}" if arxiv_id and version else None, doi]
    return [i for i in found if i]


def indexed_plan(plan: ClusterPlan) -> IndexedPaper:
    return index_entry(plan.record, [(s.sighting.source, s.sighting.authority) for s in plan.sightings])


def index_entry(paper: Any, seen: Sequence[tuple[str, int]]) -> IndexedPaper:
    """What the full-text index holds for a paper, from its merged record or its stored row (as
    `paper_text` reads them) and the (source, authority) of its sightings, without making a
    PaperText: the same atoms, made once."""
    only_listings = bool(seen) and all(authority == Authority.ARXIV_LISTING for _, authority in seen)
    return indexed_fields(
        title=paper.title,
        abstract=paper.abstract,
        authors=paper.authors,
        categories=(c.lower() for c in paper.categories),
        sources={source.lower() for source, _ in seen},
        ids=(i.lower() for i in paper_ids(paper.arxiv_id, paper.version, paper.doi)),
        unmatchable=only_listings and not paper.announce_types,
    )


def content_digest(plan: ClusterPlan, values: dict[str, Any]) -> str:
    """What readers can see of a paper, hashed: its record, its date, and where it was seen
    (a new source can put a paper in a topic restricted to that source)."""
    seen = sorted({(s.sighting.source, int(s.sighting.authority)) for s in plan.sightings})
    published = (plan.record.published or plan.record.first_seen).isoformat()
    return record_digest({**values, "published": published, "seen": seen})


# The merged record's fields that the papers table keeps as they are, read off the dataclass and
# the table: a field added to both is written with no edit here. `published` and `first_seen`
# are columns the writer fills itself (a paper's date falls back to when it was first seen).
_WRITTEN_BY_THE_WRITER = {"published", "first_seen"}
RECORD_COLUMNS = tuple(
    f.name for f in fields(PaperRecord) if f.name in papers.c and f.name not in _WRITTEN_BY_THE_WRITER
)


def paper_values(record: PaperRecord) -> dict[str, Any]:
    """The papers row's values of a merged record (sequences as lists, mappings as dicts)."""
    return {name: _column_value(getattr(record, name)) for name in RECORD_COLUMNS}


def _column_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
