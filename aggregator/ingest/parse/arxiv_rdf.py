"""The legacy arXiv listing, export.arxiv.org/rss (RSS 1.0): markers, the listing's own
categories, adapter. Id, category and UPDATED / CROSS LISTED flags live in each title."""

from __future__ import annotations

import html
import re
from typing import Any

from aggregator.ingest.parse.common import Context, Sample, get, is_html, names, struct_date
from aggregator.types import ParsedEntry

# Titles: "Title. (arXiv:1709.01234v1 [cs.CL])", "... [cs.CL UPDATED])",
# "... [cs.LG] UPDATED)" or "... [cs.LG] CROSS LISTED)".
_RDF_TITLE = re.compile(
    r"\.?\s*\(arXiv:(?P<id>[^\s\[\]()]+)\s*\[(?P<cat>[^\]\s]+)(?P<flags>[^\]]*\][^)]*)\)\s*$"
)
_CATEGORY_LIST = re.compile(r"[\w.+,\s-]+")
_UPDATES_ON_ARXIV = re.compile(r"\supdates on arXiv", re.IGNORECASE)
_RSS_PATH = re.compile(r"arxiv\.org/rss/([\w.+-]+)", re.IGNORECASE)
_CATEGORY_SEP = re.compile(r"[\s,+]+")
_RDF_ANNOUNCE = (("new", "cross"), ("replace", "replace-cross"))  # [updated][cross]
_ANCHOR_TEXT = re.compile(r"<a\b[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def marks(sample: Sample) -> bool:
    return "arxiv.org" in sample.where or any(_RDF_TITLE.search(get(e, "title") or "") for e in sample.first)


def own_categories(feed_title: str, url: str) -> tuple[str, ...]:
    """The categories the listing is of ("cs.CL updates on arXiv.org", or its URL's path): a
    paper of another category is cross-listed even when its title does not say so."""
    # The phrase found first, what precedes it checked after: the one pattern this replaces
    # ("^\s*([\w.+,\s-]+?)\s+updates on arXiv") took cubic time on runs of spaces.
    found = _UPDATES_ON_ARXIV.search(feed_title)
    named = feed_title[: found.start()].strip() if found else ""
    if not (named and _CATEGORY_LIST.fullmatch(named)):
        m = _RSS_PATH.search(url)
        named = m[1] if m else ""
    return tuple(c for c in _CATEGORY_SEP.split(named) if c)


def _authors(raw: str) -> tuple[str, ...]:
    """`<a href=...>Tie Luo</a>, <a ...>Zo&#xeb; M&#xfc;ller</a>` (or plain names) -> plain names."""
    found = _ANCHOR_TEXT.findall(raw) or _TAG.sub("", raw).split(",")
    return tuple(n for n in (html.unescape(_TAG.sub("", x)).strip() for x in found) if n)


def read_entry(e: Any, ctx: Context) -> ParsedEntry | None:
    link = get(e, "link")
    entry_id, title = get(e, "id") or link, get(e, "title") or ""
    if not entry_id:
        return None
    arxiv_id = category = None
    announce = "new"
    if m := _RDF_TITLE.search(title):
        title, arxiv_id, category = title[: m.start()], m["id"], m["cat"]
        flags, own = m["flags"].upper(), ctx.own_categories
        cross = "CROSS" in flags or (
            bool(own) and not any(category == c or category.startswith(c + ".") for c in own)
        )
        announce = _RDF_ANNOUNCE["UPDATED" in flags][cross]
    elif link and "/abs/" in link:
        arxiv_id = link.partition("/abs/")[2] or None
    raw_authors = ", ".join(names(get(e, "authors") or ())) or get(e, "author") or ""
    published = struct_date(get(e, "published_parsed") or get(e, "updated_parsed")) or ctx.feed_date
    return ParsedEntry(
        entry_id=entry_id,
        title=title,
        link=link,
        links=(link,) if link else (),
        summary=get(e, "summary") or "",
        summary_is_html=is_html(get(e, "summary_detail") or {"type": "text/html"}),
        authors=_authors(raw_authors),
        published=published,
        updated=published if announce.startswith("replace") else None,
        categories=(category,) if category else (),
        arxiv_id=arxiv_id,
        announce_type=announce,
        primary_category=category,
    )
