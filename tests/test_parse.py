"""Golden tests for aggregator.ingest.parse: real captures (tests/data, licences beside them),
one hand-written legacy arXiv RDF listing, error documents, detection, hostile inputs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.parse.detect import FAMILIES
from aggregator.ingest.parse.kinds import FEED_KINDS, KINDS
from aggregator.types import SOURCE_KINDS, Authority, ParsedEntry, ParsedFeed

DATA = Path(__file__).parent / "data"
RSS = "arxiv-rss/aioarxiv-2024-11-28"
API = "arxiv-api/arxiv-py-2026"
HOSTILE = "hostile/feedparser-tests"


def parse(rel: str, **hints: str) -> ParsedFeed:
    return parse_feed((DATA / rel).read_bytes(), **hints)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- detection -------------------------------------------------------------------------------

DETECTION = [
    (f"{RSS}/rss_trimmed.xml", "arxiv-rss", Authority.ARXIV_LISTING, 15),
    (f"{RSS}/empty_rss_mock_feed.xml", "arxiv-rss", Authority.ARXIV_LISTING, 0),
    ("dedup-dev/arxiv-rss.xml", "arxiv-rss", Authority.ARXIV_LISTING, 53),
    ("arxiv-rdf/cs.CL.rdf", "arxiv-rdf", Authority.ARXIV_LISTING, 5),
    (f"{API}/q_testing_s0_m10_bc5a6c384fe9.xml", "arxiv-api", Authority.ARXIV_API, 10),
    (f"{API}/id_0000.0000_s0_m100_8b51d9633a68.xml", "arxiv-api", Authority.ARXIV_API, 0),
    (f"{API}/id_astro-ph_0601001_s0_m100_3150dca9dc76.xml", "arxiv-api", Authority.ARXIV_API, 1),
    (f"{API}/id_quant-ph_0201082v1_s0_m100_86989fe779ef.xml", "arxiv-api", Authority.ARXIV_API, 1),
    (f"{API}/id_2104.12255v1_s0_m100_6ae69987ffe1.xml", "arxiv-api", Authority.ARXIV_API, 1),
    ("arxiv-api/orijtech-2017/deep_dream-0.atom", "arxiv-api", Authority.ARXIV_API, 10),
    ("dedup-dev/arxiv-api.xml", "arxiv-api", Authority.ARXIV_API, 31),
    ("dedup-dev/hf-daily.json", "hf-daily-papers", Authority.HUGGING_FACE, 28),
    (
        "hf-daily-papers/rss-republished/feed_weekly_2026-08-08.xml",
        "hf-papers-rss",
        Authority.HUGGING_FACE,
        6,
    ),
    ("json-feed/jsonfeed_v1.1_lukedorny_feedjira.json", "json-feed", Authority.OTHER, 30),
    ("json-feed/jsonfeed_v1_inessential_feedjira.json", "json-feed", Authority.OTHER, 20),
    ("misc/SamRuby_atom_feedjira.xml", "atom", Authority.OTHER, 20),
    ("misc/AmazonWebServicesBlog_rss_feedjira.xml", "atom", Authority.OTHER, 10),  # Atom under an rss name
    ("dedup-dev/blog.xml", "rss", Authority.OTHER, 26),
    ("dedup-dev/venue.atom", "atom", Authority.OTHER, 29),
    (f"{HOSTILE}/illformed/rdf_channel_empty_textinput.xml", "rdf", Authority.OTHER, 1),
]


@pytest.mark.parametrize(("rel", "kind", "authority", "count"), DETECTION, ids=[d[0] for d in DETECTION])
def test_detects_kind_and_counts_entries(rel: str, kind: str, authority: Authority, count: int) -> None:
    feed = parse(rel)
    assert (feed.kind, feed.authority, len(feed.entries)) == (kind, authority, count)
    assert len({e.entry_id for e in feed.entries}) == count  # ids are distinct within a document
    for entry in feed.entries:
        for value in (entry.published, entry.updated):
            assert value is None or value.tzinfo is UTC


HINTS = [
    # (fixture, configured kind, url, expected kind): content wins over a contradicting hint
    (f"{RSS}/rss_trimmed.xml", "rss", None, "arxiv-rss"),
    (f"{RSS}/rss_trimmed.xml", "arxiv-api", None, "arxiv-rss"),
    (f"{RSS}/rss_trimmed.xml", "json-feed", None, "arxiv-rss"),
    ("dedup-dev/hf-daily.json", "rss", None, "hf-daily-papers"),
    ("json-feed/jsonfeed_v1_inessential_feedjira.json", "hf-daily-papers", None, "json-feed"),
    ("dedup-dev/blog.xml", "atom", None, "rss"),
    ("dedup-dev/blog.xml", "hf-daily-papers", None, "rss"),
    ("misc/SamRuby_atom_feedjira.xml", "rss", None, "atom"),
    # a hint that fits the XML family is honoured when the content has no arXiv markers
    ("dedup-dev/venue.atom", "arxiv-api", None, "arxiv-api"),
    (
        f"{HOSTILE}/illformed/rdf_channel_empty_textinput.xml",
        None,
        "http://export.arxiv.org/rss/cs.CL",
        "arxiv-rdf",
    ),
    ("dedup-dev/blog.xml", None, "https://rss.arxiv.org/rss/cs.CL", "arxiv-rss"),
    ("dedup-dev/blog.xml", None, "https://export.arxiv.org/api/query?id_list=1", "rss"),
    (f"{API}/id_0000.0000_s0_m100_8b51d9633a68.xml", "atom", None, "arxiv-api"),
]


@pytest.mark.parametrize(("rel", "kind", "url", "expected"), HINTS)
def test_kind_and_url_are_hints_and_content_wins(
    rel: str, kind: str | None, url: str | None, expected: str
) -> None:
    hints = {k: v for k, v in (("kind", kind), ("url", url)) if v}
    assert parse(rel, **hints).kind == expected


# --- rss.arxiv.org listing -------------------------------------------------------------------


def test_arxiv_listing_first_entry() -> None:
    feed = parse(f"{RSS}/rss_trimmed.xml")
    assert feed.title.startswith("astro-ph, cond-mat, physics, quant-ph, math, cs, econ")
    first = feed.entries[0]
    assert first.entry_id == "oai:arXiv.org:2411.17700v1"
    assert first.arxiv_id == "2411.17700v1"
    assert first.title == (
        "Exploring the Impact of Generative AI on Cross-Border E-Commerce Brand Building "
        "in Chinese Tianjin's Manufacturing Sector"
    )
    assert first.link == "https://arxiv.org/abs/2411.17700"
    assert first.links == ("https://arxiv.org/abs/2411.17700",)
    assert first.summary.startswith("This study investigates the influence of generative artificial")
    assert first.summary.endswith("regression and structural equations (PLS-SEM).")
    assert "Announce Type" not in first.summary and not first.summary_is_html
    assert first.authors == ("Jun Cui",)
    assert first.categories == ("cs.CY",) and first.primary_category == "cs.CY"
    assert first.announce_type == "new"
    assert first.published == utc(2024, 11, 28, 5, 0)  # Thu, 28 Nov 2024 00:00:00 -0500
    assert first.updated is None
    assert (first.doi, first.journal_ref, first.pdf_url, first.upvotes) == (None, None, None, None)


def test_arxiv_listing_all_entries() -> None:
    entries = parse(f"{RSS}/rss_trimmed.xml").entries
    assert [e.arxiv_id for e in entries] == [
        *(f"2411.{n}v1" for n in range(17700, 17710)),
        "2411.17952v1",
        "2202.06515v3",
        "2411.15345v1",
        "1401.3665v4",
        "1712.07645v2",
    ]
    assert [e.announce_type for e in entries] == ["new"] * 11 + ["cross"] * 2 + ["replace"] * 2
    assert all(e.entry_id == f"oai:arXiv.org:{e.arxiv_id}" for e in entries)
    assert all(
        e.link == f"https://arxiv.org/abs/{e.arxiv_id.rsplit('v', 1)[0]}" for e in entries if e.arxiv_id
    )
    by_id = {e.arxiv_id: e for e in entries}
    assert by_id["2411.17702v1"].authors == ("Hyewon Jeong", "Suyeol Yun", "Hammaad Adam")
    assert by_id["2411.17702v1"].categories == ("eess.SP", "cs.LG")
    assert by_id["2411.17703v1"].authors[-1] == "Atilim Gunes Baydin"
    assert len(by_id["2411.17703v1"].authors) == 8
    # "Krishna Shende, Kavita Dorai,  Arvind": the double space disappears with the split
    assert by_id["2411.17952v1"].authors == ("Krishna Shende", "Kavita Dorai", "Arvind")
    # TeX accents stay as written; normalisation folds them
    assert by_id["2411.17709v1"].authors[2] == "Przemys{\\l}aw Olbratowski"


def test_arxiv_listing_cross_and_replace_entries() -> None:
    entries = {e.arxiv_id: e for e in parse(f"{RSS}/rss_trimmed.xml").entries}
    cross = entries["2202.06515v3"]
    assert cross.title.startswith(
        "On the statistical theory of self-gravitating collisionless dark matter flow"
    )
    assert cross.categories == ("astro-ph.CO", "astro-ph.GA", "physics.flu-dyn")
    assert cross.primary_category == "astro-ph.CO"
    assert cross.doi == "10.1063/5.0236964"
    assert cross.journal_ref == "Physics of Fluids 36, 117158 (2024)"
    assert cross.authors == ("Zhijie Xu",) and cross.updated is None
    last = entries["1712.07645v2"]
    assert last.announce_type == "replace"
    assert last.authors == (
        "G. Roepke",
        "D. Blaschke",
        "Yu. B. Ivanov",
        "Iu. Karpenko",
        "O. V. Rogachevsky",
        "H. H. Wolter",
    )
    assert last.doi == "10.1134/S1547477118030159"
    assert last.journal_ref == "Phys. Part. Nucl. Lett. 15(3), 225-229 (2018)"
    # a replacement's pubDate is the day the new version was announced: published and updated
    assert last.published == last.updated == utc(2024, 11, 28, 5, 0)


def test_arxiv_listing_abstract_keeps_literal_angle_brackets() -> None:
    # TeX such as $\frac{1}{3}<s<1$ is plain text in the listing, never HTML
    entries = parse_feed((DATA / "dedup-dev/arxiv-rss.xml").read_bytes()).entries
    assert not any(e.summary_is_html for e in entries)
    assert entries[0].summary.startswith("An increasing number of web articles")
    assert "reader's experience" in entries[0].summary


def test_arxiv_empty_listing_is_not_an_error() -> None:
    feed = parse(f"{RSS}/empty_rss_mock_feed.xml")
    assert (feed.kind, feed.title, feed.entries) == ("arxiv-rss", "test updates on arXiv.org", ())


def test_arxiv_listing_error_feed_raises() -> None:
    with pytest.raises(
        ParseError, match=r"^parse: arXiv listing error: Bad archive 'astroph'\. Valid archive"
    ):
        parse(f"{RSS}/error_rss_mock_feed.xml")


LISTING_ATOM = b"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
      xmlns="http://www.w3.org/2005/Atom" xml:lang="en-us">
  <id>http://rss.arxiv.org/atom/math.OC</id>
  <title>math.OC updates on arXiv.org</title>
  <updated>2024-08-23T16:08:30.941605+00:00</updated>
  <link href="http://rss.arxiv.org/atom/math.OC" rel="self" type="application/atom+xml"/>
  <entry>
    <id>oai:arXiv.org:2203.01250v3</id>
    <title>Mass concentration in rescaled first order integral functionals</title>
    <updated>2024-08-23T16:08:30.942190+00:00</updated>
    <link href="https://arxiv.org/abs/2203.01250" rel="alternate" type="text/html"/>
    <summary>arXiv:2203.01250v3 Announce Type: replace-cross \nAbstract: We consider $u&lt;m$ here.</summary>
    <category term="math.AP"/>
    <category term="math.OC"/>
    <published>2024-08-23T00:00:00-04:00</published>
    <arxiv:announce_type>replace-cross</arxiv:announce_type>
    <dc:creator>Antonin Monteil,  Paul Pegon</dc:creator>
  </entry>
</feed>"""


