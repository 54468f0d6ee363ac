"""What the dedupe and topic stages hand the store: sightings with their first sighting, the
stored papers a batch may touch, the plans that merge them, and what topic matching reads of a
paper; with the two stages' interfaces as the store calls them.

Plain values at the bottom of the package (beside `types`): the stages make them, the store
persists them, and neither imports the other.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from aggregator.text import author_keys
from aggregator.types import PaperNotes, Sighting, TopicMatch

# A title key shorter than this ("introduction", "abstract") says too little to merge on.
MIN_TITLE_KEY = 16


@dataclass(frozen=True, slots=True)
class StoredSighting:
    """A sighting with the moment it was first seen."""

    sighting: Sighting
    first_seen: datetime
    # text.author_keys of the sighting's authors, made on first use (a title merge, the
    # stubs' check, the write of sightings.match_keys) and kept: not part of the value.
    _names: frozenset[str] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def with_names(
        cls, sighting: Sighting, first_seen: datetime, names: frozenset[str] | None
    ) -> StoredSighting:
        """A stored sighting whose family names were read back with it (None: made on first use)."""
        stored = cls(sighting, first_seen)
        if names is not None:
            object.__setattr__(stored, "_names", names)
        return stored

    @property
    def identity(self) -> tuple[str, str]:
        return self.sighting.source, self.sighting.entry_id

    @property
    def names(self) -> frozenset[str]:
        """The family names of its authors, as title merges compare them."""
        names = self._names
        if names is None:
            names = author_keys(self.sighting.authors)
            object.__setattr__(self, "_names", names)  # a cache on a frozen value, made once
        return names


@dataclass(frozen=True, slots=True)
class KnownPaper:
    """A stored paper that an incoming sighting may belong to, with all its sightings."""

    id: int
    first_seen: datetime
    sightings: tuple[StoredSighting, ...]


@dataclass(frozen=True, slots=True)
class StoredCandidates:
    """The stored papers a batch may touch, as the store reads them: in full those that hold its
    entries, share an identity key with it or, found through a shared title, could be joined by
    a sighting of it (TitleReach); the other same-titled papers only counted, by each of their
    title keys (`plan_ingest`'s `unread`). Most papers bearing a repeated title ("Reply to ...",
    a series) are of other people, and loading each in full made every batch slower than the
    last."""

    papers: list[KnownPaper]
    unread: dict[str, int]


class TitleReach(Protocol):
    """What the store asks of each stored paper it finds through a shared title, from its
    sightings' title keys, identity keys and family names: could a sighting of the batch join
    it (dedupe.TitleReach)? Asked before any object is made of the paper."""

    def reaches(self, titles: Iterable[str], keys: Iterable[str], names: Collection[str]) -> bool: ...


@dataclass(frozen=True, slots=True)
class PaperRecord(PaperNotes):
    """What a paper says once all its sightings are merged."""

    arxiv_id: str | None
    version: int | None
    doi: str | None
    title: str
    title_key: str
    authors: tuple[str, ...]
    abstract: str
    published: datetime | None
    source_updated: datetime | None
    first_seen: datetime
    categories: tuple[str, ...]
    primary_category: str | None
    announce_types: tuple[str, ...]
    links: dict[str, str]
    code_urls: tuple[str, ...]
    upvotes: int | None
    keys: tuple[str, ...]


@dataclass(slots=True)
class ClusterPlan:
    """One paper after this batch: which stored papers it absorbs and its sightings."""

    survivor: int | None  # the stored paper id that lives on, None for a new paper
    absorbed: tuple[int, ...]  # stored paper ids merged into the survivor
    sightings: tuple[StoredSighting, ...]
    changed: tuple[StoredSighting, ...]  # sightings of this batch (new or with new content)
    record: PaperRecord  # what the merged paper says (merge.merge_record of its sightings)


@dataclass(frozen=True, slots=True)
class PaperText:
    """A paper as topic matching reads it: its text, its facets, and whether every sighting is
    an arXiv listing entry (then `announce` applies). The store makes it from a merged record or
    a stored row; topics.document makes its atoms."""

    title: str
    abstract: str = ""
    authors: Sequence[str] = ()
    categories: Iterable[str] = ()
    sources: Iterable[str] = ()
    ids: Iterable[str] = ()
    announce_types: Iterable[str] = ()
    only_listings: bool = False
    # topics.document's Document of this paper, made on first use (Document.of) and kept, so that
    # tagging and the full-text index entry share its atoms: not part of the value.
    _document: object = field(default=None, init=False, repr=False, compare=False)


class PaperTagger(Protocol):
    """The topic stage as the store calls it: on every paper it writes, and over the whole
    store when topics change (topics.match.Tagger)."""

    @property
    def slugs(self) -> list[str]: ...

    def tag_paper(self, paper: PaperText) -> list[TopicMatch]: ...
