"""JSON Feed 1.0 and 1.1 (jsonfeed.org); items without authors inherit the feed's, as the spec says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aggregator.ingest.parse.common import fallback_id, hrefs, iso_date, json_list, json_names, text
from aggregator.types import ParsedEntry

_VERSIONS = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")


def detect(data: Any, hint: str | None) -> bool:
    """Its version URL; or, when the config names the kind, an object with a list of items."""
    if not isinstance(data, dict):
        return False
    return str(data.get("version", "")).startswith(_VERSIONS) or (
        hint == "json-feed" and isinstance(data.get("items"), list)
    )


def read(data: dict[str, Any]) -> tuple[str, Iterator[ParsedEntry]]:
    return text(data.get("title")), _entries(data)


def _entries(data: dict[str, Any]) -> Iterator[ParsedEntry]:
    feed_authors = json_names(data.get("authors")) or json_names(data.get("author"))
    for item in json_list(data.get("items")):
        if not isinstance(item, dict):
            continue
        raw_id, url, external = item.get("id"), text(item.get("url")), text(item.get("external_url"))
        title = text(item.get("title"))
        has_id = isinstance(raw_id, (str, int, float)) and not isinstance(raw_id, bool) and str(raw_id) != ""
        entry_id = str(raw_id) if has_id else url or external or (fallback_id(title, None) if title else "")
        if not entry_id:
            continue
        html_body, text_body = text(item.get("content_html")), text(item.get("content_text"))
        yield ParsedEntry(
            entry_id=entry_id,
            title=title,
            link=url or external or None,
            links=hrefs(
                (url, external),
                (text(a.get("url")) for a in json_list(item.get("attachments")) if isinstance(a, dict)),
            ),
            summary=html_body or text_body or text(item.get("summary")),
            summary_is_html=bool(html_body),
            authors=json_names(item.get("authors")) or json_names(item.get("author")) or feed_authors,
            published=iso_date(item.get("date_published")),
            updated=iso_date(item.get("date_modified")),
            categories=tuple(t for t in json_list(item.get("tags")) if isinstance(t, str) and t.strip()),
        )
