"""Deduplication decisions and merged records, without a database."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.ingest import dedupe
from aggregator.ingest.dedupe import TitleReach, authors_agree, plan_ingest
from aggregator.ingest.merge import merge_record
from aggregator.ingest.normalize import normalize_entry
from aggregator.ingest.normalize import title_key as text_title_key  # `title_key` is a field name here
from aggregator.records import MIN_TITLE_KEY, ClusterPlan, KnownPaper, StoredSighting
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
    unread: int = 0,
) -> None:
    """The title merge as it was: a cluster's authors are every family name of every sighting,
    anywhere in the batch, whose node has that root."""
    assert not unread  # planned here with every known paper in full
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


# --- papers read light: stored papers found only through a title, planned without their sightings -


def light(paper: KnownPaper) -> tuple[set[str], list[str], list[str]]:
    """What the store reads of a paper a shared title alone found (sightings.match_keys): the
    title keys long enough to merge on, the identity keys and the family names of its sightings."""
    return (
        {s.sighting.title_key for s in paper.sightings if len(s.sighting.title_key) >= MIN_TITLE_KEY},
        [k for s in paper.sightings for k in s.sighting.keys],
        [n for s in paper.sightings for n in author_keys(s.sighting.authors)],
    )


def as_the_store_reads(
    incoming: list[StoredSighting], known: list[KnownPaper], eligible: set[int]
) -> tuple[list[KnownPaper], Counter[str]]:
    """`known` as the store hands it over: each eligible paper (one found only through a title)
    read light, and, unless TitleReach says a sighting could join it, only counted by title."""
    reach = TitleReach(incoming)
    unread: Counter[str] = Counter()
    loaded = []
    for paper in known:
        if paper.id in eligible and not reach.reaches(*light(paper)):
            unread.update(light(paper)[0])
        else:
            loaded.append(paper)
    return loaded, unread


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.lists(entries, min_size=1, max_size=3), max_size=8),
    st.lists(entries, min_size=1, max_size=25),
    st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_plans_with_papers_read_light_are_the_plans_with_every_paper_in_full(
    papers: list, batch: list, read_light: list[bool]
) -> None:
    known = known_papers(papers)
    incoming = [from_entry(e) for e in batch]
    arriving = {s.identity for s in incoming}
    # A paper holding an entry of the batch is loaded in full by the store: it is never read light.
    eligible = {
        p.id for p in known if read_light[p.id - 1] and not any(s.identity in arriving for s in p.sightings)
    }
    loaded, unread = as_the_store_reads(incoming, known, eligible)
    assert outline(plan_ingest(incoming, loaded, unread=unread)) == outline(plan_ingest(incoming, known))


def test_title_reach_names_the_papers_a_sighting_could_join() -> None:
    title = "A Study of Repeated Titles in Research Feeds"
    stored = sighting("venue", "v", title, authors=("Ada Lovelace", "Grace Hopper"))
    paper = KnownPaper(1, NOW, (stored,))
    same_people = sighting("rss", "r", title, authors=("A. Lovelace",))
    other_people = sighting("rss", "o", title, authors=("Alan Turing",))
    assert TitleReach([same_people]).reaches(*light(paper))
    assert not TitleReach([other_people]).reaches(*light(paper))
    by_link = sighting("blog", "b", "Elsewhere", link="https://example.org/a")
    linked = KnownPaper(2, NOW, (sighting("venue", "w", title, link="https://example.org/a"),))
    assert TitleReach([by_link]).reaches(*light(linked))
    # the paper's names of all its sightings count, whichever title each bore
    retitled = sighting("blog", "t", "Repeated Titles in Research Feeds: A Study", authors=("Alan Turing",))
    assert TitleReach([other_people]).reaches(*light(KnownPaper(3, NOW, (stored, retitled))))


def test_a_paper_read_light_counts_among_the_papers_sharing_a_title() -> None:
    """Where one side names no authors, only a title no other paper shares merges: a paper
    only counted by its title (`unread`) is such another paper, though it takes no part."""
    title = "A Remarkably Long and Specific Title That Several Groups Used For Their Papers"
    unattributed = KnownPaper(1, NOW, (sighting("blog", "b", title),))
    other = KnownPaper(2, NOW, (sighting("venue", "v2", title, authors=("Li Wei",)),))
    named = sighting("venue", "v3", title, authors=("Kurt Gödel",))
    assert [p.survivor for p in plan_ingest([named], [unattributed])] == [1]  # alone: it merges
    full = plan_ingest([named], [unattributed, other])
    assert [p.survivor for p in full] == [None]  # two papers bear the title: it does not
    assert not TitleReach([named]).reaches(*light(other))
    key = named.sighting.title_key
    assert outline(plan_ingest([named], [unattributed], unread={key: 1})) == outline(full)
    # Named by nobody, the sighting could join any paper of that title: none is only counted.
    assert TitleReach([sighting("blog", "c", title)]).reaches(*light(other))


# --- merge decisions and merged fields that mutation testing found untested (docs/testing.md) ---


def test_half_of_the_shorter_author_list_is_agreement_whatever_holds_the_names() -> None:
    assert authors_agree({"zhao", "zhou"}, {"zhao", "li"})  # one name of two: half is enough
    assert not authors_agree({"zhao", "zhou", "li"}, {"zhao", "wang", "chen"})  # one of three is not
    # lists and tuples of family names as well as sets, a repeated name counted once
    assert authors_agree(["zhao", "zhao", "zhou"], ("zhao", "li"))
    assert not authors_agree(["zhao", "zhao", "zhou", "wu"], ("zhao", "li", "chen"))


def test_a_merged_paper_keeps_its_arxiv_id_against_a_later_sighting_of_another() -> None:
    listed = sighting("rss", "a", "Alpha Paper on Widgets", arxiv_id="2401.00001", doi="10.1000/shared")
    blog = sighting("blog", "b", "A Blog Post on Widgets", doi="10.1000/shared", link="https://example.org/w")
    other = sighting(
        "venue", "c", "Gamma Paper on Gadgets", arxiv_id="2401.00002", link="https://example.org/w"
    )
    # the blog post joins the first paper through the DOI; the third sighting shares the blog's
    # link, but the paper it would join carries another arXiv id
    assert groups(plan_ingest([listed, blog, other], [])) == [{("blog", "b"), ("rss", "a")}, {("venue", "c")}]


def test_a_stored_paper_refuses_a_sighting_of_another_arxiv_id_sharing_its_doi() -> None:
    stored = sighting("rss", "a", "Alpha Paper on Widgets", arxiv_id="2401.00001", doi="10.1000/shared")
    incoming = sighting("venue", "c", "Gamma Paper on Gadgets", arxiv_id="2401.00002", doi="10.1000/shared")
    plans = plan_ingest([incoming], [KnownPaper(1, NOW, (stored,))])
    assert [(p.survivor, p.record.arxiv_id) for p in plans] == [(None, "2401.00002")]


def test_an_entry_repeated_in_one_batch_is_one_sighting_the_last_copy() -> None:
    first = sighting("rss", "e", "Old Title of the Paper Itself")
    again = sighting("rss", "e", "New Title of the Paper Itself")
    [plan] = plan_ingest([first, again], [])
    assert [s.sighting.title for s in plan.sightings] == ["New Title of the Paper Itself"]


def test_a_title_key_of_the_minimum_length_is_enough_to_merge_on() -> None:
    long_enough, too_short = "Pruning Attention", "Pruned Attention"
    assert [len(text_title_key(t)) for t in (long_enough, too_short)] == [MIN_TITLE_KEY, MIN_TITLE_KEY - 1]
    for title, papers in ((long_enough, 1), (too_short, 2)):
        batch = [
            sighting("rss", "a", title, authors=("Ada Lovelace",)),
            sighting("venue", "b", title + ".", authors=("A. Lovelace", "C. Babbage")),
        ]
        assert len(plan_ingest(batch, [])) == papers, title


def test_a_title_just_long_enough_merges_without_authors_and_is_loaded_in_full() -> None:
    title = "A Title Long Enough to Merge Without Its Authors"
    assert len(text_title_key(title)) == dedupe.MIN_UNATTRIBUTED_TITLE_KEY
    stored = KnownPaper(1, NOW, (sighting("venue", "v", title, authors=("Ada Lovelace",)),))
    blog = sighting("blog", "b", title)
    assert [p.survivor for p in plan_ingest([blog], [stored])] == [1]
    assert TitleReach([blog]).reaches(*light(stored))  # so the store loads it in full


def test_no_unattributed_paper_is_joined_when_several_bear_the_title_one_read_light() -> None:
    title = "A Remarkably Long and Specific Title That Several Groups Used For Their Papers"
    first = KnownPaper(1, NOW, (sighting("blog", "b1", title),))
    second = KnownPaper(2, NOW, (sighting("blog", "b2", title),))
    others = KnownPaper(3, NOW, (sighting("venue", "v3", title, authors=("Li Wei",)),))
    named = sighting("venue", "v4", title, authors=("Kurt Gödel",))
    full = plan_ingest([named], [first, second, others])
    assert [p.survivor for p in full] == [None]
    assert not TitleReach([named]).reaches(*light(others))
    unread = {named.sighting.title_key: 1}
    assert outline(plan_ingest([named], [first, second], unread=unread)) == outline(full)


TITLE = "A Study of Repeated Titles in Research Feeds"


def test_a_re_sighted_entry_naming_another_arxiv_id_leaves_for_a_paper_of_its_own() -> None:
    """The paper's other sightings still name the old id: the corrected entry leaves, though its
    title and authors agree with the paper's; the paper it left is merged again without it."""
    listing = sighting("rss", "e", TITLE, arxiv_id="2401.00001", authors=("Ada Lovelace",))
    daily = sighting("hf", "h", TITLE, arxiv_id="2401.00001", authors=("Ada Lovelace",))
    corrected = sighting("rss", "e", TITLE, arxiv_id="2401.00002", authors=("Ada Lovelace",))
    plans = plan_ingest([corrected], [KnownPaper(1, NOW, (listing, daily))])
    assert [(p.survivor, [s.identity for s in p.sightings]) for p in plans] == [
        (1, [("hf", "h")]),
        (None, [("rss", "e")]),
    ]
    left, moved = plans
    assert left.changed == () and left.record == merge_record((daily,))
    assert moved.record.arxiv_id == "2401.00002"


