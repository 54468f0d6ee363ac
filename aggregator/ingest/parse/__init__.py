"""Parse a fetched body into a ParsedFeed: detect its format, then read each entry with one adapter.

This is the only module that imports feedparser. It reads bytes (never a URL or a path; a URL
is only a hint and the base for relative links) and returns raw strings as the source wrote
them: ids, titles, HTML and odd whitespace included. It must not clean, sanitise, judge dates,
find identifiers in text or merge anything (normalisation and deduplication do that), and it
does no I/O. A body that is no feed, or a service's error document, raises ParseError; a feed
with no entries is not an error.

The arXiv listing (rss.arxiv.org RSS 2.0), the bulk of every ingest, first goes to a fast path:
listing_fast.py reads it with lxml into exactly what feedparser would have given here, over ten
times faster, and declines (feedparser reads the body) on anything outside the listing's
exact shape. It exists because feedparser alone cost two thirds of an ingest; the listing adapter,
detection and error checks below are the same for both paths.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import xml.sax
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
from lxml import etree
from lxml import html as lxml_html

from aggregator.errors import ParseError
from aggregator.ingest.listing_fast import read_listing
from aggregator.ingest.prolog import defuse
from aggregator.types import Authority, ParsedEntry, ParsedFeed

# feedparser's FeedParserDict.get is slow and maps a missing `updated` to `published`: bypass it.
_get: Callable[[Any, str], Any] = dict.get
_AUTHORITY = {
    "arxiv-api": Authority.ARXIV_API,
    "arxiv-rss": Authority.ARXIV_LISTING,
    "arxiv-rdf": Authority.ARXIV_LISTING,
    "hf-daily-papers": Authority.HUGGING_FACE,
    "hf-papers-rss": Authority.HUGGING_FACE,
}
_OAI_PREFIX = "oai:arXiv.org:"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Lone UTF-16 surrogates as character references make feedparser raise; we retry without them.
_SURROGATE_REF = re.compile(
    rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*(?:5529[6-9]|55[3-9]\d\d|56\d\d\d|57[0-2]\d\d|573[0-3]\d|5734[0-3]));"
)
# Legacy RSS 1.0 listing titles: "Title. (arXiv:1709.01234v1 [cs.CL])", "... [cs.CL UPDATED])",
# "... [cs.LG] UPDATED)" or "... [cs.LG] CROSS LISTED)".
_RDF_TITLE = re.compile(
    r"\.?\s*\(arXiv:(?P<id>[^\s\[\]()]+)\s*\[(?P<cat>[^\]\s]+)(?P<flags>[^\]]*\][^)]*)\)\s*$"
)
_LISTING_HEAD = re.compile(r"arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[\w-]+)")
_OWN_CATEGORY = re.compile(r"^\s*([\w.+,\s-]+?)\s+updates on arXiv", re.IGNORECASE)
_RSS_PATH = re.compile(r"arxiv\.org/rss/([\w.+-]+)", re.IGNORECASE)
_CATEGORY_SEP = re.compile(r"[\s,+]+")
_RDF_ANNOUNCE = (("new", "cross"), ("replace", "replace-cross"))  # [updated][cross]
_ANCHOR_TEXT = re.compile(r"<a\b[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_UPVOTES = re.compile(r"[0-9]{1,9}")  # ASCII digits: "²".isdigit() is true, int("²") fails
# The labelled paragraphs of a Hugging Face papers RSS item ("<b>Authors:</b>").
_HF_LABEL = re.compile(r"<(?:b|strong)>\s*(?:Authors|Upvotes|Summary)\s*:\s*</(?:b|strong)>", re.IGNORECASE)


def parse_feed(
    body: bytes, *, kind: str | None = None, url: str | None = None, fast: bool = True
) -> ParsedFeed:
    """Detect the format of `body` (`kind` and `url` are hints) and read its entries.

    `fast=False` skips the arXiv listing fast path: feedparser reads everything (tests compare)."""
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise ParseError("parse: not a feed (empty body)")
    if head[:1] in (b"{", b"["):
        return _parse_json(body, kind)
    if fast and (feed := parse_listing_fast(body, kind=kind, url=url)) is not None:
        return feed
    parsed = _feedparser(body)
    return _read_parsed(parsed, _detect_xml(parsed, kind, url or ""), url or "")


def parse_listing_fast(body: bytes, *, kind: str | None = None, url: str | None = None) -> ParsedFeed | None:
    """An arXiv listing read with lxml (listing_fast.py) into what feedparser's reading gives.

    None when the body is not exactly a listing's shape, or would not be detected as one: then
    only feedparser may read it."""
    parsed = read_listing(defuse(body))
    if parsed is None or _detect_xml(parsed, kind, url or "") != "arxiv-rss":
        return None
    return _read_parsed(parsed, "arxiv-rss", url or "")


def _read_parsed(parsed: Any, kind: str, url: str) -> ParsedFeed:
    """feedparser's result (or the fast path's copy of it) through the adapter for `kind`."""
    title = _get(parsed["feed"], "title") or ""
    _raise_for_error_document(parsed, kind, title)
    adapter = _XML_ADAPTERS.get(kind, _generic_entry)
    context = _Context(parsed, kind, url)
    entries = tuple(e for e in (adapter(raw, context) for raw in parsed["entries"]) if e is not None)
    if not entries and (not parsed.get("version") or (parsed.get("bozo") and not title)):
        exc = parsed.get("bozo_exception")  # nothing usable: an HTML page, garbage, a broken stub
        reason = f"{type(exc).__name__}: {exc}" if exc else "no feed elements"
        raise ParseError(f"parse: not a feed ({reason})")
    return ParsedFeed(
        kind=kind,
        title=title,
        entries=entries,
        authority=_AUTHORITY.get(kind, Authority.OTHER),
        problem=_problem(parsed, len(entries)),
    )


def _problem(parsed: Any, read: int) -> str | None:
    """A warning when the XML is not well-formed (a truncated download, a broken tag): feedparser
    then reads what it can, and entries past the break may be lost. Entities HTML knows but XML
    does not (`&nbsp;`) are no such loss: the lenient reading gets every entry."""
    exc = parsed.get("bozo_exception")
    if not isinstance(exc, xml.sax.SAXParseException) or "undefined entity" in str(exc):
        return None
    return (
        f"parse: the document is not well-formed XML (line {exc.getLineNumber()}: {exc.getMessage()}); "
        f"kept the {read} entries read, some may be missing"
    )


# --- feedparser and format detection ---------------------------------------------------------


def _feedparser(body: bytes) -> Any:
    """feedparser.parse on bytes, without its sanitiser; its crashes become ParseError.

    No URL goes to feedparser, not even as Content-Location: with a base URI it joins URLs on
    every element (30% slower); the generic adapter resolves the few relative links itself.
    """
    options: dict[str, Any] = {"sanitize_html": False, "resolve_relative_uris": False}
    body = defuse(body)  # before any parser: feedparser's fallback expands what a DOCTYPE declares
    try:
        return feedparser.parse(body, **options)
    except Exception as exc:
        cleaned = _SURROGATE_REF.sub(b"&#xFFFD;", body)
        if cleaned == body:
            raise ParseError(f"parse: not a feed (feedparser failed: {type(exc).__name__}: {exc})") from exc
    try:
        return feedparser.parse(cleaned, **options)
    except Exception as exc:
        raise ParseError(f"parse: not a feed (feedparser failed: {type(exc).__name__}: {exc})") from exc


def _family(version: str) -> str:
    if version.startswith("atom"):
        return "atom"
    if version in ("rss090", "rss10"):
        return "rdf"
    return "rss" if version.startswith("rss") else ""


def _detect_xml(parsed: Any, kind: str | None, url: str) -> str:
    """Content markers first, then the configured kind, then the URL, then the XML family."""
    family = _family(parsed.get("version") or "")
    feed, first = parsed["feed"], parsed["entries"][:3]
    ids = [_get(e, "id") or "" for e in first]
    where = f"{_get(feed, 'id') or ''} {_get(feed, 'link') or ''}"
    if family == "atom" and ("arxiv.org/api" in where or any("arxiv.org/api/errors" in i for i in ids)):
        return "arxiv-api"
    if family in ("rss", "atom") and (
        "rss.arxiv.org" in where
        or any(i.startswith(_OAI_PREFIX) for i in ids)
        or any(dict.__contains__(e, "arxiv_announce_type") for e in first)
    ):
        return "arxiv-rss"  # rss.arxiv.org serves the same listing as Atom too
    if family == "rdf" and (
        "arxiv.org" in where or any(_RDF_TITLE.search(_get(e, "title") or "") for e in first)
    ):
        return "arxiv-rdf"
    if (
        family == "rss"
        and "huggingface.co/papers" in where
        and any(_HF_LABEL.search(_get(e, "summary") or "") for e in first)
    ):
        return "hf-papers-rss"
    fits = {
        ("arxiv-api", "atom"),
        ("arxiv-rss", "rss"),
        ("arxiv-rss", "atom"),
        ("arxiv-rdf", "rdf"),
        ("hf-papers-rss", "rss"),
    }
    for hint in (kind, _kind_from_url(url)):
        if hint and (hint, family) in fits:
            return hint
    return family or (kind if kind in ("rss", "atom", "rdf") else "rss")


def _kind_from_url(url: str) -> str | None:
    url = url.lower()
    if "arxiv.org/api" in url:
        return "arxiv-api"
    if "export.arxiv.org/rss" in url:
        return "arxiv-rdf"
    if "rss.arxiv.org" in url or "arxiv.org/rss" in url:
        return "arxiv-rss"
    return None


def _raise_for_error_document(parsed: Any, kind: str, title: str) -> None:
    """The arXiv API and rss.arxiv.org answer mistakes with a feed that describes the error."""
    if kind == "arxiv-api":
        for e in parsed["entries"]:
            if "arxiv.org/api/errors" in (_get(e, "id") or ""):
                summary = (_get(e, "summary") or _get(e, "title") or "unknown error").strip()
                raise ParseError(f"parse: arXiv API error: {summary}")
    if kind == "arxiv-rss" and not parsed["entries"] and title.startswith("Feed error for query"):
        detail = (_get(parsed["feed"], "subtitle") or title).strip()
        raise ParseError(f"parse: arXiv listing error: {detail}")


# --- shared helpers --------------------------------------------------------------------------


class _Context:
    """Feed-level facts an adapter may need, computed once per document."""

    __slots__ = ("base", "feed_authors", "feed_date", "own_categories")

    def __init__(self, parsed: Any, kind: str, url: str) -> None:
        feed = parsed["feed"]
        self.base = url if url.startswith(("http://", "https://")) else ""
        self.feed_date = _struct_date(_get(feed, "updated_parsed") or _get(feed, "published_parsed"))
        # Atom entries inherit the feed's authors; an RSS channel's managingEditor is no author.
        self.feed_authors = _names(_get(feed, "authors") or ()) if kind == "atom" else ()
        self.own_categories: tuple[str, ...] = ()
        if kind == "arxiv-rdf":
            m = _OWN_CATEGORY.match(_get(feed, "title") or "") or _RSS_PATH.search(url)
            self.own_categories = tuple(c for c in _CATEGORY_SEP.split(m[1]) if c) if m else ()


def _struct_date(value: Any) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime; None when it cannot be one."""
    if not value:
        return None
    try:
        return datetime(value[0], value[1], value[2], value[3], value[4], min(value[5], 59), tzinfo=UTC)
    except (ValueError, TypeError, OverflowError, IndexError):
        return None


