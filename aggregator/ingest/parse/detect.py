"""Which kind a feedparser reading is: content markers first, then the configured kind, then the
URL, then the XML family. The kinds, their markers and their order are kinds.py's."""

from __future__ import annotations

from typing import Any

from aggregator.ingest.parse.common import Sample, get
from aggregator.ingest.parse.kinds import FEED_KINDS

# The XML families, which are also the kinds of a feed nothing more is known of.
FAMILIES = ("rss", "atom", "rdf")


def family(version: str) -> str:
    """feedparser's `version` as one of FAMILIES, or "" when it found no feed."""
    if version.startswith("atom"):
        return "atom"
    if version in ("rss090", "rss10"):
        return "rdf"
    return "rss" if version.startswith("rss") else ""


def detect_feed(parsed: Any, hint: str | None, url: str) -> str:
    """The kind of feedparser's reading (or the fast path's copy of it); `hint` is the configured kind."""
    found = family(parsed.get("version") or "")
    feed, first = parsed["feed"], parsed["entries"][:3]
    sample = Sample(
        where=f"{get(feed, 'id') or ''} {get(feed, 'link') or ''}",
        ids=[get(e, "id") or "" for e in first],
        first=first,
    )
    for kind in FEED_KINDS.values():
        if kind.marks is not None and found in kind.families and kind.marks(sample):
            return kind.name
    # A hint naming rss, atom or rdf picks nothing: the family decides those, and the URL may still hint.
    for name in (hint, kind_from_url(url)):
        hinted = FEED_KINDS.get(name) if name else None
        if hinted is not None and hinted.marks is not None and found in hinted.families:
            return hinted.name
    return found or (hint if hint in FAMILIES else "rss")


def kind_from_url(url: str) -> str | None:
    url = url.lower()
    return next((kind.name for kind in FEED_KINDS.values() if any(u in url for u in kind.urls)), None)