def test_a_re_sighted_entry_naming_no_arxiv_id_stays_with_its_paper() -> None:
    listing = sighting("rss", "e", TITLE, arxiv_id="2401.00001", authors=("Ada Lovelace",))
    venue = sighting("venue", "v", TITLE, authors=("Ada Lovelace",))
    retitled = sighting("venue", "v", "Repeated Titles in Research Feeds, Studied", authors=("Ada Lovelace",))
    plans = plan_ingest([retitled], [KnownPaper(1, NOW, (listing, venue))])
    assert [(p.survivor, {s.identity for s in p.sightings}) for p in plans] == [
        (1, {("rss", "e"), ("venue", "v")})
    ]


@pytest.mark.parametrize("corrected_first", [True, False])
def test_an_entry_that_left_its_paper_counts_in_title_merges_as_a_new_sighting(
    corrected_first: bool,
) -> None:
    """A sighting naming no arXiv id whose title and authors match two new papers of different
    ids joins the one seen first in the batch; a corrected entry that left its paper is one of
    them, at its place in the batch like any new sighting."""
    listing = sighting("rss", "e", TITLE, arxiv_id="2401.00001", authors=("Ada Lovelace",))
    daily = sighting("hf", "h", TITLE, arxiv_id="2401.00001", authors=("Ada Lovelace",))
    corrected = sighting("rss", "e", TITLE, arxiv_id="2401.00002", authors=("Ada Lovelace",))
    other = sighting("venue", "o", TITLE, arxiv_id="2401.00003", authors=("Ada Lovelace",))
    unnumbered = sighting("blog", "b", TITLE, authors=("A. Lovelace",))
    first, second = (corrected, other) if corrected_first else (other, corrected)
    plans = plan_ingest([first, second, unnumbered], [KnownPaper(1, NOW, (listing, daily))])
    # (and the paper the entry left is merged again from the sighting it keeps)
    assert groups(plans) == sorted(
        ({first.identity, unnumbered.identity}, {second.identity}, {daily.identity}), key=lambda g: sorted(g)
    )
    # as if the corrected entry had come new
    renamed = sighting("rss", "e2", TITLE, arxiv_id="2401.00002", authors=("Ada Lovelace",))
    fresh = [renamed if s is corrected else s for s in (first, second, unnumbered)]
    as_new = groups(plan_ingest(fresh, [KnownPaper(1, NOW, (listing, daily))]))
    new_papers = [g for g in groups(plans) if g != {daily.identity}]
    assert [{("rss", "e") if i == ("rss", "e2") else i for i in g} for g in as_new] == new_papers


