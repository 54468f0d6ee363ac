"""Normalise parsed entries into Sightings: clean text, identifiers found, keys to match on.

Pure functions only: no I/O, no database, no clock of its own (callers pass `now`).
Everything a feed hands us is untrusted: HTML is reduced to plain text with nh3, XML-illegal
characters are dropped, dates outside what a paper could carry are treated as unknown.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import ftfy
import nh3

from aggregator.ingest.latex import latex_in_prose, latex_to_text
from aggregator.text import NOT_ALNUM, XML_ILLEGAL, fold, web_url
from aggregator.types import NOTES, Authority, ParsedEntry, Sighting

# --- arXiv identifiers -----------------------------------------------------------------------

_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z-]{0,19}(?:\.[A-Za-z]{2})?/\d{7}"
_ID = rf"(?P<id>{_NEW_ID}|{_OLD_ID})(?:v(?P<v>\d+))?"
# Where an arXiv id may hide: every host that serves or mirrors abstracts, the arXiv DOI,
# the OAI guid, and the "arXiv:" prefix people write in text.
ARXIV_ID_RE = re.compile(
    r"(?:(?:export\.|www\.)?arxiv\.org/(?:abs|pdf|html|format|ps)/"
    r"|huggingface\.co/papers/|alphaxiv\.org/(?:abs|overview|pdf)/"
    r"|10\.48550/arxiv\.|oai:arxiv\.org:|\barxiv:\s?)" + _ID + r"(?![\d])",
    re.IGNORECASE,
)
_BARE_ID_RE = re.compile(rf"^{_ID}$")


def _canonical_id(raw: str) -> str:
    """Old-style ids are archive/number: 'math.GT/0309136' is arXiv's alias of 'math/0309136'."""
    if "/" not in raw:
        return raw
    archive, _, number = raw.partition("/")
    return f"{archive.split('.')[0].lower()}/{number}"


def split_arxiv_id(raw: str) -> tuple[str, int | None] | None:
    """'2411.17701v2' -> ('2411.17701', 2); 'hep-th/9901001' -> ('hep-th/9901001', None)."""
    m = _BARE_ID_RE.match(raw.strip())
    if not m:
        return None
    return _canonical_id(m["id"]), int(m["v"]) if m["v"] else None


def find_arxiv_id(*texts: str | None) -> tuple[str, int | None] | None:
    """The first arXiv id (and version) named in any of these links or texts."""
    for text in texts:
        if not text:
            continue
        m = ARXIV_ID_RE.search(text)
        if m:
            return _canonical_id(m["id"]), int(m["v"]) if m["v"] else None
    return None


# --- DOIs and URLs ---------------------------------------------------------------------------

_DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>]+)", re.IGNORECASE)
_ARXIV_DOI_PREFIX = "10.48550/arxiv."


