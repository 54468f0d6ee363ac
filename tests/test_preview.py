"""What a query would match, from stored papers: counts per week, the newest few, marked titles
(pure: tests/test_topics_store.py runs `aggregator preview` and `/api/preview` on a store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.records import PaperText
from aggregator.topics.preview import highlight, marked, preview
from aggregator.topics.query import parse_query, positive_terms

MONDAY = datetime(2026, 11, 23, 9, tzinfo=UTC)  # 2026-W48


def stored(paper_id: str, title: str, published: datetime, **fields: object) -> tuple:
    return paper_id, title, published, PaperText(title=title, **fields)  # type: ignore[arg-type]


def test_a_preview_counts_matches_by_week_newest_first_and_samples_the_newest() -> None:
    papers = [
        stored("a", "Pruning Language Models", MONDAY - timedelta(days=7)),
        stored("b", "Pruning Vision Models", MONDAY),
        stored("c", "Sparse Attention", MONDAY + timedelta(days=1)),
        stored("d", "Pruning, Again", MONDAY + timedelta(days=2)),
    ]
    found = preview("prun*", papers, sample=2)
    assert (found.query, found.total) == ("prun*", 3)
    assert found.weeks == (("2026-W48", 2), ("2026-W47", 1))
    assert [(hit.id, hit.score, hit.matched, hit.highlights) for hit in found.sample] == [
        ("d", 3.0, ("prun* in title",), ((0, 7),)),
        ("b", 3.0, ("prun* in title",), ((0, 7),)),
    ]


def test_a_preview_applies_the_exclude_and_announce_it_is_given() -> None:
    papers = [
        stored("new", "Pruning Anew", MONDAY, announce_types=("new",), only_listings=True),
        stored("again", "Pruning Revisited", MONDAY, announce_types=("replace",), only_listings=True),
    ]
    assert {hit.id for hit in preview("prun*", papers).sample} == {"new", "again"}  # every kind, unless told
    assert [hit.id for hit in preview("prun*", papers, announce=("new", "cross")).sample] == ["new"]
    assert [hit.id for hit in preview("prun*", papers, exclude="revisited").sample] == ["new"]


TITLE = "Pruning Large Language Models"


@pytest.mark.parametrize(
    ("query", "spans"),
    [
        ("title:pruning", ((0, 7),)),
        ("abstract:large OR pruning", ((0, 7),)),  # only what the title holds is marked
        ('"--" OR models', ((23, 29),)),  # a term of no atoms marks nothing; the last word is marked
        ("model", ()),  # a word, not a prefix
        ("models", ((23, 29),)),
        ('"large language" OR "language models"', ((8, 29),)),  # overlapping marks are one
        ("prun* OR pruning", ((0, 7),)),
    ],
)
def test_highlights_mark_where_the_title_holds_a_term(query: str, spans: tuple) -> None:
    assert highlight(TITLE, positive_terms(parse_query(query))) == spans


def test_marked_wraps_each_span_and_keeps_the_rest() -> None:
    assert marked(TITLE, ((0, 7), (14, 29))) == "[Pruning] Large [Language Models]"
    assert marked(TITLE, ((8, 13),), "<b>", "</b>") == "Pruning <b>Large</b> Language Models"
