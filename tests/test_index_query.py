"""What a paper puts into the full-text index, and narrowing through topic references: pure,
without a store (tests/test_search_index.py runs the index itself)."""

from __future__ import annotations

from dataclasses import astuple

from aggregator.topics.document import Document
from aggregator.topics.index_query import (
    MAX_ATOM,
    UNMATCHABLE,
    AnyOf,
    IndexedPaper,
    Tokens,
    facet_token,
    indexed_fields,
    indexed_paper,
    narrow,
)
from aggregator.topics.query import parse_query


def tokens(entry: IndexedPaper) -> list[list[str]]:
    """Each field of an index entry as the index's tokenizer splits it."""
    return [field.split() for field in astuple(entry)]


def test_an_entry_holds_each_facet_as_one_token() -> None:
    entry = indexed_fields("T", "", [], ["cs.LG", "cs.AR"], ["hf-daily"], ["2401.00001"])
    assert set(entry.facets.split()) == {
        facet_token("category", "cs.LG"),
        facet_token("category", "cs.AR"),
        facet_token("source", "hf-daily"),
        facet_token("id", "2401.00001"),
    }


def test_an_entry_marks_a_paper_no_ad_hoc_query_can_match() -> None:
    """Seen only in arXiv listings, with no announcement type (the matcher's `announce` rule)."""
    listed_only = Document.build(title="T", only_listings=True)
    announced = Document.build(title="T", only_listings=True, announce_types=("new",))
    assert UNMATCHABLE in indexed_paper(listed_only).facets.split()
    assert UNMATCHABLE not in indexed_paper(announced).facets.split()
    assert UNMATCHABLE in indexed_fields("T", "", [], [], [], [], unmatchable=True).facets.split()
    assert UNMATCHABLE not in indexed_fields("T", "", [], [], [], []).facets.split()


def test_the_entry_of_a_document_holds_the_tokens_of_its_text() -> None:
    text = ("Pruning N:M Sparsity", "Naïve résumé of GPT-4o.", ["Yann LeCun", "Zoë Ångström"])
    facets = (["cs.LG"], ["hf-daily"], ["2401.00001"])
    doc = Document.build(
        title=text[0],
        abstract=text[1],
        authors=text[2],
        categories=facets[0],
        sources=facets[1],
        ids=facets[2],
    )
    assert tokens(indexed_paper(doc)) == tokens(indexed_fields(*text, *facets))


def test_an_atom_longer_than_the_index_keeps_is_cut_and_the_others_kept() -> None:
    assert tokens(indexed_fields("w" * (MAX_ATOM + 50) + " tail", "short words", [], [], [], []))[:2] == [
        ["w" * MAX_ATOM, "tail"],
        ["short", "words"],
    ]


def test_narrowing_follows_references_through_other_topics() -> None:
    topics = {"outer": "topic:inner OR vision", "inner": "LLM*"}
    assert narrow(parse_query("topic:outer"), topics) == AnyOf(
        (Tokens("text", ("llm",), prefix=True), Tokens("text", ("vision",)))
    )


def test_a_cycle_of_references_narrows_to_anything() -> None:
    """The config refuses cycles; the index leaves one to the matcher rather than loop."""
    assert narrow(parse_query("topic:a AND x"), {"a": "topic:b OR y", "b": "topic:a OR z"}) == Tokens(
        "text", ("x",)
    )
