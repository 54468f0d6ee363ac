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
from markupsafe import escape

from aggregator.text import xml_legal
from aggregator.types import EPOCH, PaperView, notes_of

# What a feed with no entries says it was updated: a fixed date (so that its ETag stays put), not
# 1970, which validators flag as implausible. Callers should pass the store's last change instead.
NEVER_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)
_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
ARXIV_SCHEME = "https://arxiv.org/archive/"
# Titles and names are plain text: an HTML element's tag in one is markup that leaked from a
# source (validators warn, RSS readers render titles as HTML). Only tags of HTML elements go, so
# that "a<b and c>d" in a title survives.
_HTML_ELEMENTS = (  # noqa: SIM905
    "a abbr acronym address applet area article aside audio b base basefont bdi bdo big blink "
    "blockquote body br button canvas caption center cite code col colgroup data datalist dd del "
    "details dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form frame "
    "frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend "
    "li link main map mark marquee math menu meta meter nav nobr noembed noframes noscript object "
    "ol optgroup option output p param picture plaintext pre progress q rp rt ruby s samp script "
    "section select slot small source span strike strong style sub summary sup svg table tbody td "
    "template textarea tfoot th thead time title tr track tt u ul var video wbr xmp"
).split()
_TAG = re.compile(rf"</?(?:{'|'.join(_HTML_ELEMENTS)})(?:\s[^<>]*)?/?>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of one feed, with the URLs a reader needs to place it."""

    title: str
    description: str
    self_url: str  # this page, as requested
    feed_url: str  # the feed itself: its id, whatever page or parameters
    html_url: str  # the page for people
    topics_url: str  # base for topic category schemes
    papers: Sequence[PaperView]
    next_url: str | None = None
    previous_url: str | None = None
    updated: datetime = EPOCH  # the newest change among the papers (or of the store when empty)
    generator: str = "paper-feeds"
    first_url: str | None = None  # the first page with this page's parameters (limit, q=...)


def xml_text(text: str | None) -> str:
    # XML 1.0 forbids some characters and feedgen raises on them. Normalisation already drops
    # them: this is the last line of defence for anything that reaches a feed some other way.
    return xml_legal(text)


def plain_title(text: str | None) -> str:
    """Text for a title or a name: XML-legal, without HTML tags (whitespace closed up where one was)."""
    text = xml_text(text)
    if "<" not in text:  # no tag to strip: most titles and names, and the regex is their cost
        return text
    stripped = _TAG.sub(" ", text)
    return text if stripped == text else " ".join(stripped.split())


def display_name(text: str) -> str:
    return " ".join(plain_title(text).split())


def author_names(paper: PaperView) -> list[str]:
    return [n for n in (display_name(a) for a in paper.authors) if n]


def is_http(url: str | None) -> bool:
    return url is not None and url.lower().startswith(("http://", "https://"))


def entry_link(paper: PaperView) -> str:
    """Where a reader goes: the arXiv abstract, else the paper's own link, else its id."""
    for key in ("abs", "link", "doi"):
        if is_http(paper.links.get(key)):
            return paper.links[key]
    return paper.feed_id


def web_link(paper: PaperView) -> str | None:
    """The entry's link if a browser can follow it (http or https), else none at all."""
    link = entry_link(paper)
    return link if is_http(link) else None


def content_html(paper: PaperView, topics_url: str) -> str:
    """The entry's HTML body: abstract, authors, links, upvotes, and why it is in its topics."""
    return _content_html(paper, topics_url, author_names(paper), str(escape(xml_text(paper.abstract))))


def _content_html(paper: PaperView, topics_url: str, authors: list[str], abstract_html: str) -> str:
    """content_html from the author names and the escaped abstract, which an Atom or RSS entry
    has made already for its own elements.

    Every value from a feed goes through `escape` (markupsafe's, in C); f-strings put the pieces
    together, several times faster than `Markup.format`, which was 40 % of a cold render."""
    parts = [f"<p>{abstract_html}</p>"] if paper.abstract else []
    if authors:
        parts.append(f"<p><b>Authors:</b> {escape(', '.join(authors))}</p>")
    links = paper.links
    anchors = [
        f'<a href="{escape(url)}">{name}</a>' for key, name in _LINK_HTML if is_http(url := links.get(key))
    ]
    if anchors:
        parts.append(f"<p>{' · '.join(anchors)}</p>")
    facts = []
    if paper.upvotes is not None:
        facts.append(f"{paper.upvotes} upvotes on Hugging Face")
    if paper.version:
        facts.append(f"version {paper.version}")
    facts += (f"{label}: {xml_text(text)}" for label, text in notes_of(paper))
    if facts:
        parts.append(f"<p>{escape('; '.join(facts))}</p>")
    base = escape(topics_url)
    for topic in paper.topics:
        slug, why = escape(topic.slug), escape(", ".join(topic.matched))
        parts.append(f'<p>Topic <a href="{base}{slug}">{slug}</a> (score {topic.score:g}): {why}</p>')
    return "\n".join(parts)


LINK_NAMES = (
    ("abs", "arXiv"),
    ("pdf", "PDF"),
    ("html", "HTML"),
    ("code", "Code"),
    ("huggingface", "Hugging Face"),
    ("doi", "DOI"),
    ("link", "Link"),
)
_LINK_HTML = tuple((key, str(escape(name))) for key, name in LINK_NAMES)  # our own names, escaped once


def _updated(page: FeedPage) -> datetime | None:
    """The feed's own date: the one given, else its newest entry's, else None (no entries)."""
    if page.updated >= _PLAUSIBLE:
        return page.updated
    return max((p.updated for p in page.papers), default=None)


def _generator(page: FeedPage, *, rss: bool) -> FeedGenerator:
    fg = FeedGenerator()
    if rss:  # RSS names authors with dc:creator; Atom has its own author element
        fg.load_extension("dc", atom=False, rss=True)
    fg.id(page.feed_url)
    fg.title(plain_title(page.title))
    fg.subtitle(plain_title(page.description) or plain_title(page.title))
    # Atom requires an author on every entry without one of its own: the feed's applies to those.
    fg.author(name=display_name(page.title) or page.generator, uri=page.html_url)
    fg.link(href=page.self_url, rel="self")
    fg.link(href=page.first_url or page.feed_url, rel="first")
    if page.next_url:
        fg.link(href=page.next_url, rel="next")
    if page.previous_url:
        fg.link(href=page.previous_url, rel="previous")
    # last: feedgen makes the last link the RSS channel's <link>, which is the page for people
    fg.link(href=page.html_url, rel="alternate", type="text/html")
    fg.updated(_updated(page) or NEVER_UPDATED)  # also RSS lastBuildDate (else feedgen says "now")
    fg.language("en")
    fg.generator(page.generator)
    for paper in page.papers:
        _entry(fg, paper, page.topics_url, rss=rss)
    return fg


def _entry(fg: FeedGenerator, paper: PaperView, topics_url: str, *, rss: bool) -> None:
    fe = fg.add_entry(order="append")
    fe.id(paper.feed_id)
    if rss:  # Atom's entry id is its id; only RSS has a guid
        fe.guid(paper.feed_id, permalink=is_http(paper.feed_id))
    fe.title(plain_title(paper.title) or paper.feed_id)
    link = web_link(paper)
    if link:  # a paper known only by a tag: URI has no page to link to; its content says it all
        fe.link(href=link, rel="alternate")
    authors = author_names(paper)
    if authors:  # one call for the list: feedgen checks each call's arguments, a cost per call
        fe.author([{"name": name} for name in authors])
    if rss and authors:
        fe.dc.dc_creator(authors)
    fe.published(paper.published)  # also RSS pubDate: feedgen's pubDate() is another name for it
    fe.updated(paper.updated)
    # An HTML summary (escaped text), since RSS readers take <description> as HTML whatever it holds.
    abstract_html = str(escape(xml_text(paper.abstract)))
    fe.summary(abstract_html or str(escape(xml_text(paper.title))), type="html")
    fe.content(_content_html(paper, topics_url, authors, abstract_html), type="html")
    categories = [{"term": t.slug, "scheme": topics_url, "label": t.slug} for t in paper.topics]
    categories += ({"term": category, "scheme": ARXIV_SCHEME} for category in paper.categories)
    if categories:
        fe.category(categories)


def atom(page: FeedPage) -> bytes:
    return atom_bytes(_generator(page, rss=False))


def rss(page: FeedPage) -> bytes:
    return rss_bytes(_generator(page, rss=True))


def atom_bytes(fg: FeedGenerator) -> bytes:
    result: bytes = fg.atom_str(pretty=False)
    return result


def rss_bytes(fg: FeedGenerator) -> bytes:
    result: bytes = fg.rss_str(pretty=False)
    return result


def json_feed(page: FeedPage) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": xml_text(page.title),
        "home_page_url": page.html_url,
        "feed_url": page.self_url,
        "description": xml_text(page.description),
        "language": "en",
        "items": [_json_item(p, page.topics_url) for p in page.papers],
    }
    if page.next_url:
        feed["next_url"] = page.next_url
    return json.dumps(feed, ensure_ascii=False).encode()


