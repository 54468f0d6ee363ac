"""Query parameters shared by the API and the feeds; a bad value is a 400 with a plain message."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from aggregator.config import Config
from aggregator.publish.digests import DEFAULT_TOP, MAX_DIGEST_PAPERS, MAX_PERIODS, MAX_TOP
from aggregator.runtime import topic_specs
from aggregator.store.pages import PageQuery, TextQuery
from aggregator.store.repository import Page
from aggregator.topics.index_query import is_exact, narrow
from aggregator.topics.match import AD_HOC, query_tagger
from aggregator.topics.query import QueryError, check_budget, parse_query, topic_refs
from aggregator.types import EPOCH

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000_000


class BadParameter(BadRequest):
    """A query parameter that cannot be used; the message says which and why."""


def digest_options(args: MultiDict[str, str], default_periods: int) -> tuple[int, int]:
    """`top` papers a period and how many `periods`, validated; any other parameter is refused."""
    unknown = sorted(set(args) - {"top", "periods"})
    if unknown:
        raise BadParameter(f"unknown parameter {unknown[0]!r} (known: periods, top)")
    top = _integer(args, "top", DEFAULT_TOP, 1, MAX_TOP)
    periods = _integer(args, "periods", default_periods, 1, MAX_PERIODS)
    if top * periods > MAX_DIGEST_PAPERS:  # as many papers as the longest feed page, no more
        raise BadParameter(f"top × periods: {top} × {periods} is more than {MAX_DIGEST_PAPERS} papers")
    return top, periods


def _integer(args: MultiDict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name}: {raw!r} is not a whole number") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadParameter(f"{name}: {value} is out of range (use a number {bounds})")
    return value


def parse_since(raw: str | None) -> datetime | None:
    """A date (2024-11-28) or datetime (2024-11-28T10:00:00Z); naive times are UTC."""
    if not raw:
        return None
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+", 1) if "T" in raw else raw)
    except ValueError:
        raise BadParameter(
            f"since: {raw!r} is not a date (2024-11-28) or datetime (2024-11-28T10:00:00Z)"
        ) from None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise BadParameter(f"since: {raw!r} is out of range") from None


def text_query(raw: str | None, config: Config, name: str = "q") -> TextQuery | None:
    """A `q=` query: the exact matcher and what the index narrows it to. A query that does not
    parse, names a topic that does not exist, or asks for more work than a request may do,
    is a 400."""
    if not raw:
        return None
    try:
        tree = parse_query(raw)
        check_budget(tree)
    except QueryError as exc:
        raise BadParameter(f"{name}: {exc}") from None
    unknown = sorted(topic_refs(tree) - {t.slug for t in config.topics})
    if unknown:
        raise BadParameter(f"{name}: topic:{unknown[0]} names no topic")
    tagger = query_tagger(raw, topic_specs(config))
    return TextQuery(
        matches=lambda paper: any(m.slug == AD_HOC for m in tagger.tag_paper(paper)),
        narrowed=narrow(tree, {t.slug: t.query for t in config.topics}),
        exact=is_exact(tree),
    )


def parse_cursor(raw: str | None) -> tuple[datetime, int] | None:
    """`after=`: the (published, id) a page continues after, as `next` links write it."""
    if not raw:
        return None
    micros, dot, paper = raw.partition(".")
    if not dot or not re.fullmatch(r"-?[0-9]{1,18}", micros) or not re.fullmatch(r"[0-9]{1,12}", paper):
        raise BadParameter(f"after: {raw!r} is not a page cursor (take it from a next link)")
    try:
        published = EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        raise BadParameter(f"after: {raw!r} is out of range") from None
    return published, int(paper)


def cursor_text(published: datetime, paper_id: int) -> str:
    delta = published - EPOCH
    return f"{(delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds}.{paper_id}"


def _min_score(raw: str | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(f"min_score: {raw!r} is not a number") from None
    if not 0 <= value < 1e9:
        raise BadParameter(f"min_score: {raw!r} is out of range (use a number of 0 or more)")
    return value


def page_query(args: MultiDict[str, str], config: Config, *, allowed: tuple[str, ...] = ()) -> PageQuery:
    """limit, offset, since, source, topic and q, validated; any other parameter is refused."""
    known = {"limit", "offset", "after", "since", "source", "topic", "q", "min_score", *allowed}
    unknown = sorted(set(args) - known)
    if unknown:
        raise BadParameter(f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")
    source = args.get("source") or None
    if source is not None and source not in {s.name for s in config.sources}:
        raise BadParameter(f"source: no source named {source!r}")
    topic = args.get("topic") or None
    if topic is not None and topic not in {t.slug for t in config.topics}:
        raise BadParameter(f"topic: no topic named {topic!r}")
    return PageQuery(
        source=source,
        topic=topic,
        text=text_query(args.get("q"), config),
        after=parse_cursor(args.get("after")),
        min_score=_min_score(args.get("min_score")),
        since=parse_since(args.get("since")),
        limit=_integer(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_integer(args, "offset", 0, 0, MAX_OFFSET),
    )


def next_url(base_url: str, path: str, args: MultiDict[str, str], page: Page) -> str | None:
    """The absolute URL of the following page (a keyset cursor, so that page 1,000 costs what
    page 1 does), or None on the last one."""
    if not page.more or page.last is None:
        return None
    params: dict[str, Any] = {k: v for k, v in args.items() if k not in ("offset", "after")}
    params["after"] = cursor_text(*page.last)
    return f"{base_url}{path}?{urlencode(params)}"
