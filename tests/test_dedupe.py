"""Deduplication decisions and merged records, without a database."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.ingest import dedupe
from aggregator.ingest.dedupe import authors_agree, plan_ingest, stubs_to_load
from aggregator.ingest.merge import merge_record
from aggregator.ingest.normalize import normalize_entry
from aggregator.records import Candidate, ClusterPlan, KnownPaper, StoredSighting, TitleStub
from aggregator.text import author_keys
from aggregator.types import Authority, ParsedEntry

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def sighting(
    source: str,
    entry_id: str,
    title: str,
    *,
    authority: Authority = Authority.OTHER,
    seen: datetime = NOW,
    **fields: object,
) -> StoredSighting:
    entry = ParsedEntry(entry_id=entry_id, title=title, **fields)  # type: ignore[arg-type]
    return StoredSighting(normalize_entry(entry, source=source, authority=authority, now=NOW), seen)


def groups(plans: list) -> list[set[tuple[str, str]]]:
    return sorted(({s.identity for s in p.sightings} for p in plans), key=lambda g: sorted(g))


def test_same_arxiv_id_in_different_forms_is_one_paper() -> None:
    batch = [
        sighting(
            "rss",
            "oai:arXiv.org:2411.18049v1",
            "Spatial Immersion",
            arxiv_id="2411.18049v1",
            authority=Authority.ARXIV_LISTING,
        ),
        sighting(
            "hf", "2411.18049", "Spatial Immersion", arxiv_id="2411.18049", authority=Authority.HUGGING_FACE
        ),
        sighting("blog", "post-1", "Paper of the day", link="https://huggingface.co/papers/2411.18049"),
        sighting("blog", "post-2", "Roundup", summary="we read arXiv:2411.18049 today"),
    ]
    plans = plan_ingest(batch, [])
    assert len(plans) == 1
    assert plans[0].record.arxiv_id == "2411.18049"


def test_title_match_needs_agreeing_authors() -> None:
    a = sighting(
        "rss",
        "a",
        "A Survey of Large Language Models",
        arxiv_id="2401.00001",
        authors=("Wayne Xin Zhao", "Kun Zhou", "Junyi Li"),
    )
    same_people = sighting(
        "venue", "v1", "A survey of large-language models.", authors=("Zhao, Wayne Xin", "Zhou, K.")
    )
    other_people = sighting(
        "venue", "v2", "A Survey of Large Language Models", authors=("Jane Doe", "John Roe")
    )
    no_people = sighting("venue", "v3", "A Survey of Large Language Models")
    plans = plan_ingest([a, same_people, other_people, no_people], [])
    assert groups(plans) == [{("rss", "a"), ("venue", "v1")}, {("venue", "v2")}, {("venue", "v3")}]


def test_two_part_series_never_merges() -> None:
    authors = ("Ada Lovelace", "Charles Babbage")
    one = sighting("venue", "p1", "Analytical Engines, Part I", authors=authors)
    two = sighting("venue", "p2", "Analytical Engines, Part II", authors=authors)
    assert len(plan_ingest([one, two], [])) == 2


def test_different_arxiv_ids_never_merge_even_with_same_title_and_authors() -> None:
    authors = ("Ada Lovelace",)
    one = sighting("rss", "1", "A Note on the Analytical Engine", arxiv_id="2401.00001", authors=authors)
    two = sighting("rss", "2", "A Note on the Analytical Engine", arxiv_id="2401.00002", authors=authors)
    assert len(plan_ingest([one, two], [])) == 2


def test_a_bridge_merges_two_stored_papers_and_the_older_survives() -> None:
    old = StoredSighting(
        sighting(
            "venue", "v", "Efficient Hardware Implementation of Sampling", authors=("Norbert Wehn",)
        ).sighting,
        NOW - timedelta(days=3),
    )
    newer = StoredSighting(
        sighting(
            "rss",
            "r",
            "Efficient Hardware Implementation of Sampling (v2)",
            arxiv_id="2309.16493v1",
            authors=("Norbert Wehn",),
        ).sighting,
        NOW - timedelta(days=1),
    )
    known = [KnownPaper(7, NOW - timedelta(days=1), (newer,)), KnownPaper(3, NOW - timedelta(days=3), (old,))]
    bridge = sighting(
        "api",
        "http://arxiv.org/abs/2309.16493v2",
        "Efficient Hardware Implementation of Sampling",
        arxiv_id="2309.16493v2",
        authors=("Norbert Wehn",),
        authority=Authority.ARXIV_API,
    )
    plans = plan_ingest([bridge], known)
    assert len(plans) == 1
    assert plans[0].survivor == 3 and plans[0].absorbed == (7,)
    assert plans[0].record.version == 2


def test_untouched_known_papers_get_no_plan() -> None:
    stored = sighting("rss", "r", "Something Entirely Different Here", arxiv_id="2401.00009")
    plans = plan_ingest(
        [sighting("rss", "x", "Another Paper Entirely Unrelated")], [KnownPaper(1, NOW, (stored,))]
    )
    assert [p.survivor for p in plans] == [None]


def test_resighting_replaces_the_stored_copy_of_the_same_entry() -> None:
    stored = sighting("rss", "r", "Old Title of the Paper Itself", arxiv_id="2401.00009v1")
    again = sighting("rss", "r", "New Title of the Paper Itself", arxiv_id="2401.00009v2")
    plans = plan_ingest([again], [KnownPaper(1, NOW, (stored,))])
    assert plans[0].survivor == 1
    assert len(plans[0].sightings) == 1
    assert plans[0].record.title == "New Title of the Paper Itself"


def test_merged_record_prefers_authority_and_full_abstracts_whatever_the_order() -> None:
    full = "HQC is one of the code-based finalists in the last round of the NIST standardisation process."
    batch = [
        sighting(
            "api",
            "http://arxiv.org/abs/2309.16493v2",
            "Efficient HQC (revised)",
            arxiv_id="2309.16493v2",
            authority=Authority.ARXIV_API,
            summary=full,
            authors=("M. Schöffel",),
            categories=("cs.CR",),
            primary_category="cs.CR",
        ),
        sighting(
            "rss",
            "oai:arXiv.org:2309.16493v1",
            "Efficient HQC",
            arxiv_id="2309.16493v1",
            authority=Authority.ARXIV_LISTING,
            summary=full[:50],
            authors=("Maximilian Schöffel", "N. Wehn"),
            categories=("cs.AR", "cs.CR"),
            announce_type="replace",
        ),
        sighting(
            "hf",
            "2309.16493",
            "Efficient HQC",
            arxiv_id="2309.16493",
            authority=Authority.HUGGING_FACE,
            upvotes=12,
            code_urls=("https://github.com/a/hqc",),
        ),
        sighting(
            "blog", "b", "Blog take", link="https://arxiv.org/abs/2309.16493", summary=full[:60] + "..."
        ),
    ]
    records = [merge_record(order) for order in map(list, itertools.permutations(batch))]
    record = records[0]
    assert all(r == record for r in records)
    assert record.title == "Efficient HQC (revised)"
    assert record.abstract == full
    assert record.version == 2
    assert record.authors == ("M. Schöffel",)
    assert record.categories == ("cs.CR", "cs.AR")
    assert record.upvotes == 12
    assert record.links["code"] == "https://github.com/a/hqc"
    assert record.announce_types == ("replace",)


def test_a_truncated_top_abstract_gives_way_to_the_full_one() -> None:
    full = "An increasing number of web articles engage the reader with the feeling of being immersed."
    batch = [
        sighting(
            "hf", "1", "T", arxiv_id="2411.18049", authority=Authority.HUGGING_FACE, summary=full[:45] + "…"
        ),
        sighting("blog", "2", "T", link="https://arxiv.org/abs/2411.18049", summary=full),
    ]
    assert merge_record(batch).abstract == full


def test_authors_agree() -> None:
    assert authors_agree({"zhao", "zhou", "li"}, {"zhao", "zhou"})
    assert not authors_agree({"zhao", "zhou", "li", "wang"}, {"doe", "zhao", "roe", "poe"})
    assert not authors_agree(set(), {"zhao"})


def test_a_long_unshared_title_merges_when_one_side_names_no_authors() -> None:
    title = "How to Segment in 3D Using 2D Models: Automated 3D Segmentation of Lesions on PET Volumes"
    blog = sighting("blog", "b", title, link="https://arxiv.org/abs/2407.18555")
    venue = sighting("venue", "v", title.replace(":", " -"), authors=("Toosi, Amirhosein", "Uribe, Carlos"))
    assert len(plan_ingest([blog, venue], [])) == 1


def test_a_short_or_shared_title_without_authors_does_not_merge() -> None:
    short = [
        sighting("blog", "b", "Attention Is All You Need"),
        sighting("venue", "v", "Attention is all you need", authors=("A. Vaswani",)),
    ]
    assert len(plan_ingest(short, [])) == 2
    title = "A Remarkably Long and Specific Title That Two Different Groups Used For Their Papers"
    shared = [
        sighting("venue", "v1", title, authors=("Jane Doe",)),
        sighting("venue", "v2", title, authors=("Li Wei",)),
        sighting("blog", "b", title),
    ]
    assert len(plan_ingest(shared, [])) == 3


def test_the_single_sighting_shortcut_agrees_with_the_general_merge() -> None:

    one = sighting(
        "api",
        "http://arxiv.org/abs/2309.16493v2",
        "Efficient HQC",
        arxiv_id="2309.16493v2",
        authority=Authority.ARXIV_API,
        summary="Abstract.",
        authors=("M. Schöffel",),
        categories=("cs.AR", "cs.CR"),
        primary_category="cs.CR",
        announce_type="new",
        code_urls=("https://github.com/a/b",),
        upvotes=3,
        doi="10.1/x",
        comment="5 pages",
    )
    twice = [one, StoredSighting(one.sighting, one.first_seen)]  # the general path, same content
    general = merge_record(twice)
    assert merge_record([one]) == general


# --- title merges read a cluster's authors from an index, as a rescan of the batch would -------

# Few titles (short, medium, long enough to merge without authors), few people, few ids and links:
# random batches then repeat titles, share authors, bridge clusters, conflict on arXiv ids and
# re-sight stored entries.
TITLES = (
    "Introduction",
    "Reply to the Comment on Widgets",
    "A Study of Repeated Titles in Research Feeds",
    "A Remarkably Long and Specific Title That Several Groups Used For Their Papers",
)
PEOPLE = ("Ada Lovelace", "Charles Babbage", "Grace Hopper", "Alan Turing", "Emmy Noether", "Kurt Gödel")
entries = st.tuples(
    st.sampled_from(("rss", "venue")),
    st.integers(0, 9),
    st.sampled_from(TITLES),
    st.lists(st.sampled_from(PEOPLE), max_size=4, unique=True),
    st.sampled_from((None, None, None, "2401.00001", "2401.00002v2", "2401.00003")),
    st.sampled_from((None, None, None, "https://example.org/a", "https://example.org/b")),
    st.integers(0, 5),
)


def from_entry(entry: tuple) -> StoredSighting:
    source, n, title, authors, arxiv_id, link, days = entry
    return sighting(
        source,
        f"e{n}",
        title,
        authors=tuple(authors),
        arxiv_id=arxiv_id,
        link=link,
        seen=NOW - timedelta(days=days),
    )


def known_papers(papers: list[list[tuple]]) -> list[KnownPaper]:
    """Stored papers, each entry held by one paper only, as in the store."""
    held: set[tuple[str, str]] = set()
    known = []
    for pid, paper in enumerate(papers, start=1):
        found = [s for s in map(from_entry, paper) if s.identity not in held]
        held.update(s.identity for s in found)
        if found:
            known.append(KnownPaper(pid, min(s.first_seen for s in found), tuple(found)))
    return known


def merge_by_title_rescanning(
    clusters: dedupe._Clusters,
    node: dedupe.Node,
    stored: StoredSighting,
    candidates: Iterable[dedupe.Node],
    stubs: object = (),
) -> None:
    """The title merge as it was: a cluster's authors are every family name of every sighting,
    anywhere in the batch, whose node has that root."""
    assert not stubs  # planned here with every known paper in full
    roots = {clusters.find(c) for c in candidates} - {clusters.find(node)}
    ours = author_keys(stored.sighting.authors)
    for root in sorted(roots):
        theirs: set[str] = set()
        for other, members in clusters.members.items():
            if clusters.find(other) == root:
                for m in members:
                    theirs |= author_keys(m.sighting.authors)
        assert set(clusters.names_of(root)) == theirs  # the index agrees with the rescan
        if ours and theirs:
            if authors_agree(ours, theirs):
                clusters.union(node, root)
        elif len(roots) == 1 and len(stored.sighting.title_key) >= dedupe.MIN_UNATTRIBUTED_TITLE_KEY:
            clusters.union(node, root)


def outline(plans: list[ClusterPlan]) -> list[tuple]:
    return [(p.survivor, p.absorbed, p.sightings, p.changed, p.record) for p in plans]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.lists(entries, min_size=1, max_size=3), max_size=5),
    st.lists(entries, min_size=1, max_size=25),
)
def test_title_merges_plan_as_a_rescan_of_the_batch_would(papers: list, batch: list) -> None:
    known = known_papers(papers)
    incoming = [from_entry(e) for e in batch]
    indexed = plan_ingest(incoming, known)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dedupe, "_merge_by_title", merge_by_title_rescanning)
        rescanned = plan_ingest(incoming, known)
    assert outline(indexed) == outline(rescanned)


# --- title stubs: stored papers found only through a title, planned without their sightings ----


def stub_of(paper: KnownPaper) -> TitleStub:
    """The paper as the store reads it when a shared title alone found it (sightings.match_keys)."""
    return TitleStub(
        paper.id,
        frozenset(s.sighting.title_key for s in paper.sightings if len(s.sighting.title_key) >= 16),
        frozenset(k for s in paper.sightings for k in s.sighting.keys),
        frozenset(n for s in paper.sightings for n in author_keys(s.sighting.authors)),
    )


def with_stubs(
    incoming: list[StoredSighting], known: list[KnownPaper], eligible: set[int]
) -> list[Candidate]:
    """`known` as the store hands it over: each eligible paper (one found only through a title)
    as a stub, unless `stubs_to_load` says a sighting could join it; in the same order."""
    stubs = [stub_of(p) for p in known if p.id in eligible]
    load = stubs_to_load(incoming, stubs)
    by_id = {stub.id: stub for stub in stubs if stub.id not in load}
    return [by_id.get(p.id, p) for p in known]


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.lists(entries, min_size=1, max_size=3), max_size=8),
    st.lists(entries, min_size=1, max_size=25),
    st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_plans_with_title_stubs_are_the_plans_with_every_paper_in_full(
    papers: list, batch: list, as_stub: list[bool]
) -> None:
    known = known_papers(papers)
    incoming = [from_entry(e) for e in batch]
    arriving = {s.identity for s in incoming}
    # A paper holding an entry of the batch is loaded in full by the store: it is never a stub.
    eligible = {
        p.id for p in known if as_stub[p.id - 1] and not any(s.identity in arriving for s in p.sightings)
    }
    stubbed = with_stubs(incoming, known, eligible)
    assert outline(plan_ingest(incoming, stubbed)) == outline(plan_ingest(incoming, known))


def test_a_stub_that_a_sighting_would_join_is_refused() -> None:
    title = "A Study of Repeated Titles in Research Feeds"
    stored = sighting("venue", "v", title, authors=("Ada Lovelace", "Grace Hopper"))
    paper = KnownPaper(1, NOW, (stored,))
    same_people = sighting("rss", "r", title, authors=("A. Lovelace",))
    other_people = sighting("rss", "o", title, authors=("Alan Turing",))
    assert stubs_to_load([same_people], [stub_of(paper)]) == {1}
    assert stubs_to_load([other_people], [stub_of(paper)]) == set()
    with pytest.raises(ValueError, match=r"stored papers \[1\]"):
        plan_ingest([same_people], [stub_of(paper)])
    assert plan_ingest([other_people], [stub_of(paper)]) == plan_ingest([other_people], [paper])
    by_link = sighting("blog", "b", "Elsewhere", link="https://example.org/a")
    linked = KnownPaper(2, NOW, (sighting("venue", "w", title, link="https://example.org/a"),))
    assert stubs_to_load([by_link], [stub_of(linked)]) == {2}
    with pytest.raises(ValueError, match=r"stored papers \[2\]"):
        plan_ingest([by_link], [stub_of(linked)])


def test_a_stub_counts_among_the_papers_sharing_a_title() -> None:
    """Where one side names no authors, only a title no other paper shares merges: a stub is
    such another paper, though it takes no part."""
    title = "A Remarkably Long and Specific Title That Several Groups Used For Their Papers"
    unattributed = KnownPaper(1, NOW, (sighting("blog", "b", title),))
    other = KnownPaper(2, NOW, (sighting("venue", "v2", title, authors=("Li Wei",)),))
    named = sighting("venue", "v3", title, authors=("Kurt Gödel",))
    assert [p.survivor for p in plan_ingest([named], [unattributed])] == [1]  # alone: it merges
    full = plan_ingest([named], [unattributed, other])
    assert [p.survivor for p in full] == [None]  # two papers bear the title: it does not
    assert stubs_to_load([named], [stub_of(other)]) == set()
    assert outline(plan_ingest([named], [unattributed, stub_of(other)])) == outline(full)
    # Named by nobody, the sighting could join any paper of that title: none stays a stub.
    assert stubs_to_load([sighting("blog", "c", title)], [stub_of(other)]) == {2}
