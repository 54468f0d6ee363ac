"""The query language's grammar: every syntax form, and errors that point at the place."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.topics.query import (
    And,
    Not,
    Or,
    QueryError,
    Term,
    TopicRef,
    check_topics,
    parse_query,
    positive_terms,
)


def w(text: str, field: str | None = None) -> Term:
    return Term(field, text)


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("pruning", w("pruning")),
        ("prun*", Term(None, "prun", prefix=True)),
        ('"language model"', Term(None, "language model", phrase=True)),
        ('"language model*"', Term(None, "language model", prefix=True, phrase=True)),
        ('"semi-structured"', Term(None, "semi-structured", phrase=True)),
        ("a AND b", And((w("a"), w("b")))),
        ("a b", And((w("a"), w("b")))),  # juxtaposition is AND
        ("a OR b", Or((w("a"), w("b")))),
        ("NOT a", Not(w("a"))),
        ("-a", Not(w("a"))),
        ("a -b", And((w("a"), Not(w("b"))))),
        ("a AND NOT b", And((w("a"), Not(w("b"))))),
        ("a OR b c", Or((w("a"), And((w("b"), w("c")))))),  # AND binds tighter than OR
        ("(a OR b) c", And((Or((w("a"), w("b"))), w("c")))),
        ("NOT (a OR b)", Not(Or((w("a"), w("b"))))),
        ("ANDROID OR NOTION", Or((w("ANDROID"), w("NOTION")))),
        ("title:pruning", w("pruning", "title")),
        ("abstract:prun*", Term("abstract", "prun", prefix=True)),
        ('title:"language model"', Term("title", "language model", phrase=True)),
        ("TITLE:x", w("x", "title")),
        ("author:lecun", w("lecun", "author")),
        ("category:cs.CL", w("cs.CL", "category")),
        ("category:cs.*", Term("category", "cs.", prefix=True)),
        ("source:hf-daily", w("hf-daily", "source")),
        ("id:2409.17481", w("2409.17481", "id")),
        ("title:(a OR b)", Or((w("a", "title"), w("b", "title")))),
        ("topic:llm-pruning", TopicRef("llm-pruning")),
        ("N:M", w("N:M")),
        ("2:4", w("2:4")),
        ("GPT-4o", w("GPT-4o")),
        ("k-NN", w("k-NN")),
        ('"title:x"', Term(None, "title:x", phrase=True)),  # quotes make it literal
        ("cs.CL", w("cs.CL")),
    ],
)
def test_every_syntax_form(query: str, tree: object) -> None:
    assert parse_query(query) == tree


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty query"),
        ("   ", "empty query"),
        ("(prun* OR sparsity", "unbalanced parenthesis: 1 '(' not closed at column 1"),
        ("a AND (b OR (c)", "unbalanced parenthesis: 1 '(' not closed at column 7"),
        ("a)", "unbalanced parenthesis: ')' without '(' at column 2"),
        ('"language model', "unterminated quote at column 1"),
        ("titel:pruning", "unknown field 'titel' (did you mean 'title'?) at column 1"),
        ("prun* autor:smith", "unknown field 'autor' (did you mean 'author'?) at column 7"),
        ("zzz:x", "unknown field 'zzz' (fields: title, abstract, author, category, source, id, topic)"),
        ("a AND", "query ends too early"),
        ("NOT", "query ends too early"),
        ("OR a", "'OR' needs a term on each side at column 1"),
        ("a OR OR b", "'OR' needs a term on each side at column 6"),
        ("a AND OR b", "'OR' needs a term on each side at column 7"),
        ("()", "empty parentheses at column 2"),
        ("title:", "empty term"),
        ('""', "empty term"),
        (
            "prun* or sparse",
            "'or' is not an operator: write OR in capitals, or \"or\" in quotes to search the word",
        ),
        ("a and b", "'and' is not an operator: write AND in capitals"),
        ("pruning not vision", "'not' is not an operator: write NOT in capitals"),
    ],
)
def test_errors_point_at_the_place(query: str, message: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_query(query)
    assert message in str(err.value)


def test_positive_terms_skip_negated_ones() -> None:
    tree = parse_query("(a OR b) -c NOT (d OR -e)")
    assert [t.text for t in positive_terms(tree)] == ["a", "b", "e"]


@pytest.mark.parametrize(
    ("topics", "problems"),
    [
        ([("a", "x", None), ("b", "topic:a OR y", None)], []),
        (
            [("a", "topic:b", None), ("b", "topic:a", None)],
            [
                (0, "query", "topics refer to each other in a cycle: a -> b -> a"),
                (1, "query", "topics refer to each other in a cycle: b -> a -> b"),
            ],
        ),
        ([("a", "topic:a", None)], [(0, "query", "topics refer to each other in a cycle: a -> a")]),
        (
            [("a", "topic:llm-prunning", None), ("llm-pruning", "x", None)],
            [(0, "query", "topic:llm-prunning names no topic (did you mean 'llm-pruning'?)")],
        ),
        (
            [("a", "x", "y AND")],
            [(0, "exclude", "query ends too early (an operator needs something after it) at column 5")],
        ),
    ],
)
def test_check_topics(
    topics: list[tuple[str, str, str | None]], problems: list[tuple[int, str, str]]
) -> None:
    assert check_topics(topics) == problems


@given(st.text(alphabet=st.sampled_from(list('ab ()"-*:ANDORT')), max_size=30))
def test_any_input_parses_or_raises_query_error(text: str) -> None:
    try:
        parse_query(text)
    except QueryError as exc:
        assert str(exc)


@pytest.mark.parametrize("query", ["NOT " * 300 + "a", "(" * 100 + "a" + ")" * 100, "a " * 3000])
def test_absurd_queries_are_refused_plainly(query: str) -> None:
    with pytest.raises(QueryError):
        parse_query(query)


@pytest.mark.parametrize("query", ['"or"', 'title:"and"', "or*", "orange", "title:not"])
def test_the_words_and_or_not_can_still_be_searched(query: str) -> None:
    parse_query(query)
