"""The full-text index under `q=` and previews: indexed results are exactly the matcher's.

Property tests generate random queries from the words of about 1,700 real papers (the bundled
arXiv listing and Hugging Face pages) and compare what the store answers through the index with
what the matcher alone finds by reading every paper; the suite runs them on SQLite and, in CI,
on PostgreSQL. Table tests pin the translation of each query form.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config import Config, load_config
from aggregator.errors import BudgetExceeded, SearchesBusy
from aggregator.ingest.pipeline import Pipeline
from aggregator.records import PaperText
from aggregator.runtime import open_store
from aggregator.store.deadline import Deadline
from aggregator.store.pages import PageQuery, TextQuery
from aggregator.store.repository import Store
from aggregator.store.search_turns import SearchTurns
from aggregator.topics.document import atoms
from aggregator.topics.index_query import MAX_ATOM, AllOf, AnyOf, Tokens, facet_token, is_exact, narrow
from aggregator.topics.match import AD_HOC, query_tagger
from aggregator.topics.query import parse_query
from tests.conftest import shared_database_url

SAMPLES = Path(__file__).parent.parent / "config" / "samples"
TOPICS = {
    "llm": '"language model*" OR LLM*',
    "pruning": "(prun* OR sparsity OR 2:4) AND topic:llm",
}


class Corpus(tuple[Config, Store]):
    def __repr__(self) -> str:  # hypothesis prints its arguments: the config is long
        return "corpus"


class Vocabulary(dict[str, list[str]]):
    def __repr__(self) -> str:
        return "vocabulary"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Store]]:
    folder = tmp_path_factory.mktemp("corpus")
    url = shared_database_url(folder, "corpus")
    for name in ("arxiv-listing-2024-11-28.xml", "hf-daily-2025-06-01.xml", "hf-daily-monthly-2026-08.xml"):
        shutil.copy(SAMPLES / name, folder / name)
    lines = [
        f"database: {url}",
        "site: {base_url: 'http://papers.example.org'}",
        "sources:",
        "  - {name: listing, url: 'file:arxiv-listing-2024-11-28.xml'}",
        "  - {name: hf-daily, url: 'file:hf-daily-2025-06-01.xml'}",
        "  - {name: hf-monthly, url: 'file:hf-daily-monthly-2026-08.xml'}",
        "topics:",
        *(f"  - {{slug: {slug}, query: '{query}'}}" for slug, query in TOPICS.items()),
    ]
    (folder / "aggregator.yaml").write_text("\n".join(lines) + "\n")
    config = load_config(folder / "aggregator.yaml")
    store = open_store(config)
    pipeline = Pipeline(config, store)
    pipeline.run(pipeline.select())
    yield Corpus((config, store))
    _EVERY_PAPER.pop(id(store), None)
    store.close()


@pytest.fixture(scope="module")
def vocabulary(corpus: tuple[Config, Store]) -> dict[str, list[str]]:
    """Words, phrases of titles and abstracts, authors' family names and categories of the stored papers."""
    _, store = corpus
    words: set[str] = set()
    phrases: list[str] = []
    names: set[str] = set()
    categories: set[str] = set()
    for n, (_, title, _, doc) in enumerate(store.documents()):
        title_words = re.findall(r"[A-Za-z][A-Za-z0-9-]{2,}", title)
        words.update(title_words)
        if n % 5 == 0 and len(title_words) > 2:
            phrases.append(" ".join(title_words[1:3]))
        abstract_words = atoms(doc.abstract)
        if n % 5 == 1 and len(abstract_words) > 12:  # longer phrases, of the abstract's common words
            phrases.append(" ".join(abstract_words[8 : 10 + n % 3]))
        names.update(a.split()[-1] for a in doc.authors[:2] if a.split())
        categories.update(doc.categories)
    return Vocabulary(
        {
            "words": sorted(words)[:3000],
            "phrases": phrases,
            "names": sorted(names)[:500],
            "categories": sorted(categories),
        }
    )