def find_doi(*texts: str | None) -> str | None:
    """A DOI, lower-cased (DOIs are case-insensitive), without trailing punctuation."""
    for text in texts:
        if text:
            m = _DOI_RE.search(text)
            if m:
                return m[1].rstrip(".,;)]}").lower()
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str | None:
    """Scheme and host lower-cased; `www.`, default ports, fragments and utm_* dropped."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().removeprefix("www.")
    if port and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith("utm_")
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


_CODE_RE = re.compile(r"https?://(?:www\.)?(?:github|gitlab)\.com/[\w.-]+/[\w.-]+", re.IGNORECASE)
_CODE_NOT_REPOS = {"about", "features", "pricing", "orgs", "topics", "sponsors", "explore", "marketplace"}


def find_code_urls(*texts: str | None) -> tuple[str, ...]:
    """GitHub and GitLab repository links, in order of appearance, without duplicates."""
    found: dict[str, None] = {}
    for text in texts:
        if not text or "git" not in text:
            continue
        for m in _CODE_RE.finditer(text):
            url = m[0].rstrip(".,;)").removesuffix(".git")
            owner = url.split("/")[3].lower()
            if owner not in _CODE_NOT_REPOS:
                found.setdefault(url, None)
    return tuple(found)


# --- text ------------------------------------------------------------------------------------

# XML 1.0 forbids these; feedgen refuses them and readers choke on them.
# Characters that open most UTF-8-as-Latin-1 sequences; ftfy decides whether it really is one.
_MOJIBAKE_HINT = re.compile("[ÃÂâÅÐÑ][\u0080-\u00bf\u0152-\u2122]")
_BLOCK_BREAK = re.compile(r"<(?:br|/p|/div|/li|/h\d|/tr|p|div|li)\b[^>]*>", re.IGNORECASE)


def clean_text(text: str | None) -> str:
    """Plain text with whitespace folded and XML-illegal characters dropped."""
    if not text:
        return ""
    if XML_ILLEGAL.search(text):
        text = XML_ILLEGAL.sub("", text)
    # UTF-8 read as Latin-1 upstream ("WÃ¼bben"). ftfy judges by context, and folding the
    # whitespace changes the context: repeat until neither changes the text, so that cleaning
    # clean text changes nothing.
    for _ in range(3):
        if text.isascii() or not _MOJIBAKE_HINT.search(text):
            break
        fixed = " ".join(ftfy.fix_encoding(text).split())
        if fixed == text:
            break
        text = fixed
    return " ".join(text.split())


def html_to_text(fragment: str | None) -> str:
    """Plain text of an HTML fragment; scripts and styles vanish with their content."""
    if not fragment:
        return ""
    if "<" not in fragment and "&" not in fragment:
        return clean_text(fragment)
    spaced = _BLOCK_BREAK.sub(" ", XML_ILLEGAL.sub("", fragment))
    return clean_text(html.unescape(nh3.clean(spaced, tags=set())))


# A tag of an HTML element (or a custom element, whose name holds a '-'), complete to its '>':
# "k<n" in a formula or "x < y" is text, not markup.
_TAG_OPENING = (
    r"</?(?:a|abbr|audio|b|base|big|blockquote|body|br|button|canvas|center|cite|code|dd|del|details"
    r"|dfn|dialog|div|dl|dt|em|embed|font|form|frame|frameset|h[1-6]|head|html|i|iframe|img|input|ins"
    r"|kbd|label|li|link|marquee|math|meta|meter|nav|noscript|object|ol|option|p|param|picture|pre"
    r"|q|s|samp|script|section|select|small|source|span|strike|strong|style|sub|summary|sup|svg"
    r"|table|tbody|td|template|textarea|tfoot|th|thead|time|title|tr|tt|u|ul|var|video|wbr|xmp"
    r"|[a-z][a-z0-9]*-[a-z0-9._-]*)(?=[\s/>])"
)
_TAG = re.compile(_TAG_OPENING + r"[^<>]*>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#[0-9]+|#x[0-9a-f]+|[a-z][a-z0-9]+);", re.IGNORECASE)
# A '<' that opens none of those tags: an HTML parser would still read "<n$ and ..." as a tag
# and swallow the text after it, so it is escaped before parsing. A tag's opening with a '>'
# somewhere after it is left to the parser, closed or not ("<img src=x onerror=... <b>" is one
# tag to a browser); "if p <q then" with no '>' to follow stays text. The window is bounded so
# that a run of '<' costs linear time.
_STRAY_LT = re.compile("<(?!" + _TAG_OPENING[1:] + "[^>]{0,500}>)", re.IGNORECASE)


def plain_text(text: str | None) -> str:
    """A text field (a title, a name, a category) as plain text, whatever markup it came in:
    tags stripped by an HTML parser, entities decoded, and again while decoding revealed more (a
    name sent as `&lt;svg onload=...&gt;` is markup to a reader that renders names as HTML).
    A '<' that opens no tag ("$k<n$") is text and stays."""
    if not text:
        return ""
    for _ in range(3):
        if _TAG.search(text):
            decoded = html_to_text(_STRAY_LT.sub("&lt;", text))
        elif _ENTITY.search(text):
            decoded = clean_text(html.unescape(text))
        else:
            break
        if decoded == text:
            break
        text = decoded
    return clean_text(_TAG.sub("", text))  # markup encoded three times over: dropped, not decoded


def title_key(title: str) -> str:
    """Letters and digits of the folded title, run together.

    Running words together makes "Multi-Modal", "Multimodal" and "multi modal" one key while
    "Part I" and "Part II" stay apart, as do any two titles that differ in a word or number.
    """
    return NOT_ALNUM.sub("", fold(title).replace("&", "and"))


# --- authors ---------------------------------------------------------------------------------


def clean_author(name: str) -> str:
    """An author's name as plain text, its LaTeX read as letters ("Kad{\\i}o\\u{g}lu" -> Kadıoğlu)."""
    return latex_to_text(plain_text(name), math=False)


