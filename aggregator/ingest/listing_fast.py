"""Read the arXiv listing (rss.arxiv.org, RSS 2.0) with lxml, as feedparser would, or decline.

The listing is the bulk of every ingest: feedparser takes about 0.5 s over a day's 1,504 entries,
lxml and this module about 0.03 s. `read_listing` returns what
`feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)` returns for such a
body, cut down to the keys parse/ reads (same strings, same UTC struct_time dates, same dict
shapes), so that parse/ runs its own detection and listing adapter on it unchanged.

It accepts only the listing's exact shape: UTF-8, no DOCTYPE, the known namespaces under their
usual prefixes, the known channel and item elements with no attribute beyond the listing's own,
each element the adapter reads present once (categories excepted) and holding text only, dates
in the listing's one RFC 822 form, no e-mail address in an author string. Anything else returns
None, and only feedparser may read that body: a wrong fast answer is far worse than a slow one.
It does no I/O and does not import feedparser (parse/ stays its only importer); the feedparser
behaviours it reproduces are copied below and named where they are.
"""

from __future__ import annotations

import contextlib
import re
import time
from datetime import datetime, timedelta
from typing import Any

from lxml import etree

_ARXIV = "http://arxiv.org/schemas/atom"
_DC = "http://purl.org/dc/elements/1.1/"
_NAMESPACES = {
    "arxiv": _ARXIV,
    "dc": _DC,
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
# An optional XML declaration (1.0, UTF-8) alone on the first line, then <rss declaring the arXiv
# namespace. feedparser rewrites the declaration and reads an encoding from the first line only.
_OPENING = re.compile(
    rb"(?:<\?xml version=(['\"])1\.0\1(?: encoding=(['\"])(?i:utf-8)\2)?\s?\?>\r?\n)?[ \t\r\n]*"
    rb"<rss\s(?:[^<>]*\s)?xmlns:arxiv=(['\"])http://arxiv\.org/schemas/atom\3"
)

# Channel children with text, and the keys feedparser stores it under (None: parse/ never reads it).
_CHANNEL_TEXT = {
    "title": "title",
    "description": "subtitle",
    "docs": None,
    "language": None,
    "managingEditor": None,
}
_CHANNEL_DATES = {"lastBuildDate": "updated_parsed", "pubDate": "published_parsed"}
_ATOM_LINK = "{http://www.w3.org/2005/Atom}link"
_SELF_LINK = {"href", "rel", "type"}

# Item children, and the keys feedparser stores their text under.
_ITEM_TEXT = {
    "title": "title",
    "description": "summary",
    "guid": "id",
    f"{{{_ARXIV}}}announce_type": "arxiv_announce_type",
    f"{{{_ARXIV}}}DOI": "arxiv_doi",  # feedparser lowercases element names
    f"{{{_ARXIV}}}journal_reference": "arxiv_journal_reference",
}
_CREATOR = f"{{{_DC}}}creator"
_NOT_PERMALINK = [("isPermaLink", "false")]
_ITEM_ONCE = {*_ITEM_TEXT, "link", "pubDate", _CREATOR, f"{{{_DC}}}rights"}
_ITEM_REQUIRED = {"title", "link", "description", "guid", "pubDate", _CREATOR, f"{{{_ARXIV}}}announce_type"}

# feedparser.urls._urljoin with an empty base: only its fix for extra slashes after the scheme.
_URI_FIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
# feedparser's repair of "?a=1&b;=2" in links.
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
# feedparser.html._cp1252: C1 controls read as the Windows-1252 characters they stand for.
_CP1252 = {
    128: "\u20ac", 130: "\u201a", 131: "\u0192", 132: "\u201e", 133: "\u2026", 134: "\u2020",
    135: "\u2021", 136: "\u02c6", 137: "\u2030", 138: "\u0160", 139: "\u2039", 140: "\u0152",
    142: "\u017d", 145: "\u2018", 146: "\u2019", 147: "\u201c", 148: "\u201d", 149: "\u2022",
    150: "\u2013", 151: "\u2014", 152: "\u02dc", 153: "\u2122", 154: "\u0161", 155: "\u203a",
    156: "\u0153", 158: "\u017e", 159: "\u0178",
}  # fmt: skip
# The listing's one date form; feedparser's RFC 822 reader takes it (and much else we decline).
_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-5][0-9])"
)
_MONTHS = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6}
_MONTHS |= {"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}


class _Decline(Exception):
    """The body is not exactly a listing: feedparser must read it."""


def read_listing(body: bytes) -> dict[str, Any] | None:
    """feedparser's result for an arXiv listing body (only the keys parse/ reads), else None."""
    if not _OPENING.match(body):
        return None
    try:
        body.decode("utf-8")  # feedparser would fall back to another encoding
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
        root = etree.fromstring(body, parser)
        channel = _channel_of(root, body)
        return {"version": "rss20", "bozo": False, **_read_channel(channel)}
    except (_Decline, UnicodeDecodeError, etree.LxmlError, ValueError):
        return None


def _channel_of(root: Any, body: bytes) -> Any:
    """The one <channel> of <rss version="2.0">, whose namespaces are all known and all declared on it."""
    nsmap = root.nsmap
    if (
        root.tag != "rss"
        or root.items() != [("version", "2.0")]
        or any(_NAMESPACES.get(prefix) != uri for prefix, uri in nsmap.items())
        or nsmap.get("arxiv") != _ARXIV
        or nsmap.get("dc") != _DC
        # a declaration anywhere else spells "xmlns" too: a mention in text merely declines
        or body.count(b"xmlns") != len(nsmap)
        or root.getnext() is not None
        or len(root) != 1
    ):
        raise _Decline
    channel = root[0]
    if channel.tag != "channel" or channel.items():
        raise _Decline
    return channel


def _read_channel(channel: Any) -> dict[str, Any]:
    feed: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    dates: dict[str, time.struct_time] = {}  # a listing repeats one date: read it once
    for el in channel:
        tag = el.tag
        if tag == "item":
            entries.append(_read_item(el, dates))
        elif tag in seen or (tag != "skipDays" and len(el)) or (tag != _ATOM_LINK and el.items()):
            raise _Decline
        else:
            seen.add(tag)
            _read_channel_child(el, feed, dates)
    if "title" not in seen or "link" not in seen:
        raise _Decline
    return {"feed": feed, "entries": entries}


def _read_channel_child(el: Any, feed: dict[str, Any], dates: dict[str, time.struct_time]) -> None:
    """One channel element other than an item, met for the first time, into `feed`."""
    tag = el.tag
    if tag in _CHANNEL_TEXT:
        if key := _CHANNEL_TEXT[tag]:
            feed[key] = _popped(el.text)
    elif tag == "link":
        # feedparser keeps "&amp;" in a channel link (it unescapes it only in entries)
        feed["link"] = _LINK_ENTITY.sub(r"&\1", _popped_uri(el.text))
    elif tag in _CHANNEL_DATES:
        feed[_CHANNEL_DATES[tag]] = _date(_popped(el.text), dates)
    elif tag == _ATOM_LINK:
        _check_self_link(el)
    elif tag == "skipDays":
        _check_skip_days(el)
    else:
        raise _Decline


def _check_self_link(el: Any) -> None:
    """<atom:link rel="self" href=...>: with rel="alternate" and an HTML type it would be the feed's link."""
    attrs = dict(el.items())
    if (
        not attrs.keys() <= _SELF_LINK
        or attrs.get("rel") != "self"
        or not attrs.get("href")
        or attrs.get("type", "application/rss+xml") != "application/rss+xml"
    ):
        raise _Decline


def _check_skip_days(el: Any) -> None:
    for day in el:
        if day.tag != "day" or len(day) or day.items():
            raise _Decline


def _read_item(item: Any, dates: dict[str, time.struct_time]) -> dict[str, Any]:
    """One <item> as feedparser's entry dict; only text-only children the adapter expects."""
    if item.items():
        raise _Decline
    found: dict[str, str | None] = {}
    terms: list[str] = []
    for el in item:
        tag = el.tag
        attrs = el.items()
        if len(el) or (attrs != _NOT_PERMALINK if tag == "guid" else attrs):
            raise _Decline  # a guid without isPermaLink="false" would be read as a link too
        if tag == "category":
            terms.append(_popped(el.text))
        elif tag in _ITEM_ONCE and tag not in found:
            found[tag] = el.text
        else:
            raise _Decline  # unknown, or twice: feedparser's rules for repeats are its own
    if any(tag not in found for tag in _ITEM_REQUIRED):
        raise _Decline
    entry: dict[str, Any] = {key: _popped(found[tag]) for tag, key in _ITEM_TEXT.items() if tag in found}
    entry["link"] = _LINK_ENTITY.sub(r"&\1", _popped_uri(found["link"]).replace("&amp;", "&"))
    entry["published_parsed"] = _date(_popped(found["pubDate"]), dates)
    entry.update(_authors(_popped(found[_CREATOR])))
    # feedparser skips empty categories and repeats of one
    entry["tags"] = [{"term": t, "scheme": None, "label": None} for t in dict.fromkeys(terms) if t]
    return entry


def _authors(name: str) -> dict[str, Any]:
    """dc:creator as feedparser files it: one author named by the whole string."""
    if "@" in name:
        raise _Decline  # feedparser would cut an e-mail address out of the name
    return {"author": name, "authors": [{"name": name}] if name else [{}]}


def _popped(text: str | None) -> str:
    """An element's text as feedparser's `pop` returns it: stripped, then its encoding repairs."""
    text = (text or "").strip()
    return text if text.isascii() else _repaired(text)


def _popped_uri(text: str | None) -> str:
    """A link's text as `pop` returns it: it also goes through `_urljoin` with an empty base."""
    text = (text or "").strip()
    if text:
        text = _URI_FIXER.sub(r"\1\3", text)
    return text if text.isascii() else _repaired(text)


def _repaired(text: str) -> str:
    """feedparser undoes UTF-8 read as Latin-1 ("Ã©" -> "é"), then maps C1 controls to cp1252."""
    with contextlib.suppress(UnicodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_CP1252)


def _date(text: str, seen: dict[str, time.struct_time]) -> time.struct_time:
    """feedparser's UTC struct_time for the listing's RFC 822 form; anything else declines."""
    if text in seen:
        return seen[text]
    m = _DATE.fullmatch(text)
    if not m:
        raise _Decline
    day, month, year, hour, minute, second, sign, tz_hours, tz_minutes = m.groups()
    offset = timedelta(hours=int(tz_hours), minutes=int(tz_minutes))
    try:
        stamp = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
        seen[text] = (stamp - offset if sign == "+" else stamp + offset).utctimetuple()
    except (ValueError, OverflowError):
        raise _Decline from None  # feedparser gives no date; the listing always has one
    return seen[text]
