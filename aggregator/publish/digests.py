"""Digest feeds: one entry per day or per week holding that period's top papers of a topic, so
that a reader gets one calm item a day instead of fifty.

Pure: periods are computed from dates (UTC days, ISO weeks starting on Monday); the store picks
each period's papers; this module names the periods and renders them as Atom, RSS and JSON Feed.
An entry's id names its topic, kind and period, so it is the same however often the feed is
rendered or the store re-ingested; a paper that arrives late changes the entry's content and
`updated`, never its id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from feedgen.feed import FeedGenerator
from markupsafe import escape

from aggregator.publish.feeds import (
    LINK_NAMES,
    NEVER_UPDATED,
    atom_bytes,
    author_names,
    display_name,
    is_http,
    plain_title,
    rfc3339,
    rss_bytes,
    web_link,
    xml_text,
)
from aggregator.types import DigestEntry, Period

DEFAULT_TOP = 10
MAX_TOP = 50
DEFAULT_PERIODS = {"daily": 14, "weekly": 8}
MAX_PERIODS = 60
MAX_DIGEST_PAPERS = 500  # top x periods, as many as one page of a feed


@dataclass(frozen=True, slots=True)
class DigestPage:
    """A digest feed with the URLs a reader needs to place it."""

    slug: str
    title: str  # the topic's
    kind: str
    self_url: str
    feed_url: str  # the digest itself, without parameters: its id
    html_url: str
    tag_authority: str
    entries: Sequence[DigestEntry]  # newest period first
    generator: str = "paper-feeds"


def entry_id(page: DigestPage, period: Period) -> str:
    """The same for this topic, kind and period, whatever else changes."""
    return f"tag:{page.tag_authority},{period.start:%Y-%m-%d}:digest/{page.slug}/{period.kind}"


def entry_title(page: DigestPage, entry: DigestEntry) -> str:
    when = f"week {entry.period.label}" if entry.period.kind == "weekly" else entry.period.label
    count = len(entry.papers)
    return f"{plain_title(page.title)}: {'the top paper' if count == 1 else f'top {count} papers'} of {when}"


def entry_updated(entry: DigestEntry) -> datetime:
    """When the period ended, or later if a paper of it arrived or changed since."""
    return max([entry.period.end, *(p.updated for p in entry.papers), *(p.first_seen for p in entry.papers)])


def entry_html(entry: DigestEntry, slug: str) -> str:
    """The period's papers, best first: title linked, authors, why it ranks (the score in topic
    `slug`, upvotes), its links."""
    items = []
    for paper in entry.papers:
        title = escape(plain_title(paper.title) or paper.feed_id)
        link = web_link(paper)
        head = f'<a href="{escape(link)}">{title}</a>' if link else f"<b>{title}</b>"
        facts = [", ".join(author_names(paper)[:8]) + (" et al." if len(paper.authors) > 8 else "")]
        scores = [f"score {t.score:g}" for t in paper.topics if t.slug == slug]
        if paper.upvotes is not None:
            scores.append(f"{paper.upvotes} upvotes")
        facts.append(" · ".join(scores))
        links = [(name, paper.links[key]) for key, name in LINK_NAMES if is_http(paper.links.get(key))]
        anchors = " · ".join(f'<a href="{escape(url)}">{escape(name)}</a>' for name, url in links)
        body = " — ".join(str(escape(f)) for f in facts if f)
        items.append(f"<li>{head}<br>{body}" + (f"<br>{anchors}" if anchors else "") + "</li>")
    return "<ol>\n" + "\n".join(items) + "\n</ol>"


def _feed_updated(page: DigestPage) -> datetime:
    return max((entry_updated(e) for e in page.entries), default=NEVER_UPDATED)


def _generator(page: DigestPage) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(page.feed_url)
    title = f"{plain_title(page.title)}: {page.kind} digest"
    fg.title(title)
    fg.subtitle(f"One entry per {'day' if page.kind == 'daily' else 'week'}: its top papers of {page.title}")
    fg.author(name=display_name(page.title) or page.generator, uri=page.html_url)
    fg.link(href=page.self_url, rel="self")
    fg.link(href=page.html_url, rel="alternate", type="text/html")
    fg.updated(_feed_updated(page))
    fg.language("en")
    fg.generator(page.generator)
    for entry in page.entries:
        fe = fg.add_entry(order="append")
        fe.id(entry_id(page, entry.period))
        fe.guid(entry_id(page, entry.period), permalink=False)
        fe.title(entry_title(page, entry))
        fe.link(href=page.html_url, rel="alternate")
        fe.published(entry.period.end)
        fe.pubDate(entry.period.end)
        fe.updated(entry_updated(entry))
        html = entry_html(entry, page.slug)
        fe.summary(str(escape(", ".join(xml_text(p.title) for p in entry.papers))), type="html")
        fe.content(html, type="html")
    return fg


def digest_atom(page: DigestPage) -> bytes:
    return atom_bytes(_generator(page))


def digest_rss(page: DigestPage) -> bytes:
    return rss_bytes(_generator(page))


def digest_json(page: DigestPage) -> bytes:
    # The feed writes each entry (Atom's author rule, and JSON Feed readers show a byline).
    byline = [{"name": f"{plain_title(page.title)}: {page.kind} digest", "url": page.html_url}]
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"{plain_title(page.title)}: {page.kind} digest",
        "home_page_url": page.html_url,
        "feed_url": page.self_url,
        "language": "en",
        "authors": byline,
        "items": [
            {
                "id": entry_id(page, entry.period),
                "url": page.html_url,
                "title": entry_title(page, entry),
                "content_html": entry_html(entry, page.slug),
                "date_published": rfc3339(entry.period.end),
                "date_modified": rfc3339(entry_updated(entry)),
                "authors": byline,
                "_digest": {"period": entry.period.label, "papers": [p.feed_id for p in entry.papers]},
            }
            for entry in page.entries
        ],
    }
    return json.dumps(feed, ensure_ascii=False).encode()
