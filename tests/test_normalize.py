"""Normalisation: identifiers from every form the contract names, clean text, keys, dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from aggregator.ingest.normalize import (
    canonical_url,
    clean_author,
    clean_text,
    find_arxiv_id,
    find_code_urls,
    find_doi,
    html_to_text,
    normalize_entry,
    plausible_date,
    split_arxiv_id,
    title_key,
)
from aggregator.text import XML_ILLEGAL, author_keys, surname_key, web_url, xml_legal
from aggregator.types import Authority, ParsedEntry

NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://arxiv.org/abs/2409.17481", ("2409.17481", None)),
        ("https://arxiv.org/abs/2409.17481v3", ("2409.17481", 3)),
        ("http://arxiv.org/pdf/2409.17481v2.pdf", ("2409.17481", 2)),
        ("https://arxiv.org/pdf/2409.17481", ("2409.17481", None)),
        ("https://arxiv.org/html/2409.17481v1", ("2409.17481", 1)),
        ("https://www.arxiv.org/abs/2409.17481?context=cs", ("2409.17481", None)),
        ("http://export.arxiv.org/abs/2409.17481v1", ("2409.17481", 1)),
        ("https://arxiv.org/abs/2409.17481#comments", ("2409.17481", None)),
        ("https://huggingface.co/papers/2411.18049", ("2411.18049", None)),
        ("https://www.alphaxiv.org/abs/2411.18049", ("2411.18049", None)),
        ("https://doi.org/10.48550/arXiv.2411.17708", ("2411.17708", None)),
        ("https://doi.org/10.48550/ARXIV.2411.17708", ("2411.17708", None)),
        ("We read this (arXiv:2411.17915) last week", ("2411.17915", None)),
        ("arXiv: 2411.17915v2", ("2411.17915", 2)),
        ("oai:arXiv.org:2411.17701v1", ("2411.17701", 1)),
        ("http://arxiv.org/abs/hep-th/9901001v2", ("hep-th/9901001", 2)),
        ("http://arxiv.org/abs/astro-ph/0601001", ("astro-ph/0601001", None)),
        ("https://arxiv.org/abs/math.GT/0309136", ("math/0309136", None)),
        ("arXiv:0704.0001", ("0704.0001", None)),
        ("https://example.org/2409.17481", None),  # a bare number in some URL is not an id
        ("version 2409.17481 of the dataset", None),
        ("https://arxiv.org/list/cs.CL/new", None),
    ],
)
def test_find_arxiv_id(text: str, expected: tuple[str, int | None] | None) -> None:
    assert find_arxiv_id(text) == expected


def test_find_arxiv_id_takes_the_first_text_that_has_one() -> None:
    assert find_arxiv_id(None, "", "https://blog.example.org/x", "arXiv:2101.00001") == ("2101.00001", None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2411.17701v1", ("2411.17701", 1)),
        ("2411.17701", ("2411.17701", None)),
        ("hep-th/9901001v12", ("hep-th/9901001", 12)),
        ("abc", None),
        ("2411.177", None),
    ],
)
def test_split_arxiv_id(raw: str, expected: tuple[str, int | None] | None) -> None:
    assert split_arxiv_id(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://doi.org/10.1145/3580305.3599256", "10.1145/3580305.3599256"),
        ("doi:10.1038/NATURE12373.", "10.1038/nature12373"),
        ("see (10.1103/PhysRevD.76.013009)", "10.1103/physrevd.76.013009"),
        ("no doi here", None),
    ],
)
def test_find_doi(text: str, expected: str | None) -> None:
    assert find_doi(text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://WWW.Example.ORG/Post?id=3#top", "https://example.org/Post?id=3"),
        ("http://example.org:80/a", "http://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("https://example.org:8443/a", "https://example.org:8443/a"),
        ("https://example.org/a?utm_source=x&b=2&UTM_medium=y", "https://example.org/a?b=2"),
        ("https://example.org", "https://example.org/"),
        ("ftp://example.org/a", None),
        ("not a url", None),
        ("https://example.org:99999/a", None),
    ],
)
def test_canonical_url(url: str, expected: str | None) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("<p>One</p><p>Two &amp; three</p>", "One Two & three"),
        ("a<script>alert(1)</script>b", "ab"),
        ("<style>p{}</style>Text", "Text"),
        ("x<br>y", "x y"),
        ('<a href="javascript:alert(1)" onclick="x()">link</a>', "link"),
        ("Caf&eacute; &lt;b&gt;", "Café <b>"),
        ("bad\x00\x0bchars\ufffe", "badchars"),
        ("  spaced \n\t out  ", "spaced out"),
        ("", ""),
    ],
)
def test_html_to_text(fragment: str, expected: str) -> None:
    assert html_to_text(fragment) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Multi-Modal Learning", "Multimodal learning"),
        ("Efficient  Hardware  Implementation", "efficient hardware implementation."),
        ("Pre-training — a Survey", "Pre training: A survey"),
        ("Schrödinger Bridges", "Schrodinger bridges"),
        ('Sch\\"odinger Bridges', "Schödinger bridges"),
        ("Retrieval & Generation", "Retrieval and generation"),
        ("EgoSurgery-Tool: A Dataset", "EgoSurgery–Tool - A dataset."),
    ],
)
def test_title_key_ignores_case_punctuation_dashes_accents(a: str, b: str) -> None:
    assert title_key(a) == title_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Scaling Laws, Part I", "Scaling Laws, Part II"),
        ("GPT-3 is neat", "GPT-4 is neat"),
        ("Attention for vision", "Attention for language"),
    ],
)
def test_title_key_keeps_what_tells_papers_apart(a: str, b: str) -> None:
    assert title_key(a) != title_key(b)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Maximilian Schöffel", "schoffel"),
        ("Schöffel, Maximilian", "schoffel"),
        ('Sch\\"offel, Maximilian', "schoffel"),
        ("M. Schoffel", "schoffel"),
        ("Martin Luther King Jr.", "king"),
        ("van der Berg, Jan", "berg"),
        ("Jan van der Berg", "berg"),
        ("", ""),
    ],
)
def test_surname_key(name: str, key: str) -> None:
    assert surname_key(name) == key


def test_clean_author_resolves_latex_accents_and_html() -> None:
    assert clean_author('Sch\\"offel, Maximilian') == "Schöffel, Maximilian"
    assert clean_author('<a href="http://arxiv.org/find/cs/1/au:+Luo_T">Tie Luo</a>') == "Tie Luo"


def test_find_code_urls() -> None:
    text = (
        "Code: https://github.com/org/repo.git and https://gitlab.com/a/b, also https://github.com/org/repo."
    )
    assert find_code_urls(text) == ("https://github.com/org/repo", "https://gitlab.com/a/b")
    assert find_code_urls("https://github.com/about/careers") == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), None),
        (datetime(2024, 11, 28, 5, tzinfo=UTC), datetime(2024, 11, 28, 5, tzinfo=UTC)),
        (datetime(2024, 11, 28, 5), datetime(2024, 11, 28, 5, tzinfo=UTC)),
        (datetime(2099, 1, 1, tzinfo=UTC), None),
        (None, None),
    ],
)
def test_plausible_date(value: datetime | None, expected: datetime | None) -> None:
    assert plausible_date(value, NOW) == expected


def test_normalize_entry_from_a_blog_roundup() -> None:
    entry = ParsedEntry(
        entry_id="https://mlroundup.example.org/posts/1",
        title="Paper of the day: Stochastic &amp; SketchRefine",
        link="https://mlroundup.example.org/posts/1?utm_source=rss",
        summary="<p>We read (arXiv:2411.17915v2). Code at https://github.com/x/y</p>",
        summary_is_html=True,
        authors=("Ann Author",),
        published=datetime(1, 1, 1, tzinfo=UTC),
    )
    s = normalize_entry(entry, source="blog", authority=Authority.OTHER, now=NOW)
    assert s.title == "Paper of the day: Stochastic & SketchRefine"
    assert (s.arxiv_id, s.version) == ("2411.17915", 2)
    assert s.keys == ("arxiv:2411.17915", "url:https://mlroundup.example.org/posts/1")
    assert s.published is None
    assert s.code_urls == ("https://github.com/x/y",)
    assert s.links["abs"] == "https://arxiv.org/abs/2411.17915"
    assert s.links["code"] == "https://github.com/x/y"
    assert author_keys(s.authors) == frozenset({"author"})
    assert s.abstract.startswith("We read")


def test_normalize_entry_arxiv_doi_becomes_the_arxiv_key_not_a_doi() -> None:
    entry = ParsedEntry(entry_id="x", title="T", link="https://doi.org/10.48550/arXiv.2411.17708")
    s = normalize_entry(entry, source="b", authority=Authority.OTHER, now=NOW)
    assert s.doi is None
    assert s.keys == ("arxiv:2411.17708",)


def test_front_page_links_are_not_identity_keys() -> None:
    entry = ParsedEntry(entry_id="x", title="T", link="https://example.org/")
    assert normalize_entry(entry, source="b", authority=Authority.OTHER, now=NOW).keys == ()


@given(st.text())
def test_html_to_text_never_leaves_markup_or_illegal_characters(text: str) -> None:
    out = html_to_text(text)
    assert not any(ord(c) < 32 and c not in "\t\n\r" for c in out)
    assert out == out.strip()


@given(st.text())
def test_clean_text_is_idempotent(text: str) -> None:
    assert clean_text(clean_text(text)) == clean_text(text)


@given(st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"])))
def test_title_key_is_stable_under_case_and_spacing(text: str) -> None:
    assume(text.upper().lower() == text.lower())  # a few letters (dotless i) do not round-trip case
    assume("\\" not in text)  # LaTeX commands are case-sensitive: \H is an accent, \h is not
    assert title_key(text) == title_key("  " + text.upper().replace(" ", "  - ") + ".")


@given(st.from_regex(r"\A\d{4}\.\d{5}\Z"), st.integers(1, 30))
def test_every_url_form_names_the_same_id(arxiv_id: str, version: int) -> None:
    forms = [
        f"https://arxiv.org/abs/{arxiv_id}v{version}",
        f"https://arxiv.org/pdf/{arxiv_id}v{version}.pdf",
        f"arXiv:{arxiv_id}v{version}",
        f"oai:arXiv.org:{arxiv_id}v{version}",
    ]
    assert {find_arxiv_id(f) for f in forms} == {(arxiv_id, version)}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Dirk WÃ¼bben", "Dirk Wübben"),
        ("Aurora RamÃ­rez", "Aurora Ramírez"),
        ("Schöffel", "Schöffel"),
        ("Ångström à la carte", "Ångström à la carte"),
    ],
)
def test_mojibake_is_repaired_and_real_accents_are_left_alone(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_arxiv_categories_drop_msc_and_acm_codes() -> None:
    entry = ParsedEntry(
        entry_id="x",
        title="T",
        categories=("math.AG", "14A20", "05E99 (Primary)", "I.2.7", "cs.CL", "astro-ph", "math.AG"),
    )
    arxiv = normalize_entry(entry, source="api", authority=Authority.ARXIV_API, now=NOW)
    assert arxiv.categories == ("math.AG", "cs.CL", "astro-ph")
    blog = normalize_entry(entry, source="blog", authority=Authority.OTHER, now=NOW)
    assert "I.2.7" in blog.categories


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a", "https://example.org/a"),
        ("  http://example.org/a b  ", "http://example.org/a%20b"),
        ("javascript:alert(1)", None),
        ("jav\tascript:alert(3)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("tag:diveintomark.org,2003-11-30:19", None),
        ("/relative/path", None),
        ('https://example.org/"onmouseover="x', None),
        ("mailto:someone@example.org", None),
        (None, None),
    ],
)
def test_web_url_keeps_only_http_links(url: str | None, expected: str | None) -> None:
    assert web_url(url) == expected


def test_hostile_sizes_are_bounded() -> None:
    entry = ParsedEntry(
        entry_id="x",
        title="T" * 50_000,
        summary="A " * 200_000,
        authors=("Ann Lee",) * 5000,
        link="javascript:alert(1)",
    )
    s = normalize_entry(entry, source="b", authority=Authority.OTHER, now=NOW)
    assert len(s.title) <= 1_000 and len(s.abstract) <= 20_000 and len(s.authors) <= 1_000
    assert s.link is None and "link" not in s.links and s.keys == ()


def test_overlong_categories_are_dropped() -> None:
    long = "category." * 12
    entry = ParsedEntry(entry_id="x", title="T", categories=(long, "ml"), primary_category=long)
    s = normalize_entry(entry, source="b", authority=Authority.OTHER, now=NOW)
    assert s.categories == ("ml",) and s.primary_category is None


def test_entries_postgresql_could_not_index_are_bounded() -> None:
    entry = ParsedEntry(
        entry_id="x" * 4000 + "\x00",
        title="漢" * 1000,
        link="https://example.org/" + "a" * 4000,
        summary="see arXiv:" + "a" * 70 + "/1234567",
    )
    s = normalize_entry(entry, source="b", authority=Authority.OTHER, now=NOW)
    assert s.entry_id.startswith("sha1:") and len(s.entry_id) < 100
    assert s.entry_id == normalize_entry(entry, source="b", authority=Authority.OTHER, now=NOW).entry_id
    assert len(s.title_key) <= 500 and s.link is None and s.arxiv_id is None and s.keys == ()


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("<svg/onload=alert(1)>Ada", "Ada"),
        ("<img/src=x/onerror=alert(1)>", ""),
        ("Ada <my-element>Lovelace</my-element>", "Ada Lovelace"),
        ("&lt;svg onload=alert(1)&gt;Bob", "Bob"),  # markup sent escaped: still markup to a reader
        ("&amp;lt;img src=x onerror=alert(1)&amp;gt;Eve", "Eve"),  # twice
        ("Bounds for $k<n$ and $m>2$", "Bounds for $k<n$ and $m>2$"),  # a formula, not a tag
        ("if x < y then", "if x < y then"),
        ("AT&T Labs", "AT&T Labs"),
        ("Caf&eacute; &amp; Co", "Café & Co"),
        ("O(n&lt;sup&gt;2&lt;/sup&gt;)", "O(n2)"),
    ],
)
def test_text_fields_are_plain_text_whatever_markup_they_came_in(raw: str, plain: str) -> None:
    from aggregator.ingest.normalize import plain_text

    assert plain_text(raw) == plain
    assert plain_text(plain_text(raw)) == plain_text(raw)  # plain text stays as it is


def test_names_titles_and_categories_reach_the_store_as_plain_text() -> None:
    entry = ParsedEntry(
        entry_id="urn:x:1",
        title="&lt;script&gt;alert(1)&lt;/script&gt;A title",
        link="https://example.org/1",
        authors=("&lt;svg/onload=alert(1)&gt;", "Grace <x-card>Hopper</x-card>"),
        categories=("<b>cs.CL</b>", "&lt;img src=x onerror=y&gt;ml"),
    )
    sighting = normalize_entry(entry, source="s", authority=Authority.OTHER, now=NOW)
    assert sighting.title == "A title"
    assert sighting.authors == ("Grace Hopper",)
    assert sighting.categories == ("cs.CL", "ml")


def test_every_text_field_leaves_as_plain_text() -> None:
    """Abstracts, comments, journal references and the primary category lose markup as titles do;
    a '<' that opens no tag is text and stays."""
    entry = ParsedEntry(
        entry_id="2501.00001",
        title="T",
        summary="<img src=x onerror=alert(1)>We bound $k<n$ and <script>alert(2)</script>prune.",
        comment="12 pages <svg/onload=alert(3)>",
        journal_ref="&lt;iframe src=//evil&gt;Proc. ACL",
        primary_category="cs.CL<script>alert(4)</script>",
        announce_type="new<b>",
    )
    s = normalize_entry(entry, source="api", authority=Authority.ARXIV_API, now=NOW)
    assert s.abstract == "We bound $k<n$ and prune."
    assert (s.comment, s.journal_ref, s.primary_category) == ("12 pages", "Proc. ACL", "cs.CL")
    assert s.announce_type == "new"
    junk = normalize_entry(
        ParsedEntry(entry_id="x", title="T", primary_category="<b>not a category</b>"),
        source="api",
        authority=Authority.ARXIV_API,
        now=NOW,
    )
    assert junk.primary_category is None


@pytest.mark.parametrize(
    "entry_id",
    [
        "<script>alert(1)</script>",
        "javascript:alert(1)",
        " JaVa\tScRiPt:alert(1)",
        "data:text/html,x",
        "a<img src=x>",
    ],
)
def test_ids_a_client_would_run_are_stored_as_digests(entry_id: str) -> None:
    s = normalize_entry(
        ParsedEntry(entry_id=entry_id, title="T"), source="b", authority=Authority.OTHER, now=NOW
    )
    again = normalize_entry(
        ParsedEntry(entry_id=entry_id, title="U"), source="b", authority=Authority.OTHER, now=NOW
    )
    assert s.entry_id.startswith("sha1:") and s.entry_id == again.entry_id


@pytest.mark.parametrize(
    "entry_id", ["urn:uuid:1225c695", "tag:example.org,2003:3.2397", "https://x.org/a?b=1<2"]
)
def test_ordinary_ids_are_kept_as_written(entry_id: str) -> None:
    s = normalize_entry(
        ParsedEntry(entry_id=entry_id, title="T"), source="b", authority=Authority.OTHER, now=NOW
    )
    assert s.entry_id == entry_id


def test_code_links_from_a_source_are_web_links_or_nothing() -> None:
    entry = ParsedEntry(
        entry_id="2501.00001",
        title="T",
        code_urls=("data:text/html,<script>alert(1)</script>", "https://github.com/a/b"),
    )
    s = normalize_entry(entry, source="hf", authority=Authority.HUGGING_FACE, now=NOW)
    assert s.code_urls == ("https://github.com/a/b",)


@pytest.mark.parametrize(
    "raw", ["<img src=x onerror=alert(1) <b>x</b>", "<svg/onload=alert(1) <i>t</i>", "a <script src=//x <p>b"]
)
def test_an_unclosed_tag_is_still_markup_to_strip(raw: str) -> None:
    """A browser reads "<img ... <b>" as one tag: so does the cleaning, instead of keeping it as text."""
    s = normalize_entry(
        ParsedEntry(entry_id="x", title=raw, summary=raw), source="b", authority=Authority.OTHER, now=NOW
    )
    for text in (s.title, s.abstract):
        assert "<img" not in text and "<svg" not in text and "<script" not in text, text


def test_a_script_url_id_is_found_past_leading_spaces() -> None:
    s = normalize_entry(
        ParsedEntry(entry_id=" " * 70 + "javascript:alert(1)", title="T"),
        source="b",
        authority=Authority.OTHER,
        now=NOW,
    )
    assert s.entry_id.startswith("sha1:")


@pytest.mark.parametrize("text", ["if p <q then r", "a <b c", "We bound $k<n$ here", "x < y and y > z"])
def test_a_less_than_sign_that_opens_no_tag_stays(text: str) -> None:
    entry = ParsedEntry(entry_id="x", title=text, summary=text)
    s = normalize_entry(entry, source="b", authority=Authority.OTHER, now=NOW)
    assert s.title == text and s.abstract == text


def test_an_entry_that_only_says_when_it_was_updated_is_dated_by_that() -> None:
    """Atom requires <updated>, not <published>: an old post must not look new at the top of a feed."""
    when = datetime(2024, 3, 1, tzinfo=UTC)
    s = normalize_entry(
        ParsedEntry(entry_id="x", title="T", updated=when), source="b", authority=Authority.OTHER, now=NOW
    )
    assert s.published == when
    both = ParsedEntry(entry_id="y", title="T", published=datetime(2024, 1, 1, tzinfo=UTC), updated=when)
    assert normalize_entry(both, source="b", authority=Authority.OTHER, now=NOW).published == both.published


def test_xml_legal_drops_exactly_the_characters_xml_cannot_carry() -> None:
    # Over every code point: its fast path (a printable text is returned as it is) must never
    # let through a character the regex would drop, nor drop one XML allows.
    for point in range(0x110000):
        char = chr(point)
        kept = xml_legal(f"a{char}b")
        assert kept == ("ab" if XML_ILLEGAL.match(char) else f"a{char}b"), hex(point)
    assert xml_legal("line one\nline\ttwo\r") == "line one\nline\ttwo\r"  # unprintable, legal
    assert xml_legal("bell\x07 and \ufffe gone") == "bell and  gone"
    assert xml_legal(None) == xml_legal("") == ""


@given(st.text())
def test_xml_legal_is_the_regex_whatever_the_text(text: str) -> None:
    assert xml_legal(text) == XML_ILLEGAL.sub("", text)