def test_arxiv_listing_atom_twin_and_replace_cross() -> None:
    # rss.arxiv.org also serves the listing as Atom (see arXiv's atom_specifications)
    feed = parse_feed(LISTING_ATOM)
    assert (feed.kind, feed.authority) == ("arxiv-rss", Authority.ARXIV_LISTING)
    (entry,) = feed.entries
    assert (entry.entry_id, entry.arxiv_id) == ("oai:arXiv.org:2203.01250v3", "2203.01250v3")
    assert entry.announce_type == "replace-cross"
    assert entry.summary == "We consider $u<m$ here." and not entry.summary_is_html
    assert entry.authors == ("Antonin Monteil", "Paul Pegon")
    assert entry.categories == ("math.AP", "math.OC") and entry.primary_category == "math.AP"
    assert entry.published == entry.updated == utc(2024, 8, 23, 4, 0)


def test_arxiv_listing_header_fills_missing_fields() -> None:
    body = LISTING_ATOM.replace(b"oai:arXiv.org:2203.01250v3", b"urn:x:1").replace(
        b"<arxiv:announce_type>replace-cross</arxiv:announce_type>", b""
    )
    (entry,) = parse_feed(body).entries
    assert (entry.entry_id, entry.arxiv_id, entry.announce_type) == (
        "urn:x:1",
        "2203.01250v3",
        "replace-cross",
    )


