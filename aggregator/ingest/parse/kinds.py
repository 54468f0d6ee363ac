"""The source kinds: for each, its authority, its feed family, its adapter and how it is detected.

This is the one place to add a kind (docs/architecture.md, "A source kind"): an entry here and a
module with its adapter. `types.SOURCE_KINDS`, which config.py checks `kind:` against, sits below
ingest and cannot import this; tests/test_parse.py checks that both name the same kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aggregator.ingest.parse import arxiv_api, arxiv_listing, arxiv_rdf, generic, hf_json, hf_rss, json_feed
from aggregator.ingest.parse.common import Context, Sample
from aggregator.types import Authority, ParsedEntry

Adapter = Callable[[Any, Context], ParsedEntry | None]


@dataclass(frozen=True, slots=True)
class FeedKind:
    """A kind feedparser reads (RSS 2.0, Atom or RSS 1.0), its adapter called once per entry.

    Detection (detect.py) picks the first kind in KINDS whose `marks` the document shows; failing
    that, a hint: the configured kind, else the first kind whose `urls` the URL contains, if the
    document's family is one of that kind's `families` and the kind has marks; failing that, the
    family itself (the kinds rss, atom and rdf, which have no marks)."""

    name: str
    authority: Authority
    families: tuple[str, ...]  # "rss" (RSS 2.0 and 0.9x), "atom", "rdf" (RSS 1.0 and 0.90)
    adapter: Adapter
    marks: Callable[[Sample], bool] | None = None
    urls: tuple[str, ...] = ()  # lowercase fragments of a URL that hints at the kind
    # Raises ParseError when the document is the service's description of an error.
    check_error: Callable[[Any, str], None] | None = None
    # Context.own_categories from the feed's title and URL, read once per document.
    own_categories: Callable[[str, str], tuple[str, ...]] | None = None


@dataclass(frozen=True, slots=True)
class JsonKind:
    """A kind read from JSON: the first in KINDS whose `detect` accepts the decoded document (and
    the configured kind) has `read` give its title and entries, or raise ParseError."""

    name: str
    authority: Authority
    detect: Callable[[Any, str | None], bool]
    read: Callable[[Any], tuple[str, Iterable[ParsedEntry]]]


# Order decides: arxiv-api before arxiv-rss (both Atom), arxiv-rdf before arxiv-rss (the URL
# export.arxiv.org/rss holds arxiv.org/rss), arxiv-rss before hf-papers-rss (both RSS).
KINDS: tuple[FeedKind | JsonKind, ...] = (
    FeedKind(
        "arxiv-api",
        Authority.ARXIV_API,
        ("atom",),
        arxiv_api.read_entry,
        marks=arxiv_api.marks,
        urls=("arxiv.org/api",),
        check_error=arxiv_api.check_error,
    ),
    FeedKind(
        "arxiv-rdf",
        Authority.ARXIV_LISTING,
        ("rdf",),
        arxiv_rdf.read_entry,
        marks=arxiv_rdf.marks,
        urls=("export.arxiv.org/rss",),
        own_categories=arxiv_rdf.own_categories,
    ),
    FeedKind(
        "arxiv-rss",  # rss.arxiv.org serves the same listing as Atom too
        Authority.ARXIV_LISTING,
        ("rss", "atom"),
        arxiv_listing.read_entry,
        marks=arxiv_listing.marks,
        urls=("rss.arxiv.org", "arxiv.org/rss"),
        check_error=arxiv_listing.check_error,
    ),
    FeedKind("hf-papers-rss", Authority.HUGGING_FACE, ("rss",), hf_rss.read_entry, marks=hf_rss.marks),
    FeedKind("rss", Authority.OTHER, ("rss",), generic.read_entry),
    FeedKind("atom", Authority.OTHER, ("atom",), generic.read_atom_entry),
    FeedKind("rdf", Authority.OTHER, ("rdf",), generic.read_entry),
    JsonKind("hf-daily-papers", Authority.HUGGING_FACE, hf_json.detect, hf_json.read),
    JsonKind("json-feed", Authority.OTHER, json_feed.detect, json_feed.read),
)

FEED_KINDS = {kind.name: kind for kind in KINDS if isinstance(kind, FeedKind)}
JSON_KINDS = tuple(kind for kind in KINDS if isinstance(kind, JsonKind))
