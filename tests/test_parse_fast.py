"""The arXiv listing fast path (ingest/listing_fast.py) against feedparser's reading of the same bytes.

Equivalence is the whole contract: on every capture the project may carry, and on mutated
listings, `parse_listing_fast` either declines (None) or gives exactly what `parse_feed(body,
fast=False)` gives, error documents included; on a well-formed listing it must not decline.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import feedparser
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.ingest.listing_fast import _date, _Decline
from aggregator.ingest.parse import parse_feed, parse_listing_fast
from aggregator.types import ParsedFeed

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
RSS = DATA / "arxiv-rss/aioarxiv-2024-11-28"
# Every arXiv listing capture the project carries: the fast path must read each of them.
LISTINGS = [
    RSS / "rss_trimmed.xml",
    RSS / "empty_rss_mock_feed.xml",
    DATA / "dedup-dev/arxiv-rss.xml",
    DATA / "arxiv-rss-extra/arxiv-docs/rss_specifications_example.xml",
    ROOT / "config/samples/arxiv-listing-2024-11-28.xml",
]
ERROR_LISTING = RSS / "error_rss_mock_feed.xml"
NOT_CAPTURES = {".txt", ".md"}
OTHERS = sorted(
    path
    for path in [*DATA.rglob("*"), *(ROOT / "config/samples").glob("*")]
    if path.is_file() and path.suffix not in NOT_CAPTURES and path not in {*LISTINGS, ERROR_LISTING}
)

Outcome = ParsedFeed | str


def slow(body: bytes) -> Outcome:
    """feedparser's reading: the feed, or the ParseError's message."""
    try:
        return parse_feed(body, fast=False)
    except ParseError as exc:
        return str(exc)


def fast(body: bytes) -> Outcome | None:
    """The fast path's reading: None when it declines."""
    try:
        return parse_listing_fast(body)
    except ParseError as exc:
        return str(exc)


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- every capture ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", LISTINGS, ids=name)
def test_listing_captures_take_the_fast_path_and_equal_feedparser(path: Path) -> None:
    body = path.read_bytes()
    got = fast(body)
    assert isinstance(got, ParsedFeed)
    assert got == slow(body)
    assert parse_feed(body) == got


def test_listing_captures_cover_every_field() -> None:
    """The captures above are not trivially equal: they hold 1,573 entries with all the fields."""
    entries = [e for path in LISTINGS for e in parse_feed(path.read_bytes()).entries]
    assert len(entries) == 15 + 0 + 53 + 1 + 1504
    assert {e.announce_type for e in entries} == {"new", "cross", "replace", "replace-cross"}
    assert all(e.entry_id and e.title and e.summary and e.authors and e.published for e in entries)
    assert any(e.doi for e in entries) and any(e.journal_ref for e in entries)
    # escaped markup and ampersands; the listing itself is ASCII (non-ASCII is tested below)
    assert any("<" in e.summary for e in entries) and any("&" in e.title + e.summary for e in entries)


def test_error_listing_raises_the_same_error_on_the_fast_path() -> None:
    body = ERROR_LISTING.read_bytes()
    message = fast(body)
    assert isinstance(message, str)
    assert message.startswith("parse: arXiv listing error: Bad archive 'astroph'. Valid archive names")
    assert message == slow(body)


@pytest.mark.parametrize("path", OTHERS, ids=name)
def test_other_captures_decline_the_fast_path(path: Path) -> None:
    body = path.read_bytes()
    assert parse_listing_fast(body) is None
    try:
        assert parse_feed(body) == parse_feed(body, fast=False)
    except ParseError as exc:
        assert slow(body) == str(exc)


# --- hand-made variants of a listing ---------------------------------------------------------

TRIMMED = (RSS / "rss_trimmed.xml").read_bytes()
_ITEMS = re.findall(rb"    <item>.*?</item>\n", TRIMMED, re.DOTALL)
# Three real items: a new one, a cross-list and a replacement with DOI and journal reference.
BASE = (
    TRIMMED[: TRIMMED.index(b"    <item>")] + _ITEMS[0] + _ITEMS[11] + _ITEMS[13] + b"  </channel>\n</rss>\n"
)


def swap(old: bytes, new: bytes) -> bytes:
    """BASE with the first `old` replaced."""
    assert old in BASE, old
    return BASE.replace(old, new, 1)


TITLE = b"<title>Exploring the Impact"
CREATOR = b"<dc:creator>"
ARXIV_NS = b'xmlns:arxiv="http://arxiv.org/schemas/atom"'