# --- dates -----------------------------------------------------------------------------------

_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


def plausible_date(value: datetime | None, now: datetime) -> datetime | None:
    """A UTC date, or None for dates no paper carries (year 0001, far future)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if value < _EARLIEST or value > now + timedelta(days=2):
        return None
    return value


# --- the entry -------------------------------------------------------------------------------

# Bounds on what one entry may store: arXiv abstracts stop at 1,920 characters and no real author
# list runs to thousands, but a hostile feed can send anything.
MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHOR = 300
MAX_AUTHORS = 1_000
MAX_CATEGORY = 64
MAX_URL = 2_000
MAX_TITLE_KEY = 500  # indexed: PostgreSQL refuses index rows over ~2.7 KB


def normalize_entry(entry: ParsedEntry, *, source: str, authority: Authority, now: datetime) -> Sighting:
    """One parsed entry as a Sighting with every identifier we can find."""
    raw_title = entry.title[:MAX_TITLE]
    # arXiv's own metadata (and Hugging Face's copy of it) writes titles in LaTeX: `$` is math there.
    title = latex_to_text(plain_text(raw_title), math=authority <= Authority.HUGGING_FACE)
    summary = entry.summary[: MAX_ABSTRACT * 4]  # markup included; the text is cut again below
    # Stored as text; markup written as text (a plain-text summary holding `<img onerror=...>`)
    # goes too, as in titles, since readers render text fields as HTML often enough.
    abstract = latex_in_prose(plain_text(html_to_text(summary) if entry.summary_is_html else summary))
    abstract = abstract[:MAX_ABSTRACT]
    authors = tuple(a[:MAX_AUTHOR] for a in (clean_author(n) for n in entry.authors[:MAX_AUTHORS]) if a)
    link = web_url(entry.link)
    if link and len(link) > MAX_URL:
        link = None

    found = split_arxiv_id(entry.arxiv_id) if entry.arxiv_id else None
    if found is None:
        found = find_arxiv_id(entry.link, *entry.links, entry.entry_id, entry.doi, entry.summary)
    arxiv_id, version = found if found else (None, None)

    doi = find_doi(entry.doi) or _doi_from_links(entry)
    if doi and (doi.startswith(_ARXIV_DOI_PREFIX) or len(doi) > MAX_CATEGORY * 4):
        doi = None  # the arXiv DOI names the arXiv id, which is the stronger key
    code_urls = tuple(u for u in map(web_url, entry.code_urls) if u) or find_code_urls(
        *entry.links, entry.summary
    )

    keys: list[str] = []
    if arxiv_id:
        keys.append(f"arxiv:{arxiv_id}")
    if doi:
        keys.append(f"doi:{doi}")
    url_key = _url_key(link) if link else None
    if url_key:
        keys.append(url_key)

    return Sighting(
        source=source,
        entry_id=storable_id(entry.entry_id),
        link=link,
        title=title,
        title_key=title_key(title)[:MAX_TITLE_KEY],
        authors=authors,
        abstract=abstract,
        authority=authority,
        keys=tuple(keys),
        arxiv_id=arxiv_id,
        version=version,
        doi=doi,
        # An Atom entry need not say when it was published, only when it was updated: that is
        # still its own date, and far better for feed order than the moment we first saw it.
        published=plausible_date(entry.published, now) or plausible_date(entry.updated, now),
        updated=plausible_date(entry.updated, now),
        categories=_categories(entry.categories, authority),
        primary_category=_primary_category(entry.primary_category),
        announce_type=plain_text(entry.announce_type) or None,
        **{note: plain_text(getattr(entry, note)) or None for note in NOTES},
        upvotes=entry.upvotes,
        code_urls=code_urls,
        links=_links(link, web_url(entry.pdf_url), arxiv_id, doi, code_urls, web_url(entry.image_url)),
    )


_ARXIV_CATEGORY = re.compile(r"^[a-z][a-z-]*(?:\.[A-Za-z][A-Za-z-]*)?$")


def _categories(raw: tuple[str, ...], authority: Authority) -> tuple[str, ...]:
    """Categories without duplicates; from arXiv, only arXiv's own (not MSC or ACM codes)."""
    cleaned = (plain_text(c) for c in raw if len(c.strip()) <= MAX_CATEGORY)  # longer: junk
    if authority <= Authority.ARXIV_LISTING:
        return tuple(dict.fromkeys(c for c in cleaned if _ARXIV_CATEGORY.match(c)))
    return tuple(dict.fromkeys(c for c in cleaned if c))