# --- legacy RSS 1.0 listing (hand-written fixture) -----------------------------------------------


def test_arxiv_rdf_listing() -> None:
    feed = parse("arxiv-rdf/cs.CL.rdf", url="http://export.arxiv.org/rss/cs.CL")
    assert (feed.kind, feed.title) == ("arxiv-rdf", "cs.CL updates on arXiv.org")
    rows = [(e.entry_id, e.arxiv_id, e.announce_type, e.primary_category) for e in feed.entries]
    assert rows == [
        ("http://arxiv.org/abs/1709.01234", "1709.01234v1", "new", "cs.CL"),
        ("http://arxiv.org/abs/1709.01250", "1709.01250v1", "new", "cs.CL"),
        ("http://arxiv.org/abs/1709.00950", "1709.00950v1", "cross", "cs.LG"),
        ("http://arxiv.org/abs/1508.07909", "1508.07909v5", "replace", "cs.CL"),
        ("http://arxiv.org/abs/1706.03762", "1706.03762v5", "replace-cross", "cs.LG"),
    ]
    first, second, *_, last = feed.entries
    assert first.title == "Cross-Lingual Transfer (and Its Limits) for Low-Resource Parsing"
    assert first.authors == ("Tie Luo", "Zoë Müller", "José Ramírez")
    assert first.summary.startswith("<p>We study cross-lingual transfer") and first.summary_is_html
    assert "gains &lt; 2 LAS" in first.summary
    assert first.link == "http://arxiv.org/abs/1709.01234" and first.categories == ("cs.CL",)
    assert first.published == utc(2017, 9, 7, 1, 30)  # the channel's dc:date; items carry none
    assert first.updated is None
    assert second.title == "Question Answering & Reasoning over Semi-Structured Tables"
    assert second.authors == ("Søren Østergaard", "Thị Thu Nguyễn")
    assert last.title == "Attention Is All You Need"
    assert last.authors == ("Ashish Vaswani", "Noam Shazeer", "Niki Parmar")
    assert last.updated == last.published


