"""/feeds/<slug>.atom|.rss|.json, /feeds/all.*, /feeds.opml: cached, conditional, validated params.

A rendered feed is kept until the store's version changes (checked every few seconds), so an
unchanged feed is answered without a query or a render, and a conditional request for it with
a 304 before anything else happens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.http import http_date, is_resource_modified

from aggregator.config import Config
from aggregator.publish.digests import (
    DEFAULT_PERIODS,
    DigestPage,
    entry_updated,
)
from aggregator.publish.feeds import FeedPage, opml
from aggregator.publish.formats import FORMATS
from aggregator.store.pages import PageQuery
from aggregator.topics.query import parse_query, topic_refs
from aggregator.types import DIGEST_KINDS, EPOCH, Period
from aggregator.web.cache import Rendered, ResponseCache, VersionWatch
from aggregator.web.params import BadParameter, digest_options, next_url, page_query
from aggregator.web.services import services

bp = Blueprint("feeds", __name__)

MAX_AGE = 300  # seconds a reader or proxy may reuse a feed without asking


def _cache() -> tuple[ResponseCache, VersionWatch]:
    found = current_app.extensions.get("aggregator.feed_cache")
    if found is None:
        store = services().store
        found = (ResponseCache(), VersionWatch(store.version_stamp))
        current_app.extensions["aggregator.feed_cache"] = found
    return found


@bp.get("/feeds/<slug>.<fmt>")
def feed(slug: str, fmt: str) -> Response:
    config = services().config
    if fmt not in FORMATS or (slug != "all" and slug not in {t.slug for t in config.topics}):
        abort(404, description=f"no feed /feeds/{slug}.{fmt}")
    return cached_response(lambda: _render(config, slug, fmt))


@bp.get("/feeds/<slug>/<kind>.<fmt>")
def digest_feed(slug: str, kind: str, fmt: str) -> Response:
    """A digest: one entry per day or week with its top papers (publish/digests.py)."""
    config = services().config
    known = slug == "all" or slug in {t.slug for t in config.topics}
    if fmt not in FORMATS or kind not in DIGEST_KINDS or not known:
        abort(404, description=f"no feed /feeds/{slug}/{kind}.{fmt}")
    top, periods = digest_options(request.args, DEFAULT_PERIODS[kind])
    now = datetime.now(UTC)
    # A period that ends publishes its entry without any change to the store: part of the key.
    running = Period.of(kind, now).start
    return cached_response(
        lambda: _render_digest(config, slug, kind, fmt, top, periods, now),
        key=f"{request.full_path}@{running}",
    )


def _render_digest(
    config: Config, slug: str, kind: str, fmt: str, top: int, periods: int, now: datetime
) -> tuple[bytes, str, datetime]:
    store = services().store
    entries = store.digest(
        None if slug == "all" else slug, kind, top=top, periods=periods, now=now, with_sightings=False
    )
    base = config.site.base_url
    asked = f"?{urlencode(list(request.args.items(multi=True)))}" if request.args else ""
    page = DigestPage(
        slug=slug,
        title="All papers" if slug == "all" else next(t.title for t in config.topics if t.slug == slug),
        kind=kind,
        self_url=f"{base}/feeds/{slug}/{kind}.{fmt}{asked}",
        feed_url=f"{base}/feeds/{slug}/{kind}.atom",
        html_url=f"{base}/" if slug == "all" else f"{base}/topics/{slug}",
        tag_authority=store.tag_authority,
        entries=entries,
    )
    render, content_type = FORMATS[fmt].render_digest, FORMATS[fmt].content_type
    updated = max((entry_updated(e) for e in entries), default=None) or store.version_stamp()[1]
    return render(page), content_type, updated


@bp.get("/feeds.opml")
def feeds_opml() -> Response:
    """Every topic's feed to subscribe to at once. By default not the feeds that repeat others
    (all papers, topics made of other topics): readers that keep one article per id (newsboat)
    would show a paper under one of them only, and the topic it belongs to would look empty.
    `feeds=all` lists those too; `digest=daily|weekly` lists the digest feeds instead."""
    config = services().config
    base = config.site.base_url
    unknown = sorted(set(request.args) - {"feeds", "digest"})
    if unknown:
        raise BadParameter(f"unknown parameter {unknown[0]!r} (known: digest, feeds)")
    everything = _choice(request.args, "feeds", ("topics", "all")) == "all"
    digest = _choice(request.args, "digest", DIGEST_KINDS)
    chosen = [t for t in config.topics if everything or not topic_refs(parse_query(t.query))]
    path = f"/{digest}.atom" if digest else ".atom"
    suffix = f" ({digest} digest)" if digest else ""
    outlines = [
        (f"{config.site.title}: {t.title}{suffix}", f"{base}/feeds/{t.slug}{path}", f"{base}/topics/{t.slug}")
        for t in chosen
    ]
    if everything:
        outlines.append((f"{config.site.title}: all papers{suffix}", f"{base}/feeds/all{path}", f"{base}/"))

    def render() -> tuple[bytes, str, datetime]:
        return opml(config.site.title, outlines, EPOCH), "text/x-opml; charset=utf-8", EPOCH

    return cached_response(render)


def _render(config: Config, slug: str, fmt: str) -> tuple[bytes, str, datetime]:
    args = MultiDict(request.args)
    if slug != "all":
        args["topic"] = slug
    query = replace(page_query(args, config), count=False)
    found = services().store.papers_page(query, with_sightings=False)  # a feed never shows them
    papers = found.papers
    base = config.site.base_url
    path = f"/feeds/{slug}.{fmt}"
    title = f"{config.site.title}: " + (
        "all papers" if slug == "all" else next(t.title for t in config.topics if t.slug == slug)
    )
    description = (
        "Every paper, deduplicated"
        if slug == "all"
        else next(t.description or t.title for t in config.topics if t.slug == slug)
    )
    # An empty page is as new as the store's last change (one row to read, not a scan of papers).
    updated = max((p.updated for p in papers), default=None) or services().store.version_stamp()[1]
    asked = f"?{urlencode(list(request.args.items(multi=True)))}" if request.args else ""
    kept = [(k, v) for k, v in request.args.items(multi=True) if k not in ("offset", "after")]
    page = FeedPage(
        title=title,
        description=description,
        self_url=base + path + asked,
        feed_url=f"{base}/feeds/{slug}.atom",
        first_url=base + path + (f"?{urlencode(kept)}" if kept else ""),
        html_url=f"{base}/" if slug == "all" else f"{base}/topics/{slug}",
        topics_url=f"{base}/topics/",
        papers=papers,
        next_url=next_url(base, path, request.args, found),
        previous_url=_previous_url(base, path, query) if query.after is None else None,
        updated=updated,
    )
    render, content_type = FORMATS[fmt].render, FORMATS[fmt].content_type
    return render(page), content_type, updated


def _previous_url(base: str, path: str, query: PageQuery) -> str | None:
    if query.offset <= 0:
        return None
    params = [(k, v) for k, v in request.args.items(multi=True) if k != "offset"]
    offset = max(query.offset - query.limit, 0)
    if offset:
        params.append(("offset", str(offset)))
    return base + path + (f"?{urlencode(params)}" if params else "")


# Request headers that need more than a 304-or-200 answer; Werkzeug's make_conditional has it.
_UNCOMMON_CONDITIONS = ("If-Match", "If-Unmodified-Since", "Range", "If-Range")


def cached_response(
    render: Callable[[], tuple[bytes, str, datetime]], status: int = 200, *, key: str | None = None
) -> Response:
    """The response for this URL (or `key`) from the cache while the store is unchanged, else
    rendered (body, content type, newest date shown) and kept; 304 to a reader that has it."""
    cache, watch = _cache()
    key = key or request.full_path
    version, changed_at = watch.current()
    found = cache.get(key, version)
    if found is None:
        body, content_type, updated = render()
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        # Last-Modified moves whenever the store does: the newest entry's date would not move
        # when an older paper joins the page, and a reader asking If-Modified-Since would miss it.
        modified = max(updated, changed_at).replace(microsecond=0)
        found = Rendered(body, content_type, etag, modified, version)
        cache.put(key, found)
    validators = {"ETag": found.etag, "Last-Modified": http_date(found.last_modified)}
    validators["Cache-Control"] = f"public, max-age={MAX_AGE}"
    # If-None-Match first, else If-Modified-Since, judged by Werkzeug (RFC 9110). Asked before a
    # response is built: a reader polling an unchanged feed is most of what a server answers,
    # and make_conditional on the full response cost a third of such a request.
    plain = request.method in ("GET", "HEAD") and not any(h in request.headers for h in _UNCOMMON_CONDITIONS)
    if status == 200 and plain:
        if not is_resource_modified(request.environ, etag=found.etag, last_modified=found.last_modified):
            return Response(status=304, headers=validators)
        return Response(found.body, content_type=found.content_type, headers=validators)
    response = Response(found.body, status=status, content_type=found.content_type, headers=validators)
    if status == 200:  # If-Match, ranges: Werkzeug's whole answer
        response.make_conditional(request)
    return response


def _choice(args: MultiDict[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise BadParameter(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value