def _json_item(paper: PaperView, topics_url: str) -> dict[str, object]:
    item: dict[str, object] = {"id": paper.feed_id}
    abstract = xml_text(paper.abstract)
    link = web_link(paper)
    if link:
        item["url"] = link
    item.update(
        {
            "title": plain_title(paper.title),
            "content_html": content_html(paper, topics_url),
            **({"content_text": abstract, "summary": abstract} if abstract else {}),
            "date_published": rfc3339(paper.published),
            "date_modified": rfc3339(paper.updated),
            "authors": [{"name": a} for a in author_names(paper)],
            "tags": [t.slug for t in paper.topics] + list(paper.categories),
        }
    )
    if is_http(paper.links.get("pdf")):
        item["external_url"] = paper.links["pdf"]
    if is_http(paper.links.get("image")):
        item["image"] = paper.links["image"]
    item["_paper"] = {
        "arxiv_id": paper.arxiv_id,
        "doi": paper.doi,
        "links": paper.links,
        "upvotes": paper.upvotes,
        "topics": [{"slug": t.slug, "score": t.score, "matched": list(t.matched)} for t in paper.topics],
    }
    return item


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def opml(title: str, feeds: Sequence[tuple[str, str, str]], created: datetime) -> bytes:
    """One outline per feed: (text, Atom URL, HTML URL)."""
    outlines = "".join(
        f'<outline type="rss" text="{escape(xml_text(name))}" title="{escape(xml_text(name))}" '
        f'xmlUrl="{escape(url)}" htmlUrl="{escape(html)}"/>'
        for name, url, html in feeds
    )
    stamp = created.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    dated = f"<dateCreated>{stamp}</dateCreated>" if created >= _PLAUSIBLE else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head>'
        f"<title>{escape(xml_text(title))}</title>{dated}</head>"
        f"<body>{outlines}</body></opml>"
    ).encode()
