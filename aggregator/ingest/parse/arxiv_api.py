"""The arXiv API, export.arxiv.org/api/query (Atom): markers, error document, adapter. One paper
per entry, with rich arxiv: metadata."""

from __future__ import annotations

from typing import Any

from aggregator.errors import ParseError
from aggregator.ingest.parse.common import Context, Sample, get, hrefs, is_html, names, struct_date, terms
from aggregator.types import ParsedEntry


def marks(sample: Sample) -> bool:
    return "arxiv.org/api" in sample.where or any("arxiv.org/api/errors" in i for i in sample.ids)


def check_error(parsed: Any, title: str) -> None:
    """The API answers a bad query with a feed whose one entry describes the error."""
    for e in parsed["entries"]:
        if "arxiv.org/api/errors" in (get(e, "id") or ""):
            summary = (get(e, "summary") or get(e, "title") or "unknown error").strip()
            raise ParseError(f"parse: arXiv API error: {summary}")


def read_entry(e: Any, ctx: Context) -> ParsedEntry | None:
    entry_id = get(e, "id") or get(e, "link")
    if not entry_id:
        return None
    link = pdf_url = doi_link = None
    for item in get(e, "links") or ():
        href, title = get(item, "href"), get(item, "title")
        if title == "pdf":
            pdf_url = pdf_url or href
        elif title == "doi":
            doi_link = doi_link or href
        elif get(item, "rel") == "alternate":
            link = link or href
    doi = get(e, "arxiv_doi") or (doi_link.partition("doi.org/")[2] if doi_link else None) or None
    primary = get(e, "arxiv_primary_category")
    return ParsedEntry(
        entry_id=entry_id,
        title=get(e, "title") or "",
        link=link or get(e, "link"),
        links=hrefs(get(item, "href") for item in get(e, "links") or ()),
        summary=get(e, "summary") or "",
        summary_is_html=is_html(get(e, "summary_detail")),
        authors=names(get(e, "authors") or ()),
        published=struct_date(get(e, "published_parsed")),
        updated=struct_date(get(e, "updated_parsed")),
        categories=terms(e),
        arxiv_id=entry_id.partition("/abs/")[2] or None,
        primary_category=get(primary, "term") if isinstance(primary, dict) else None,
        doi=doi,
        journal_ref=get(e, "arxiv_journal_ref"),
        comment=get(e, "arxiv_comment"),
        pdf_url=pdf_url,
    )
