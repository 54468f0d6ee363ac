"""The HTML pages: `/` (topics, counts, subscribe links, newest papers) and `/topics/<slug>`.

Server-rendered with Jinja, no JavaScript and no external assets. Every text shown comes from
untrusted feeds and is escaped by the templates; the only markup added around it is the
`<mark>` of a highlighted title, built here from escaped pieces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from aggregator.config import Config, TopicConfig
from aggregator.publish.feeds import LINK_NAMES
from aggregator.publish.formats import FORMATS
from aggregator.runtime import topic_specs
from aggregator.store.pages import PageQuery
from aggregator.store.rows import paper_ids
from aggregator.text import web_url
from aggregator.topics.document import Document
from aggregator.topics.match import AD_HOC, Tagger, query_tagger
from aggregator.topics.preview import highlight
from aggregator.topics.query import Term, parse_query, positive_refs, positive_terms
from aggregator.types import EPOCH, PaperView, Period, TopicMatch, notes_of
from aggregator.web.api import stopped
from aggregator.web.feeds import cached_response
from aggregator.web.params import BadParameter, next_url, page_query
from aggregator.web.services import services

bp = Blueprint("pages", __name__, template_folder="templates")


@bp.record_once
def _tidy_templates(state: BlueprintSetupState) -> None:
    state.app.jinja_env.trim_blocks = True
    state.app.jinja_env.lstrip_blocks = True


RECENT = 20  # newest papers on the index
LATEST = 3  # best papers of each topic's latest day, on the index
SEARCH_PAGE = 25


@dataclass(frozen=True, slots=True)
class FeedLink:
    """One subscribe link: a label, its absolute URL and its media type (for autodiscovery)."""

    label: str
    title: str
    url: str
    type: str


@bp.get("/")
def index() -> Response:
    # "Latest day" and "this week" move with the date as well as with the store.
    return cached_response(lambda: _html(_index()), key=f"{request.full_path}@{datetime.now(UTC):%Y-%m-%d}")


def _html(body: str) -> tuple[bytes, str, datetime]:
    """A page to cache: its bytes, its type, and (for Last-Modified) no date of its own: the
    cache dates it by the store's last change."""
    return body.encode(), "text/html; charset=utf-8", EPOCH


def _index() -> str:
    svc = services()
    config = svc.config
    counts = svc.store.topic_counts()
    page = svc.store.papers_page(PageQuery(limit=RECENT), with_sightings=False)  # lists show none
    recent, total = page.papers, page.total
    topics = [(t, counts.get(t.slug, 0), feed_links(config, t.slug, t.title)) for t in config.topics]
    # Each topic's latest day, today's included (a digest shows only days that have ended).
    now = datetime.now(UTC)
    tomorrow, week = now + timedelta(days=1), Period.of("weekly", now).start
    latest = [
        (t, entry, svc.store.topic_count_since(t.slug, week))
        for t in config.topics
        if counts.get(t.slug)
        for entry in svc.store.digest(
            t.slug, "daily", top=LATEST, periods=1, now=tomorrow, with_sightings=False
        )
    ]
    everything = feed_links(config, "all", "all papers")
    configured = {s.name for s in config.sources}
    return render_template(
        "index.html",
        site=config.site,
        topics=topics,
        titles={t.slug: t.title for t in config.topics},
        everything=everything,
        opml=f"{config.site.base_url}/feeds.opml",
        recent=recent,
        latest=latest,
        total=total,
        alternates=[f[0] for _, _, f in topics] + everything,
        stopped=[s.name for s in svc.store.source_states() if stopped(s) and s.name in configured],
    )


@bp.get("/topics/")
def topics() -> Response:
    return redirect(url_for("pages.index", _anchor="topics"))


@bp.get("/topics/<slug>")
def topic(slug: str) -> Response:
    found = next((t for t in services().config.topics if t.slug == slug), None)
    if found is None:
        abort(404, description=f"no topic named {slug!r}")
    return cached_response(lambda: _html(_topic(found)))


def _topic(found: TopicConfig) -> str:
    svc = services()
    config = svc.config
    slug = found.slug
    args = MultiDict(request.args)
    args["topic"] = slug
    query = page_query(args, config)
    page = svc.store.papers_page(query, with_sightings=False)
    papers, total = page.papers, page.total or 0
    terms = topic_terms(config, found)
    feeds = feed_links(config, slug, found.title)
    return render_template(
        "topic.html",
        site=config.site,
        topic=found,
        papers=[
            (p, marked_title(p.title, terms), next((m for m in p.topics if m.slug == slug), None))
            for p in papers
        ],
        titles={t.slug: t.title for t in config.topics},
        feeds=feeds,
        digests=[f"{config.site.base_url}/feeds/{slug}/{kind}.atom" for kind in ("daily", "weekly")],
        alternates=feeds,
        total=total,
        first=query.offset + 1,
        last=query.offset + len(papers),
        newer=_page_url(slug, query.offset - query.limit) if query.offset > 0 else None,
        older=_page_url(slug, query.offset + query.limit) if page.more else None,
    )


@bp.get("/papers/<int:paper_id>")
def paper(paper_id: int) -> Response:
    """One paper: everything known of it, where it was seen, and why it is in its topics."""
    if paper_id > 2**63 - 1:  # past what a database integer holds: no such paper
        abort(404, description=f"no paper {paper_id}")
    return cached_response(lambda: _html(_paper(paper_id)))