def test_a_paper_an_entry_left_no_longer_has_its_authors_for_a_title_merge() -> None:
    """The family names a title merge has counted for a paper lose those of an entry that leaves
    it for a corrected arXiv id: a later sighting of the title by that entry's authors finds a
    paper whose sightings no longer name them, and does not join it."""
    listing = sighting("rss", "e", TITLE, arxiv_id="2401.00001", authors=("Ada Lovelace",))
    blog = sighting("blog", "b", TITLE, arxiv_id="2401.00001")  # names no authors
    # names another author: a title merge with the paper counts the paper's names, and refuses
    other = sighting("venue", "o", TITLE, authors=("Grace Hopper",))
    corrected = sighting(
        "rss", "e", "Corrected Titles in Research Feeds", arxiv_id="2401.00002", authors=("Ada Lovelace",)
    )
    unnumbered = sighting("venue", "u", TITLE, authors=("Ada Lovelace",))
    plans = plan_ingest([other, corrected, unnumbered], [KnownPaper(1, NOW, (listing, blog))])
    assert groups(plans) == sorted(
        ({blog.identity}, {other.identity}, {corrected.identity}, {unnumbered.identity}),
        key=lambda g: sorted(g),
    )


def test_a_paper_whose_only_arxiv_id_is_corrected_takes_the_new_one() -> None:
    """Once the paper carries the corrected id, a sighting of that id joins it."""
    listing = sighting("rss", "e", TITLE, arxiv_id="2401.00001", authors=("Ada Lovelace",))
    venue = sighting("venue", "v", TITLE, authors=("Ada Lovelace",))
    corrected = sighting("rss", "e", TITLE, arxiv_id="2401.00002", authors=("Ada Lovelace",))
    api = sighting(
        "api",
        "http://arxiv.org/abs/2401.00002v1",
        "Repeated Titles, Retitled by arXiv",
        arxiv_id="2401.00002v1",
        authority=Authority.ARXIV_API,
    )
    [plan] = plan_ingest([corrected, api], [KnownPaper(1, NOW, (listing, venue))])
    assert plan.survivor == 1 and len(plan.sightings) == 3
    assert plan.record.arxiv_id == "2401.00002"


