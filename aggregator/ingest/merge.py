"""What a paper says once its sightings are merged: each field taken from the sightings in an
order that does not depend on when they arrived (the most authoritative source first, then the
latest version, then a fixed order), so the record is the same whatever order the sources were
read in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from aggregator.records import PaperRecord, StoredSighting
from aggregator.types import NOTES


def _rank(stored: StoredSighting) -> tuple[int, int, str, str]:
    """Most authoritative first; within one authority, the latest version; then a fixed order."""
    s = stored.sighting
    return int(s.authority), -(s.version or 0), s.source, s.entry_id


def merge_record(sightings: Sequence[StoredSighting]) -> PaperRecord:
    """The paper as its sightings describe it together, most authoritative source first."""
    if len(sightings) == 1:
        return _single_record(sightings[0])
    ranked = [s.sighting for s in sorted(sightings, key=_rank)]
    best = ranked[0]
    links: dict[str, str] = {}
    for s in ranked:
        for name, url in s.links.items():
            links.setdefault(name, url)
    categories = _ordered(
        c for s in ranked for c in ((s.primary_category,) if s.primary_category else ()) + s.categories
    )
    versions = [s.version for s in ranked if s.version]
    upvotes = [s.upvotes for s in ranked if s.upvotes is not None]
    title = _first(s.title for s in ranked) or best.entry_id
    return PaperRecord(
        arxiv_id=_first(s.arxiv_id for s in ranked),
        version=max(versions) if versions else None,
        doi=_first(s.doi for s in ranked),
        title=title,
        title_key=next((s.title_key for s in ranked if s.title == title), best.title_key),
        authors=next((s.authors for s in ranked if s.authors), ()),
        abstract=_best_abstract([s.abstract for s in ranked]),
        published=_first(s.published for s in ranked),
        source_updated=max((s.updated for s in ranked if s.updated), default=None),
        first_seen=min(s.first_seen for s in sightings),
        categories=categories,
        primary_category=_first(s.primary_category for s in ranked)
        or (categories[0] if categories else None),
        announce_types=_ordered(s.announce_type for s in ranked if s.announce_type),
        links=links,
        code_urls=_ordered(u for s in ranked for u in s.code_urls),
        upvotes=max(upvotes) if upvotes else None,
        **{note: _first(getattr(s, note) for s in ranked) for note in NOTES},
        keys=_ordered(k for s in ranked for k in s.keys),
    )


def _single_record(stored: StoredSighting) -> PaperRecord:
    """The common case, a paper seen once: its sighting is the record (kept in step with merge_record)."""
    s = stored.sighting
    categories = _ordered((s.primary_category, *s.categories) if s.primary_category else s.categories)
    return PaperRecord(
        arxiv_id=s.arxiv_id,
        version=s.version or None,
        doi=s.doi or None,
        title=s.title or s.entry_id,
        title_key=s.title_key,
        authors=s.authors,
        abstract=s.abstract,
        published=s.published,
        source_updated=s.updated,
        first_seen=stored.first_seen,
        categories=categories,
        primary_category=s.primary_category or (categories[0] if categories else None),
        announce_types=(s.announce_type,) if s.announce_type else (),
        links=dict(s.links),
        code_urls=_ordered(s.code_urls),
        upvotes=s.upvotes,
        **{note: getattr(s, note) or None for note in NOTES},
        keys=_ordered(s.keys),
    )


_T = TypeVar("_T")


def _first(values: Iterable[_T | None]) -> _T | None:
    return next((v for v in values if v), None)


def _ordered(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


_ELLIPSES = ("...", "…", " [...]", "[…]")


def _best_abstract(abstracts: Sequence[str]) -> str:
    """The most authoritative abstract, unless it is a cut-short copy of a fuller one."""
    best = next((a for a in abstracts if a), "")
    stem = best
    for mark in _ELLIPSES:
        stem = stem.removesuffix(mark)
    stem = stem.rstrip()
    if len(stem) < 40:
        return max(abstracts, key=len) if len(best) < 40 else best
    for other in abstracts:
        if len(other) > len(best) and other.startswith(stem):
            best = other
    return best
