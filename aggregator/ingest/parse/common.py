"""What the adapters share: the per-document Context, feedparser's fields as our values (dates,
names, links), the fallback id, and the forgiving readers of JSON values."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import urljoin

# feedparser's FeedParserDict.get is slow and maps a missing `updated` to `published`: bypass it.
get: Callable[[Any, str], Any] = dict.get

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


class Sample(NamedTuple):
    """What content markers look at: the feed's id and link, and its first entries with their ids."""

    where: str
    ids: list[str]
    first: list[Any]


class Context:
    """Feed-level facts an adapter may need, computed once per document."""

    __slots__ = ("base", "feed_authors", "feed_date", "own_categories")

    def __init__(
        self, parsed: Any, url: str, own_categories: Callable[[str, str], tuple[str, ...]] | None = None
    ) -> None:
        feed = parsed["feed"]
        self.base = url if url.startswith(("http://", "https://")) else ""
        self.feed_date = struct_date(get(feed, "updated_parsed") or get(feed, "published_parsed"))
        # Only Atom entries inherit these (generic.py); an RSS channel's managingEditor is no author.
        self.feed_authors = names(get(feed, "authors") or ())
        # Only for the kind that asks (FeedKind.own_categories): the match is slow on hostile titles.
        self.own_categories = own_categories(get(feed, "title") or "", url) if own_categories else ()


def struct_date(value: Any) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime; None when it cannot be one."""
    if not value:
        return None
    try:
        return datetime(value[0], value[1], value[2], value[3], value[4], min(value[5], 59), tzinfo=UTC)
    except (ValueError, TypeError, OverflowError, IndexError):
        return None


def iso_date(value: object) -> datetime | None:
    """An ISO 8601 string (or, failing that, RFC 822) as an aware UTC datetime, else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        try:
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def names(authors: Iterable[Any]) -> tuple[str, ...]:
    """Names of feedparser's author dicts, in order."""
    return tuple(n for n in (get(a, "name") for a in authors if isinstance(a, dict)) if n)


def terms(e: Any) -> tuple[str, ...]:
    return tuple(t for t in (get(tag, "term") for tag in get(e, "tags") or ()) if t)


def hrefs(*groups: Iterable[str | None]) -> tuple[str, ...]:
    """Distinct non-empty links in order."""
    return tuple(dict.fromkeys(h for g in groups for h in g if h))


def fallback_id(title: str, link: str | None) -> str:
    digest = hashlib.sha1(f"{title}\n{link or ''}".encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return "sha1:" + digest.hexdigest()


def absolute(href: str | None, base: str) -> str | None:
    """A relative link joined to the feed's URL (feedparser already applied any xml:base)."""
    return urljoin(base, href) if href and base and not _SCHEME.match(href) else href


def is_html(detail: Any) -> bool:
    return get(detail, "type") in _HTML_TYPES if detail else False


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def json_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def json_names(authors: object) -> tuple[str, ...]:
    """JSON Feed 1.1 `authors` lists, 1.0 `author` objects and HF author lists -> names."""
    items = [authors] if isinstance(authors, dict) else json_list(authors)
    return tuple(n for n in (text(a.get("name")).strip() for a in items if isinstance(a, dict)) if n)
