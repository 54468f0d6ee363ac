"""LaTeX in titles, names and abstracts read as Unicode text (ingest/latex.py), on real arXiv strings."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pylatexenc import latexwalker

from aggregator.config import load_config
from aggregator.ingest import latex
from aggregator.ingest.latex import latex_in_prose, latex_to_text
from aggregator.ingest.normalize import clean_author, normalize_entry
from aggregator.ingest.parse import parse_feed
from aggregator.types import Authority, ParsedEntry

ROOT = Path(__file__).parent.parent
NOW = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [  # titles of the bundled arXiv listing and API page, as arXiv wrote them
        ("The Smith normal form of the Q-walk matrix of the Dynkin graph $A_n$", "... graph A_n"),
        ("On Hamilton paths in vertex-transitive graphs of order $10p$", "... of order 10p"),
        ("$H^3$Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs", "H^3Fusion: Helpful, ..."),
        (
            "A Precis\\~ao da Metrologia Qu\\^antica: Limite de Cram\\'er-Rao, Informa\\c{c}\\~ao",
            "A Precisão da Metrologia Quântica: Limite de Cramér-Rao, Informação",
        ),
        ("Milky Way satellite planes are consistent with {\\Lambda}CDM", "... consistent with ΛCDM"),
        (
            'The exotic structure of the spectral $\\zeta$-function for the Schr\\"odinger operator',
            "The exotic structure of the spectral ζ-function for the Schrödinger operator",
        ),
        ("On an Erd\\H{o}s-Szekeres Game", "On an Erdős-Szekeres Game"),
        ("comparison with observations at $z \\sim$ 0.3", "... observations at z ∼ 0.3"),
        ('P\\"oschl--Teller potential', "Pöschl–Teller potential"),
        ("Vision & Language: 50% of C# models", "Vision & Language: 50% of C# models"),
        ("$\\mathrm{MoE}$ at 1\\% of the cost", "MoE at 1% of the cost"),
        ("A plain title, untouched", "A plain title, untouched"),
    ],
)
def test_titles(raw: str, expected: str) -> None:
    converted = latex_to_text(raw)
    if expected.startswith("... "):
        assert converted.endswith(expected[4:]), converted
    elif expected.endswith(" ..."):
        assert converted.startswith(expected[:-4]), converted
    else:
        assert converted == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [  # author names of the bundled feeds, half converted or not at all
        ("Serdar Kad\\ioğlu", "Serdar Kadıoğlu"),
        ("Kad{\\i}o\\u{g}lu", "Kadıoğlu"),
        ("Przemys\\law Olbratowski", "Przemysław Olbratowski"),
        ("Pawe\\l Niedbalski", "Paweł Niedbalski"),
        ("Sofie Castro Holb\\aek", "Sofie Castro Holbæk"),
        ("Jaros\\law Żygierewicz", "Jarosław Żygierewicz"),
        ("{\\L}ukasz Kaiser", "Łukasz Kaiser"),
        ('J\\"urgen Schmidhuber', "Jürgen Schmidhuber"),
        ("Ann Lee", "Ann Lee"),
    ],
)
def test_author_names(raw: str, expected: str) -> None:
    assert clean_author(raw) == expected


def test_money_in_a_blog_title_is_not_math() -> None:
    assert latex_to_text("Pricing: $5 or $10 a month", math=False) == "Pricing: $5 or $10 a month"
    entry = ParsedEntry(entry_id="x", title="Pricing: $5 or $10 a month")
    assert normalize_entry(entry, source="b", authority=Authority.OTHER, now=NOW).title == entry.title


def test_abstracts_read_their_prose_and_keep_their_math() -> None:
    raw = (
        "We use ``quotes'' and 50\\% of $O(n^2)$ with \\emph{et al.} and Schr\\\"odinger, "
        "{\\Lambda}CDM and Erd\\H{o}s; $\\mathcal{O}(\\log n)$ stays."
    )
    assert latex_in_prose(raw) == (
        "We use “quotes” and 50% of $O(n^2)$ with et al. and Schrödinger, "
        "ΛCDM and Erdős; $\\mathcal{O}(\\log n)$ stays."
    )


@pytest.mark.parametrize(
    "raw",
    ["\\begin{itemize}", "\\href{a}", "{\\", "\\" * 50, "$\\frac{$", "\\cite{" + "{" * 200, "$" * 999],
)
def test_broken_latex_is_kept_as_written(raw: str) -> None:
    """pylatexenc raises or prints nothing on some input: the text as written is better."""
    for convert in (latex_to_text, latex_in_prose):
        out = convert(raw)
        assert isinstance(out, str) and (out.strip() or not raw.strip())


def test_hostile_sizes_stay_bounded() -> None:
    unclosed = ["A " + "\\cite[" * 24, "\\sqrt[" * 24, "\\frac{" * 24, "We {\\em " + "\\cite[" * 24 + "} x."]
    for raw in ("\\textbf{" * 3000 + "x", "$" + "\\alpha " * 5000 + "$", "{\\" * 4000, *unclosed):
        start = time.process_time()
        latex_to_text(raw)
        latex_in_prose(raw)
        assert time.process_time() - start < 5  # a bound on hostile input, not a speed figure


def test_the_parser_reads_one_table_of_macros_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pylatexenc walker given no table of macros builds the whole default one again (an
    eighth of normalising the arXiv listing): every segment is parsed with the table made once."""
    built: list[int] = []
    make = latexwalker.get_default_latex_context_db
    monkeypatch.setattr(latexwalker, "get_default_latex_context_db", lambda: built.append(1) or make())
    latex._convert.cache_clear()
    assert latex_to_text(r"Schr\"odinger and $\alpha$-Erd\H{o}s") == "Schrödinger and α-Erdős"
    assert latex_in_prose(r"a {\em new} ``bound''") == "a new “bound”"
    assert built == []


