"""The query language's grammar: every syntax form, and errors that point at the place."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.topics.query import (
    MAX_NESTING,
    MAX_PREFIXES,
    MAX_QUERY,
    MAX_TERMS,
    And,
    Not,
    Or,
    QueryError,
    Term,
    TopicRef,
    check_budget,
    check_topics,
    parse_query,
    positive_refs,
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


# --- forms, errors and limits that mutation testing found untested (docs/testing.md) -----------


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        (
            'title:(prun* OR "language model")',
            Or((Term("title", "prun", prefix=True), Term("title", "language model", phrase=True))),
        ),
        ("title:(a -b)", And((w("a", "title"), Not(w("b", "title"))))),
        ("title:N:M", w("N:M", "title")),  # a field name ends at the first colon
        ("LaTeX*", Term(None, "LaTeX", prefix=True)),  # a prefix keeps every letter before its star
    ],
)
def test_fields_and_prefixes_reach_every_term(query: str, tree: object) -> None:
    assert parse_query(query) == tree


@pytest.mark.parametrize(
    "query",
    ["prun*", "title:prun*", '"language model"', '"language model*"', 'title:"language model*"', "N:M"],
)
def test_a_term_prints_as_the_query_wrote_it(query: str) -> None:
    """As the matcher explains a match: `title:prun* in title`."""
    assert str(parse_query(query)) == query


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ("", "empty query", None),
        ("title:", "empty term at column 1", 1),
        ("prun* *", "empty term at column 7", 7),
        ('""', "empty term at column 1", 1),
        ('a title:""', "empty term at column 9", 9),  # the empty phrase, not its field
        ('titel:"x"', "unknown field 'titel' (did you mean 'title'?) at column 1", 1),
        ("a titel:(b OR c)", "unknown field 'titel' (did you mean 'title'?) at column 3", 3),
        (
            "prun* or sparse",
            "'or' is not an operator: write OR in capitals, or \"or\" in quotes to search the word"
            " at column 7",
            7,
        ),
        ("AND a", "'AND' needs a term on each side at column 1", 1),
        ("-NOT a", "unexpected 'NOT' at column 2", 2),
        ("a - b", "unexpected character '-' at column 3", 3),
    ],
)
def test_an_error_names_the_problem_and_its_column(query: str, message: str, column: int | None) -> None:
    with pytest.raises(QueryError) as err:
        parse_query(query)
    assert (str(err.value), err.value.column) == (message, column)


@pytest.mark.parametrize(
    "query",
    [
        "a " * (MAX_QUERY // 2),  # exactly as long as allowed
        "NOT " * MAX_NESTING + "a",
        "(" * MAX_NESTING + "a" + ")" * MAX_NESTING,
        " ".join(["(a OR b)"] * (MAX_NESTING + 10)),  # many groups, none inside another
    ],
)
def test_a_query_at_the_limits_parses(query: str) -> None:
    parse_query(query)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("a " * (MAX_QUERY // 2) + "b", f"query longer than {MAX_QUERY} characters"),
        ("NOT " * (MAX_NESTING + 1) + "a", f"query nested more than {MAX_NESTING} deep"),
        (
            "(" * (MAX_NESTING + 1) + "a" + ")" * (MAX_NESTING + 1),
            f"query nested more than {MAX_NESTING} deep",
        ),
        ("NOT " * 100 + "a" + " -b" * 50, f"query nested more than {MAX_NESTING} deep"),
    ],
)
def test_a_query_past_the_limits_is_refused_with_the_limit(query: str, message: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_query(query)
    assert str(err.value) == message


def test_a_query_may_have_as_many_terms_and_wildcards_as_allowed_negated_ones_included() -> None:
    words = [f"w{n}" for n in range(MAX_TERMS - 1)]
    check_budget(parse_query(" OR ".join(words) + " -x"))
    with pytest.raises(QueryError) as err:
        check_budget(parse_query(" OR ".join(words) + " OR y -x"))
    assert str(err.value) == f"query has {MAX_TERMS + 1} terms; at most {MAX_TERMS} are allowed"
    prefixes = [f"w{n}*" for n in range(MAX_PREFIXES - 1)]
    check_budget(parse_query(" OR ".join(prefixes) + " -x*"))
    with pytest.raises(QueryError) as err:
        check_budget(parse_query(" OR ".join(prefixes) + " OR y* -x*"))
    assert str(err.value) == f"query has {MAX_PREFIXES + 1} wildcards; at most {MAX_PREFIXES} are allowed"


def test_positive_refs_skip_negated_ones() -> None:
    assert positive_refs(parse_query("topic:a OR -topic:b NOT (topic:c OR -topic:d)")) == ["a", "d"]


@pytest.mark.parametrize(
    ("topics", "problems"),
    [
        (
            [("a", "x AND", "y AND")],
            [
                (0, "query", "query ends too early (an operator needs something after it) at column 5"),
                (0, "exclude", "query ends too early (an operator needs something after it) at column 5"),
            ],
        ),
        ([("a", "x -topic:zzz", None)], [(0, "query", "topic:zzz names no topic")]),
    ],
)
def test_check_topics_reports_query_and_exclude_and_negated_references(
    topics: list[tuple[str, str, str | None]], problems: list[tuple[int, str, str]]
) -> None:
    assert check_topics(topics) == problems