def queries(vocab: dict[str, list[str]]) -> st.SearchStrategy[str]:
    word = st.sampled_from(vocab["words"])
    term = st.one_of(
        word,
        word.map(lambda w: w[: max(2, len(w) // 2)] + "*"),
        st.sampled_from(vocab["phrases"]).map(lambda p: f'"{p}"'),
        st.sampled_from(vocab["phrases"]).map(lambda p: f'"{p[: max(3, len(p) - 2)]}*"'),
        st.tuples(st.sampled_from(["title", "abstract"]), st.sampled_from(vocab["phrases"])).map(
            lambda t: f'{t[0]}:"{t[1]}"'
        ),
        st.tuples(st.sampled_from(["title", "abstract"]), word).map(lambda t: f"{t[0]}:{t[1]}"),
        st.sampled_from(vocab["names"]).map(lambda n: f'author:"{n}"'),
        st.sampled_from(vocab["categories"]).map(lambda c: f"category:{c}"),
        st.sampled_from(["category:cs.*", "source:hf-daily", "source:listing", "id:2411.1*"]),
        st.sampled_from(["topic:llm", "topic:pruning", "N:M", "2:4", "GPT-4o", "a*", "x*", "LLM-based"]),
    )

    def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(children, children).map(lambda t: f"({t[0]} AND {t[1]})"),
            st.tuples(children, children).map(lambda t: f"({t[0]} OR {t[1]})"),
            st.tuples(children, children).map(lambda t: f"{t[0]} {t[1]}"),
            st.tuples(children, children).map(lambda t: f"({t[0]} NOT {t[1]})"),
            children.map(lambda c: f"-{c}" if not c.startswith("-") else c),
        )

    return st.recursive(term, combine, max_leaves=5)


_EVERY_PAPER: dict[int, list[tuple[str, PaperText]]] = {}  # the corpus store's papers, read once


def matched_by_reading_everything(config: Config, store: Store, query: str) -> list[str]:
    """The oracle: every stored paper tagged with the query. The corpus never changes, so its
    papers are read from the store once per module, not once per query (each keeps the atoms
    the matcher made of it)."""
    papers = _EVERY_PAPER.get(id(store))
    if papers is None:
        papers = _EVERY_PAPER[id(store)] = [(feed_id, doc) for feed_id, _, _, doc in store.documents()]
    tagger = query_tagger(query, _specs(config))
    return sorted(feed_id for feed_id, doc in papers if any(m.slug == AD_HOC for m in tagger.tag_paper(doc)))


def _specs(config: Config) -> list:
    from aggregator.runtime import topic_specs

    return topic_specs(config)


def text_query(config: Config, query: str, *, indexed: bool) -> TextQuery:
    tagger = query_tagger(query, _specs(config))
    tree = parse_query(query)
    narrowed = narrow(tree, {t.slug: t.query for t in config.topics}) if indexed else None
    return TextQuery(
        lambda doc: any(m.slug == AD_HOC for m in tagger.tag_paper(doc)), narrowed, indexed and is_exact(tree)
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_indexed_search_finds_exactly_what_reading_everything_finds(
    corpus: tuple[Config, Store], vocabulary: dict[str, list[str]], data: st.DataObject
) -> None:
    config, store = corpus
    query = data.draw(queries(vocabulary), label="query")
    same_as_reading_everything(config, store, query)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_walks_screened_by_the_index_find_exactly_what_reading_everything_finds(
    corpus: tuple[Config, Store], vocabulary: dict[str, list[str]], data: st.DataObject
) -> None:
    """The same with SORT_LIMIT at 10, so that every query of more candidates is walked: each
    batch of the walk screened by the index where its ids lie close enough together (SQLite),
    or, at SCREEN_SPAN 0, never."""
    from aggregator.store import pages, search

    config, store = corpus
    query = data.draw(queries(vocabulary), label="query")
    span = data.draw(st.sampled_from([search.SCREEN_SPAN, 0]), label="span")
    with patch.object(pages, "SORT_LIMIT", 10), patch.object(search, "SCREEN_SPAN", span):
        same_as_reading_everything(config, store, query)


def same_as_reading_everything(config: Config, store: Store, query: str) -> None:
    """The index never loses a match, and a page found through it is the page found by matching
    every paper, with a total that is exact or says it is not."""
    expected = matched_by_reading_everything(config, store, query)
    narrowed = narrow(parse_query(query), {t.slug: t.query for t in config.topics})
    tagger = query_tagger(query, _specs(config))
    candidates = list(store.documents(narrowed))
    found = sorted(f for f, _, _, doc in candidates if any(m.slug == AD_HOC for m in tagger.tag_paper(doc)))
    assert found == expected  # the index never loses a match
    page = store.papers_page(PageQuery(text=text_query(config, query, indexed=True), limit=500))
    walked = store.papers_page(PageQuery(text=text_query(config, query, indexed=False), limit=500))
    assert [p.feed_id for p in page.papers] == [p.feed_id for p in walked.papers]
    assert sorted(p.feed_id for p in page.papers) == expected[:500] or len(expected) > 500
    assert page.total is not None
    if page.exact:
        assert page.total == len(expected)
    else:  # the index's candidates (at most that many), or estimated from the share of a walk
        # that matched (a query the index cannot narrow, or one PostgreSQL expects to be dense)
        assert page.total >= len(expected) or len(page.papers) <= page.total <= 2 * len(expected)


def test_a_selective_query_reads_only_its_candidates(corpus: tuple[Config, Store]) -> None:
    from sqlalchemy import event

    config, store = corpus
    walks: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "ORDER BY papers.published" in statement:  # the feed order of every paper
            walks.append(statement)

    everything = sum(1 for _ in store.documents())
    for query in (
        '"language model*" AND (prun* OR quantiz* OR distill*)',
        "title:diffusion",
    ):  # prefixes; none
        narrowed = narrow(parse_query(query), {})
        candidates = sum(1 for _ in store.documents(narrowed))
        assert 0 < candidates < everything / 20
        walks.clear()
        event.listen(store.engine, "before_cursor_execute", seen)
        try:
            page = store.papers_page(PageQuery(text=text_query(config, query, indexed=True), limit=5))
        finally:
            event.remove(store.engine, "before_cursor_execute", seen)
        assert page.exact and page.total == len(matched_by_reading_everything(config, store, query))
        assert walks == [], query  # the candidates' keys are put in feed order, not every paper's


def test_pages_continue_after_a_cursor(corpus: tuple[Config, Store]) -> None:
    config, store = corpus
    for query in ("model*", "LLM* OR diffusion", None):
        text = text_query(config, query, indexed=True) if query else None
        whole = store.papers_page(PageQuery(text=text, limit=120)).papers
        seen, after = [], None
        while True:
            page = store.papers_page(PageQuery(text=text, limit=25, after=after, count=False))
            seen += page.papers
            if not page.more or len(seen) >= 120:
                break
            after = page.last
        assert [p.id for p in seen[:120]] == [p.id for p in whole]


# --- translation, table tests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("LLM", Tokens("text", ("llm",))),
        ("prun*", Tokens("text", ("prun",), prefix=True)),
        ('"language model*"', Tokens("text", ("language", "model"), prefix=True)),
        ("GPT-4o", Tokens("text", ("gpt", "4o"))),
        ("N:M", Tokens("text", ("n:m",))),
        ("title:Agents", Tokens("title", ("agents",))),
        ('author:"Le Cun"', Tokens("author", ("le", "cun"))),
        ("category:cs.CL", Tokens("facet", (facet_token("category", "cs.cl"),))),
        ("category:cs.*", Tokens("facet", (facet_token("category", "cs."),), prefix=True)),
        ("a AND b", AllOf((Tokens("text", ("a",)), Tokens("text", ("b",))))),
        ("a OR b", AnyOf((Tokens("text", ("a",)), Tokens("text", ("b",))))),
        ("a -b", Tokens("text", ("a",))),  # NOT narrows nothing
        ("a OR -b", None),
        ("NOT b", None),
        ("x*", None),  # a one-letter prefix: the matcher walks, the index is not asked
        ("x* AND model", Tokens("text", ("model",))),
        ('"--"', None),  # no atoms: nothing the index could look for
        ("topic:llm", AnyOf((Tokens("text", ("language", "model"), True), Tokens("text", ("llm",), True)))),
        ("topic:nope", None),
        ("-a -b", None),  # nothing to narrow on
        ("LLM OR llm", Tokens("text", ("llm",))),  # one term written twice
        ("ab*", Tokens("text", ("ab",), prefix=True)),  # the shortest prefix the index is asked
        ("category:cs*", Tokens("facet", (facet_token("category", "cs"),), prefix=True)),
        ("w" * MAX_ATOM, Tokens("text", ("w" * MAX_ATOM,))),  # the longest atom the index keeps whole
        ("w" * (MAX_ATOM + 1), None),
    ],
)
def test_narrowing_each_form(query: str, expected: object) -> None:
    assert narrow(parse_query(query), {"llm": '"language model*" OR LLM*'}) == expected


@pytest.mark.parametrize(
    ("query", "exact"),
    [
        ("LLM", True),
        ("prun* AND (LLM OR category:cs.CL)", True),
        ("N:M OR 2:4", True),
        ("title:agents author:smith", True),
        ('"language model"', False),  # the index knows the words, not their order
        ("GPT-4o", False),  # two atoms: a phrase
        ("x*", False),  # not narrowed at all
        ("LLM -vision", False),
        ("topic:llm", False),
        ("w" * (MAX_ATOM - 1), True),
        ("w" * MAX_ATOM, False),  # a longer atom is cut to this one in the index: candidates, not matches
    ],
)
def test_which_queries_the_index_answers_exactly(query: str, exact: bool) -> None:
    assert is_exact(parse_query(query)) is exact


def test_facet_tokens_keep_prefixes() -> None:
    assert facet_token("category", "cs.CL").startswith(facet_token("category", "cs."))
    assert re.fullmatch(r"[a-z0-9]+", facet_token("id", "10.1000/xyz-é"))


# --- the index never misses what the matcher finds, whatever the text -------------------------

_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=60
).map(lambda t: t + " GPT-4o N:M naïve Straße ǅemal résumé")


@settings(max_examples=150, deadline=None)
@given(title=_TEXT, abstract=_TEXT, author=_TEXT, data=st.data())
def test_every_atom_the_matcher_sees_is_found_by_the_index(
    title: str, abstract: str, author: str, data: st.DataObject
) -> None:
    from sqlalchemy import create_engine

    from aggregator.store.search import candidates, create_index, write_index
    from aggregator.topics.document import Document
    from aggregator.topics.index_query import indexed_fields
    from aggregator.topics.query import Term

    engine = create_engine("sqlite://")
    doc = Document.build(title=title, abstract=abstract, authors=[author, "Ada Lovelace"])
    with engine.begin() as conn:
        create_index(conn)
        write_index(
            conn, [(7, indexed_fields(title, abstract, [author, "Ada Lovelace"], [], [], []))], replace=False
        )
        for field, text in (("title", doc.title), ("abstract", doc.abstract), ("author", doc.text("author"))):
            words = [w for w in text.split() if w != "|"]
            if not words:
                continue
            word = data.draw(st.sampled_from(words))
            cut = data.draw(st.integers(min_value=1, max_value=len(word)))
            for term in (
                Term(field, word),
                Term(None if field != "author" else field, word[:cut], prefix=True),
            ):
                narrowed = narrow(term)
                if narrowed is None:
                    continue
                found = conn.execute(candidates(conn, narrowed)).scalars().all()
                assert found == [7], (term, narrowed)
    engine.dispose()


def test_postgresql_takes_every_token_as_written(corpus: tuple[Config, Store]) -> None:
    engine = corpus[1].engine  # not the database_url fixture: it would empty the corpus's database
    if engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL store is not under test")
    from sqlalchemy import text

    from aggregator.store.search import tsquery_text, tsvector_text
    from aggregator.topics.index_query import indexed_fields

    entry = indexed_fields(
        "Straße naïve ǅemal 東京大学 N:M", "x" * 300, ["Ødegaard, J."], ["cs.CL"], ["hf"], []
    )
    with engine.connect() as conn:
        for query in (
            "straße",
            "ǅemal",
            "東京大学",
            "n:m",
            "author:Ødegaard",
            "category:cs.cl",
            "source:hf",
            "ǅe*",
        ):
            narrowed = narrow(parse_query(query))
            assert narrowed is not None
            hit = conn.execute(
                text("SELECT CAST(:v AS tsvector) @@ CAST(:q AS tsquery)"),
                {"v": tsvector_text(entry), "q": tsquery_text(narrowed)},
            ).scalar()
            assert hit, query