def test_within_one_authority_the_latest_version_describes_the_paper() -> None:
    listing = Authority.ARXIV_LISTING
    first = sighting("listing-a", "v1", "First Title", arxiv_id="2401.00001v1", authority=listing)
    revised = sighting("listing-b", "v2", "Revised Title", arxiv_id="2401.00001v2", authority=listing)
    assert merge_record([first, revised]).title == "Revised Title"
    # a sighting naming no version counts as older than any that names one
    unversioned = sighting("blog-a", "a", "What One Blog Called It", link="https://arxiv.org/abs/2401.00001")
    versioned = sighting("blog-b", "b", "What Another Called It", link="https://arxiv.org/abs/2401.00001v1")
    assert merge_record([unversioned, versioned]).title == "What Another Called It"


def test_the_merged_record_takes_each_field_from_the_most_authoritative_sighting_giving_it() -> None:
    api = sighting(
        "api",
        "http://arxiv.org/abs/2401.00001v1",
        "Sparse Widgets",
        arxiv_id="2401.00001v1",
        authority=Authority.ARXIV_API,
        categories=("cs.LG", "cs.AR"),
        updated=NOW - timedelta(days=2),
    )
    venue = sighting(
        "venue",
        "v",
        "Sparse Widgets for Everyone",
        doi="10.1000/widgets",
        journal_ref="Widget Letters 3 (2026)",
        authors=("Ada Lovelace",),
        updated=NOW - timedelta(days=1),
    )
    record = merge_record([venue, api])
    assert (record.title, record.title_key) == ("Sparse Widgets", "sparsewidgets")
    assert record.authors == ("Ada Lovelace",)
    assert (record.doi, record.journal_ref) == ("10.1000/widgets", "Widget Letters 3 (2026)")
    assert record.source_updated == NOW - timedelta(days=1)  # the latest
    assert record.primary_category == "cs.LG"  # no sighting names one: the first category