def _iso_date(value: object) -> datetime | None:
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


def _names(authors: Iterable[Any]) -> tuple[str, ...]:
    """Names of feedparser's author dicts, in order."""
    return tuple(n for n in (_get(a, "name") for a in authors if isinstance(a, dict)) if n)


def _terms(e: Any) -> tuple[str, ...]:
    return tuple(t for t in (_get(tag, "term") for tag in _get(e, "tags") or ()) if t)


def _hrefs(*groups: Iterable[str | None]) -> tuple[str, ...]:
    """Distinct non-empty links in order."""
    return tuple(dict.fromkeys(h for g in groups for h in g if h))


def _fallback_id(title: str, link: str | None) -> str:
    digest = hashlib.sha1(f"{title}\n{link or ''}".encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return "sha1:" + digest.hexdigest()


def _absolute(href: str | None, base: str) -> str | None:
    """A relative link joined to the feed's URL (feedparser already applied any xml:base)."""
    return urljoin(base, href) if href and base and not _SCHEME.match(href) else href


def _is_html(detail: Any) -> bool:
    return _get(detail, "type") in _HTML_TYPES if detail else False


# --- XML adapters ----------------------------------------------------------------------------


def _arxiv_listing_entry(e: Any, ctx: _Context) -> ParsedEntry | None:
    """rss.arxiv.org (RSS 2.0 or its Atom twin): oai guid, announce type, comma-joined creators."""
    entry_id = _get(e, "id") or _get(e, "link")
    if not entry_id:
        return None
    summary = _get(e, "summary") or ""
    arxiv_id = entry_id[len(_OAI_PREFIX) :] if entry_id.startswith(_OAI_PREFIX) else None
    announce = _get(e, "arxiv_announce_type")
    if summary.startswith("arXiv:"):  # "arXiv:2411.17701v1 Announce Type: new \nAbstract: ..."
        cut = summary.find("Abstract:")
        if cut != -1:
            if not (arxiv_id and announce) and (m := _LISTING_HEAD.match(summary, 0, cut)):
                arxiv_id, announce = arxiv_id or m["id"], announce or m["type"]
            summary = summary[cut + 9 :].strip()
    names = _names(_get(e, "authors") or ()) or (_get(e, "author") or "",)
    categories = _terms(e)
    link = _get(e, "link")
    published = _struct_date(_get(e, "published_parsed") or _get(e, "updated_parsed"))
    return ParsedEntry(
        entry_id=entry_id,
        title=_get(e, "title") or "",
        link=link,
        links=(link,) if link else (),
        summary=summary,
        authors=tuple(p for n in names for p in (s.strip() for s in n.split(",")) if p),
        published=published,
        updated=published if announce and announce.startswith("replace") else None,
        categories=categories,
        arxiv_id=arxiv_id,
        announce_type=announce,
        primary_category=categories[0] if categories else None,
        doi=_get(e, "arxiv_doi"),
        journal_ref=_get(e, "arxiv_journal_reference") or _get(e, "arxiv_journal_ref"),
    )


def _rdf_authors(raw: str) -> tuple[str, ...]:
    """`<a href=...>Tie Luo</a>, <a ...>Zo&#xeb; M&#xfc;ller</a>` (or plain names) -> plain names."""
    names = _ANCHOR_TEXT.findall(raw) or _TAG.sub("", raw).split(",")
    return tuple(n for n in (html.unescape(_TAG.sub("", x)).strip() for x in names) if n)


def _arxiv_rdf_entry(e: Any, ctx: _Context) -> ParsedEntry | None:
    """Legacy RSS 1.0 listing: id, category and UPDATED / CROSS LISTED flags live in the title."""
    link = _get(e, "link")
    entry_id, title = _get(e, "id") or link, _get(e, "title") or ""
    if not entry_id:
        return None
    arxiv_id = category = None
    announce = "new"
    if m := _RDF_TITLE.search(title):
        title, arxiv_id, category = title[: m.start()], m["id"], m["cat"]
        flags, own = m["flags"].upper(), ctx.own_categories
        cross = "CROSS" in flags or (
            bool(own) and not any(category == c or category.startswith(c + ".") for c in own)
        )
        announce = _RDF_ANNOUNCE["UPDATED" in flags][cross]
    elif link and "/abs/" in link:
        arxiv_id = link.partition("/abs/")[2] or None
    raw_authors = ", ".join(_names(_get(e, "authors") or ())) or _get(e, "author") or ""
    published = _struct_date(_get(e, "published_parsed") or _get(e, "updated_parsed")) or ctx.feed_date
    return ParsedEntry(
        entry_id=entry_id,
        title=title,
        link=link,
        links=(link,) if link else (),
        summary=_get(e, "summary") or "",
        summary_is_html=_is_html(_get(e, "summary_detail") or {"type": "text/html"}),
        authors=_rdf_authors(raw_authors),
        published=published,
        updated=published if announce.startswith("replace") else None,
        categories=(category,) if category else (),
        arxiv_id=arxiv_id,
        announce_type=announce,
        primary_category=category,
    )


def _arxiv_api_entry(e: Any, ctx: _Context) -> ParsedEntry | None:
    """export.arxiv.org/api/query Atom: one paper per entry, rich arxiv: metadata."""
    entry_id = _get(e, "id") or _get(e, "link")
    if not entry_id:
        return None
    link = pdf_url = doi_link = None
    for item in _get(e, "links") or ():
        href, title = _get(item, "href"), _get(item, "title")
        if title == "pdf":
            pdf_url = pdf_url or href
        elif title == "doi":
            doi_link = doi_link or href
        elif _get(item, "rel") == "alternate":
            link = link or href
    doi = _get(e, "arxiv_doi") or (doi_link.partition("doi.org/")[2] if doi_link else None) or None
    primary = _get(e, "arxiv_primary_category")
    return ParsedEntry(
        entry_id=entry_id,
        title=_get(e, "title") or "",
        link=link or _get(e, "link"),
        links=_hrefs(_get(item, "href") for item in _get(e, "links") or ()),
        summary=_get(e, "summary") or "",
        summary_is_html=_is_html(_get(e, "summary_detail")),
        authors=_names(_get(e, "authors") or ()),
        published=_struct_date(_get(e, "published_parsed")),
        updated=_struct_date(_get(e, "updated_parsed")),
        categories=_terms(e),
        arxiv_id=entry_id.partition("/abs/")[2] or None,
        primary_category=_get(primary, "term") if isinstance(primary, dict) else None,
        doi=doi,
        journal_ref=_get(e, "arxiv_journal_ref"),
        comment=_get(e, "arxiv_comment"),
        pdf_url=pdf_url,
    )


def _generic_entry(e: Any, ctx: _Context) -> ParsedEntry | None:
    """Any RSS, Atom or RDF feed: ids and author strings are kept whole, nothing is guessed."""
    title, link = _get(e, "title") or "", _absolute(_get(e, "link"), ctx.base)
    entry_id = _get(e, "id") or link or (_fallback_id(title, link) if title else None)
    if not entry_id:
        return None
    detail, summary = _get(e, "summary_detail"), _get(e, "summary") or ""
    content = (_get(e, "content") or (None,))[0]
    if content and len(_get(content, "value") or "") >= len(summary):
        summary, detail = _get(content, "value") or "", content
    authors = _names(_get(e, "authors") or ()) or ((_get(e, "author"),) if _get(e, "author") else ())
    return ParsedEntry(
        entry_id=entry_id,
        title=title,
        link=link,
        links=_hrefs((link,), (_absolute(_get(item, "href"), ctx.base) for item in _get(e, "links") or ())),
        summary=summary,
        summary_is_html=_is_html(detail),
        authors=authors or ctx.feed_authors,
        published=_struct_date(_get(e, "published_parsed")),
        updated=_struct_date(_get(e, "updated_parsed")),
        categories=_terms(e),
    )


def _hf_papers_rss_entry(e: Any, ctx: _Context) -> ParsedEntry | None:
    """Hugging Face Daily Papers republished as RSS by community generators: the item is the
    paper's arXiv link and title; a thumbnail, then the authors, upvotes and summary sit in
    labelled paragraphs of the description (`<p><b>Authors:</b> A, B</p>`)."""
    entry = _generic_entry(e, ctx)
    if entry is None:
        return None
    labelled, image, rest = _labelled_paragraphs(entry.summary)
    if not labelled:
        return entry  # not the shape this adapter knows: as any RSS item
    upvotes = labelled.get("upvotes", "").replace(",", "")
    names = labelled.get("authors", "")
    return replace(
        entry,
        summary=labelled.get("summary") or labelled.get("abstract") or rest,
        summary_is_html=False,
        authors=tuple(n for n in (p.strip() for p in names.split(",")) if n) or entry.authors,
        upvotes=int(upvotes) if _UPVOTES.fullmatch(upvotes) else None,
        image_url=image,
    )


def _labelled_paragraphs(fragment: str) -> tuple[dict[str, str], str | None, str]:
    """`{label: text}` of the paragraphs that open with a bold label ending in ':', the first
    image's src, and the text of the other paragraphs; read by an HTML parser."""
    if not fragment.strip():
        return {}, None, ""
    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return {}, None, ""
    labelled: dict[str, str] = {}
    rest: list[str] = []
    for paragraph in root.iter("p"):
        first = next(iter(paragraph), None)
        label = first.text_content().strip() if first is not None and first.tag in ("b", "strong") else ""
        text = paragraph.text_content()
        if label.endswith(":") and not (paragraph.text or "").strip():
            labelled.setdefault(label[:-1].strip().lower(), text.strip()[len(label) :].strip())
        elif text.strip():
            rest.append(text.strip())
    image = next((img.get("src") for img in root.iter("img") if img.get("src")), None)
    return labelled, image, " ".join(rest)


_XML_ADAPTERS: dict[str, Callable[[Any, _Context], ParsedEntry | None]] = {
    "arxiv-rss": _arxiv_listing_entry,
    "arxiv-rdf": _arxiv_rdf_entry,
    "arxiv-api": _arxiv_api_entry,
    "hf-papers-rss": _hf_papers_rss_entry,
}


# --- JSON formats ----------------------------------------------------------------------------


def _parse_json(body: bytes, kind: str | None) -> ParsedFeed:
    try:
        data = json.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"parse: not a feed (invalid JSON: {exc})") from exc
    if isinstance(data, list):
        if data and not any(isinstance(item, dict) and "paper" in item for item in data):
            raise ParseError("parse: not a feed (a JSON list without Hugging Face `paper` objects)")
        entries = tuple(_hf_entries(data))
        return ParsedFeed("hf-daily-papers", "Hugging Face Daily Papers", entries, Authority.HUGGING_FACE)
    version = str(data.get("version", "")) if isinstance(data, dict) else ""
    if isinstance(data, dict) and (
        version.startswith(("https://jsonfeed.org/version/", "http://jsonfeed.org/version/"))
        or (kind == "json-feed" and isinstance(data.get("items"), list))
    ):
        return ParsedFeed(
            "json-feed", _text(data.get("title")), tuple(_json_feed_entries(data)), Authority.OTHER
        )
    raise ParseError("parse: not a feed (JSON that is neither a JSON Feed nor Hugging Face Daily Papers)")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _json_names(authors: object) -> tuple[str, ...]:
    """JSON Feed 1.1 `authors` lists, 1.0 `author` objects and HF author lists -> names."""
    items = [authors] if isinstance(authors, dict) else _list(authors)
    return tuple(n for n in (_text(a.get("name")).strip() for a in items if isinstance(a, dict)) if n)


