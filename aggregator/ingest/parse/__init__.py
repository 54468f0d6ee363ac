"""Parse a fetched body into a ParsedFeed: detect its format, then read each entry with one adapter.

This module is the only one that imports feedparser. It reads bytes (never a URL or a path; a URL
is only a hint and the base for relative links) and returns raw strings as the source wrote
them: ids, titles, HTML and odd whitespace included. It must not clean, sanitise, judge dates,
find identifiers in text or merge anything (normalisation and deduplication do that), and it
does no I/O. A body that is no feed, or a service's error document, raises ParseError; a feed
with no entries is not an error.

The source kinds (authority, feed family, adapter, detection) are listed in kinds.py, one
module per format beside it; detect.py picks the kind of an XML feed, common.py holds what the
adapters share.

The arXiv listing (rss.arxiv.org RSS 2.0), the bulk of every ingest, first goes to a fast path:
listing_fast.py reads it with lxml into exactly what feedparser would have given here, over ten
times faster, and declines (feedparser reads the body) on anything outside the listing's
exact shape. It exists because feedparser alone cost two thirds of an ingest; the listing adapter,
detection and error checks are the same for both paths.
"""

from __future__ import annotations

import json
import re
import xml.sax
from dataclasses import replace
from typing import Any

import feedparser

from aggregator.errors import ParseError
from aggregator.ingest.listing_fast import read_listing
from aggregator.ingest.parse.common import Context, get
from aggregator.ingest.parse.detect import detect_feed
from aggregator.ingest.parse.hints import feed_hints
from aggregator.ingest.parse.kinds import FEED_KINDS, JSON_KINDS
from aggregator.ingest.prolog import defuse
from aggregator.types import ParsedFeed

__all__ = ["parse_feed", "parse_listing_fast"]

# Lone UTF-16 surrogates as character references make feedparser raise; we retry without them.
_SURROGATE_REF = re.compile(
    rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*(?:5529[6-9]|55[3-9]\d\d|56\d\d\d|57[0-2]\d\d|573[0-3]\d|5734[0-3]));"
)


def parse_feed(
    body: bytes, *, kind: str | None = None, url: str | None = None, fast: bool = True
) -> ParsedFeed:
    """Detect the format of `body` (`kind` and `url` are hints) and read its entries.

    `fast=False` skips the arXiv listing fast path: feedparser reads everything (tests compare)."""
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise ParseError("parse: not a feed (empty body)")
    if head[:1] in (b"{", b"["):
        return _parse_json(body, kind)
    if fast and (feed := parse_listing_fast(body, kind=kind, url=url)) is not None:
        return feed
    parsed = _feedparser(body)
    return _with_hints(_read_parsed(parsed, detect_feed(parsed, kind, url or ""), url or ""), body)


def parse_listing_fast(body: bytes, *, kind: str | None = None, url: str | None = None) -> ParsedFeed | None:
    """An arXiv listing read with lxml (listing_fast.py) into what feedparser's reading gives.

    None when the body is not exactly a listing's shape, or would not be detected as one: then
    only feedparser may read it."""
    parsed = read_listing(defuse(body))
    if parsed is None or detect_feed(parsed, kind, url or "") != "arxiv-rss":
        return None
    return _with_hints(_read_parsed(parsed, "arxiv-rss", url or ""), body)


def _with_hints(feed: ParsedFeed, body: bytes) -> ParsedFeed:
    """The feed with what its channel says about when to come back (hints.py)."""
    hints = feed_hints(body)
    return feed if hints is None else replace(feed, hints=hints)


def _read_parsed(parsed: Any, name: str, url: str) -> ParsedFeed:
    """feedparser's result (or the fast path's copy of it) through the adapter of kind `name`."""
    kind = FEED_KINDS[name]
    title = get(parsed["feed"], "title") or ""
    if kind.check_error is not None:
        kind.check_error(parsed, title)
    adapter, context = kind.adapter, Context(parsed, url, kind.own_categories)
    entries = tuple(e for e in (adapter(raw, context) for raw in parsed["entries"]) if e is not None)
    if not entries and (not parsed.get("version") or (parsed.get("bozo") and not title)):
        exc = parsed.get("bozo_exception")  # nothing usable: an HTML page, garbage, a broken stub
        reason = f"{type(exc).__name__}: {exc}" if exc else "no feed elements"
        raise ParseError(f"parse: not a feed ({reason})")
    return ParsedFeed(
        kind=name,
        title=title,
        entries=entries,
        authority=kind.authority,
        problem=_problem(parsed, len(entries)),
    )


def _problem(parsed: Any, read: int) -> str | None:
    """A warning when the XML is not well-formed (a truncated download, a broken tag): feedparser
    then reads what it can, and entries past the break may be lost. Entities HTML knows but XML
    does not (`&nbsp;`) are no such loss: the lenient reading gets every entry."""
    exc = parsed.get("bozo_exception")
    if not isinstance(exc, xml.sax.SAXParseException) or "undefined entity" in str(exc):
        return None
    return (
        f"parse: the document is not well-formed XML (line {exc.getLineNumber()}: {exc.getMessage()}); "
        f"kept the {read} entries read, some may be missing"
    )


def _feedparser(body: bytes) -> Any:
    """feedparser.parse on bytes, without its sanitiser; its crashes become ParseError.

    No URL goes to feedparser, not even as Content-Location: with a base URI it joins URLs on
    every element (30% slower); the generic adapter resolves the few relative links itself.
    """
    options: dict[str, Any] = {"sanitize_html": False, "resolve_relative_uris": False}
    body = defuse(body)  # before any parser: feedparser's fallback expands what a DOCTYPE declares
    try:
        return feedparser.parse(body, **options)
    except Exception as exc:
        cleaned = _SURROGATE_REF.sub(b"&#xFFFD;", body)
        if cleaned == body:
            raise ParseError(f"parse: not a feed (feedparser failed: {type(exc).__name__}: {exc})") from exc
    try:
        return feedparser.parse(cleaned, **options)
    except Exception as exc:
        raise ParseError(f"parse: not a feed (feedparser failed: {type(exc).__name__}: {exc})") from exc


def _parse_json(body: bytes, hint: str | None) -> ParsedFeed:
    """A JSON body: the first of the JSON kinds that accepts it reads it."""
    try:
        data = json.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"parse: not a feed (invalid JSON: {exc})") from exc
    for kind in JSON_KINDS:
        if kind.detect(data, hint):
            title, entries = kind.read(data)
            return ParsedFeed(kind.name, title, tuple(entries), kind.authority)
    raise ParseError("parse: not a feed (JSON that is neither a JSON Feed nor Hugging Face Daily Papers)")