def test_tsvector_keeps_positions_with_a_gap_between_fields() -> None:
    from aggregator.store.search import CUT, tsvector_text
    from aggregator.topics.index_query import indexed_fields

    entry = indexed_fields("Sparse models", "Models prune sparse", ["Ada Lovelace"], [], [], [])
    assert tsvector_text(entry) == ("'sparse':1A,6B 'models':2A,4B 'prune':5B 'ada':8C 'lovelace':9C")
    long = indexed_fields("T", "w " * 17_000, [], [], [], [])  # past 16,383 positions
    assert f"'{CUT}':5D" in tsvector_text(long) and "'w':2B" in tsvector_text(long)
    repeated = indexed_fields("T", "echo " * 257, [], [], [], [])  # past 256 positions a token
    assert f"'{CUT}':5D" in tsvector_text(repeated)
    assert CUT not in tsvector_text(indexed_fields("T", "echo " * 256, [], [], [], []))


def test_a_tsvector_weighs_facets_d_and_cuts_positions_only_past_postgresql_s_limits() -> None:
    from aggregator.store.search import CUT, MAX_POSITION, tsvector_text
    from aggregator.topics.index_query import indexed_fields

    category, source = facet_token("category", "cs.CL"), facet_token("source", "hf")
    faceted = indexed_fields("Sparse", "", [], ["cs.CL"], ["hf"], [])
    assert tsvector_text(faceted) == f"'sparse':1A '{category}':5D '{source}':6D"
    # Every position a token takes, and a gap after each of the four fields: the last fits.
    words = " ".join(f"w{n}" for n in range(MAX_POSITION - 5))
    assert CUT not in tsvector_text(indexed_fields("T", words, [], [], [], []))
    assert f"'{CUT}':5D" in tsvector_text(indexed_fields("T", words + " w", [], [], [], []))
    # Cut: each token once, with one position per field it is in.
    repeated = indexed_fields("Echo", "echo " * 257 + "once", [], [], [], [])
    assert tsvector_text(repeated) == f"'{CUT}':5D 'echo':1A,2B 'once':2B"


def test_pairs_hold_each_pair_of_adjacent_words_of_the_title_and_abstract_once() -> None:
    from aggregator.store.search import pairs_text
    from aggregator.topics.index_query import UNMATCHABLE, indexed_fields

    entry = indexed_fields("Sparse models", "Models prune sparse models", ["Ada Lovelace"], ["cs.CL"], [], [])
    assert pairs_text(entry) == "'sparse_models' 'models_prune' 'prune_sparse'"  # no author, no facet
    assert pairs_text(indexed_fields("One", "", [], [], [], [])) == ""
    unmatchable = indexed_fields("A b", "", [], [], [], [], unmatchable=True)
    assert pairs_text(unmatchable) == f"'a_b' '{UNMATCHABLE}'"


def test_postgresql_asks_each_index_table_once_for_the_words_and_once_for_the_phrases() -> None:
    from aggregator.store.search import matched_ids

    for query in (
        '"language models" AND prune AND sparse',
        '"language models" OR prune OR "we prune" OR sparse',
        '(sparse AND "language models") AND prune',  # an AND inside an AND: its parts join the outer
        'sparse OR (absent OR ("we prune" OR "language models"))',
    ):
        narrowed = narrow(parse_query(query))
        assert narrowed is not None
        found, params = matched_ids(narrowed)
        assert len(params) == 2, query  # one tsquery of the words, one of the phrases' pairs
        assert (found.count("FROM paper_index"), found.count("FROM paper_pairs")) == (1, 1), query


def test_postgresql_finds_phrases_by_word_pairs_and_never_misses_a_cut_paper(
    corpus: tuple[Config, Store],
) -> None:
    engine = corpus[1].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL store is not under test")
    from sqlalchemy import text

    from aggregator.store.search import matched_ids, pairs_text, tsvector_text
    from aggregator.topics.index_query import IndexedPaper, indexed_fields

    def hit(entry: IndexedPaper, query: str) -> bool:
        """Whether the index finds this paper, alone in temporary tables of the index's names
        (which hide the corpus's own from this connection)."""
        narrowed = narrow(parse_query(query))
        assert narrowed is not None
        found, params = matched_ids(narrowed)
        with engine.connect() as conn, conn.begin():
            conn.execute(
                text("CREATE TEMP TABLE paper_index (paper_id INTEGER, doc TSVECTOR) ON COMMIT DROP")
            )
            conn.execute(
                text("CREATE TEMP TABLE paper_pairs (paper_id INTEGER, pairs TSVECTOR) ON COMMIT DROP")
            )
            conn.execute(
                text("INSERT INTO paper_index VALUES (7, CAST(:v AS tsvector))"), {"v": tsvector_text(entry)}
            )
            conn.execute(
                text("INSERT INTO paper_pairs VALUES (7, CAST(:v AS tsvector))"), {"v": pairs_text(entry)}
            )
            return conn.execute(text(found), params).scalars().all() == [7]

    paper = indexed_fields("Sparse language models", "We prune models of language.", ["Ada Love"], [], [], [])
    assert hit(paper, '"language models"') and hit(paper, 'title:"sparse lang*"')
    assert hit(paper, '"sparse language models"') and hit(paper, 'abstract:"prune models of lang*"')
    assert not hit(paper, '"models language"')  # both words, in the other order
    assert not hit(paper, '"models we"')  # title end, abstract start: fields never join
    # Pairs keep no field: a phrase of the title is a candidate of `abstract:` (the matcher decides).
    assert hit(paper, 'abstract:"language models"') and hit(paper, 'title:"prune models"')
    assert not hit(paper, '"language mod*" AND "sparse lang"')
    assert hit(paper, 'author:"ada love"') and not hit(paper, 'author:"love ada"')
    # Three words: every pair present is a candidate (the matcher checks they follow each other).
    assert hit(indexed_fields("A b x", "b c", [], [], [], []), '"a b c"')
    assert not hit(indexed_fields("A b x", "c d", [], [], [], []), '"a b c"')
    filler = " ".join(f"w{n}" for n in range(17_000))
    for abstract in (f"{filler} late phrase here", "echo " * 300 + "late phrase"):
        cut = indexed_fields("T", abstract, [], [], [], [])
        assert hit(cut, '"late phrase"') and hit(cut, '"phrase here" OR "echo late"')
        assert not hit(cut, '"phrase late"')  # a cut paper keeps its pairs: still exact
        assert not hit(cut, '"late absent"')
    cut = indexed_fields("T", filler, ["Ada Love"], [], [], [])
    assert hit(cut, 'author:"love ada"')  # no positions, no pairs: a candidate; the matcher decides
    assert hit(
        indexed_fields("P values", filler, ["Ada Love"], [], [], []), 'author:"love ada"'
    )  # title word p
    # Phrases with words and facets, in AND and OR; a paper no ad-hoc query matches is never one.
    assert hit(paper, '"language models" AND prune') and not hit(paper, '"absent phrase" OR category:cs.cl')
    assert hit(paper, '("absent phrase" OR "we prune") AND (sparse OR "x y")')
    # Beside a phrase, every word of an OR or an AND is asked, and a third part joins the AND.
    assert hit(paper, '"absent phrase" OR absent OR prune')
    assert not hit(paper, '"language models" AND sparse AND absent')
    assert hit(paper, 'sparse AND "language models" AND ("we prune" OR absent)')
    hidden = indexed_fields("Sparse language models", "", [], [], [], [], unmatchable=True)
    assert not hit(hidden, '"language models"') and not hit(hidden, '"language models" OR sparse')
    assert hit(indexed_fields("Sparse language models", "", [], [], [], []), '"language models" OR sparse')