def test_a_paper_no_sighting_titles_is_named_by_its_most_authoritative_entry() -> None:
    link = "https://arxiv.org/abs/2401.00002"
    record = merge_record([sighting("blog-b", "b", "", link=link), sighting("blog-a", "a", "", link=link)])
    assert record.title == "a"
    assert record.title_key == ""  # nothing merges on an entry id
    assert record.authors == ()


@pytest.mark.parametrize(
    "fields",
    [
        {
            "doi": "10.1000/widgets",
            "journal_ref": "Widget Letters 3 (2026)",
            "published": NOW - timedelta(days=3),
            "updated": NOW - timedelta(days=1),
            "categories": ("cs.LG", "cs.AR"),
            "link": "https://example.org/widgets",
        },
        {},
    ],
    ids=["without-primary-category-or-announcement", "bare"],
)
def test_the_single_sighting_shortcut_agrees_with_the_general_merge_for_sparse_sightings(
    fields: dict[str, object],
) -> None:
    one = sighting("venue", "v", "Sparse Widgets" if fields else "", **fields)
    assert merge_record([one]) == merge_record([one, StoredSighting(one.sighting, one.first_seen)])


def abstract_of(*abstracts: str) -> str:
    """The merged abstract of sightings in decreasing authority, the first of an arXiv id."""
    authorities = (Authority.ARXIV_API, Authority.ARXIV_LISTING, Authority.HUGGING_FACE, Authority.OTHER)
    return merge_record(
        [
            sighting(f"s{n}", str(n), "T", arxiv_id="2401.00001", authority=authority, summary=abstract)
            for n, (authority, abstract) in enumerate(zip(authorities, abstracts, strict=False))
        ]
    ).abstract


def test_a_cut_short_abstract_ending_in_a_spaced_ellipsis_gives_way_to_the_full_one() -> None:
    full = "We study structured pruning of large language models, and find that most heads can go."
    assert abstract_of("We study structured pruning of large language models …", full) == full


def test_a_cut_short_abstract_with_a_stem_of_forty_characters_gives_way_to_the_full_one() -> None:
    """Forty characters of stem are the least that is trusted to recognise a fuller copy."""
    full = "We study structured pruning of large language models, and find that most heads can go."
    assert abstract_of(full[:40] + "...", full) == full


def test_a_placeholder_abstract_gives_way_to_the_longest_one() -> None:
    full = "An increasing number of web articles engage the reader with the feeling of being immersed."
    assert abstract_of("No abstract.", full, full[:50]) == full


@pytest.mark.parametrize(
    "top",
    [
        "A complete abstract from the most authoritative source, kept.",
        "A cut abstract whose stem is too short [...]",  # too short a stem to recognise a fuller copy
        "A cut abstract whose stem is short [...]",  # the same, 40 characters in all: kept
    ],
)
def test_an_authoritative_abstract_gives_way_only_to_a_fuller_copy_of_itself(top: str) -> None:
    unrelated = "A much longer abstract from a less authoritative source that does not begin like the other."
    assert abstract_of(top, unrelated) == top