def test_arxiv_rdf_own_category_comes_from_title_or_url() -> None:
    body = (
        (DATA / "arxiv-rdf/cs.CL.rdf").read_bytes().replace(b"cs.CL updates on arXiv.org", b"arXiv listing")
    )
    assert [e.announce_type for e in parse_feed(body).entries] == ["new"] * 2 + ["new", "replace", "replace"]
    hinted = parse_feed(body, url="http://export.arxiv.org/rss/cs.CL")
    assert [e.announce_type for e in hinted.entries][2:] == ["cross", "replace", "replace-cross"]


# --- arXiv API -------------------------------------------------------------------------------


def test_arxiv_api_search_page() -> None:
    feed = parse(f"{API}/q_testing_s0_m10_bc5a6c384fe9.xml")
    assert feed.title == "arXiv Query: search_query=all:testing&id_list=&start=0&max_results=10"
    first, last = feed.entries[0], feed.entries[-1]
    assert first == ParsedEntry(
        entry_id="http://arxiv.org/abs/2202.12139v1",
        title="Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques",
        link="https://arxiv.org/abs/2202.12139v1",
        links=(
            "https://arxiv.org/abs/2202.12139v1",
            "https://arxiv.org/pdf/2202.12139v1",
            "https://doi.org/10.1109/ICSTW55395.2022.00035",
        ),
        summary=first.summary,
        authors=("Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker"),
        published=utc(2022, 2, 24, 15, 5, 19),
        updated=utc(2022, 2, 24, 15, 5, 19),
        categories=("cs.SE", "cs.LG"),
        arxiv_id="2202.12139v1",
        primary_category="cs.SE",
        doi="10.1109/ICSTW55395.2022.00035",
        journal_ref=(
            "Artificial Intelligence in Software Testing @ 2022 IEEE International Conference on "
            "Software Testing, Verification and Validation Workshops (ICSTW)"
        ),
        comment="Artificial Intelligence in Software Testing 2022 workshop @ ICST 2022",
        pdf_url="https://arxiv.org/pdf/2202.12139v1",
    )
    assert first.summary.startswith("Deep Learning (DL) has revolutionized the capabilities")
    assert last.entry_id == "http://arxiv.org/abs/1812.11470v1" and last.arxiv_id == "1812.11470v1"
    assert last.authors == ("Yauhen Leanidavich Arnatovich", "Lipo Wang")
    assert last.doi is None and last.journal_ref is None
    assert (
        last.comment == "GUI testing, Functional testing, Model-based, Mobile, Systematic literature review"
    )
    assert sum(e.doi is not None for e in feed.entries) == 6
    assert all(e.pdf_url == f"https://arxiv.org/pdf/{e.arxiv_id}" for e in feed.entries)


@pytest.mark.parametrize(
    ("rel", "entry_id", "arxiv_id", "categories", "authors", "published"),
    [
        (
            f"{API}/id_astro-ph_0601001_s0_m100_3150dca9dc76.xml",
            "http://arxiv.org/abs/astro-ph/0601001v1",
            "astro-ph/0601001v1",
            ("astro-ph",),
            ("Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski"),
            utc(2006, 1, 2, 14, 57, 58),
        ),
        (
            f"{API}/id_quant-ph_0201082v1_s0_m100_86989fe779ef.xml",
            "http://arxiv.org/abs/quant-ph/0201082v1",
            "quant-ph/0201082v1",
            ("quant-ph", "cs.PL"),
            ("Stephen Blaha",),
            utc(2002, 1, 18, 15, 8, 5),
        ),
        (
            f"{API}/id_2104.12255v1_s0_m100_6ae69987ffe1.xml",
            "http://arxiv.org/abs/2104.12255v1",
            "2104.12255v1",
            ("cs.CR",),
            ("Quan Thoi Minh Nguyen",),
            utc(2021, 4, 20, 16, 7, 14),
        ),
    ],
)
def test_arxiv_api_id_lookups(
    rel: str,
    entry_id: str,
    arxiv_id: str,
    categories: tuple[str, ...],
    authors: tuple[str, ...],
    published: datetime,
) -> None:
    (entry,) = parse(rel).entries
    assert (entry.entry_id, entry.arxiv_id, entry.categories, entry.authors) == (
        entry_id,
        arxiv_id,
        categories,
        authors,
    )
    assert entry.primary_category == categories[0]
    assert entry.published == entry.updated == published
    assert entry.link == f"https://arxiv.org/abs/{arxiv_id}"
    assert entry.pdf_url == f"https://arxiv.org/pdf/{arxiv_id}"


def test_arxiv_api_old_style_details() -> None:
    (entry,) = parse(f"{API}/id_astro-ph_0601001_s0_m100_3150dca9dc76.xml").entries
    assert entry.journal_ref == "ActaAstron.56:1-50,2006"
    assert entry.comment and entry.comment.startswith("62 pages including 16 figures and 9 tables.")
    assert "V_max<17.5" in entry.summary and not entry.summary_is_html
    (titled_zero,) = parse(f"{API}/id_2104.12255v1_s0_m100_6ae69987ffe1.xml").entries
    assert titled_zero.title == "0"


def test_arxiv_api_unknown_id_is_an_empty_result() -> None:
    feed = parse(f"{API}/id_0000.0000_s0_m100_8b51d9633a68.xml")
    assert (feed.kind, feed.entries) == ("arxiv-api", ())


