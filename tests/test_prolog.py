"""Entity declarations never survive to a parser, however the DOCTYPE is spelled: generated
variants (quotes, brackets, comments, processing instructions, parameter entities, nesting,
broken prologs) parse in bounded time and memory, and no entry carries expanded text."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.prolog import defuse

PLAIN = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
NETSCAPE = (
    b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
    b'"http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel/></rss>'
)


def feed(doctype: str, reference: str) -> bytes:
    item = (
        f"<item><title>A {reference}</title><description>{reference}{reference}</description>"
        "<guid>urn:x:1</guid></item>"
    )
    return (
        f'<?xml version="1.0"?>{doctype}<rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link>{item}</channel></rss>"
    ).encode()


def test_documents_that_declare_nothing_pass_untouched() -> None:
    assert defuse(PLAIN) is PLAIN
    assert defuse(NETSCAPE) is NETSCAPE  # an external DTD only: feedparser knows it, reads nothing
    assert defuse(b'{"version": "https://jsonfeed.org/version/1.1", "items": []}').startswith(b"{")
    assert defuse(b"<html><body>not a feed</body></html>").startswith(b"<html>")


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE r [<!ENTITY e "]>x">]>',  # the subset's end inside an entity value
        '<!DOCTYPE r SYSTEM "a>b" [<!ENTITY e "x">]>',  # '>' inside the SYSTEM identifier
        "<!DOCTYPE r [<!ENTITY e 'say \"]>\"'>]>",
        '<!DOCTYPE r [<!-- ]> --><!ENTITY e "x"><?pi ]> ?>]>',
        '<!DOCTYPE r [<!ENTITY % p "x"><!ENTITY e "y">]>',
    ],
)
def test_the_declarations_that_fooled_a_pattern_are_removed(doctype: str) -> None:
    body = feed(doctype, "&e;")
    defused = defuse(body)
    assert b"ENTITY" not in defused and b"<!DOCTYPE" not in defused
    assert defused.startswith(b'<?xml version="1.0"?><rss')
    parsed = parse_feed(body)
    assert parsed.entries and parsed.entries[0].title.removeprefix("A").strip() in ("", "&e;")


def test_utf16_and_single_byte_encodings_are_read_as_declared() -> None:
    text = '<?xml version="1.0" encoding="{}"?><!-- c --><!DOCTYPE r [<!ENTITY a "]>x">]><rss>&a;</rss>'
    for encoding in ("utf-16", "iso-8859-1", "windows-1252", "koi8-r"):
        body = text.format(encoding).encode(encoding)
        assert defuse(body).decode(encoding) == text.format(encoding).replace(
            '<!DOCTYPE r [<!ENTITY a "]>x">]>', ""
        )


def test_a_broken_prolog_that_declares_an_entity_is_refused() -> None:
    for broken in (
        '<!DOCTYPE r [<!ENTITY a "x" <!ENTITY b "y">]>',  # a declaration left open
        '<!DOCTYPE r [<!entity a "x">]>',  # lower case: not XML, but a loose parser may take it
        '<!DOCTYPE r [<!ENTITY a "x">',  # the subset never closed
    ):
        with pytest.raises(ParseError, match="entity declarations"):
            defuse(feed(broken, "&a;"))


# --- generated variants ------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "lol", "x1", "e"])
quotes = st.sampled_from(['"', "'"])
tricky = st.lists(
    st.sampled_from(["]>", ">", "]", "[", "<!--", "-->", "?>", "<?", "%", "x" * 50, "<b>", "&#60;", " "]),
    max_size=6,
).map("".join)


@st.composite
def declarations(draw: st.DrawFn) -> tuple[str, str]:
    """An internal subset (entities nested as a 'billion laughs', values with brackets and
    quotes, comments, PIs, parameter entities, external ids with '>'), and the reference that
    would expand the most."""
    depth = draw(st.integers(min_value=1, max_value=8))
    parts: list[str] = []
    previous = None
    for level in range(depth):
        quote = draw(quotes)
        value = draw(tricky).replace(quote, "")
        if previous is not None:
            value += f"&{previous};" * draw(st.integers(min_value=2, max_value=10))
        name = f"{draw(names)}{level}"
        parts.append(f"<!ENTITY {name} {quote}{value}{quote}>")
        previous = name
        extra = draw(st.sampled_from(["", "comment", "pi", "param", "system"]))
        if extra == "comment":
            parts.append(f"<!-- {draw(tricky).replace('--', '')} -->")
        elif extra == "pi":
            parts.append(f"<?p {draw(tricky).replace('?>', '')} ?>")
        elif extra == "param":
            parts.append(f"<!ENTITY % p{level} {quote}{value.replace('%', '')}{quote}>")
        elif extra == "system":
            where = draw(tricky).replace('"', "")
            parts.append(f'<!ENTITY s{level} SYSTEM "file:///etc/passwd?{where}">')
    subset = "".join(parts)
    if draw(st.booleans()):  # broken on purpose: a bracket, a quote or a '>' lost
        cut = draw(st.integers(min_value=0, max_value=max(0, len(subset) - 1)))
        subset = subset[:cut] + subset[cut + 1 :]
    external = draw(st.sampled_from(["", ' SYSTEM "a>b]"', " PUBLIC '-//X//]>' 'y>z'"]))
    return f"<!DOCTYPE rss{external} [{subset}]>", f"&{previous};"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declared=declarations())
def test_no_doctype_variant_expands_or_takes_long(declared: tuple[str, str]) -> None:
    doctype, reference = declared
    body = feed(doctype, reference)
    tracemalloc.start()
    began = time.perf_counter()
    try:
        parsed = parse_feed(body)
    except ParseError:
        parsed = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - began < 5
    assert peak < 20_000_000
    if parsed is not None:
        for entry in parsed.entries:
            assert len(entry.title) + len(entry.summary) < 2 * len(body)
            assert "root:" not in entry.title + entry.summary
