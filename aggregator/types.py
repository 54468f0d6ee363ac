"""Small typed objects that cross module boundaries, named by their place in the pipeline.

    fetch -> FetchedBody | NotModified
    parse -> ParsedFeed(ParsedEntry, ...)
    normalise -> Sighting
    dedupe -> IngestPlan
    store -> PaperView (what readers see)

Nothing here does I/O or imports a library beyond the standard one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from ipaddress import IPv4Network, IPv6Network

# Where keyset cursors count from, and the Last-Modified of answers that depend on no stored change.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Authority(IntEnum):
    """How far a source is trusted when sources disagree (lower wins)."""

    ARXIV_API = 0
    ARXIV_LISTING = 1
    HUGGING_FACE = 2
    OTHER = 3


# Source kinds a config may name; the arXiv listing kinds are also found by detection.
SOURCE_KINDS = (
    "rss",
    "atom",
    "rdf",
    "json-feed",
    "arxiv-api",
    "arxiv-rss",
    "arxiv-rdf",
    "hf-daily-papers",
    "hf-papers-rss",
)


USER_AGENT = (
    "paper-feeds/0.1 (+https://github.com/paper-feeds/paper-feeds; self-hosted paper feed aggregator)"
)


# The next fetch of a source whose feed is gone (HTTP 410): never, until its URL changes.
STOPPED = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """Limits for every request; the config's `fetch:` section."""

    timeout: float = 30.0  # the whole exchange, not one read
    connect_timeout: float = 10.0
    max_bytes: int = 10 * 1024 * 1024  # counted after decompression
    max_redirects: int = 5
    allow_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    user_agent: str = USER_AGENT
    # Seconds from the end of one request to a host to the start of the next, across every
    # worker sharing the store (arXiv's hosts count as one); 0: no spacing.
    per_host_delay: float = 3.0
    concurrency: int = 8  # sources one worker fetches at once


@dataclass(frozen=True, slots=True)
class FetchedBody:
    """A response worth parsing, with the validators to send next time."""

    body: bytes
    url: str
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    fresh_for: float | None = None  # seconds the server says the response stays fresh (max-age, Expires)


@dataclass(frozen=True, slots=True)
class NotModified:
    """The server answered 304: nothing to parse, nothing to write."""

    etag: str | None = None
    last_modified: str | None = None
    fresh_for: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperNotes:
    """What a source may say about a paper in a line of text, read by the adapters that know where
    their format puts it. Every class a paper passes through carries these fields (an entry, a
    sighting, the merged record, the view), so a note added here is cleaned as plain text,
    stored in the sighting and in a `papers` column of its name (added by a migration), merged
    (the most authoritative source that gives one wins), and shown by the API and the paper
    page under its label, with no other edit."""

    journal_ref: str | None = field(default=None, metadata={"label": "Journal"})
    comment: str | None = field(default=None, metadata={"label": "Comment"})


NOTES = tuple(f.name for f in fields(PaperNotes))
_NOTE_LABELS = tuple((f.name, str(f.metadata["label"])) for f in fields(PaperNotes))


def notes_of(paper: PaperNotes) -> list[tuple[str, str]]:
    """(label, text) of every note the paper has, in their order."""
    return [(label, text) for name, label in _NOTE_LABELS if (text := getattr(paper, name))]