@given(st.text(alphabet=st.sampled_from("ab \\{}$^_`'\"~&%#lioé"), max_size=60))
def test_any_text_converts_without_raising(text: str) -> None:
    assert isinstance(latex_to_text(text), str)
    assert isinstance(latex_in_prose(text), str)


@given(st.text(alphabet=st.characters(blacklist_characters="\\$`"), max_size=80))
def test_text_without_latex_is_untouched(text: str) -> None:
    assert latex_to_text(text) == text and latex_in_prose(text) == text


def test_no_latex_is_left_in_any_bundled_title_or_name() -> None:
    """Every file: source of the default config (the bundled snapshots), through parse and
    normalise: no command, no `$` math in titles or names, no TeX quotes in abstracts."""
    config = load_config(ROOT / "config" / "aggregator.yaml", env={})
    papers = 0
    for source in config.sources:
        if not source.url.startswith("file:"):
            continue
        feed = parse_feed(Path(source.url.removeprefix("file://")).read_bytes(), kind=source.kind)
        for entry in feed.entries:
            s = normalize_entry(entry, source=source.name, authority=feed.authority, now=NOW)
            papers += 1
            for text in (s.title, *s.authors):
                assert not re.search(r"\\[A-Za-z]|\$", text), (source.name, text)
            assert "``" not in s.abstract, (source.name, s.abstract[:80])
            assert s.authors, (source.name, s.title)
    assert papers > 1_500


@pytest.mark.parametrize(
    "raw",
    [
        "$<$img src=x onerror=alert(1)$>$ A study",
        "\\ensuremath{<}svg onload=alert(1)\\ensuremath{>}",
        "\\textless{}script\\textgreater{}alert(1)",
    ],
)
def test_latex_never_spells_out_markup(raw: str) -> None:
    """LaTeX that writes `<` and `>` must not turn into a tag once read."""
    for converted in (latex_to_text(raw), latex_in_prose(raw), clean_author(raw)):
        assert not re.search(r"<[A-Za-z/!?]", converted), converted
    entry = ParsedEntry(entry_id="x", title=raw, summary=raw, authors=(raw,))
    s = normalize_entry(entry, source="api", authority=Authority.ARXIV_API, now=NOW)
    for text in (s.title, s.abstract, *s.authors):
        assert not re.search(r"<[A-Za-z/!?]", text), text