def _hf_entries(items: list[Any]) -> Iterator[ParsedEntry]:
    """huggingface.co/api/daily_papers: `paper.id` is the bare arXiv id; items without one are skipped."""
    for item in items:
        paper = item.get("paper") if isinstance(item, dict) else None
        pid = _text(paper.get("id")).strip() if isinstance(paper, dict) else ""
        if not pid or not isinstance(paper, dict):
            continue
        link = f"https://huggingface.co/papers/{pid}"
        repo, page = _text(paper.get("githubRepo")).strip(), _text(paper.get("projectPage")).strip()
        upvotes = paper.get("upvotes")
        yield ParsedEntry(
            entry_id=pid,
            title=_text(paper.get("title")) or _text(item.get("title")),
            link=link,
            links=_hrefs((link, page, repo)),
            summary=_text(paper.get("summary")) or _text(item.get("summary")),
            authors=_json_names(paper.get("authors")),
            published=_iso_date(paper.get("publishedAt")) or _iso_date(item.get("publishedAt")),
            arxiv_id=pid,
            upvotes=upvotes if isinstance(upvotes, int) and not isinstance(upvotes, bool) else None,
            code_urls=(repo,) if repo else (),  # projectPage is a link, not code
        )


def _json_feed_entries(data: dict[str, Any]) -> Iterator[ParsedEntry]:
    """JSON Feed 1.0 and 1.1; items without authors inherit the feed's, as the spec says."""
    feed_authors = _json_names(data.get("authors")) or _json_names(data.get("author"))
    for item in _list(data.get("items")):
        if not isinstance(item, dict):
            continue
        raw_id, url, external = item.get("id"), _text(item.get("url")), _text(item.get("external_url"))
        title = _text(item.get("title"))
        has_id = isinstance(raw_id, (str, int, float)) and not isinstance(raw_id, bool) and str(raw_id) != ""
        entry_id = str(raw_id) if has_id else url or external or (_fallback_id(title, None) if title else "")
        if not entry_id:
            continue
        html_body, text_body = _text(item.get("content_html")), _text(item.get("content_text"))
        yield ParsedEntry(
            entry_id=entry_id,
            title=title,
            link=url or external or None,
            links=_hrefs(
                (url, external),
                (_text(a.get("url")) for a in _list(item.get("attachments")) if isinstance(a, dict)),
            ),
            summary=html_body or text_body or _text(item.get("summary")),
            summary_is_html=bool(html_body),
            authors=_json_names(item.get("authors")) or _json_names(item.get("author")) or feed_authors,
            published=_iso_date(item.get("date_published")),
            updated=_iso_date(item.get("date_modified")),
            categories=tuple(t for t in _list(item.get("tags")) if isinstance(t, str) and t.strip()),
        )