def test_arxiv_api_error_document_raises() -> None:
    exchange = json.loads((DATA / f"{API}/id_abc_s0_m100_b79c8dcf6bc3.json").read_text())
    assert exchange["status_code"] == 400
    with pytest.raises(ParseError, match=r"^parse: arXiv API error: incorrect id format for abc$"):
        parse_feed(exchange["body"].encode())
    with pytest.raises(ParseError, match="arXiv API error"):
        parse(f"{API}/id_abc_s0_m100_b79c8dcf6bc3.xml", kind="atom")


def test_arxiv_api_2017_layout() -> None:
    feed = parse("arxiv-api/orijtech-2017/deep_dream-0.atom")
    assert feed.title == "ArXiv Query: search_query=deep dream&id_list=&start=0&max_results=10"
    first, second, *_, last = feed.entries
    assert first.entry_id == "http://arxiv.org/abs/1611.09520v2" and first.arxiv_id == "1611.09520v2"
    assert first.title == (
        "Hierarchical Neural Representation of Dreamed Objects Revealed by Brain\n"
        "  Decoding with Deep Neural Network Features"
    )
    assert first.link == "http://arxiv.org/abs/1611.09520v2"
    assert first.pdf_url == "http://arxiv.org/pdf/1611.09520v2"
    assert first.primary_category == "q-bio.NC" and first.categories == ("q-bio.NC",)
    assert first.published == utc(2016, 11, 29, 8, 18, 38)
    assert first.updated == utc(2017, 1, 23, 6, 54, 20)
    assert second.doi == "10.3847/0004-637X/820/2/107" and second.comment == "ApJ accepted"
    assert second.links[0] == "http://dx.doi.org/10.3847/0004-637X/820/2/107"
    assert last.entry_id == "http://arxiv.org/abs/1403.7984v2"
    assert last.title == "Mori Dream Stacks"
    assert last.authors == ("Andreas Hochenegger", "Elena Martinengo")
    assert last.doi == "10.1007/s00209-015-1472-1"
    assert last.journal_ref == "Mathematische Zeitschrift 280, 1185-1202, 2015"
    assert last.categories == ("math.AG", "14A20, 14L30, 14M25")  # MSC classes come as categories too
    assert [e.arxiv_id for e in feed.entries][3:8] == [
        "1304.8005v2",
        "1402.2297v1",
        "1608.03425v1",
        "1510.02795v2",
        "0706.3031v3",
    ]


def test_arxiv_api_doi_from_doi_link_when_element_is_missing() -> None:
    body = (DATA / "arxiv-api/orijtech-2017/deep_dream-0.atom").read_bytes()
    body = body.replace(
        b'<arxiv:doi xmlns:arxiv="http://arxiv.org/schemas/atom">10.1007/s00209-015-1472-1</arxiv:doi>', b""
    )
    assert parse_feed(body).entries[-1].doi == "10.1007/s00209-015-1472-1"


# --- Hugging Face ------------------------------------------------------------------------------


def test_hf_daily_papers_capture() -> None:
    feed = parse("dedup-dev/hf-daily.json")
    first, last = feed.entries[0], feed.entries[-1]
    assert first.entry_id == first.arxiv_id == "2411.18049"
    assert first.title == "Understanding the Impact of Spatial Immersion in Web Data Stories"
    assert first.link == "https://huggingface.co/papers/2411.18049"
    assert (
        len(first.authors) == 9
        and first.authors[0] == "Seon Gyeom Kim"
        and first.authors[-1] == "Tak Yeon Lee"
    )
    assert first.upvotes == 9 and first.code_urls == ()
    assert first.published == utc(2024, 11, 23, 7, 0)
    assert first.summary.startswith("An increasing number of web articles") and not first.summary_is_html
    assert last.entry_id == "2411.18364" and last.upvotes == 85
    assert last.authors == ("David Auger", "Pierre Coucheney", "Kossi Roland Etse")
    assert last.published == utc(2024, 11, 25, 23, 0)
    assert [e.entry_id for e in feed.entries].count("2405.00693") == 1


HF_ITEMS = [
    {
        "paper": {
            "id": "2607.07673",
            "title": "MedPMC",
            "summary": "Medicine is multimodal.",
            "authors": [{"_id": "x", "name": "Hyunjae Kim", "hidden": False}, {"name": " "}, "junk"],
            "publishedAt": "2026-07-08T00:00:00.000Z",
            "upvotes": 12,
            "githubRepo": "https://github.com/example/MedPMC",
            "projectPage": "https://example.github.io/medpmc/",
        },
        "title": "MedPMC (top level)",
        "submittedOnDailyAt": "2026-07-13T00:00:00.000Z",
    },
    {"paper": {"title": "no id here"}},
    {"paper": {"id": "2607.00001", "upvotes": True, "publishedAt": "yesterday"}, "title": "Top-level title"},
    "not an object",
]


