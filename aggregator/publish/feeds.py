"""Render a page of papers as Atom 1.0, RSS 2.0 (both with feedgen) or JSON Feed 1.1.

Pure: a FeedPage (papers in feed order, the links around them) in, bytes out. Every URL is
absolute, built by the caller from `site.base_url`. Entries keep the order given (newest first,
ties by id): feedgen would prepend them otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from feedgen.feed import FeedGenerator
from markupsafe import Markup, escape

from aggregator.types import PaperView

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ARXIV_SCHEME = "https://arxiv.org/archive/"
# XML 1.0 forbids these; feedgen raises on them. Normalisation already drops them: this is the
# last line of defence for anything that reaches a feed some other way.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of one feed, with the URLs a reader needs to place it."""

    title: str
    description: str
    self_url: str  # this page, as requested
    feed_url: str  # the feed's first page
    html_url: str  # the page for people
    topics_url: str  # base for topic category schemes
    papers: Sequence[PaperView]
    next_url: str | None = None
    previous_url: str | None = None
    updated: datetime = EPOCH  # the newest change among the papers (or of the store when empty)
    generator: str = "paper-feeds"


def _clean(text: str | None) -> str:
    return _XML_ILLEGAL.sub("", text or "")


def entry_link(paper: PaperView) -> str:
    """Where a reader goes: the arXiv abstract, else the paper's own link, else its id."""
    return paper.links.get("abs") or paper.links.get("link") or paper.links.get("doi") or paper.feed_id


def content_html(paper: PaperView, topics_url: str) -> str:
    """The entry's HTML body: abstract, authors, links, upvotes, and why it is in its topics."""
    parts = [Markup("<p>{}</p>").format(_clean(paper.abstract))] if paper.abstract else []
    if paper.authors:
        parts.append(Markup("<p><b>Authors:</b> {}</p>").format(", ".join(_clean(a) for a in paper.authors)))
    links = [(name, paper.links[key]) for key, name in _LINK_NAMES if key in paper.links]
    if links:
        anchors = Markup(" · ").join(Markup('<a href="{}">{}</a>').format(url, name) for name, url in links)
        parts.append(Markup("<p>{}</p>").format(anchors))
    facts = []
    if paper.upvotes is not None:
        facts.append(f"{paper.upvotes} upvotes on Hugging Face")
    if paper.version:
        facts.append(f"version {paper.version}")
    if paper.comment:
        facts.append(_clean(paper.comment))
    if facts:
        parts.append(Markup("<p>{}</p>").format("; ".join(facts)))
    for topic in paper.topics:
        why = ", ".join(topic.matched)
        parts.append(
            Markup('<p>Topic <a href="{}{}">{}</a> (score {:g}): {}</p>').format(
                topics_url, topic.slug, topic.slug, topic.score, why
            )
        )
    return str(Markup("\n").join(parts))


_LINK_NAMES = (
    ("abs", "arXiv"),
    ("pdf", "PDF"),
    ("html", "HTML"),
    ("code", "Code"),
    ("huggingface", "Hugging Face"),
    ("doi", "DOI"),
    ("link", "Link"),
)


def _generator(page: FeedPage) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc")
    fg.id(page.feed_url)
    fg.title(_clean(page.title))
    fg.subtitle(_clean(page.description) or _clean(page.title))
    fg.link(href=page.self_url, rel="self")
    fg.link(href=page.html_url, rel="alternate", type="text/html")
    fg.link(href=page.feed_url, rel="first")
    if page.next_url:
        fg.link(href=page.next_url, rel="next")
    if page.previous_url:
        fg.link(href=page.previous_url, rel="previous")
    fg.updated(page.updated)
    fg.language("en")
    fg.generator(page.generator)
    for paper in page.papers:
        _entry(fg, paper, page.topics_url)
    return fg


def _entry(fg: FeedGenerator, paper: PaperView, topics_url: str) -> None:
    fe = fg.add_entry(order="append")
    fe.id(paper.feed_id)
    fe.guid(paper.feed_id, permalink=paper.feed_id.startswith(("http://", "https://")))
    fe.title(_clean(paper.title))
    fe.link(href=entry_link(paper), rel="alternate")
    for name in paper.authors:
        fe.author(name=_clean(name))
    fe.dc.dc_creator([_clean(a) for a in paper.authors] or None)
    fe.published(paper.published)
    fe.updated(paper.updated)
    fe.pubDate(paper.published)
    fe.summary(_clean(paper.abstract) or _clean(paper.title))
    fe.content(content_html(paper, topics_url), type="html")
    for topic in paper.topics:
        fe.category(term=topic.slug, scheme=topics_url, label=topic.slug)
    for category in paper.categories:
        fe.category(term=category, scheme=ARXIV_SCHEME)


def atom(page: FeedPage) -> bytes:
    result: bytes = _generator(page).atom_str(pretty=False)
    return result


def rss(page: FeedPage) -> bytes:
    result: bytes = _generator(page).rss_str(pretty=False)
    return result


def json_feed(page: FeedPage) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": page.title,
        "home_page_url": page.html_url,
        "feed_url": page.self_url,
        "description": page.description,
        "language": "en",
        "items": [_json_item(p, page.topics_url) for p in page.papers],
    }
    if page.next_url:
        feed["next_url"] = page.next_url
    return json.dumps(feed, ensure_ascii=False).encode()


def _json_item(paper: PaperView, topics_url: str) -> dict[str, object]:
    item: dict[str, object] = {
        "id": paper.feed_id,
        "url": entry_link(paper),
        "title": paper.title,
        "content_html": content_html(paper, topics_url),
        "content_text": paper.abstract,
        "summary": paper.abstract,
        "date_published": _rfc3339(paper.published),
        "date_modified": _rfc3339(paper.updated),
        "authors": [{"name": a} for a in paper.authors],
        "tags": [t.slug for t in paper.topics] + list(paper.categories),
    }
    if "pdf" in paper.links:
        item["external_url"] = paper.links["pdf"]
    item["_paper"] = {
        "arxiv_id": paper.arxiv_id,
        "doi": paper.doi,
        "links": paper.links,
        "upvotes": paper.upvotes,
        "topics": [{"slug": t.slug, "score": t.score, "matched": list(t.matched)} for t in paper.topics],
    }
    return item


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def opml(title: str, feeds: Sequence[tuple[str, str, str]], created: datetime) -> bytes:
    """One outline per feed: (text, Atom URL, HTML URL)."""
    outlines = "".join(
        f'<outline type="rss" text="{escape(text)}" title="{escape(text)}" xmlUrl="{escape(url)}" '
        f'htmlUrl="{escape(html)}"/>'
        for text, url, html in feeds
    )
    stamp = created.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head>'
        f"<title>{escape(title)}</title><dateCreated>{stamp}</dateCreated></head>"
        f"<body>{outlines}</body></opml>"
    ).encode()