def only_required(body: bytes) -> bytes:
    """The listing without what the fast path accepts but does not require."""
    head, items = body.split(b"    <item>", 1)
    channel_extras = (
        rb"\s*<(description|docs|language|managingEditor|skipDays|lastBuildDate|pubDate)>.*?</\1>"
    )
    head = re.sub(channel_extras + rb"|\s*<atom:link [^>]*/>", b"", head, flags=re.DOTALL)
    items = re.sub(rb"\s*<(dc:rights|arxiv:DOI|arxiv:journal_reference)>[^<]*</\1>", b"", items)
    return head + b"    <item>" + items


ACCEPTED = {
    "as captured": BASE,
    "entities": swap(TITLE, b"<title>&amp; &lt;b&gt;x&lt;/b&gt; &quot;q&quot; &apos;a&apos; &#233;&#x1F600;"),
    "CDATA": swap(TITLE, b"<title><![CDATA[<i>raw</i> & co]]> then"),
    "odd whitespace": swap(TITLE, b"<title> \t\r\n\r \xc2\xa0\xe2\x80\xa8Exploring\r\n the Impact"),
    "mojibake repaired as feedparser does": swap(TITLE, "<title>Ã© â€™ Exploring".encode()),
    "C1 controls as cp1252": swap(TITLE, b"<title>&#x92;&#x85;\xc2\x96 Exploring"),
    "no XML declaration": BASE[BASE.index(b"<rss") :],
    "double-quoted declaration": swap(b"<?xml version='1.0' encoding='UTF-8'?>", b'<?xml version="1.0"?>'),
    "duplicate and empty categories": swap(b"<category>", b"<category/><category>cs.CY</category><category>"),
    "ampersands in a link": swap(b"/abs/2411.17700<", b"/abs/2411.17700?a=1&amp;b;=2&amp;amp;c<"),
    "extra slashes in a link": swap(
        b"<link>https://arxiv.org/abs/2411.17700", b"<link>https:////arxiv.org/abs/2411.17700"
    ),
    "empty guid": swap(b">oai:arXiv.org:2411.17700v1<", b"><"),
    "empty DOI": swap(b"<arxiv:DOI>10.1063/5.0236964</arxiv:DOI>", b"<arxiv:DOI/>"),
    "empty announce type": swap(b"<arxiv:announce_type>new<", b"<arxiv:announce_type><"),
    "empty creator": re.sub(rb"<dc:creator>[^<]*</dc:creator>", b"<dc:creator/>", BASE, count=1),
    "only the elements required": only_required(BASE),
    "other time zone": BASE.replace(b"00:00:00 -0500", b"23:59:59 +1345"),
}
DECLINED = {
    "guid that may be a link": swap(b'<guid isPermaLink="false">', b"<guid>"),
    "guid that is a link": swap(b'isPermaLink="false"', b'isPermaLink="true"'),
    "e-mail in creator": swap(CREATOR, b"<dc:creator>someone@example.org, "),
    "two creators": swap(CREATOR, b"<dc:creator>A. Person</dc:creator><dc:creator>"),
    "two titles": swap(TITLE, b"<title>Second</title><title>Exploring the Impact"),
    "extra arxiv element": swap(CREATOR, b"<arxiv:comment>12 pages</arxiv:comment><dc:creator>"),
    "content:encoded": swap(CREATOR, b"<content:encoded>x</content:encoded><dc:creator>"),
    "xml:base": swap(b"<item>", b'<item xml:base="http://example.org/">'),
    "typed description": swap(b"<description>", b'<description type="text/html">'),
    "category with a domain": swap(b"<category>", b'<category domain="arxiv">'),
    "comment in an item": swap(CREATOR, b"<!-- x --><dc:creator>"),
    "markup in a title": swap(TITLE, b"<title><b>bold</b>"),
    "DOCTYPE": swap(b"<rss ", b"<!DOCTYPE rss>\n<rss "),
    "byte order mark": b"\xef\xbb\xbf" + BASE,
    "Latin-1 declaration": swap(b"encoding='UTF-8'", b"encoding='ISO-8859-1'"),
    "XML 1.1": swap(b"version='1.0'", b"version='1.1'"),
    "ISO date": BASE.replace(b"Thu, 28 Nov 2024 00:00:00 -0500", b"2024-11-28T00:00:00Z"),
    "named time zone": BASE.replace(b"00:00:00 -0500", b"00:00:00 EST"),
    "impossible date": BASE.replace(b"28 Nov 2024", b"31 Nov 2024"),
    "missing pubDate": re.sub(rb"<pubDate>[^<]*</pubDate>", b"", BASE, count=2),
    "missing creator": re.sub(rb"<dc:creator>[^<]*</dc:creator>", b"", BASE, count=1),
    "default namespace": swap(b"<rss ", b'<rss xmlns="http://purl.org/rss/1.0/" '),
    "arXiv namespace under another prefix": BASE.replace(b"arxiv:", b"ax:").replace(
        ARXIV_NS, ARXIV_NS + b' xmlns:ax="http://arxiv.org/schemas/atom"'
    ),
    "namespace declared on an item": swap(b"<item>", b'<item xmlns:foo="urn:foo">'),
    "image in the channel": swap(
        b"<docs>", b"<image><url>http://x/i.png</url><title>i</title></image><docs>"
    ),
    "alternate atom link": swap(b'rel="self"', b'rel="alternate"'),
    "truncated": BASE[: len(BASE) // 2],
    "RSS other than 2.0": swap(b'version="2.0"', b'version="0.91"'),
    "comment before the root": swap(b"<rss ", b"<!-- x -->\n<rss "),
    "comment after the root": BASE + b"<!-- x -->\n",
}


@pytest.mark.parametrize("body", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_fast_path_reads_listing_variants_exactly_as_feedparser(body: bytes) -> None:
    got = fast(body)
    assert isinstance(got, ParsedFeed)
    assert got == slow(body)


@pytest.mark.parametrize("body", DECLINED.values(), ids=DECLINED.keys())
def test_fast_path_declines_what_it_is_not_sure_of(body: bytes) -> None:
    assert body != BASE
    assert parse_listing_fast(body) is None
    try:
        assert parse_feed(body) == parse_feed(body, fast=False)
    except ParseError as exc:
        assert slow(body) == str(exc)


# --- mutated listings ------------------------------------------------------------------------

# Whole elements (leaves, items, the channel) and the start tags and text found in a body.
ELEMENT = re.compile(rb"<([\w:]+)\b[^<>]*/>|<([\w:]+)\b[^<>]*>.*?</\2>", re.DOTALL)
START_TAG = re.compile(rb"<[\w:]+")
LEAF_TEXT = re.compile(rb"(?<=>)[^<>]+(?=</)")
PIECES = [
    b"a", b" ", b"\t", b"\n", b"\r\n", b"\r", b"\xc2\xa0", b"\xe2\x80\xa8", b"\xe3\x80\x80", b"\xc2\x85",
    "é".encode(), "Ã©".encode(), "â€™".encode(), "日本".encode(), "😀".encode(), b"\xff", b"\xc3",
    b"&amp;", b"&lt;", b"&gt;", b"&quot;", b"&apos;", b"&#233;", b"&#x92;", b"&#x85;", b"&#0;",
    b"&#xD800;", b"&#x1F600;", b"&#13;", b"&nbsp;", b"&copy;", b"&foo;", b"&amp;b;", b"&", b"<", b"]]>",
    b"<![CDATA[x & <y>]]>", b"<![CDATA[", b"<b>bold</b>", b"&lt;b&gt;", b"<!-- c -->", b"<?pi x?>",
    b",", b" , ", b"@", b"a@b.org", b"\x00", b"\x01", b"\x1f", b"\x7f", "\ufffe".encode(),
    b"oai:arXiv.org:2411.00001v1", b"arXiv:2411.00002v2 Announce Type: replace \nAbstract: x",
    b"Abstract:", b"http://x", b"https:////arxiv.org/abs/1", b"?a=1&amp;b=2", b"replace", b"replace-cross",
    b"cross", b"new", b"Thu, 28 Nov 2024 00:00:00 -0500", b"Mon, 29 Feb 2023 25:61:61 +9999", b"EST",
]  # fmt: skip
ELEMENTS = [
    b"<arxiv:comment>c</arxiv:comment>", b"<content:encoded>x</content:encoded>", b"<dc:title>t</dc:title>",
    b"<foo:bar xmlns:foo='urn:x'>y</foo:bar>", b"<image><url>u</url><title>i</title></image>",
    b"<atom:link href='http://x' rel='alternate' type='text/html'/>", b"<source url='http://s'>s</source>",
    b"<guid>g</guid>", b"<title>T2</title>", b"<category domain='d'>cs.AI</category>", b"<category/>",
    b"<category> cs.AI </category>", b"<author>a@b.org</author>", b"<enclosure url='http://e'/>",
    b"<item><title>x</title></item>", b"<dc:creator>A, B</dc:creator>", b"<dc:subject>s</dc:subject>",
    b"<arxiv:announce_type>new</arxiv:announce_type>", b"<description type='text/plain'>d</description>",
    b"<xhtml:div xmlns:xhtml='http://www.w3.org/1999/xhtml'>x</xhtml:div>", b"<!DOCTYPE rss>",
    b"<textInput><title>t</title></textInput>", b"<arxiv:DOI>10.1/x</arxiv:DOI>", b"<pubDate>x</pubDate>",
    b"<arxiv:journal_ref>J</arxiv:journal_ref>", b"<link>http://l</link>", b"<dc:rights>r</dc:rights>",
]  # fmt: skip
ATTRIBUTES = [
    b' xml:base="http://b/"', b' xml:lang="fr"', b' type="text/html"', b' type="text/plain"',
    b' isPermaLink="true"', b' isPermaLink="false"', b' domain="x"', b' rel="alternate"', b' href="http://h"',
    b' mode="base64"', b' xmlns:foo="urn:foo"', b' xmlns="http://purl.org/rss/1.0/"', b' version="2.0"',
    b' term="t"', b' base="http://b/"', b' rdf:about="x"', b' foo="bar"', b' lastmod="2024-01-01"',
]  # fmt: skip
PROLOGS = [
    b"", b"\xef\xbb\xbf", b"<?xml version='1.0' encoding='UTF-8'?>\n", b'<?xml version="1.0"?>\n',
    b"<?xml version='1.0' encoding='ISO-8859-1'?>\n", b"<?xml version='1.1' encoding='UTF-8'?>\n",
    b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n", b"<?xml version='1.0' encoding='UTF-8'?>",
    b"\n", b"<!DOCTYPE rss>\n", b"<?xml version='1.0' encoding='UTF-8'?>\n<!-- c -->\n",
    b"<?xml version='1.0' encoding='utf-8'?>\r\n  ",
]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=6).map(b"".join)
# Most kinds of change make the fast path decline; rewritten text is the one it must read through.
KINDS = ["drop", "twice", "move", "text", "text", "text", "insert", "attribute", "prolog", "cut"]


@st.composite
def mutation(draw: st.DrawFn, body: bytes) -> bytes:
    """One change to a listing: drop, duplicate, move or rewrite an element, add text, markup, an
    attribute or a prolog, or cut the body short."""
    spans = [m.span() for m in ELEMENT.finditer(body, body.find(b"<channel>") + 1)] or [(0, 0)]
    start, end = draw(st.sampled_from(spans))
    kind = draw(st.sampled_from(KINDS))
    if kind == "drop":
        return body[:start] + body[end:]
    if kind == "twice":
        return body[:end] + body[start:end] + body[end:]
    if kind == "move":
        rest = body[:start] + body[end:]
        at = draw(st.sampled_from([m.start() for m in START_TAG.finditer(rest)] or [0]))
        return rest[:at] + body[start:end] + rest[at:]
    if kind == "text":
        leaves = [m.span() for m in LEAF_TEXT.finditer(body)] or [(0, 0)]
        start, end = draw(st.sampled_from(leaves))
        return body[:start] + draw(texts) + body[draw(st.sampled_from([start, end])) :]
    if kind == "insert":
        piece = draw(st.one_of(st.sampled_from(ELEMENTS), texts))
        at = draw(st.integers(0, len(body)))
        at = body.rfind(b">", 0, at) + 1 if draw(st.booleans()) else at  # mostly between elements
        return body[:at] + piece + body[at:]
    if kind == "attribute":
        at = draw(st.sampled_from([m.end() for m in START_TAG.finditer(body)] or [0]))
        return body[:at] + draw(st.sampled_from(ATTRIBUTES)) + body[at:]
    if kind == "prolog":
        return draw(st.sampled_from(PROLOGS)) + body[body.find(b"<rss") :]
    return body[: draw(st.integers(0, len(body)))]


@st.composite
def mutated_listing(draw: st.DrawFn) -> bytes:
    body = BASE
    for _ in range(draw(st.integers(1, 3))):
        body = draw(mutation(body))
    return body


@settings(max_examples=int(os.environ.get("PARSE_FAST_EXAMPLES", "300")), deadline=None)
@given(mutated_listing())
def test_mutated_listings_are_declined_or_read_exactly_as_feedparser(body: bytes) -> None:
    got = fast(body)
    event("fast path declined" if got is None else "fast path answered")
    if got is not None:
        assert got == slow(body)


DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@settings(max_examples=500)
@given(
    st.sampled_from(DAYS),
    st.integers(0, 40),
    st.sampled_from(MONTHS),
    st.integers(0, 9999),
    st.tuples(st.integers(0, 25), st.integers(0, 61), st.integers(0, 61)),
    st.sampled_from("+-"),
    st.integers(0, 99),
    st.integers(0, 99),
)
def test_listing_dates_read_as_feedparser_reads_them(
    day_name: str,
    day: int,
    month: str,
    year: int,
    clock: tuple[int, int, int],
    sign: str,
    tz_hours: int,
    tz_minutes: int,
) -> None:
    text = f"{day_name}, {day:02} {month} {year:04} {clock[0]:02}:{clock[1]:02}:{clock[2]:02} "
    text += f"{sign}{tz_hours:02}{tz_minutes:02}"
    expected = feedparser.datetimes._parse_date(text)
    try:
        got = _date(text, {})
    except _Decline:  # feedparser may read it, or not: only feedparser will
        event("declined")
        return
    event("read")
    assert tuple(got) == tuple(expected)
