"""Matching rules, table by table: paper in, (matched, score, explanation) out."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aggregator.records import PaperText
from aggregator.topics.document import Document, atom_text, atoms
from aggregator.topics.match import AD_HOC, Tagger, fingerprints, query_tagger
from aggregator.types import TopicSpec


def paper() -> Document:
    """The sample paper, made in each test: one made at import would be made before mutation
    testing switches a mutant of Document.build on (docs/testing.md)."""
    return Document.build(
        title="Pruning Large Language Models with N:M Sparsity",
        abstract=(
            "We study semi-structured sparsity for LLM-based systems, compare with GPT-4o and k-NN "
            "baselines, and report 2:4 results on the Café benchmark. Quantisation is future work."
        ),
        authors=["Yann LeCun", "Zoë Ångström"],
        categories=["cs.CL", "cs.LG"],
        sources=["arxiv-cs-cl", "hf-daily"],
        ids=["2409.17481", "2409.17481v2", "10.1145/123"],
    )


def matches(query: str, doc: Document | None = None, **options: object) -> bool:
    return bool(Tagger([TopicSpec("t", query, **options)]).tag(doc or paper()))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # words: case- and accent-insensitive, whole words only
        ("pruning", True),
        ("PRUNING", True),
        ("prune", False),
        ("cafe", True),
        ("CAFÉ", True),
        ("language", True),
        ("langu", False),
        # prefixes
        ("prun*", True),
        ("spars*", True),
        ("quantiz*", False),
        ("quantis*", True),
        # phrases: words in order; hyphen and space interchangeable
        ('"language models"', True),
        ('"models language"', False),
        ('"large language model*"', True),
        ('"semi-structured"', True),
        ('"semi structured sparsity"', True),
        ('"language-models"', True),
        # a hyphen inside a word belongs to it, and a word matches a part of a compound
        ("GPT-4o", True),
        ("gpt-4o", True),
        ("GPT-4", False),
        ("k-NN", True),
        ("LLM", True),
        ("structured", True),
        # x:y tokens
        ("N:M", True),
        ("n:m", True),
        ("2:4", True),
        ("1:2", False),
        # boolean operators, juxtaposition, parentheses
        ("pruning AND sparsity", True),
        ("pruning sparsity", True),
        ("pruning AND vision", False),
        ("vision OR sparsity", True),
        ("pruning NOT vision", True),
        ("pruning -sparsity", False),
        ("NOT vision", True),
        ("(vision OR image) AND pruning", False),
        ("(vision OR pruning) AND (GPT-4o OR nothing)", True),
        ('pruning "and" vision', False),  # a quoted "and" is a word the paper lacks
        # fields
        ("title:pruning", True),
        ("title:GPT-4o", False),
        ("abstract:GPT-4o", True),
        ("abstract:pruning", False),
        ("author:lecun", True),
        ('author:"yann lecun"', True),
        ('author:"lecun zoe"', False),  # a phrase stays within one author
        ("author:angstrom", True),
        ("category:cs.CL", True),
        ("category:cs.cl", True),
        ("category:cs.*", True),
        ("category:cs.AI", False),
        ("source:hf-daily", True),
        ("source:blog", False),
        ("id:2409.17481", True),
        ("id:2409.17481v2", True),
        ("id:10.1145/123", True),
        ("id:2409.00000", False),
        ('"title:pruning"', False),  # quotes make it a literal phrase
    ],
)
def test_matching_rules(query: str, expected: bool) -> None:
    assert matches(query) is expected


def test_score_is_three_per_title_term_and_one_per_term_elsewhere() -> None:
    [match] = Tagger([TopicSpec("t", 'prun* OR LLM* OR "N:M" OR GPT-4o OR vision -quantis*')]).tag(paper())
    # prun* and N:M in the title (3 each), LLM* and GPT-4o only in the abstract (1 each);
    # vision misses and the negated term adds nothing
    assert match.score == 8
    assert match.matched == ("prun* in title", "LLM* in abstract", '"N:M" in title', "GPT-4o in abstract")


def test_a_term_counts_once_however_often_it_appears() -> None:
    [match] = Tagger([TopicSpec("t", "sparsity OR sparsity OR title:sparsity")]).tag(paper())
    assert match.score == 6  # "sparsity" (title) and "title:sparsity" are distinct terms


def test_min_score_turns_a_weak_match_into_no_match() -> None:
    assert matches("GPT-4o", min_score=1)
    assert not matches("GPT-4o", min_score=2)
    assert matches("pruning", min_score=3)


def test_exclude_removes_matches() -> None:
    assert not matches("pruning", exclude="GPT-4o")
    assert matches("pruning", exclude="vision OR image")


def test_sources_option_limits_to_papers_seen_there() -> None:
    assert matches("pruning", sources=("hf-daily",))
    assert not matches("pruning", sources=("blog",))


@pytest.mark.parametrize(
    ("announce_types", "only_listings", "allowed", "expected"),
    [
        (("new",), True, ("new", "cross"), True),
        (("replace",), True, ("new", "cross"), False),
        (("replace",), True, ("new", "cross", "replace"), True),
        (("replace-cross",), True, ("new", "cross"), False),
        (("replace",), False, ("new", "cross"), True),  # also seen outside the listings: counts
        ((), False, ("new",), True),  # not from arXiv listings: always counts
    ],
)
def test_announce_types(
    announce_types: tuple[str, ...], only_listings: bool, allowed: tuple[str, ...], expected: bool
) -> None:
    doc = Document.build(title="Pruning LLMs", announce_types=announce_types, only_listings=only_listings)
    assert matches("pruning", doc, announce=allowed) is expected


def test_topic_references_match_what_the_other_topic_matches() -> None:
    tagger = Tagger(
        [
            TopicSpec("efficient", "topic:pruning OR topic:quant"),  # defined before what it uses
            TopicSpec("pruning", "prun*", exclude="vision"),
            TopicSpec("quant", "quantiz*"),
        ]
    )
    found = {m.slug: m for m in tagger.tag(paper())}
    assert set(found) == {"efficient", "pruning"}
    assert found["efficient"].score == found["pruning"].score
    assert found["efficient"].matched == found["pruning"].matched
    vision = Document.build(title="Pruning vision transformers")
    assert {m.slug for m in tagger.tag(vision)} == set()


def test_atoms() -> None:
    assert atoms("LLM-based N:M Sparsity, 2:4 & Café!") == ["llm", "based", "n:m", "sparsity", "2:4", "cafe"]


def test_fingerprints_change_with_the_definition_and_with_referenced_topics() -> None:
    base = [TopicSpec("a", "x"), TopicSpec("b", "topic:a OR y"), TopicSpec("c", "z")]
    edited = [TopicSpec("a", "x OR w"), TopicSpec("b", "topic:a OR y"), TopicSpec("c", "z")]
    before, after = fingerprints(base), fingerprints(edited)
    assert before["a"] != after["a"]
    assert before["b"] != after["b"]  # b uses a
    assert before["c"] == after["c"]
    assert fingerprints(base) == before


@given(st.text(alphabet=st.sampled_from(list("abN:M2:4 -_.,x\t")), max_size=40))
@example("ratio: N:M, see: below")  # an x:y between two colons that are not
def test_the_fast_ascii_tokenizer_agrees_with_the_general_one(text: str) -> None:
    from aggregator.topics.document import ATOM

    assert atoms(text) == ATOM.findall(text.lower())


def test_a_term_shared_through_topic_references_counts_once() -> None:
    doc = Document.build(title="LLM quantization", abstract="")
    tagger = Tagger(
        [TopicSpec("a", "llm"), TopicSpec("b", "llm AND quant*"), TopicSpec("c", "topic:a OR topic:b")]
    )
    found = {m.slug: m for m in tagger.tag(doc)}
    written_out = Tagger([TopicSpec("d", "llm OR (llm AND quant*)")]).tag(doc)[0]
    assert found["c"].score == written_out.score == 6
    assert found["c"].matched == ("llm in title", "quant* in title")


# --- shapes, references and fields that mutation testing found untested (docs/testing.md) -----


@given(st.text(alphabet=st.sampled_from(list("abN:M2:4 -_.,x\té—")), max_size=40))
@example("Sparsity N:M")
@example("naïve—N:M")
def test_the_index_text_holds_exactly_the_atoms_of_the_text(text: str) -> None:
    assert atom_text(text).split() == atoms(text)


TOPICS = [TopicSpec("llm", "LLM"), TopicSpec("vision", "vision OR image*")]  # the paper is about LLMs


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("-vision -image", True),
        ("-vision -pruning", False),
        ("-vision -image -video", True),
        ("-vision -image -pruning", False),
        ("pruning sparsity (GPT-4o OR nothing)", True),
        ("pruning sparsity (vision OR nothing)", False),
        ("pruning OR (vision image) OR (GPT-4o k-NN)", True),
        ("(vision image) OR (GPT-4o vision) OR (video nothing)", False),
        ("(vision image) OR (GPT-4o vision) OR topic:llm", True),
        ("pruning topic:llm", True),
        ("pruning topic:vision", False),
        ("topic:llm -vision", True),
        ("topic:llm -vision -image", True),
        ("pruning -topic:vision", True),
        ("pruning -topic:llm", False),
    ],
)
def test_queries_of_every_shape_match_as_they_read(query: str, expected: bool) -> None:
    tagger = Tagger([*TOPICS, TopicSpec("t", query)])
    assert ("t" in {m.slug for m in tagger.tag(paper())}) is expected


def test_an_exclude_may_name_another_topic() -> None:
    tagger = Tagger([*TOPICS, TopicSpec("t", "prun*", exclude="topic:vision")])
    assert "t" in {m.slug for m in tagger.tag(paper())}
    assert {m.slug for m in tagger.tag(Document.build(title="Pruning vision transformers"))} == {"vision"}


def test_a_topic_scores_the_terms_of_topics_it_names_through_others() -> None:
    tagger = Tagger([TopicSpec("a", "llm"), TopicSpec("b", "topic:a OR vision"), TopicSpec("c", "topic:b")])
    found = {m.slug: m for m in tagger.tag(Document.build(title="LLM quantization"))}
    assert (found["c"].score, found["c"].matched) == (3, ("llm in title",))


def test_a_reference_to_no_topic_matches_nothing_and_the_rest_of_the_query_still_works() -> None:
    found = Tagger([TopicSpec("t", "topic:nope OR pruning")]).tag(paper())
    assert [(m.slug, m.matched) for m in found] == [("t", ("pruning in title",))]


def test_a_facet_prefix_and_the_same_facet_value_are_two_terms() -> None:
    tagger = Tagger([TopicSpec("any-cs", "category:cs.*"), TopicSpec("just-cs", "category:cs.")])
    assert {m.slug for m in tagger.tag(paper())} == {"any-cs"}


def test_a_stored_paper_is_matched_on_every_field_it_carries() -> None:
    stored = PaperText(
        title="Pruning",
        abstract="Sparsity",
        authors=("Yann LeCun",),
        categories=("cs.LG",),
        sources=("hf-daily",),
        ids=("2409.17481",),
        announce_types=("replace",),
        only_listings=True,
    )
    queries = {
        "title": "title:pruning",
        "abstract": "abstract:sparsity",
        "author": "author:lecun",
        "category": "category:cs.LG",
        "source": "source:hf-daily",
        "id": "id:2409.17481",
    }
    topics = [TopicSpec(slug, query, announce=("new", "cross", "replace")) for slug, query in queries.items()]
    # only ever announced as a replacement: not for a topic of new papers (the default)
    topics.append(TopicSpec("new-papers", "pruning"))
    assert {m.slug for m in Tagger(topics).tag_paper(stored)} == set(queries)


def test_an_ad_hoc_query_may_refer_to_topics_in_its_query_and_in_its_exclude() -> None:
    def ad_hoc(query: str, exclude: str) -> bool:
        return any(m.slug == AD_HOC for m in query_tagger(query, TOPICS, exclude=exclude).tag(paper()))

    assert ad_hoc("topic:llm", exclude="vision")
    assert not ad_hoc("prun*", exclude="topic:llm")


def test_an_ad_hoc_query_counts_every_announcement_unless_told_otherwise() -> None:
    replaced = Document.build(title="Pruning LLMs", announce_types=("replace",), only_listings=True)
    assert [m.slug for m in query_tagger("pruning").tag(replaced)] == [AD_HOC]
    assert query_tagger("pruning", announce=("new",)).tag(replaced) == []


def test_fingerprints_are_hex_digests_short_enough_to_store() -> None:
    """The store keeps 64 characters of each (PostgreSQL refuses a longer value)."""
    found = fingerprints([TopicSpec("a", "x"), TopicSpec("b", "topic:a OR y")])
    assert all(re.fullmatch(r"[0-9a-f]{1,64}", f) for f in found.values())