def test_hf_daily_papers_fields_and_skips() -> None:
    feed = parse_feed(json.dumps(HF_ITEMS).encode(), url="https://huggingface.co/api/daily_papers")
    assert [e.entry_id for e in feed.entries] == ["2607.07673", "2607.00001"]
    first, second = feed.entries
    assert first.code_urls == ("https://github.com/example/MedPMC",)  # projectPage is no code
    assert first.links == (
        "https://huggingface.co/papers/2607.07673",
        "https://example.github.io/medpmc/",
        "https://github.com/example/MedPMC",
    )
    assert (first.title, first.authors, first.upvotes) == ("MedPMC", ("Hyunjae Kim",), 12)
    assert first.published == utc(2026, 7, 8)
    assert (second.title, second.upvotes, second.published) == ("Top-level title", None, None)


def test_hf_rss_republished_keeps_what_any_rss_item_has() -> None:
    feed = parse("hf-daily-papers/rss-republished/feed_weekly_2026-08-08.xml")
    assert feed.title == "Hugging Face Daily Papers"
    first, last = feed.entries[0], feed.entries[-1]
    assert first.entry_id == first.link == "https://arxiv.org/abs/2607.23802"
    assert first.title.startswith("From RLVR to RLSVR: Task Transformation Induces Self-Verifiable Rewards")
    assert first.summary.startswith("Reinforcement Learning with Verifiable Rewards (RLVR)")
    assert first.arxiv_id is None  # finding ids in links is normalisation's job
    assert first.published == utc(2026, 7, 26)
    assert last.entry_id == "https://arxiv.org/abs/2607.29679"
    assert last.title == "Scaling Properties of Text Conditioning in Visual Generation"
    assert last.published == utc(2026, 7, 31)


# --- JSON Feed ---------------------------------------------------------------------------------


def test_json_feed_1_1() -> None:
    feed = parse("json-feed/jsonfeed_v1.1_lukedorny_feedjira.json")
    assert feed.title == "Luke Dorny's v6"
    first, last = feed.entries[0], feed.entries[-1]
    assert first.entry_id == first.link == "https://lukedorny.com/updates/new-font"
    assert first.title == "New Font"
    assert first.summary.startswith('<img src="https://lukedorny.com/media/') and first.summary_is_html
    assert first.authors == ("Author: Luke, most likely.",)  # not split: it is one author object
    assert first.published == utc(2025, 1, 6, 1, 40)  # 2025-01-05T20:40:00-05:00
    assert first.updated == utc(2025, 1, 7, 1, 2, 25)
    assert first.categories == ("Design",)
    assert last.entry_id == "https://lukedorny.com/updates/play"
    assert last.links == ("https://lukedorny.com/updates/play", "https://play.date")


def test_json_feed_1_0_items_inherit_the_feed_author() -> None:
    feed = parse("json-feed/jsonfeed_v1_inessential_feedjira.json")
    assert feed.title == "inessential.com"
    first, last = feed.entries[0], feed.entries[-1]
    assert first.entry_id == "http://inessential.com/2017/06/02/james_dempsey_and_the_breakpoints_benefi"
    assert first.title == "James Dempsey and the Breakpoints Benefit App Camp for Girls"
    assert first.authors == ("Brent Simmons",)
    assert first.published == utc(2017, 6, 3, 5, 5, 47)
    assert last.entry_id == "http://inessential.com/2017/03/25/my_cocoaconf_yosemite_2017_talk"
    assert last.published == utc(2017, 3, 25, 18, 55, 21)
    assert all(e.authors == ("Brent Simmons",) for e in feed.entries)


def test_json_feed_item_variants() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [
            {"id": 42, "content_text": "plain", "summary": "s", "date_published": "2024-01-02T03:04:05Z"},
            {"id": "", "url": "https://example.org/a", "title": "A", "author": {"name": "Ann"}},
            {"title": "only a title", "date_modified": "not a date", "tags": ["x", 3, " "]},
            {"summary": "nothing to identify"},
            ["not", "an", "object"],
        ],
    }
    entries = parse_feed(json.dumps(doc).encode()).entries
    assert [e.entry_id for e in entries][:2] == ["42", "https://example.org/a"]
    assert entries[2].entry_id.startswith("sha1:") and len(entries) == 3
    assert (entries[0].summary, entries[0].summary_is_html) == ("plain", False)
    assert entries[0].published == utc(2024, 1, 2, 3, 4, 5)
    assert entries[1].authors == ("Ann",)
    assert (entries[2].updated, entries[2].categories) == (None, ("x",))


# --- generic RSS / Atom ------------------------------------------------------------------------


def test_generic_atom_keeps_authors_and_resolves_relative_links_with_url() -> None:
    feed = parse("misc/SamRuby_atom_feedjira.xml", url="http://intertwingly.net/blog/index.atom")
    first = feed.entries[0]
    assert first.entry_id == "tag:intertwingly.net,2004:3308"
    assert first.title == "Plex" and first.authors == ("Sam Ruby",)
    assert first.link == "http://intertwingly.net/blog/2013/01/30/Plex"
    assert first.links == (
        "http://intertwingly.net/blog/2013/01/30/Plex",
        "http://intertwingly.net/blog/3308.atom",
    )
    assert first.summary_is_html and first.updated == utc(2013, 1, 30, 18, 12, 3) and first.published is None
    assert feed.entries[-1].entry_id == "tag:intertwingly.net,2004:3289"
    assert parse("misc/SamRuby_atom_feedjira.xml").entries[0].link == "/blog/2013/01/30/Plex"


