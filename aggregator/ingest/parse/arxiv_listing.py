"""The arXiv listing, rss.arxiv.org (RSS 2.0, or its Atom twin): markers, error document, adapter.

The same adapter reads feedparser's reading and listing_fast.py's copy of it."""

from __future__ import annotations

import re
from typing import Any

from aggregator.errors import ParseError
from aggregator.ingest.parse.common import Context, Sample, get, names, struct_date, terms
from aggregator.types import ParsedEntry

_OAI_PREFIX = "oai:arXiv.org:"
_LISTING_HEAD = re.compile(r"arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[\w-]+)")


def marks(sample: Sample) -> bool:
    return (
        "rss.arxiv.org" in sample.where
        or any(i.startswith(_OAI_PREFIX) for i in sample.ids)
        or any(dict.__contains__(e, "arxiv_announce_type") for e in sample.first)
    )


def check_error(parsed: Any, title: str) -> None:
    """rss.arxiv.org answers a bad category with an empty feed that describes the error."""
    if not parsed["entries"] and title.startswith("Feed error for query"):
        detail = (get(parsed["feed"], "subtitle") or title).strip()
        raise ParseError(f"parse: arXiv listing error: {detail}")


def read_entry(e: Any, ctx: Context) -> ParsedEntry | None:
    """Oai guid, announce type, comma-joined creators."""
    entry_id = get(e, "id") or get(e, "link")
    if not entry_id:
        return None
    summary = get(e, "summary") or ""
    arxiv_id = entry_id[len(_OAI_PREFIX) :] if entry_id.startswith(_OAI_PREFIX) else None
    announce = get(e, "arxiv_announce_type")
    if summary.startswith("arXiv:"):  # "arXiv:2411.17701v1 Announce Type: new \nAbstract: ..."
        cut = summary.find("Abstract:")
        if cut != -1:
            if not (arxiv_id and announce) and (m := _LISTING_HEAD.match(summary, 0, cut)):
                arxiv_id, announce = arxiv_id or m["id"], announce or m["type"]
            summary = summary[cut + 9 :].strip()
    creators = names(get(e, "authors") or ()) or (get(e, "author") or "",)
    categories = terms(e)
    link = get(e, "link")
    published = struct_date(get(e, "published_parsed") or get(e, "updated_parsed"))
    return ParsedEntry(
        entry_id=entry_id,
        title=get(e, "title") or "",
        link=link,
        links=(link,) if link else (),
        summary=summary,
        authors=tuple(p for n in creators for p in (s.strip() for s in n.split(",")) if p),
        published=published,
        updated=published if announce and announce.startswith("replace") else None,
        categories=categories,
        arxiv_id=arxiv_id,
        announce_type=announce,
        primary_category=categories[0] if categories else None,
        doi=get(e, "arxiv_doi"),
        journal_ref=get(e, "arxiv_journal_reference") or get(e, "arxiv_journal_ref"),
    )