def _paper(paper_id: int) -> str:
    svc = services()
    found = svc.store.paper(paper_id)
    if found is None:
        abort(404, description=f"no paper {paper_id}")
    config = svc.config
    titles = {t.slug: t.title for t in config.topics}
    return render_template(
        "paper.html",
        site=config.site,
        paper=found,
        topics=[(m, titles[m.slug]) for m in found.topics if m.slug in titles],
        links=paper_links(found),
        notes=notes_of(found),
        alternates=[],
    )


@bp.get("/search")
def search() -> Response:
    """`/search?q=`: the query language over every paper, with highlights, explanations and the
    query's own feed URLs; a query that cannot run is shown with its error (and a 400)."""
    unknown = sorted(set(request.args) - {"q", "after"})
    if unknown:
        raise BadParameter(f"unknown parameter {unknown[0]!r} (known: after, q)")
    raw = request.args.get("q", "").strip()
    try:
        query = page_query(MultiDict({"q": raw, "after": request.args.get("after", "")}), services().config)
    except BadParameter as exc:
        error = str(exc.description)
        return cached_response(lambda: _html(_search_page(raw, error=error)), status=400)
    return cached_response(lambda: _html(_search_page(raw, query=query)))


def _search_page(raw: str, *, query: PageQuery | None = None, error: str | None = None) -> str:
    svc = services()
    config = svc.config
    base = config.site.base_url
    papers: list[tuple[PaperView, Markup, TopicMatch | None]] = []
    page = None
    if query is not None and query.text is not None:
        page = svc.store.papers_page(replace(query, limit=SEARCH_PAGE))
        tagger = query_tagger(raw, topic_specs(config))
        terms = positive_terms(parse_query(raw))
        papers = [(p, marked_title(p.title, terms), _explained(tagger, p)) for p in page.papers]
    encoded = urlencode({"q": raw})
    feeds = subscribe_links(config, raw, lambda ext: f"{base}/feeds/all.{ext}?{encoded}")
    return render_template(
        "search.html",
        site=config.site,
        query=raw,
        error=error,
        papers=papers,
        total=page.total if page else None,
        exact=page.exact if page else True,
        feeds=feeds,
        alternates=feeds if page else [],
        continued=bool(query and query.after),
        first_page=url_for("pages.search", q=raw) if query and query.after else None,
        older=next_url("", url_for("pages.search"), MultiDict({"q": raw}), page) if page else None,
    )


def _explained(tagger: Tagger, paper: PaperView) -> TopicMatch | None:
    """Why a paper matched an ad-hoc query: its score and the terms found."""
    document = Document.build(
        title=paper.title,
        abstract=paper.abstract,
        authors=paper.authors,
        categories=paper.categories,
        sources={s.source for s in paper.sightings},
        ids=paper_ids(paper.arxiv_id, paper.version, paper.doi),
    )
    return next((m for m in tagger.tag(document) if m.slug == AD_HOC), None)


def feed_links(config: Config, slug: str, title: str) -> list[FeedLink]:
    """Atom, RSS and JSON Feed of one topic (or `all`), as absolute URLs."""
    base = config.site.base_url
    return subscribe_links(config, title, lambda ext: f"{base}/feeds/{slug}.{ext}")


def subscribe_links(config: Config, title: str, url_of: Callable[[str], str]) -> list[FeedLink]:
    """One link per output format, its URL made from the format's extension."""
    return [
        FeedLink(f.label, f"{config.site.title}: {title} ({f.label})", url_of(f.ext), f.media_type)
        for f in FORMATS.values()
    ]


def topic_terms(config: Config, topic: TopicConfig) -> list[Term]:
    """The terms that can put a paper in a topic, through `topic:` references (never under NOT)."""
    by_slug = {t.slug: t for t in config.topics}
    terms: list[Term] = []
    seen: set[str] = set()
    pending = [topic.slug]
    while pending:
        slug = pending.pop()
        if slug in seen or slug not in by_slug:
            continue
        seen.add(slug)
        tree = parse_query(by_slug[slug].query)
        terms += positive_terms(tree)
        pending += positive_refs(tree)
    return terms


def marked_title(title: str, terms: list[Term]) -> Markup:
    """The title escaped, with `<mark>` around the words the terms match: the only markup added."""
    out, last = Markup(), 0
    for start, end in highlight(title, terms):
        out += escape(title[last:start]) + Markup("<mark>") + escape(title[start:end]) + Markup("</mark>")
        last = end
    return out + escape(title[last:])


@bp.app_template_filter("http_url")
def http_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) one, else None: nothing else becomes an href."""
    return web_url(url)


@bp.app_template_global("paper_links")
def paper_links(paper: PaperView) -> list[tuple[str, str]]:
    """(name, URL) of the paper's http(s) links, in a fixed order."""
    found = [(name, http_url(paper.links.get(key))) for key, name in LINK_NAMES]
    return [(name, url) for name, url in found if url]


@bp.app_template_global("main_link")
def main_link(paper: PaperView) -> str | None:
    """Where the title leads: the arXiv abstract, else the paper's own page, DOI or PDF."""
    for key in ("abs", "link", "huggingface", "doi", "pdf"):
        url = http_url(paper.links.get(key))
        if url:
            return url
    return None


def _page_url(slug: str, offset: int) -> str:
    args = {k: v for k, v in request.args.items() if k not in ("offset", "topic")}
    if offset > 0:
        args["offset"] = str(offset)
    return url_for("pages.topic", slug=slug) + (f"?{urlencode(args)}" if args else "")
