"""What `aggregator.yaml` may say: private pydantic models (unknown keys are errors), the checks
of each value, and the checks across entries (unique names, topics naming existing sources,
queries that parse). Every problem is a `Problem` at a place in the file; `loading` finds its line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from aggregator.config.values import format_duration, parse_duration, parse_size, show
from aggregator.topics.query import check_topics
from aggregator.types import ANNOUNCE_TYPES, SOURCE_KINDS, FetchSettings

DEFAULT_DATABASE = "sqlite:///var/aggregator.db"
DEFAULT_TITLE = "Paper Feeds"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
FETCH_DEFAULTS = FetchSettings()
# Bounds past which a setting is a mistake (and dates or counters would overflow).
MAX_EVERY, MAX_TIMEOUT, MAX_BYTES = 366 * 86400.0, 3600.0, 1 << 30

# A place in the file: keys and list indexes from the top, as pydantic reports them.
Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    loc: Loc
    message: str
    line: int | None = None  # known only for what YAML itself saw (a key written twice)


def _check(ok: Callable[[Any], object], message: str) -> AfterValidator:
    """A validator refusing values where `ok` is false; `{}` in `message` shows the value."""

    def check(value: Any) -> Any:
        if not ok(value):
            raise ValueError(message.format(show(value)))
        return value

    return AfterValidator(check)


def _filled(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _http_url(value: str, what: str = "an absolute http(s) URL") -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        hint = "; add https://" if "://" not in value and "." in value else ""
        raise ValueError(f"{show(value)} is not {what}{hint}")
    return value


def _base_url(value: str) -> str:
    if urlsplit(_http_url(value)).query or "#" in value:
        raise ValueError(f"{show(value)} must not have a query or fragment")
    return value.rstrip("/")


def _source_url(value: str) -> str:
    if not value.startswith("file:"):
        return _http_url(value, "an http(s) or file: URL")
    parts = urlsplit(value)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"{show(value)} names host {parts.netloc!r}; write file:PATH for a local file")
    if not parts.path:
        raise ValueError(f"{show(value)} names no file")
    return value


def _network(value: str) -> str:
    try:
        ip_network(value)
    except ValueError:
        try:
            hint = f"; did you mean {ip_network(value, strict=False)}?"
        except ValueError:
            hint = " (use CIDR notation, e.g. 127.0.0.0/8 or ::1/128)"
        raise ValueError(f"{show(value)} is not a network{hint}") from None
    return value


def _database(value: str) -> str:
    """A database URL the product can open: SQLite (a file) or PostgreSQL, whose `postgres://`
    and `postgresql://` (what hosting services print) mean the psycopg driver."""
    url_text = re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", value)
    example = f"e.g. {DEFAULT_DATABASE} or postgresql://USER@HOST:5432/NAME"
    try:
        url = make_url(url_text)
    except (ArgumentError, ValueError):
        raise ValueError(f"{show(value)} is not a database URL ({example})") from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"{show(value)}: {backend} is not supported; use SQLite or PostgreSQL ({example})")
    if backend == "postgresql" and driver != "psycopg":
        raise ValueError(f"{show(value)}: the driver is psycopg; write postgresql://...")
    if backend == "sqlite" and (url.host or url.port or url.username):
        raise ValueError(
            f"{show(value)} names a host; SQLite is a file: sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    return url_text


def _at_most(limit: float, what: str, display: Callable[[Any], str]) -> AfterValidator:
    def check(value: Any) -> Any:
        if value > limit:
            raise ValueError(f"{display(value)} is more than {what}")
        return value

    return AfterValidator(check)


_positive = _check(lambda value: value > 0, "must be more than 0")
Duration = Annotated[float, BeforeValidator(parse_duration), _positive]
Every = Annotated[Duration, _at_most(MAX_EVERY, "a year (366d)", format_duration)]
Timeout = Annotated[Duration, _at_most(MAX_TIMEOUT, "an hour", format_duration)]
Delay = Annotated[
    float,
    BeforeValidator(parse_duration),
    _check(lambda value: value >= 0, "must be 0 or more"),
    _at_most(MAX_TIMEOUT, "an hour", format_duration),
]
Concurrency = Annotated[int, _check(lambda n: 1 <= n <= 64, "{} sources at once: use 1 to 64")]
Size = Annotated[int, BeforeValidator(parse_size), _positive]
Bytes = Annotated[Size, _at_most(MAX_BYTES, "1GiB", lambda n: f"{n:,} bytes")]
Text = Annotated[str, AfterValidator(_filled)]
Name = Annotated[
    str, _check(re.compile("[a-z0-9-]+").fullmatch, "{} is not a valid name (use a-z, 0-9 and -)")
]
Slug = Annotated[Name, _check(lambda slug: slug != "all", "{} is reserved for the feed of every paper")]
Kind = Annotated[
    str, _check(SOURCE_KINDS.__contains__, f"{{}} is not a source kind ({', '.join(SOURCE_KINDS)})")
]
Announce = Annotated[
    str, _check(ANNOUNCE_TYPES.__contains__, f"{{}} is not one of {', '.join(ANNOUNCE_TYPES)}")
]
TopicSources = Annotated[list[str], _check(bool, "empty list; leave the key out to use every source")]
Database = Annotated[str, AfterValidator(_database)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SourceSchema(_Model):
    name: Name
    url: Annotated[str, AfterValidator(_source_url)]
    kind: Kind | None = None
    every: Every | None = None
    per_host_delay: Delay | None = None


class TopicSchema(_Model):
    slug: Slug
    title: Text | None = None
    description: Annotated[str, AfterValidator(str.strip)] | None = None
    query: Text
    exclude: Annotated[str, AfterValidator(str.strip)] | None = None
    sources: TopicSources | None = None
    announce: list[Announce] | None = None
    min_score: Annotated[float, Field(ge=0)] | None = None


class SiteSchema(_Model):
    title: Text = DEFAULT_TITLE
    base_url: Annotated[str, AfterValidator(_base_url)] = DEFAULT_BASE_URL
    hide_source_urls: bool = False


class DefaultsSchema(_Model):
    every: Every = 6 * 3600.0


class FetchSchema(_Model):
    timeout: Timeout = FETCH_DEFAULTS.timeout
    max_bytes: Bytes = FETCH_DEFAULTS.max_bytes
    allow_networks: list[Annotated[str, AfterValidator(_network)]] | None = None
    per_host_delay: Delay = FETCH_DEFAULTS.per_host_delay
    concurrency: Concurrency = FETCH_DEFAULTS.concurrency


class RootSchema(_Model):
    database: Database = DEFAULT_DATABASE
    site: SiteSchema | None = None
    defaults: DefaultsSchema | None = None
    fetch: FetchSchema | None = None
    sources: list[SourceSchema] | None = None
    topics: list[TopicSchema] | None = None


def cross_checks(data: dict[Any, Any]) -> list[Problem]:
    """What no single entry shows. Run on the raw data, beside the models rather than after them,
    so that these problems are reported together with every other."""
    problems: list[Problem] = []
    names = _unique(data.get("sources"), "sources", "name", problems)
    _unique(data.get("topics"), "topics", "slug", problems)
    for i, topic in enumerate(_items(data.get("topics"))):
        for j, name in enumerate(_items(topic.get("sources") if isinstance(topic, dict) else None)):
            if isinstance(name, str) and name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean {show(close[0])}?)" if close else ""
                problems.append(Problem(("topics", i, "sources", j), f"no source named {show(name)}{hint}"))
    problems += _query_checks(data.get("topics"))
    return problems


def _query_checks(topics: Any) -> list[Problem]:
    """Queries parse, refer only to existing topics, and never in a cycle."""
    items = [t if isinstance(t, dict) else {} for t in _items(topics)]
    given = [
        (str(t.get("slug", "")), t["query"], t.get("exclude") if isinstance(t.get("exclude"), str) else None)
        for t in items
        if isinstance(t.get("query"), str) and t["query"].strip()
    ]
    indexes = [i for i, t in enumerate(items) if isinstance(t.get("query"), str) and t["query"].strip()]
    return [Problem(("topics", indexes[n], key), message) for n, key, message in check_topics(given)]


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _unique(items: Any, section: str, key: str, problems: list[Problem]) -> set[str]:
    seen: set[str] = set()
    for i, item in enumerate(_items(items)):
        value = item.get(key) if isinstance(item, dict) else None
        if isinstance(value, str) and value in seen:
            problems.append(Problem((section, i, key), f"{show(value)} is used twice"))
        elif isinstance(value, str):
            seen.add(value)
    return seen