def test_generic_atom_with_leading_newline() -> None:
    feed = parse("misc/AmazonWebServicesBlog_rss_feedjira.xml")
    first = feed.entries[0]
    assert (first.entry_id, first.title) == (
        "tag:typepad.com,2003:post-61484736",
        "AWS Job: Architect & Designer Position in Turkey",
    )
    assert first.categories == ("Turkey", "Seattle") and first.authors == ("AWS Editor",)
    assert first.published == utc(2009, 1, 16, 18, 21)


def test_generic_feeds_do_not_split_author_names() -> None:
    first = parse("dedup-dev/venue.atom").entries[0]
    assert first.authors == ('Sch\\"offel, Maximilian', "Feldmann, Johannes", "Wehn, Norbert")
    assert (
        first.title == "Efficient  Hardware  Implementation of Constant Time Sampling for HQC"
    )  # inner spaces kept
    assert first.entry_id == "https://venue.example.org/forum?id=2a4f9070e165"
    one = b"""<rss version="2.0"><channel><title>t</title><item><title>x</title>
        <guid>g1</guid><author>Doe, Jane</author></item></channel></rss>"""
    assert parse_feed(one).entries[0].authors == ("Doe, Jane",)


def test_generic_blog_entry() -> None:
    first = parse("dedup-dev/blog.xml").entries[0]
    assert first.entry_id == "https://mlroundup.example.org/posts/410c1f99c4"
    assert first.link == "https://huggingface.co/papers/2411.18049"
    assert first.summary_is_html and first.published == utc(2024, 11, 28)


GENERIC = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Blog</title>
<item><title>With guid</title><guid isPermaLink="false">post-1</guid><link>https://b.example/1</link>
  <description>short</description><content:encoded><![CDATA[<p>much longer body</p>]]></content:encoded>
  <enclosure url="https://b.example/1.pdf" type="application/pdf" length="1"/>
  <category>ml</category><category>llm</category>
  <pubDate>Mon, 01 Jan 0001 00:00:00 +0000</pubDate></item>
