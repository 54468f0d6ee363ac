"""JSON for scripts: /api/papers and /api/sources, as the contract's JSON API says."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import closing
from dataclasses import fields
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request

from aggregator.config import DEFAULT_ANNOUNCE
from aggregator.runtime import topic_specs
from aggregator.store.repository import QUERY_BUDGET
from aggregator.topics.index_query import IndexQuery, narrow
from aggregator.topics.preview import preview as run_preview
from aggregator.topics.query import QueryError, check_budget, parse_query
from aggregator.types import ANNOUNCE_TYPES, EPOCH, NOTES, STOPPED, PaperView, SourceState
from aggregator.web.feeds import cached_response
from aggregator.web.params import BadParameter, next_url, page_query
from aggregator.web.services import services

bp = Blueprint("api", __name__, url_prefix="/api")


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# PaperView's fields as the API shows them, read off the dataclass: a field added there is shown
# with no edit here. The database id stays inside (readers get the feed id as "id"), as does
# when this server first saw the paper; sightings and topics are shaped below.
_NOT_SHOWN = {"id", "feed_id", "first_seen", "sightings", "topics"}
_SHOWN = (*(f.name for f in fields(PaperView) if f.name not in _NOT_SHOWN and f.name not in NOTES), *NOTES)


def paper_json(paper: PaperView) -> dict[str, Any]:
    shown = {name: _json_value(getattr(paper, name)) for name in _SHOWN}
    return {
        "id": paper.feed_id,
        **shown,
        "topics": [{"slug": t.slug, "score": t.score, "matched": list(t.matched)} for t in paper.topics],
        "sightings": [
            {"source": s.source, "entry_id": s.entry_id, "link": s.link, "first_seen": iso(s.first_seen)}
            for s in paper.sightings
        ],
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def source_json(state: SourceState, *, hide_url: bool = False) -> dict[str, Any]:
    """A source's health for /api/sources. A `file:` source shows its file's name, not where it
    lies on this machine; `hide_url` (site.hide_source_urls) leaves every URL out."""
    return {
        "name": state.name,
        "url": None if hide_url else shown_url(state.url),
        "ok": state.last_error is None,
        "entries": state.entries,
        "last_fetch": iso(state.last_fetch_at),
        "last_success": iso(state.last_success_at),
        "last_error": state.last_error,
        "warning": state.last_warning,  # the last fetch was read with trouble; its papers were kept
        "error_count": state.error_count,
        "next_fetch": None if stopped(state) else iso(state.next_fetch_at),
        "stopped": stopped(state),  # gone (410): not fetched until its URL changes in the config
    }


def stopped(state: SourceState) -> bool:
    return state.next_fetch_at is not None and state.next_fetch_at >= STOPPED


def shown_url(url: str) -> str:
    if url.startswith("file:"):
        return "file:" + PurePosixPath(urlsplit(url).path or url.removeprefix("file:")).name
    return url


def _cached_json(make: Callable[[], dict[str, Any]]) -> Response:
    """JSON that depends on the store's content and the config alone: kept until the store
    changes, with a strong ETag and Last-Modified, and a 304 to a client that has it."""

    def render() -> tuple[bytes, str, datetime]:
        return current_app.json.dumps(make()).encode(), "application/json", EPOCH

    return cached_response(render)


@bp.get("/papers")
def papers() -> Response:
    svc = services()
    query = page_query(request.args, svc.config)

    def make() -> dict[str, Any]:
        page = svc.store.papers_page(query)
        return {
            "papers": [paper_json(p) for p in page.papers],
            "total": page.total,
            "total_exact": page.exact,
            "next": next_url(svc.config.site.base_url, request.path, request.args, page),
        }

    return _cached_json(make)


@bp.get("/topics")
def topics() -> Response:
    return _cached_json(_topics)


def _topics() -> dict[str, Any]:
    svc = services()
    counts = svc.store.topic_counts()
    base = svc.config.site.base_url
    return dict(
        topics=[
            {
                "slug": t.slug,
                "title": t.title,
                "description": t.description,
                "query": t.query,
                "exclude": t.exclude,
                "min_score": t.min_score,
                "count": counts.get(t.slug, 0),
                "papers": f"{base}/api/papers?topic={t.slug}",
            }
            for t in svc.config.topics
        ]
    )


@bp.get("/preview")
def preview() -> Response:
    raw = request.args.get("q", "")
    config = services().config
    try:
        tree = parse_query(raw)
        check_budget(tree)
    except QueryError as exc:
        raise BadParameter(f"q: {exc}") from None
    exclude = request.args.get("exclude") or None
    try:
        if exclude:
            check_budget(parse_query(exclude))
    except QueryError as exc:
        raise BadParameter(f"exclude: {exc}") from None
    announce = _announce_types(request.args.get("announce"))
    narrowed = narrow(tree, {t.slug: t.query for t in config.topics})
    sample = _sample_size(request.args.get("sample"))
    return _cached_json(lambda: _preview(raw, narrowed, sample, exclude, announce))


def _preview(
    raw: str, narrowed: IndexQuery | None, sample: int, exclude: str | None, announce: tuple[str, ...]
) -> dict[str, Any]:
    # Closed at once, even when the preview fails: the documents hold this process's search turn.
    with closing(services().store.documents(narrowed, budget=QUERY_BUDGET)) as documents:
        found = run_preview(
            raw,
            documents,
            sample=sample,
            topics=topic_specs(services().config),
            exclude=exclude,
            announce=announce,
        )
    return dict(
        query=found.query,
        exclude=exclude,
        announce=list(announce),
        total=found.total,
        weeks=[{"week": week, "count": count} for week, count in found.weeks],
        sample=[
            {
                "id": h.id,
                "title": h.title,
                "published": iso(h.published),
                "score": h.score,
                "matched": list(h.matched),
                "highlights": [list(span) for span in h.highlights],
            }
            for h in found.sample
        ],
    )


def _announce_types(raw: str | None) -> tuple[str, ...]:
    """`announce=new,cross`: the arXiv listing announcements a topic keeps (default: a topic's)."""
    if raw is None:
        return DEFAULT_ANNOUNCE
    wanted = tuple(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))
    unknown = [a for a in wanted if a not in ANNOUNCE_TYPES]
    if unknown or not wanted:
        raise BadParameter(f"announce: {raw!r} is not a list of {', '.join(ANNOUNCE_TYPES)}")
    return wanted


def _sample_size(raw: str | None) -> int:
    if raw is None:
        return 10
    if not re.fullmatch(r"[0-9]{1,3}", raw) or int(raw) > 100:
        raise BadParameter(f"sample: {raw!r} is not a number from 0 to 100")
    return int(raw)


@bp.get("/sources")
def sources() -> Response:
    svc = services()
    configured = {s.name for s in svc.config.sources}
    hide = svc.config.site.hide_source_urls
    states = svc.store.source_states()
    # Fetch states change without a change of papers: no cache, but an ETag of the body.
    response = jsonify(sources=[source_json(s, hide_url=hide) for s in states if s.name in configured])
    response.add_etag()
    response.headers["Cache-Control"] = "no-cache"
    response.make_conditional(request)
    return response