@dataclass(frozen=True, slots=True)
class ParsedEntry(PaperNotes):
    """One entry as its source wrote it, reduced to the fields we use.

    Text fields are raw strings from the feed (may hold HTML or odd whitespace); cleaning them is
    normalisation's job. Source-specific facts (arXiv version, announce type, upvotes) are filled
    by the adapter that understands the format and left empty by the others.
    """

    entry_id: str
    title: str
    link: str | None = None
    links: tuple[str, ...] = ()
    summary: str = ""
    summary_is_html: bool = False
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    categories: tuple[str, ...] = ()
    arxiv_id: str | None = None  # as the source wrote it, possibly with a version suffix
    announce_type: str | None = None  # arXiv listing: new, cross, replace, replace-cross
    primary_category: str | None = None
    doi: str | None = None
    upvotes: int | None = None
    code_urls: tuple[str, ...] = ()
    pdf_url: str | None = None
    image_url: str | None = None  # a thumbnail the source shows with the paper


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed document: its detected kind, title and entries, and what was wrong with it if it
    was read despite errors (entries may be missing)."""

    kind: str
    title: str
    entries: tuple[ParsedEntry, ...]
    authority: Authority = Authority.OTHER
    problem: str | None = None
    hints: FeedHints | None = None  # what the feed says about when to come back


@dataclass(frozen=True, slots=True)
class FeedHints:
    """When a feed says it is worth fetching again: RSS `ttl` (minutes), `skipHours` (0-23, UTC)
    and `skipDays` (0 Monday .. 6 Sunday)."""

    ttl: float | None = None  # seconds
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Sighting(PaperNotes):
    """One entry of one source after normalisation: clean text, ids found, keys to match on.

    `keys` are the exact identity keys (`arxiv:2409.17481`, `doi:10.1145/...`,
    `url:https://example.org/post`); `title_key` serves the fallback on titles.
    """

    source: str
    entry_id: str
    link: str | None
    title: str
    title_key: str
    authors: tuple[str, ...]
    abstract: str
    authority: Authority
    keys: tuple[str, ...]
    arxiv_id: str | None = None  # without version
    version: int | None = None
    doi: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    categories: tuple[str, ...] = ()
    primary_category: str | None = None
    announce_type: str | None = None
    upvotes: int | None = None
    code_urls: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SightingView:
    """Where a paper was seen, as the API shows it."""

    source: str
    entry_id: str
    link: str | None
    first_seen: datetime


# The arXiv listing's announcement types a topic may count; papers from other sources carry none.
ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")
DEFAULT_ANNOUNCE = ("new", "cross")  # a revision is not news unless a topic says so


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What the tagger needs of a configured topic. The config's `TopicConfig` is one, with a
    title and a description for readers, so that a topic's definition is written down once."""

    slug: str
    query: str
    exclude: str | None = None
    sources: tuple[str, ...] = ()  # empty: every source
    announce: tuple[str, ...] = DEFAULT_ANNOUNCE
    min_score: float = 0.0


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """Why a paper is in a topic: its score and the terms that matched ("pruning in title")."""

    slug: str
    score: float
    matched: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PaperView(PaperNotes):
    """A stored paper as readers see it."""

    id: int
    feed_id: str
    arxiv_id: str | None
    version: int | None
    doi: str | None
    title: str
    authors: tuple[str, ...]
    abstract: str
    published: datetime
    updated: datetime
    first_seen: datetime
    links: dict[str, str]
    categories: tuple[str, ...]
    upvotes: int | None
    sightings: tuple[SightingView, ...] = ()
    topics: tuple[TopicMatch, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """What one pass over one source did, for the summary a user reads."""

    source: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    not_modified: bool = False
    error: str | None = None
    warning: str | None = None
    discarded: bool = False  # another worker took the source over: nothing was written
    seconds: float = 0.0  # fetch, parse and store, as the worker timed it

    @property
    def failed(self) -> bool:
        return self.error is not None

    def describe(self) -> str:
        """One line for a log or a summary."""
        if self.discarded:
            return "discarded: the lease passed to another worker"
        if self.error is not None:
            return f"failed: {self.error}"
        if self.not_modified:
            return f"not modified ({self.unchanged} entries unchanged)"
        done = f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged"
        return done + (f"; warning: {self.warning}" if self.warning else "")


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's claim on a source: only the holder of `token` may record its fetch."""

    source: str
    token: str


@dataclass(frozen=True, slots=True)
class SourceState:
    """A source's fetch state as the store keeps it."""

    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_fetch_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    error_count: int = 0
    next_fetch_at: datetime | None = None
    entries: int = 0
    last_warning: str | None = None
    hints: FeedHints | None = None  # what the feed said when its body was last read


@dataclass(frozen=True, slots=True)
class FetchDone:
    """What a successful fetch leaves on its source, written with its papers in one transaction."""

    etag: str | None
    last_modified: str | None
    body_hash: str | None
    next_fetch_at: datetime
    warning: str | None = None  # read with trouble: papers kept, no validators or hash kept
    hints: FeedHints | None = None  # the feed's own, kept for the 304s that follow


DIGEST_KINDS = ("daily", "weekly")


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC: one day, or one ISO week from Monday."""

    kind: str
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        if self.kind == "daily":
            return f"{self.start:%Y-%m-%d}"
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    @classmethod
    def of(cls, kind: str, moment: datetime) -> Period:
        """The period of `kind` that holds `moment`."""
        day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if kind == "daily":
            return cls(kind, day, day + timedelta(days=1))
        if kind == "weekly":
            start = day - timedelta(days=day.weekday())
            return cls(kind, start, start + timedelta(days=7))
        raise ValueError(f"no digest period {kind!r} ({', '.join(DIGEST_KINDS)})")


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One period of a digest feed and its best papers."""

    period: Period
    papers: Sequence[PaperView]  # best first