MAX_ENTRY_ID = 1_000


_MARKUP_START = re.compile(r"<[a-z/!?]", re.IGNORECASE)
_SPACE_AND_CONTROL = re.compile(r"[\x00-\x20\x7f]+")


def _active_id(entry_id: str) -> bool:
    """An id a client showing or following it would run: markup, or a script URL (browsers
    ignore tabs and newlines inside a scheme, so "java\\tscript:" counts)."""
    head = _SPACE_AND_CONTROL.sub("", entry_id)[:64].lower()
    return head.startswith(("javascript:", "vbscript:", "data:")) or bool(_MARKUP_START.search(entry_id))


def storable_id(entry_id: str) -> str:
    """The entry's own id as written, unless it cannot be stored and indexed (control characters,
    kilobytes long) or is no id to show anyone (markup, a script URL): then a digest of it, the
    same every time the entry is seen."""
    if len(entry_id) <= MAX_ENTRY_ID and not XML_ILLEGAL.search(entry_id) and not _active_id(entry_id):
        return entry_id
    return "sha1:" + hashlib.sha1(entry_id.encode("utf-8", "surrogatepass")).hexdigest()


def _primary_category(raw: str | None) -> str | None:
    """Only arXiv sources name a primary category, and it is one of arXiv's."""
    value = plain_text(raw)
    return value if len(value) <= MAX_CATEGORY and _ARXIV_CATEGORY.match(value) else None


def _doi_from_links(entry: ParsedEntry) -> str | None:
    for link in (entry.link, *entry.links):
        if link and "doi.org/" in link:
            return find_doi(link)
    return None


def _url_key(link: str) -> str | None:
    """A canonical-URL key for links that name a page of their own (not a site's front page)."""
    if ARXIV_ID_RE.search(link) or "doi.org/" in link:
        return None  # already an arxiv or doi key
    url = canonical_url(link)
    if url is None or urlsplit(url).path in ("", "/"):
        return None
    return f"url:{url}"


def _links(
    link: str | None,
    pdf: str | None,
    arxiv_id: str | None,
    doi: str | None,
    code: tuple[str, ...],
    image: str | None = None,
) -> dict[str, str]:
    links: dict[str, str] = {}
    if arxiv_id:
        links["abs"] = f"https://arxiv.org/abs/{arxiv_id}"
        links["pdf"] = f"https://arxiv.org/pdf/{arxiv_id}"
    elif pdf:
        links["pdf"] = pdf
    if link and not arxiv_id:
        links["link"] = link
    if link and "huggingface.co/papers/" in link:
        links["huggingface"] = link
    if doi:
        links["doi"] = f"https://doi.org/{doi}"
    if code:
        links["code"] = code[0]
    if image and len(image) <= MAX_URL:
        links["image"] = image
    return links
