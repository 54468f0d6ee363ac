"""Any RSS, Atom or RDF feed: ids and author strings are kept whole, nothing is guessed."""

from __future__ import annotations

from typing import Any

from aggregator.ingest.parse.common import (
    Context,
    absolute,
    fallback_id,
    get,
    hrefs,
    is_html,
    names,
    struct_date,
    terms,
)
from aggregator.types import ParsedEntry


def read_entry(e: Any, ctx: Context) -> ParsedEntry | None:
    return _read(e, ctx, ())


def read_atom_entry(e: Any, ctx: Context) -> ParsedEntry | None:
    """As `read_entry`; an entry without authors has the feed's, as Atom says."""
    return _read(e, ctx, ctx.feed_authors)


def _read(e: Any, ctx: Context, feed_authors: tuple[str, ...]) -> ParsedEntry | None:
    title, link = get(e, "title") or "", absolute(get(e, "link"), ctx.base)
    entry_id = get(e, "id") or link or (fallback_id(title, link) if title else None)
    if not entry_id:
        return None
    detail, summary = get(e, "summary_detail"), get(e, "summary") or ""
    content = (get(e, "content") or (None,))[0]
    if content and len(get(content, "value") or "") >= len(summary):
        summary, detail = get(content, "value") or "", content
    authors = names(get(e, "authors") or ()) or ((get(e, "author"),) if get(e, "author") else ())
    return ParsedEntry(
        entry_id=entry_id,
        title=title,
        link=link,
        links=hrefs((link,), (absolute(get(item, "href"), ctx.base) for item in get(e, "links") or ())),
        summary=summary,
        summary_is_html=is_html(detail),
        authors=authors or feed_authors,
        published=struct_date(get(e, "published_parsed")),
        updated=struct_date(get(e, "updated_parsed")),
        categories=terms(e),
    )