def test_postgresql_statistics_are_refreshed_after_a_bulk_ingest(corpus: tuple[Config, Store]) -> None:
    _, store = corpus
    if store.engine.dialect.name != "postgresql":
        assert not store.refresh_statistics()  # SQLite keeps no planner statistics to refresh
        return
    from sqlalchemy import text

    with store.engine.connect() as conn:  # the corpus was ingested in one run: analysed once since
        analysed = conn.execute(
            text("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'paper_index'")
        ).scalar()
    assert analysed
    assert not store.refresh_statistics()  # nothing new since


# --- the index of an existing store ------------------------------------------------------------


def small_store(folder: Path, database_url: str) -> tuple[Config, Store]:
    shutil.copy(Path(__file__).parent / "data" / "dedup-dev" / "arxiv-rss.xml", folder / "arxiv-rss.xml")
    lines = [f"database: {database_url}", "sources:", "  - {name: rss, url: 'file:arxiv-rss.xml'}"]
    (folder / "aggregator.yaml").write_text("\n".join(lines) + "\n")
    config = load_config(folder / "aggregator.yaml")
    store = open_store(config)
    Pipeline(config, store).run(config.sources)
    return config, store


def found_ids(store: Store, config: Config, query: str) -> list[int]:
    page = store.papers_page(PageQuery(text=text_query(config, query, indexed=True), limit=500))
    return [p.id for p in page.papers]