<item><title>Link only</title><link>https://b.example/2</link><pubDate>not a date</pubDate></item>
<item><title>Title only</title></item>
<item><description>nothing to identify it</description></item>
</channel></rss>"""


def test_generic_rss_ids_content_links_and_odd_dates() -> None:
    feed = parse_feed(GENERIC)
    assert feed.kind == "rss" and len(feed.entries) == 3
    first, second, third = feed.entries
    assert first.entry_id == "post-1"
    assert (first.summary, first.summary_is_html) == ("<p>much longer body</p>", True)
    assert first.links == ("https://b.example/1", "https://b.example/1.pdf")
    assert first.categories == ("ml", "llm")
    assert first.published in (None, utc(1, 1, 1))  # kept or dropped, never a crash; plausibility is later
    assert (second.entry_id, second.published) == ("https://b.example/2", None)
    assert third.entry_id.startswith("sha1:") and third.entry_id == parse_feed(GENERIC).entries[2].entry_id


# --- not feeds, errors and hostile inputs --------------------------------------------------------

NOT_FEEDS = [
    b"",
    b" \r\n\t",
    b"\xef\xbb\xbf",
    b"garbage \x00\xff\xfe",
    b"<!DOCTYPE html><html><head><title>Hi</title></head><body><p>Sorry</p></body></html>",
    b'<?xml version="1.0"?><foo><bar/></foo>',
    b'{"version": 1, "items": []}',
    b"[1, 2, 3]",
    b'{"truncated": ',
    (DATA / f"{HOSTILE}/illformed/aaa_illformed.xml").read_bytes(),
]


@pytest.mark.parametrize("body", NOT_FEEDS, ids=range(len(NOT_FEEDS)))
def test_not_a_feed_raises_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError, match=r"^parse: not a feed \("):
        parse_feed(body)


def test_illformed_feeds_yield_what_is_usable() -> None:
    (rdf,) = parse(f"{HOSTILE}/illformed/rdf_channel_empty_textinput.xml").entries
    assert (rdf.entry_id, rdf.title) == ("http://example.com/1", "crashes here")
    (amp,) = parse(f"{HOSTILE}/illformed/rss_item_link_corrupted_ampersands.xml").entries
    assert amp.entry_id == amp.link == "http://link/get?a=1&b=2"
    truncated = GENERIC[: GENERIC.index(b"<item><title>Title only")]
    assert [e.entry_id for e in parse_feed(truncated).entries] == ["post-1", "https://b.example/2"]


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>x &#xD800; y</title>'
        b"<item><title>a &#55296; b</title><link>http://e.example/1</link></item></channel></rss>",
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>1</id>'
        b"<title>&#xdfff;&#57343;</title></entry></feed>",
    ],
)
def test_surrogate_character_references_are_replaced_not_raised(body: bytes) -> None:
    feed = parse_feed(body)  # feedparser alone raises UnicodeEncodeError out of parse() on these
    (entry,) = feed.entries
    assert "\ufffd" in entry.title and not any(0xD800 <= ord(c) <= 0xDFFF for c in entry.title + feed.title)


def test_utf16_encoded_feeds_parse() -> None:
    for name in ("utf-16le-bom.xml", "utf-16be.xml"):
        feed = parse(f"{HOSTILE}/encoding/{name}")
        assert (feed.kind, feed.entries) == ("rss", ())
    text = (
        '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>Überschrift</title>'
        "<item><guid>é-1</guid><title>Zoë’s paper</title></item></channel></rss>"
    )
    feed = parse_feed(text.encode("utf-16"))
    assert feed.title == "Überschrift"
    assert [(e.entry_id, e.title) for e in feed.entries] == [("é-1", "Zoë’s paper")]


def test_parse_is_the_only_module_importing_feedparser() -> None:
    package = Path(__file__).parent.parent / "aggregator"
    importers = sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if re.search(r"^\s*(?:import|from)\s+feedparser\b", path.read_text(encoding="utf-8"), re.MULTILINE)
    )
    assert importers == ["ingest/parse/__init__.py"]


def test_the_kind_registry_and_source_kinds_name_the_same_kinds() -> None:
    """config.py checks `kind:` against types.SOURCE_KINDS, which sits below ingest and cannot
    read the registry (ingest/parse/kinds.py): the two lists must agree."""
    names = [kind.name for kind in KINDS]
    assert sorted(names) == sorted(SOURCE_KINDS) and len(set(names)) == len(names)
    # The kinds without markers are the XML families detection falls back on.
    assert {kind.name for kind in FEED_KINDS.values() if kind.marks is None} == set(FAMILIES)


# --- Hugging Face papers republished as RSS --------------------------------------------------

SAMPLES = Path(__file__).parent.parent / "config" / "samples"
HF_RSS = "hf-daily-papers/rss-republished/feed_weekly_2026-08-08.xml"


def test_hf_papers_rss_first_entry() -> None:
    """Golden: the labelled paragraphs become authors, upvotes, the summary and a thumbnail."""
    entry = parse(HF_RSS).entries[0]
    body = (DATA / HF_RSS).read_text()
    first = body[body.index("<item>") : body.index("</item>")]
    link = re.search(r"<link>(.*?)</link>", first)[1]  # type: ignore[index]
    authors = re.search(r"&lt;b&gt;Authors:&lt;/b&gt; (.*?)&lt;/p&gt;", first)[1]  # type: ignore[index]
    upvotes = re.search(r"&lt;b&gt;Upvotes:&lt;/b&gt; (\d+)&lt;/p&gt;", first)[1]  # type: ignore[index]
    assert entry.link == link and link.startswith("https://arxiv.org/abs/")
    assert entry.authors == tuple(a.strip() for a in authors.split(","))
    assert entry.upvotes == int(upvotes)
    assert not entry.summary_is_html and entry.summary and "Summary:" not in entry.summary
    assert "Authors:" not in entry.summary and "Upvotes:" not in entry.summary
    assert entry.image_url and entry.image_url.startswith("https://cdn-thumbnails.huggingface.co/")


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("hf-*.xml")))
def test_every_bundled_hf_rss_paper_is_complete(name: str) -> None:
    feed = parse_feed((SAMPLES / name).read_bytes())
    assert feed.kind == "hf-papers-rss" and feed.authority == Authority.HUGGING_FACE and feed.entries
    for entry in feed.entries:
        assert entry.authors and all(a and "<" not in a for a in entry.authors), entry.entry_id
        assert isinstance(entry.upvotes, int), entry.entry_id
        assert not re.match(r"\s*(Authors|Upvotes|Summary)\s*:", entry.summary), entry.entry_id
        assert entry.link and entry.link.startswith("https://arxiv.org/abs/"), entry.entry_id


def test_hf_papers_rss_by_configured_kind_and_plain_rss_otherwise() -> None:
    """A mirror under another channel link is read as this format when configured so; an item
    without the labels stays an ordinary RSS item."""
    body = (DATA / HF_RSS).read_bytes().replace(b"https://huggingface.co/papers", b"https://mirror.example/x")
    assert parse_feed(body).kind == "rss"
    mirrored = parse_feed(body, kind="hf-papers-rss")
    assert mirrored.kind == "hf-papers-rss" and all(e.upvotes is not None for e in mirrored.entries)
    plain = (
        b'<rss version="2.0"><channel><title>t</title><link>https://huggingface.co/papers</link>'
        b"<item><title>A paper</title><link>https://arxiv.org/abs/2501.00001</link>"
        b"<description>&lt;p&gt;Just text.&lt;/p&gt;</description></item></channel></rss>"
    )
    entry = parse_feed(plain, kind="hf-papers-rss").entries[0]
    assert entry.upvotes is None and entry.authors == () and "Just text." in entry.summary


def test_hf_papers_rss_odd_upvotes_cost_that_field_only() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title><link>https://huggingface.co/papers</link>'
        b"<item><title>A</title><link>https://arxiv.org/abs/2501.00001</link><description>"
        b"&lt;p&gt;&lt;b&gt;Authors:&lt;/b&gt; Ann Lee&lt;/p&gt;"
        b"&lt;p&gt;&lt;b&gt;Upvotes:&lt;/b&gt; \xc2\xb2&lt;/p&gt;"
        b"</description></item><item><title>B</title><link>https://arxiv.org/abs/2501.00002</link>"
        b"<description>&lt;p&gt;&lt;b&gt;Upvotes:&lt;/b&gt; 7&lt;/p&gt;</description></item></channel></rss>"
    )
    first, second = parse_feed(body).entries
    assert (first.authors, first.upvotes, second.upvotes) == (("Ann Lee",), None, 7)