def test_upgrading_a_store_from_before_the_index_builds_it(tmp_path: Path, database_url: str) -> None:
    from sqlalchemy import text

    from aggregator.store.database import upgrade
    from aggregator.store.search import drop_index

    config, store = small_store(tmp_path, database_url)
    before = found_ids(store, config, "model*")
    assert before and store.paper_count() == len(list(store.documents()))
    with store.engine.begin() as conn:  # as revision 0003 left it: no index, no count
        drop_index(conn)
        conn.execute(text("DELETE FROM store_meta WHERE name IN ('papers', 'index_version')"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    upgrade(store.engine)
    assert found_ids(store, config, "model*") == before
    assert store.paper_count() == len(list(store.documents()))
    store.close()


def test_a_rebuilt_index_holds_every_paper_with_its_sources_a_batch_at_a_time_and_is_current(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from aggregator.store import indexing

    config, store = small_store(tmp_path, database_url)
    before = found_ids(store, config, "source:rss")
    papers = store.paper_count()
    assert len(before) == papers > 3  # every paper of the store, found through its source
    monkeypatch.setattr(indexing, "BATCH", 3)
    batches: list[int] = []
    with store.engine.begin() as conn:
        assert indexing.rebuild_index(conn, on_batch=batches.append) == papers
        assert indexing.index_is_current(conn)  # the next start leaves it alone
    assert batches == [3] * (papers // 3) + ([papers % 3] if papers % 3 else [])
    column = "paper_id" if store.engine.dialect.name == "postgresql" else "rowid"
    with store.engine.connect() as conn:
        indexed = conn.execute(text(f"SELECT {column} FROM paper_index ORDER BY {column}")).scalars().all()
        assert indexed == conn.execute(text("SELECT id FROM papers ORDER BY id")).scalars().all()
        if column == "paper_id":  # PostgreSQL's planner knows the tokens of the new tables at once
            analysed = (
                "SELECT DISTINCT tablename FROM pg_stats WHERE tablename IN ('paper_index', 'paper_pairs')"
            )
            assert sorted(conn.execute(text(analysed)).scalars()) == ["paper_index", "paper_pairs"]
    assert found_ids(store, config, "source:rss") == before
    store.close()


def test_sqlite_index_merges_its_segments_sixteen_at_a_time_new_or_upgraded(tmp_path: Path) -> None:
    from sqlalchemy import text

    from aggregator.store.database import upgrade
    from aggregator.store.search import FTS5_AUTOMERGE

    config, store = small_store(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    setting = "SELECT v FROM paper_index_config WHERE k = 'automerge'"
    with store.engine.connect() as conn:
        assert conn.execute(text(setting)).scalar_one() == FTS5_AUTOMERGE == 16
    before = found_ids(store, config, "model*")
    with store.engine.begin() as conn:  # as revision 0010 left it: FTS5's own default
        conn.execute(text("DELETE FROM paper_index_config WHERE k = 'automerge'"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0010'"))
    upgrade(store.engine)
    with store.engine.connect() as conn:
        assert conn.execute(text(setting)).scalar_one() == 16
    assert before and found_ids(store, config, "model*") == before
    store.close()


def test_an_index_made_by_an_older_way_of_cutting_atoms_is_rebuilt_at_start(
    tmp_path: Path, database_url: str
) -> None:
    from sqlalchemy import text

    from aggregator.store import meta

    config, store = small_store(tmp_path, database_url)
    before = found_ids(store, config, "model*")

    def indexed() -> list[str]:  # what the index finds, whichever way a page would be read
        return sorted(feed_id for feed_id, *_ in store.documents(narrow(parse_query("model*"))))

    assert indexed()
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM paper_index"))  # as if its tokens no longer fit
        meta.put(conn, "index_version", 0)
    assert indexed() == []
    store.upgrade()  # what every start does
    assert found_ids(store, config, "model*") == before and len(indexed()) >= len(before)
    store.close()


def test_a_postgresql_index_without_word_pairs_is_rebuilt_with_them_at_start(
    tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the PostgreSQL store is not under test")
    from sqlalchemy import text

    from aggregator.store import meta

    config, store = small_store(tmp_path, database_url)
    queries = ('"language models"', '"large language mod*"', '"language model" OR "neural network"')
    before = {query: found_ids(store, config, query) for query in queries}
    assert all(before.values())
    with store.engine.begin() as conn:  # as the release before word pairs left it
        conn.execute(text("DROP TABLE paper_pairs"))
        meta.put(conn, "index_version", 3)
    store.upgrade()  # what every start does
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM paper_pairs WHERE pairs != ''")).scalar_one()
        indexes = conn.execute(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_paper_%'"))
        assert {"ix_paper_index_doc", "ix_paper_pairs_pairs"} <= set(
            indexes.scalars()
        )  # built after the fill
    assert {query: found_ids(store, config, query) for query in queries} == before
    with store.engine.begin() as conn:  # a process of that release, left running, indexed a paper
        conn.execute(text("DELETE FROM paper_pairs WHERE paper_id = (SELECT max(paper_id) FROM paper_pairs)"))
    store.upgrade()  # the next start makes the index whole again
    assert {query: found_ids(store, config, query) for query in queries} == before
    with store.engine.connect() as conn:
        counts = conn.execute(
            text("SELECT (SELECT count(*) FROM paper_index), (SELECT count(*) FROM paper_pairs)")
        )
        assert len(set(counts.one())) == 1
    store.close()


@pytest.mark.parametrize(
    "limits",
    [
        {"SORT_LIMIT": 10, "CONFIRM_ALL": 3, "PROBE": 5},  # candidate sets walked through
        {"SORT_LIMIT": 10, "CONFIRM_ALL": 3, "PROBE": 100_000},  # walked and matched
        {"SORT_LIMIT": 10, "CONFIRM_ALL": 3, "PROBE": 5, "CANDIDATE_CAP": 50},  # too many to hold
        {"DENSE_MIN": 1, "DENSE_SHARE": 0.0},  # PostgreSQL: every query expected dense, walked first
    ],
)
def test_every_strategy_gives_the_same_pages(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch, limits: dict[str, float]
) -> None:
    """A store of 1,700 papers takes the few-candidates path; smaller limits send the same
    queries down the others, which must find the same pages, totals no smaller than the truth."""
    from aggregator.store import pages

    config, store = corpus
    for name, value in limits.items():
        monkeypatch.setattr(pages, name, value)
    for query in ("model*", "LLM* AND title:agent*", '"language model*"', "category:cs.CL OR diffusion"):
        expected = matched_by_reading_everything(config, store, query)
        page = store.papers_page(PageQuery(text=text_query(config, query, indexed=True), limit=40))
        walked = store.papers_page(PageQuery(text=text_query(config, query, indexed=False), limit=40))
        assert [p.id for p in page.papers] == [p.id for p in walked.papers], query
        assert page.total is not None and (page.total == len(expected) if page.exact else True), query
        assert page.total >= min(len(expected), 40) or not page.exact, query
        cursor = store.papers_page(PageQuery(text=text_query(config, query, indexed=True), limit=15))
        rest = store.papers_page(
            PageQuery(text=text_query(config, query, indexed=True), limit=25, after=cursor.last)
        )
        assert [p.id for p in cursor.papers + rest.papers] == [p.id for p in page.papers], query


@pytest.mark.parametrize("limits", [{"PROBE": 5}, {"PROBE": 5, "SORT_LIMIT": 10}, {"CANDIDATE_CAP": 10}])
def test_a_prefix_is_looked_up_in_the_index_once_a_page(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch, limits: dict[str, int]
) -> None:
    """Expanding a short prefix is the costliest step of a search (FTS5 merges the posting
    lists of every token it stands for in one step no deadline can interrupt): a page asks the
    index for it once, whether its candidates are few, many or too many to hold."""
    from sqlalchemy import event

    from aggregator.store import pages

    config, store = corpus
    for name, value in limits.items():
        monkeypatch.setattr(pages, name, value)
    searches: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if ("paper_index MATCH" in statement or "@@" in statement) and not statement.startswith("EXPLAIN"):
            searches.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        for query in ("mo* AND NOT model*", "mo*", "la* AND title:agent*"):
            searches.clear()
            page = store.papers_page(PageQuery(text=text_query(config, query, indexed=True), limit=20))
            walked = store.papers_page(PageQuery(text=text_query(config, query, indexed=False), limit=20))
            assert [p.id for p in page.papers] == [p.id for p in walked.papers], query
            assert len(searches) <= 1, (query, searches)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)


def test_a_page_after_a_cursor_through_few_inexact_candidates_goes_on_from_it_with_the_same_total(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most CONFIRM_ALL candidates of a query the index does not answer exactly: every one is
    confirmed, from the start of the feed whatever the cursor, so each page has the exact total,
    and the page after a cursor starts after its paper. More: the total is their number, an
    upper bound."""
    from aggregator.store import pages

    config, store = corpus
    monkeypatch.setattr(pages, "DENSE_MIN", 10**9)  # PostgreSQL: asks its index, never walks first
    query = "title:(language model*) NOT reasoning"  # NOT: the index finds more than the matches
    text = text_query(config, query, indexed=True)
    assert not text.exact
    expected = len(matched_by_reading_everything(config, store, query))
    assert expected > 3
    whole = store.papers_page(PageQuery(text=text, limit=500))
    first = store.papers_page(PageQuery(text=text, limit=3))
    rest = store.papers_page(PageQuery(text=text, limit=500, after=first.last))
    assert [p.id for p in first.papers + rest.papers] == [p.id for p in whole.papers]
    assert (first.total, first.exact) == (rest.total, rest.exact) == (expected, True)
    assert store.papers_page(PageQuery(text=text, limit=3, count=False)).total is None  # not asked for
    narrowed = text.narrowed
    assert narrowed is not None
    candidates = sum(1 for _ in store.documents(narrowed))
    assert candidates > expected
    monkeypatch.setattr(pages, "CONFIRM_ALL", candidates)
    page = store.papers_page(PageQuery(text=text, limit=3))
    assert (page.total, page.exact) == (expected, True)
    monkeypatch.setattr(pages, "CONFIRM_ALL", candidates - 1)
    page = store.papers_page(PageQuery(text=text, limit=3))
    assert [p.id for p in page.papers] == [p.id for p in first.papers]
    assert (page.total, page.exact) == (candidates, False)


def test_a_query_whose_page_the_first_papers_do_not_fill_walks_on_through_its_candidates(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than SORT_LIMIT candidates, and a page the first PROBE papers walked do not fill: the
    walk goes on through the set of candidate ids, and the total is their number (exact for a
    query the index answers exactly), not an estimate from the walk."""
    from aggregator.store import pages

    config, store = corpus
    monkeypatch.setattr(pages, "SORT_LIMIT", 10)
    monkeypatch.setattr(pages, "PROBE", 5)
    monkeypatch.setattr(pages, "DENSE_SHARE", 0.0)
    # PostgreSQL, expected dense: walked first, then through the candidate ids it asks for
    monkeypatch.setattr(pages, "DENSE_MIN", 1)
    text = text_query(config, "model", indexed=True)
    page = store.papers_page(PageQuery(text=text, limit=100))
    assert (page.total, page.exact) == (len(matched_by_reading_everything(config, store, "model")), True)
    monkeypatch.setattr(pages, "DENSE_MIN", 10**9)  # PostgreSQL: asks its index, never walks first
    for query in ("model*", "model"):  # a prefix (its ids read once, SQLite), a word
        text = text_query(config, query, indexed=True)
        assert text.exact
        matches = matched_by_reading_everything(config, store, query)
        page = store.papers_page(PageQuery(text=text, limit=100))
        walked = store.papers_page(PageQuery(text=text_query(config, query, indexed=False), limit=100))
        assert [p.id for p in page.papers] == [p.id for p in walked.papers], query
        assert (page.total, page.exact) == (len(matches), True), query
    text = text_query(config, "model*", indexed=True)
    matches = matched_by_reading_everything(config, store, "model*")
    for filters in (
        {"topic": "llm"},
        {"source": "hf-daily"},
        {"since": datetime(2025, 1, 1, tzinfo=UTC)},
        {"min_score": 0.5},
    ):  # the number of candidates, before the filter: at most so many
        page = store.papers_page(PageQuery(text=text, limit=100, **filters))  # type: ignore[arg-type]
        assert (page.total, page.exact) == (len(matches), False), filters


def test_a_broad_query_whose_page_fills_as_it_walks_estimates_its_total_without_its_candidate_ids(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than SORT_LIMIT candidates (PostgreSQL: expected dense), and a page the first papers
    walked fill: the candidates' ids are never read, and the total is estimated from the walk."""
    from aggregator.store import pages

    config, store = corpus
    monkeypatch.setattr(pages, "SORT_LIMIT", 10)
    monkeypatch.setattr(pages, "DENSE_MIN", 1)
    monkeypatch.setattr(pages, "DENSE_SHARE", 0.0)
    text = text_query(config, "model", indexed=True)
    assert text.exact and text.narrowed is not None
    matches = len(matched_by_reading_everything(config, store, "model"))
    page = store.papers_page(PageQuery(text=text, limit=5))
    assert page.total is not None and matches / 2 <= page.total <= matches * 2 and not page.exact


def test_a_walk_matches_only_the_papers_the_index_screens_in(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite, more than SORT_LIMIT candidates and no prefix: each batch of the walk is screened
    by the index over its ids' range, and only what it finds is matched: the same page, after
    matching under a third of the papers the same walk matches unscreened (SCREEN_SPAN 0: ids
    spread wider than SCREEN_SPAN times their batch are not screened). A prefix, or more than
    SCREEN_TOKENS tokens, is never screened."""
    from aggregator.store import pages, search

    config, store = corpus
    monkeypatch.setattr(pages, "SORT_LIMIT", 10)
    monkeypatch.setattr(pages, "DENSE_MIN", 1)  # PostgreSQL: walked first, never screened
    monkeypatch.setattr(pages, "DENSE_SHARE", 0.0)

    def matched(query: str, limit: int = 30) -> tuple[list[int], int]:
        text = text_query(config, query, indexed=True)
        seen: list[PaperText] = []
        counted = replace(text, matches=lambda doc: seen.append(doc) or text.matches(doc))
        page = store.papers_page(PageQuery(text=counted, limit=limit))
        return [p.id for p in page.papers], len(seen)

    query = "diffusion OR quantization"
    matches = matched_by_reading_everything(config, store, query)
    assert 30 < len(matches) < 500
    screened, screened_count = matched(query)
    monkeypatch.setattr(search, "SCREEN_SPAN", 0)  # no batch of papers lies that close
    plain, plain_count = matched(query)
    assert screened == plain and len(screened) == 30
    if store.engine.dialect.name == "sqlite":
        assert screened_count < plain_count / 3
    else:
        assert screened_count == plain_count
    monkeypatch.setattr(search, "SCREEN_SPAN", 64)
    with store.engine.connect() as conn:
        for never in ("diffusio*", "one OR two OR three OR four OR five"):  # a prefix; too many tokens
            narrowed = text_query(config, never, indexed=True).narrowed
            assert narrowed is not None and search.screen(conn, narrowed) is None, never
        narrowed = text_query(config, "one OR two OR three OR four", indexed=True).narrowed
        assert narrowed is not None
        screened = search.screen(conn, narrowed)
        assert (screened is None) == (store.engine.dialect.name != "sqlite")
        if screened is not None:
            assert screened([1, 2, 3]) is not None and screened([1, 2, 3, 10_000]) is None  # too far apart


def feed_ids(store: Store, query: PageQuery) -> set[str]:
    """The feed ids of every paper on every page of the query, following the cursor."""
    found: set[str] = set()
    while True:
        page = store.papers_page(query)
        found.update(p.feed_id for p in page.papers)
        if not page.more:
            return found
        query = replace(query, after=page.last)


def test_a_q_page_under_a_filter_counts_the_candidates_the_filter_allows(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few candidates: without a filter the total is the index's count of them; under a filter
    (topic, source, since, min_score), the count of those the filter allows."""
    from aggregator.store import pages

    config, store = corpus
    monkeypatch.setattr(pages, "DENSE_MIN", 10**9)  # PostgreSQL: asks its index, never walks first
    text = text_query(config, "model*", indexed=True)  # exact: the candidates are the matches
    matches = set(matched_by_reading_everything(config, store, "model*"))
    page = store.papers_page(PageQuery(text=text, limit=5))
    assert (page.total, page.exact) == (len(matches), True)
    for filters in (
        {"topic": "llm"},
        {"source": "hf-daily"},
        {"since": datetime(2025, 1, 1, tzinfo=UTC)},
        {"min_score": 0.5},
    ):
        allowed = matches & feed_ids(store, PageQuery(limit=500, **filters))  # type: ignore[arg-type]
        assert 0 < len(allowed) < len(matches), filters
        page = store.papers_page(PageQuery(text=text, limit=5, **filters))  # type: ignore[arg-type]
        assert (page.total, page.exact) == (len(allowed), True), filters


def test_a_walked_query_estimates_its_total_from_the_share_of_the_papers_read_that_matched(
    corpus: tuple[Config, Store],
) -> None:
    """A query the index cannot narrow is walked and matched until its page is full: its total is
    then the share of the papers read that matched, times the papers in the store, whatever the
    page's size. Under a filter (or after a cursor) the scope of that share is unknown: the total
    is the matches found, the page and the one that tells that more follow."""
    config, store = corpus
    papers = store.papers_page(PageQuery(limit=1)).total
    everything = text_query(config, "NOT zzzunseen", indexed=True)  # every paper matches
    assert everything.narrowed is None
    half = text_query(config, "model*", indexed=False)
    matches = len(matched_by_reading_everything(config, store, "model*"))
    assert papers is not None and papers / 4 < matches < papers * 3 / 4
    for limit in (5, 50):
        page = store.papers_page(PageQuery(text=everything, limit=limit))
        assert (page.total, page.exact) == (papers, False), limit
        page = store.papers_page(PageQuery(text=half, limit=limit))
        assert page.total is not None and matches / 2 <= page.total <= matches * 2 and not page.exact, limit
    first = store.papers_page(PageQuery(text=everything, limit=5))
    for filters in (
        {"topic": "llm"},
        {"source": "listing"},
        {"since": datetime(2000, 1, 1, tzinfo=UTC)},
        {"min_score": 0.5},
        {"after": first.last},
    ):
        page = store.papers_page(PageQuery(text=everything, limit=5, **filters))  # type: ignore[arg-type]
        assert (len(page.papers), page.more, page.total, page.exact) == (5, True, 6, False), filters


# --- budgets -----------------------------------------------------------------------------------


def test_a_query_past_its_budget_stops_with_a_plain_error(corpus: tuple[Config, Store]) -> None:
    from aggregator.errors import BudgetExceeded

    config, store = corpus
    unnarrowed = text_query(config, "NOT zzzunseen", indexed=True)  # every paper must be matched
    assert unnarrowed.narrowed is None
    with pytest.raises(BudgetExceeded, match="narrow it"):
        store.papers_page(PageQuery(text=unnarrowed, limit=500, offset=1000), budget=0.0)
    assert store.papers_page(PageQuery(text=unnarrowed, limit=5)).papers  # the default budget does


def test_the_database_itself_stops_at_the_deadline(corpus: tuple[Config, Store]) -> None:
    """A statement that would run long is interrupted inside the database (SQLite's progress
    handler, PostgreSQL's statement_timeout), and the reader gets BudgetExceeded."""
    from sqlalchemy import text

    from aggregator.errors import BudgetExceeded

    _, store = corpus
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT count(*) FROM n"
    )
    deadline = Deadline(0.2, wall=0.3)
    with pytest.raises(BudgetExceeded), store._reading(deadline) as conn:
        conn.execute(text(slow))
    with store._reading(Deadline(5.0)) as conn:  # the connection is usable afterwards
        assert conn.execute(text("SELECT 1")).scalar() == 1


def _spin(seconds: float) -> int:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    return 1


def test_a_step_sqlite_cannot_break_off_is_interrupted_at_the_deadline(corpus: tuple[Config, Store]) -> None:
    """One step of SQLite's machine never calls the progress handler (FTS5 expanding a short
    prefix over a million papers is one, of about a second): the watchdog interrupts it."""
    from sqlalchemy import text

    from aggregator.errors import BudgetExceeded

    _, store = corpus
    if store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's statement_timeout stops its statements itself")
    # Three rows, each a step of 0.25 s of CPU: a few dozen instructions of SQLite's machine in
    # all, far fewer than the 10,000 between two calls of the progress handler.
    spins = "SELECT sum(spin(0.25)) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3)"
    with store._reading(Deadline(5.0)) as conn:  # within its budget: all three run
        conn.connection.driver_connection.create_function("spin", 1, _spin)
        assert conn.execute(text(spins)).scalar() == 3
    began = time.thread_time()
    with pytest.raises(BudgetExceeded), store._reading(Deadline(0.1, wall=30)) as conn:
        conn.connection.driver_connection.create_function("spin", 1, _spin)
        conn.execute(text(spins))
    assert 0.25 <= time.thread_time() - began < 0.5  # the step under way ends, and no other begins
    with store._reading(Deadline(5.0)) as conn:  # the connection is usable afterwards
        assert conn.execute(text("SELECT 1")).scalar() == 1
    # Coarse work (steps of 0.25 s) 0.5 s before a 0.6 s deadline: interrupted early, so that
    # the step under way ends by the deadline, and the request is told its budget ran out.
    deadline = Deadline(0.6, wall=30)
    began = time.thread_time()
    with pytest.raises(BudgetExceeded), store._reading(deadline) as conn, deadline.coarse(0.5):
        conn.connection.driver_connection.create_function("spin", 1, _spin)
        conn.execute(text(spins))
    assert time.thread_time() - began < 0.6 and not deadline.expired()


def test_the_index_s_expansion_of_a_prefix_is_watched_as_coarse_work(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statements that make FTS5 expand a prefix (a page's candidates, a preview's) run as
    coarse work, interrupted PREFIX_TAIL early; a query without a prefix asks nothing early."""
    from aggregator.store import search

    config, store = corpus
    tails: list[float] = []
    coarse = Deadline.coarse

    def spy(self: Deadline, tail: float) -> Any:
        tails.append(tail)
        return coarse(self, tail)

    monkeypatch.setattr(Deadline, "coarse", spy)
    store.papers_page(PageQuery(text=text_query(config, "diffusio*", indexed=True), limit=5))
    assert tails == [search.PREFIX_TAIL]
    narrowed = text_query(config, "quantiz*", indexed=True).narrowed
    assert narrowed is not None
    with contextlib.closing(store.documents(narrowed, budget=5.0)) as found:
        next(found)
    assert tails == [search.PREFIX_TAIL] * 2
    store.papers_page(PageQuery(text=text_query(config, "diffusion", indexed=True), limit=5))
    assert tails == [search.PREFIX_TAIL] * 2


def test_postgresql_spends_a_search_budget_in_one_process(corpus: tuple[Config, Store]) -> None:
    """No parallel workers for a search: they would spend the budget several times over in the
    time it allows; other connections keep the server's setting."""
    from sqlalchemy import text

    _, store = corpus
    if store.engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL store is not under test")
    with store.engine.connect() as conn:
        server = conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar()
    assert server != "0"  # PostgreSQL's default is 2: the test would prove nothing otherwise
    with store._reading(Deadline(5.0)) as conn:
        assert conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar() == "0"
    with store.engine.connect() as conn:
        assert conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar() == server


def test_a_search_of_the_index_gets_only_the_budget_left(corpus: tuple[Config, Store]) -> None:
    """PostgreSQL's work is not this thread's CPU: the one statement that may run long, the
    search of the index, is stopped by the database once the budget left has passed."""
    from aggregator.errors import BudgetExceeded
    from aggregator.store.pages import candidate_ids

    _, store = corpus
    narrowed = narrow(parse_query("model*"))
    assert narrowed is not None
    clock = iter([0.0] + [0.9999] * 50)  # nearly all the budget spent before the search
    deadline = Deadline(1.0, wall=30, cpu_clock=lambda: next(clock))
    if store.engine.dialect.name != "postgresql":
        assert deadline.left() < 0.001
        return
    with pytest.raises(BudgetExceeded), store._reading(deadline) as conn:
        candidate_ids(conn, narrowed, deadline=deadline)  # given 1 ms, if it takes that long
        conn.exec_driver_sql("SELECT pg_sleep(0.05)")  # and what follows no more
    clock = iter([0.0] + [0.5] * 50)  # half a second of a budget of 3 s spent: 2.5 s left
    deadline = Deadline(3.0, wall=30, cpu_clock=lambda: next(clock))
    with store._reading(deadline) as conn:
        candidate_ids(conn, narrowed, deadline=deadline)
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "2500ms"
    assert deadline.database_left() < 2.5  # the search's time is spent (this thread's CPU stood still)


@pytest.mark.parametrize(
    "limits",
    [
        {"DENSE_MIN": 10**9},  # asks its index first
        {"DENSE_MIN": 1, "DENSE_SHARE": 0.0, "PROBE": 5},  # walks first, then asks for the ids
    ],
)
def test_a_q_page_gives_its_search_of_the_index_only_the_budget_left(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch, limits: dict[str, float]
) -> None:
    """As above, through a page: the index search a `q=` page asks for, first or once a walk has
    not filled the page, is given what is left of the page's own deadline, not the whole
    request's time."""
    import itertools

    from aggregator.store import pages

    config, store = corpus
    if store.engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL store is not under test")
    for name, value in limits.items():
        monkeypatch.setattr(pages, name, value)
    clock = itertools.chain([0.0], itertools.repeat(0.9999))  # the CPU budget nearly spent
    deadline = Deadline(1.0, wall=30, cpu_clock=lambda: next(clock))
    query = PageQuery(text=text_query(config, "model*", indexed=True), limit=500)
    with pytest.raises(BudgetExceeded), store._reading(deadline) as conn:
        pages.page_ids(conn, query, deadline)  # the index search given 1 ms
        conn.exec_driver_sql("SELECT pg_sleep(0.05)")  # and what follows in the page's transaction


def test_on_postgresql_a_query_expected_dense_is_walked_first_however_few_its_candidates(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reads a tsvector for each candidate: a query its planner expects to match
    DENSE_MIN papers or more is walked in feed order first, its candidates never asked for, even
    when so few that they could be sorted; the total is then an estimate. SQLite's index counts
    the same query's candidates: an exact total."""
    from aggregator.store import pages
    from aggregator.store.search import estimated_candidates

    config, store = corpus
    text = text_query(config, "model", indexed=True)
    assert text.exact and text.narrowed is not None
    matches = len(matched_by_reading_everything(config, store, "model"))
    assert 5 < matches <= pages.SORT_LIMIT
    monkeypatch.setattr(pages, "DENSE_SHARE", 0.0)
    if store.engine.dialect.name != "postgresql":
        page = store.papers_page(PageQuery(text=text, limit=5))
        assert (page.total, page.exact) == (matches, True)
        return
    with store.engine.connect() as conn:
        expected = estimated_candidates(conn, text.narrowed)
    monkeypatch.setattr(pages, "DENSE_MIN", expected)  # expected to match exactly DENSE_MIN: dense
    page = store.papers_page(PageQuery(text=text, limit=5))
    assert page.total is not None and matches / 2 <= page.total <= matches * 2 and not page.exact
    monkeypatch.setattr(pages, "DENSE_MIN", expected + 1)  # one fewer than DENSE_MIN: asked
    page = store.papers_page(PageQuery(text=text, limit=5))
    assert (page.total, page.exact) == (matches, True)


def test_the_matcher_sees_the_sources_of_each_paper_it_confirms(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`source:` in a query that the matcher confirms paper by paper (walks.matching): walked,
    or through candidates of an inexact query, each paper is matched with the sources it was
    seen in, and the page holds what reading everything finds."""
    from aggregator.store import pages

    config, store = corpus
    monkeypatch.setattr(pages, "DENSE_MIN", 10**9)  # PostgreSQL: asks its index, never walks first
    for query, indexed in (("source:hf-daily", False), ("source:hf-daily AND NOT zzzunseen", True)):
        text = text_query(config, query, indexed=indexed)
        assert not text.exact
        expected = matched_by_reading_everything(config, store, query)
        assert 0 < len(expected) < 500
        page = store.papers_page(PageQuery(text=text, limit=500))
        assert sorted(p.feed_id for p in page.papers) == expected, query


def test_the_api_answers_503_past_the_budget(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator import create_app
    from aggregator.store import reads

    config, store = corpus
    client = create_app(config, store=store).test_client()
    monkeypatch.setattr(reads, "QUERY_BUDGET", 0.0)  # where papers_page reads it
    response = client.get("/api/papers", query_string={"q": "NOT zzzunseen", "offset": 900})
    assert response.status_code == 503 and "narrow it" in response.get_json()["error"]
    page = client.get("/search", query_string={"q": "NOT zzzunseen", "after": "1.1"})
    assert page.status_code == 503 and page.mimetype == "text/plain"
    wildcards = " OR ".join(f"w{n}*" for n in range(20))
    refused = client.get("/api/papers", query_string={"q": wildcards})
    assert refused.status_code == 400 and "wildcards" in refused.get_json()["error"]


def test_on_postgresql_this_process_keeps_to_its_share_of_the_budget(corpus: tuple[Config, Store]) -> None:
    """The server's own work (reading the papers a walk visits) is not this thread's CPU: on
    PostgreSQL the deadline leaves room for it, so that both stay within the budget together."""
    from aggregator.store.reads import OWN_SHARE_ON_POSTGRESQL

    _, store = corpus
    deadline = store._deadline(1.0)
    postgresql = store.engine.dialect.name == "postgresql"
    assert deadline.cpu == (OWN_SHARE_ON_POSTGRESQL if postgresql else 1.0)
    assert deadline.work == 1.0  # what the query may cost in all, whoever does the work
    assert 0.5 <= OWN_SHARE_ON_POSTGRESQL < 1


@contextlib.contextmanager
def turn_taken_elsewhere(turns: SearchTurns) -> Iterator[None]:
    """While this runs, another thread (another request) holds a turn, in the middle of its search."""
    taken, release = threading.Event(), threading.Event()

    def search_elsewhere() -> None:
        with turns.turn():
            taken.set()
            release.wait(5)

    other = threading.Thread(target=search_elsewhere)
    other.start()
    try:
        assert taken.wait(5)
        yield
    finally:
        release.set()
        other.join()


def test_searches_take_turns_and_a_search_kept_waiting_is_told_to_retry() -> None:
    turns = SearchTurns(1, wait=0.05)
    with turn_taken_elsewhere(turns):
        waited = time.monotonic()
        with pytest.raises(SearchesBusy, match="try again"), turns.turn():
            pass
        assert time.monotonic() - waited >= 0.05  # it waited its time first
    with turns.turn():  # the slot came back
        pass
    with pytest.raises(ValueError):
        SearchTurns(0)


def test_with_no_room_to_wait_a_busy_process_refuses_the_next_search_at_once() -> None:
    turns = SearchTurns(1, waiting=0, wait=5)
    with turn_taken_elsewhere(turns):
        started = time.monotonic()
        with pytest.raises(SearchesBusy, match="already running or waiting"), turns.turn():
            pass
        assert time.monotonic() - started < 1  # not the 5 s a waiting search would be given
    with turns.turn():
        pass
    with pytest.raises(ValueError):
        SearchTurns(1, waiting=-1)


def test_a_search_inside_a_search_goes_on_at_once() -> None:
    turns = SearchTurns(1, wait=5)
    started = time.monotonic()
    with turns.turn(), turns.turn():  # the same thread: not a wait for itself
        pass
    assert time.monotonic() - started < 1
    assert turns._holding == 0
    with turns.turn():  # and the turn came back
        pass


def test_a_preview_that_fails_gives_its_turn_back_at_once(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview's documents hold the search turn while they are read: a preview that fails
    halfway must not keep it until the garbage collector comes by (every search of the process
    would wait and get a 503 meanwhile)."""
    import gc

    from aggregator import create_app
    from aggregator.web import api

    config, store = corpus

    def failing(query: str, documents: Iterator[object], **options: object) -> None:
        next(iter(documents))
        raise RuntimeError("a preview that fails halfway")

    monkeypatch.setattr(api, "run_preview", failing)
    monkeypatch.setattr(store, "searches", SearchTurns(1, wait=0.05))
    client = create_app(config, store=store).test_client()
    gc.disable()  # what would otherwise give the turn back, some time later
    try:
        with contextlib.suppress(RuntimeError):  # a testing app lets it through
            assert client.get("/api/preview", query_string={"q": "model*"}).status_code == 500
        assert store.searches._holding == 0
    finally:
        gc.enable()
    monkeypatch.undo()
    assert client.get("/api/papers", query_string={"q": "model*"}).status_code == 200


def test_no_more_searches_wait_than_allowed_the_rest_are_told_at_once() -> None:
    """A waiting search holds a server thread: past `waiting` of them, the next is refused
    without waiting, so threads stay free for /healthz and feeds."""
    turns = SearchTurns(1, waiting=1, wait=5)
    running, release = threading.Event(), threading.Event()
    entered: list[str] = []

    def search(name: str, started: threading.Event | None = None) -> None:
        with turns.turn():
            entered.append(name)
            if started is not None:
                started.set()
            release.wait(5)

    first = threading.Thread(target=search, args=("first", running))
    first.start()
    assert running.wait(5)
    second = threading.Thread(target=search, args=("second",))  # waits its turn
    second.start()
    deadline = time.monotonic() + 5
    while turns._holding < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    refused = time.monotonic()
    with pytest.raises(SearchesBusy, match="running or waiting"), turns.turn():
        pass
    assert time.monotonic() - refused < 1  # at once, not after `wait`
    release.set()
    first.join()
    second.join()
    assert entered == ["first", "second"]
    assert turns._holding == 0


def test_the_database_gets_the_work_this_thread_has_not_spent() -> None:
    cpu = iter([10.0, 10.3, 10.3, 10.3])
    deadline = Deadline(0.5, wall=30, cpu_clock=lambda: next(cpu), wall_clock=lambda: 0.0, work=0.8)
    assert deadline.database_left() == pytest.approx(0.5)  # 0.8 of work, 0.3 spent here
    assert deadline.left() == pytest.approx(0.2)  # this thread's own share: 0.5
    assert "0.8 s of work" in str(deadline.exceeded())
    alone = Deadline(0.5, wall=0.1, cpu_clock=lambda: 0.0, wall_clock=lambda: 0.0)
    assert alone.database_left() == pytest.approx(0.1)  # never past the wall-clock cap


def test_a_statement_the_database_runs_by_itself_counts_against_the_work_left() -> None:
    """PostgreSQL searching its index for 0.4 s (this thread spending 0.05 s meanwhile): that
    time is work spent, so this thread's share after it ends where both together reach `work`,
    before its own CPU share does."""
    cpu, wall = [0.0], [0.0]
    deadline = Deadline(0.5, wall=30, cpu_clock=lambda: cpu[0], wall_clock=lambda: wall[0], work=0.8)
    cpu[0] = 0.1
    assert deadline.database_left() == pytest.approx(0.7)
    with deadline.elsewhere():
        wall[0], cpu[0] = 0.4, 0.15
    assert deadline.database_left() == pytest.approx(0.8 - 0.15 - 0.35)
    assert deadline.left() == pytest.approx(0.3)  # the work left, below this thread's 0.35
    cpu[0] = 0.44
    assert not deadline.expired()
    cpu[0] = 0.45  # 0.45 here and 0.35 there: 0.8, with 0.05 of this thread's share unspent
    assert deadline.expired() and deadline.due()


def test_a_deadline_expires_at_its_cpu_budget_or_at_four_times_its_work_in_wall_clock_time() -> None:
    cpu, wall = [0.0], [100.0]
    deadline = Deadline(1.0, cpu_clock=lambda: cpu[0], wall_clock=lambda: wall[0])
    assert (deadline.wall, deadline.wall_left()) == (4.0, 4.0)  # 1 s of CPU, 4 s in all
    cpu[0] = 0.999
    assert not deadline.expired()
    cpu[0] = 1.0  # the CPU budget spent, with wall-clock time to spare
    assert deadline.expired()
    with pytest.raises(BudgetExceeded):
        deadline.check()
    cpu[0], wall[0] = 0.5, 103.5  # half a second of wall-clock time left
    assert not deadline.expired()
    wall[0] = 104.0  # the wall-clock cap reached, with CPU to spare
    assert deadline.wall_left() == 0.0
    assert deadline.expired()
    assert Deadline(0.5, work=0.8, cpu_clock=lambda: 0.0, wall_clock=lambda: 0.0).wall == pytest.approx(3.2)


def test_only_searches_wait_for_a_turn_and_a_busy_one_answers_503_with_retry_after(
    corpus: tuple[Config, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While this process's search slot is taken, `q=` requests (feed, API, page, preview) get a
    503 with Retry-After; the same URLs without `q=`, and /healthz, answer as usual."""
    from aggregator import create_app

    config, store = corpus
    client = create_app(config, store=store).test_client()
    monkeypatch.setattr(store, "searches", SearchTurns(1, wait=0.01))
    with turn_taken_elsewhere(store.searches):
        for url in ("/api/papers", "/feeds/all.atom", "/search", "/api/preview"):
            busy = client.get(url, query_string={"q": "model*"})
            assert busy.status_code == 503, url
            assert busy.headers["Retry-After"] == "5"
            assert "try again" in busy.get_data(as_text=True)
        assert client.get("/api/papers").status_code == 200
        assert client.get("/feeds/all.atom").status_code == 200
        assert client.get("/healthz").status_code == 200
    assert client.get("/api/papers", query_string={"q": "model*"}).status_code == 200


def test_q_pages_walk_the_matches_with_offset_and_cursor(tmp_path: Path, database_url: str) -> None:
    """Page 2 of a `q=` answer is the matches after page 1, by `offset` and by the `next` cursor."""
    from tests.test_feeds import build

    site = build(tmp_path, database_url)
    try:
        everything = site.client.get("/api/papers", query_string={"q": "model*", "limit": 500}).get_json()
        ids = [p["id"] for p in everything["papers"]]
        assert len(ids) > 6
        first = site.client.get("/api/papers", query_string={"q": "model*", "limit": 3}).get_json()
        second = site.client.get(
            "/api/papers", query_string={"q": "model*", "limit": 3, "offset": 3}
        ).get_json()
        assert [p["id"] for p in first["papers"]] == ids[:3]
        assert [p["id"] for p in second["papers"]] == ids[3:6]
        after = site.client.get(first["next"].removeprefix("http://papers.example.org")).get_json()
        assert [p["id"] for p in after["papers"]] == ids[3:6]
    finally:
        site.store.close()
