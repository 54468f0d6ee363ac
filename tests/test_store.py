"""The store: migrations, atomic source writes, merges, versions, reads, concurrency."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from aggregator.errors import BudgetExceeded
from aggregator.ingest.normalize import normalize_entry, title_key
from aggregator.ingest.pipeline import store_batch
from aggregator.records import MIN_TITLE_KEY, PaperText
from aggregator.store import candidates, writer
from aggregator.store.repository import PageQuery, Store
from aggregator.store.schema import Base
from aggregator.topics.index_query import narrow
from aggregator.topics.query import parse_query
from aggregator.types import (
    EPOCH,
    STOPPED,
    Authority,
    FetchDone,
    PaperView,
    ParsedEntry,
    Sighting,
    SourceState,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def entry(
    source: str,
    entry_id: str,
    title: str,
    *,
    authority: Authority = Authority.OTHER,
    now: datetime = T0,
    **fields: object,
) -> Sighting:
    parsed = ParsedEntry(entry_id=entry_id, title=title, **fields)  # type: ignore[arg-type]
    return normalize_entry(parsed, source=source, authority=authority, now=now)


def done(at: datetime = T0, etag: str | None = None) -> FetchDone:
    return FetchDone(etag, None, None, at + timedelta(hours=6))


def page(store: Store, **kw: object) -> list:
    return store.papers_page(PageQuery(**kw)).papers  # type: ignore[arg-type]


@pytest.fixture
def sources(store: Store) -> Store:
    store.sync_sources([("rss", "file:///rss.xml"), ("api", "file:///api.xml"), ("blog", "file:///blog.xml")])
    return store


def test_migrations_build_exactly_the_models(store: Store) -> None:
    store.upgrade()  # twice is harmless
    with store.engine.connect() as conn:
        # The full-text index (store/search.py) is no model: an FTS5 table or tsvector columns.
        index = ("paper_index", "paper_pairs")
        context = MigrationContext.configure(
            conn, opts={"include_name": lambda name, kind, _: not (name or "").startswith(index)}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_ingest_then_reingest_is_a_no_op(sources: Store) -> None:
    batch = [
        entry(
            "rss",
            f"oai:arXiv.org:2411.0000{i}v1",
            f"Paper number {i} about things",
            arxiv_id=f"2411.0000{i}v1",
            authority=Authority.ARXIV_LISTING,
            published=T0,
        )
        for i in range(5)
    ]
    first = store_batch(sources, "rss", batch, done(), now=T0)
    assert (first.new, first.updated, first.unchanged) == (5, 0, 0)
    version = sources.version()
    before = page(sources)
    again = store_batch(sources, "rss", batch, done(T0 + timedelta(hours=1)), now=T0 + timedelta(hours=1))
    assert (again.new, again.updated, again.unchanged) == (0, 0, 5)
    assert page(sources) == before
    assert sources.version() == version


def test_new_version_updates_the_record_and_its_updated_date(sources: Store) -> None:
    v1 = entry(
        "api",
        "http://arxiv.org/abs/2411.00001v1",
        "First title",
        arxiv_id="2411.00001v1",
        authority=Authority.ARXIV_API,
        published=T0,
        updated=T0,
        authors=("A. Author",),
    )
    store_batch(sources, "api", [v1], done(), now=T0)
    [paper] = page(sources)
    later = T0 + timedelta(days=2)
    # the API names the new version under a new entry id; the listing re-sights the old one
    v2 = entry(
        "api",
        "http://arxiv.org/abs/2411.00001v2",
        "Revised title",
        arxiv_id="2411.00001v2",
        authority=Authority.ARXIV_API,
        published=T0,
        updated=later - timedelta(hours=1),
        authors=("A. Author",),
        now=later,
    )
    version = sources.version()
    outcome = store_batch(sources, "api", [v2], done(later), now=later)
    assert outcome.updated == 1
    # Readers' caches key on the version: an update (no new paper) must move it too.
    assert sources.version() > version
    [revised] = page(sources)
    assert revised.feed_id == paper.feed_id == "https://arxiv.org/abs/2411.00001"
    assert (revised.title, revised.version) == ("Revised title", 2)
    assert revised.updated == later - timedelta(hours=1)
    assert revised.published == paper.published
    assert len(revised.sightings) == 2


def test_a_resighting_elsewhere_is_not_a_real_change(sources: Store) -> None:
    store_batch(
        sources,
        "rss",
        [
            entry(
                "rss",
                "r1",
                "Some paper title that is long",
                arxiv_id="2411.00002v1",
                authority=Authority.ARXIV_LISTING,
                published=T0,
            )
        ],
        done(),
        now=T0,
    )
    [paper] = page(sources)
    later = T0 + timedelta(days=1)
    store_batch(
        sources,
        "blog",
        [entry("blog", "b1", "Blog: Some paper", link="https://arxiv.org/abs/2411.00002", now=later)],
        done(later),
        now=later,
    )
    [after] = page(sources)
    assert after.updated == paper.updated
    assert [s.source for s in after.sightings] == ["rss", "blog"]


def test_merging_two_stored_papers_keeps_the_older_id(sources: Store) -> None:
    title = "Efficient Hardware Implementation of Constant Time Sampling for HQC"
    store_batch(
        sources,
        "blog",
        [
            entry(
                "blog",
                "b1",
                title,
                authors=("Norbert Wehn", "M. Schöffel"),
                link="https://blog.example.org/hqc",
            )
        ],
        done(),
        now=T0,
    )
    later = T0 + timedelta(days=1)
    store_batch(
        sources,
        "rss",
        [
            entry(
                "rss",
                "r1",
                "Something else entirely, for now",
                arxiv_id="2309.16493v1",
                authority=Authority.ARXIV_LISTING,
                now=later,
            )
        ],
        done(later),
        now=later,
    )
    assert len(page(sources)) == 2
    older_id = next(p.feed_id for p in page(sources) if p.arxiv_id is None)
    assert older_id.startswith("tag:papers.example.org,2026-11-20:paper/")
    latest = later + timedelta(days=1)
    bridge = entry(
        "api",
        "http://arxiv.org/abs/2309.16493v2",
        title,
        arxiv_id="2309.16493v2",
        authority=Authority.ARXIV_API,
        authors=("Maximilian Schöffel", "Norbert Wehn"),
        now=latest,
    )
    outcome = store_batch(sources, "api", [bridge], done(latest), now=latest)
    [merged] = page(sources)
    assert outcome.updated == 1
    assert merged.feed_id == older_id
    assert merged.arxiv_id == "2309.16493"
    assert {s.source for s in merged.sightings} == {"blog", "rss", "api"}
    # The search index follows: one entry for the paper (both tables on PostgreSQL), by its title.
    with sources.engine.connect() as conn:
        tables = ["paper_index", "paper_pairs"] if conn.dialect.name == "postgresql" else ["paper_index"]
        for table in tables:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 1
    found = sources.documents(narrow(parse_query('"constant time sampling"')))
    assert [feed_id for feed_id, *_ in found] == [older_id]
    assert not list(sources.documents(narrow(parse_query('"something else entirely"'))))


def test_documents_carry_each_paper_s_sources_and_stop_at_their_budget(sources: Store) -> None:
    """What previews match: every paper in id order, with the sources it was seen in (for
    `source:`); a preview past its budget stops, whether it reads every paper or the index's."""
    store_batch(
        sources,
        "rss",
        [entry("rss", "r1", "Sparse widgets for dense gadgets", arxiv_id="2411.00001v1")],
        done(),
        now=T0,
    )
    blog = [entry("blog", "b1", "Dense gadgets in practice", link="https://blog.example.org/b1")]
    store_batch(sources, "blog", blog, done(), now=T0)
    found = [(feed_id, title, doc.sources) for feed_id, title, _, doc in sources.documents()]
    assert found == [
        ("https://arxiv.org/abs/2411.00001", "Sparse widgets for dense gadgets", {"rss"}),
        (found[1][0], "Dense gadgets in practice", {"blog"}),
    ]
    # no arXiv id: a tag URI, of the store's authority, the day first seen and 20 hex digits
    assert re.fullmatch(r"tag:papers\.example\.org,2026-11-20:paper/[0-9a-f]{20}", found[1][0])
    with pytest.raises(BudgetExceeded):
        list(sources.documents(budget=0.0))
    with pytest.raises(BudgetExceeded):
        list(sources.documents(narrow(parse_query("gadgets")), budget=0.0))


def test_a_failed_write_leaves_papers_and_source_state_untouched(
    sources: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_batch(
        sources,
        "rss",
        [entry("rss", "r1", "Kept paper with a long title", arxiv_id="2411.00003v1")],
        done(etag='"old"'),
        now=T0,
    )

    def explode(*_args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer.IngestWriter, "_write_keys", explode)
    batch = [entry("rss", "r2", "Lost paper with a long title", arxiv_id="2411.00004v1")]
    with pytest.raises(RuntimeError):
        store_batch(
            sources, "rss", batch, done(T0 + timedelta(hours=1), etag='"new"'), now=T0 + timedelta(hours=1)
        )
    assert [p.arxiv_id for p in page(sources)] == ["2411.00003"]
    state = sources.source_state("rss")
    assert state is not None and state.etag == '"old"'


def test_failures_are_recorded_and_reset_on_success(sources: Store) -> None:
    sources.record_failure(
        "rss", "fetch: cannot reach rss.arxiv.org", now=T0, next_fetch_at=T0 + timedelta(minutes=5)
    )
    sources.record_failure(
        "rss", "fetch: cannot reach rss.arxiv.org", now=T0, next_fetch_at=T0 + timedelta(minutes=10)
    )
    state = sources.source_state("rss")
    assert state is not None and (state.error_count, state.last_error) == (
        2,
        "fetch: cannot reach rss.arxiv.org",
    )
    sources.record_unchanged("rss", done(T0 + timedelta(hours=1)), now=T0 + timedelta(hours=1))
    state = sources.source_state("rss")
    assert state is not None and (state.error_count, state.last_error) == (0, None)


def test_a_failure_is_recorded_when_it_happened_and_frees_the_source_at_once(sources: Store) -> None:
    """A failed fetch records its time and its error (the first 2,000 characters) and gives the
    lease up: the source is due at its next fetch, even if the worker's lease keeper renews the
    lease after the failure was recorded."""
    mine = sources.claim("rss", now=T0, until=T0 + timedelta(minutes=10))
    assert mine is not None
    failed, retry = T0 + timedelta(seconds=5), T0 + timedelta(minutes=1)
    error = "fetch: " + "x" * 3000
    sources.record_failure("rss", error, now=failed, next_fetch_at=retry, lease=mine)
    assert sources.renew(mine, until=T0 + timedelta(minutes=10))  # late: nothing to renew, nothing lost
    state = sources.source_state("rss")
    assert state is not None
    assert (state.last_fetch_at, state.last_error, state.error_count) == (failed, error[:2000], 1)
    assert state.next_fetch_at == retry and state.last_success_at is None
    assert sources.claim("rss", now=retry, until=retry + timedelta(minutes=10)) is not None


def test_a_source_stopped_for_good_moves_the_store_s_version_and_a_failure_to_retry_does_not(
    sources: Store,
) -> None:
    """A stopped source changes what pages say (their caches follow the version); a source that
    will be fetched again does not."""
    before = sources.version()
    sources.record_failure("rss", "fetch: HTTP 503", now=T0, next_fetch_at=T0 + timedelta(minutes=5))
    assert sources.version() == before
    sources.record_failure("rss", "fetch: HTTP 410 Gone", now=T0, next_fetch_at=STOPPED)
    assert sources.version() == before + 1


def test_the_store_s_version_stamp_says_when_it_last_changed(sources: Store) -> None:
    """Feeds with no entries are dated by the store's last change: the epoch for a store never
    written, else the time of the write that last moved its version."""
    assert sources.version_stamp() == (0, EPOCH)
    before = datetime.now(UTC).replace(microsecond=0)
    batch = [entry("rss", "r1", "A paper that moves the version", arxiv_id="2411.00001v1")]
    store_batch(sources, "rss", batch, done(), now=T0)
    version, changed = sources.version_stamp()
    assert version == 1 == sources.version()
    assert before <= changed <= datetime.now(UTC)


def test_a_paper_s_sightings_read_back_with_their_links_first_seen_first(sources: Store) -> None:
    """A paper's sightings, as pages show them: each with its link, the first seen first, even
    when it was written last (two fetches at once: the one that began first committed last)."""
    later = T0 + timedelta(hours=1)
    title = "A paper seen in two feeds at once"
    rss = entry(
        "rss", "r1", title, arxiv_id="2411.00007v1", link="https://arxiv.org/abs/2411.00007v1", now=later
    )
    store_batch(sources, "rss", [rss], done(later), now=later)
    blog = entry("blog", "b1", title, arxiv_id="2411.00007v1", link="https://blog.example.org/b1", now=T0)
    store_batch(sources, "blog", [blog], done(), now=T0)
    [paper] = page(sources)
    assert [(s.source, s.link, s.first_seen) for s in paper.sightings] == [
        ("blog", "https://blog.example.org/b1", T0),
        ("rss", "https://arxiv.org/abs/2411.00007v1", later),
    ]
    assert sources.paper(paper.id) == paper


def test_pages_and_digests_read_without_sightings_leave_them_unread_and_nothing_else(
    sources: Store,
) -> None:
    """Feeds and lists never show where a paper was seen: asked `with_sightings=False`, a page
    and a digest are the same papers, topics and all, with empty sightings, and the sightings
    table is never read."""
    from sqlalchemy import event

    title = "A paper seen in two feeds at once"
    for source, entry_id in (("rss", "r1"), ("blog", "b1")):
        sighting = entry(source, entry_id, title, arxiv_id="2411.00007v1", published=T0)
        store_batch(sources, source, [sighting], done(), now=T0)
    reads: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM sightings" in statement:
            reads.append(statement)

    full = sources.papers_page(PageQuery(limit=5))
    digest_full = sources.digest(None, "daily", top=5, periods=1, now=T0 + timedelta(days=2))
    event.listen(sources.engine, "before_cursor_execute", seen)
    try:
        light = sources.papers_page(PageQuery(limit=5), with_sightings=False)
        digest_light = sources.digest(
            None, "daily", top=5, periods=1, now=T0 + timedelta(days=2), with_sightings=False
        )
    finally:
        event.remove(sources.engine, "before_cursor_execute", seen)
    assert reads == []
    [paper] = full.papers
    assert len(paper.sightings) == 2
    assert light.papers == [replace(paper, sightings=())]
    assert (light.more, light.last, light.total) == (full.more, full.last, full.total)
    [day] = digest_full
    assert [e.papers for e in digest_light] == [[replace(p, sightings=()) for p in day.papers]]
    assert day.papers == [paper]


def test_source_states_come_in_name_order(sources: Store) -> None:
    """/api/sources and the health page list the sources by name, not as they were added; a
    source not in the store has no state; one never fetched has read no entries and failed no fetch."""
    assert [s.name for s in sources.source_states()] == ["api", "blog", "rss"]
    assert (
        sources.source_state("blog") == sources.source_states()[1] == SourceState("blog", "file:///blog.xml")
    )
    assert sources.source_state("nope") is None


def test_a_source_whose_url_changes_forgets_its_validators_and_is_due_at_once(sources: Store) -> None:
    """The validators and body hash of the old URL say nothing of the new one; a source whose
    URL stays keeps them."""
    fetched = FetchDone('"v1"', "Fri, 20 Nov 2026 08:00:00 GMT", "0" * 32, T0 + timedelta(hours=6))
    for name in ("rss", "api"):
        sources.record_unchanged(name, fetched, now=T0)
    moved = "https://rss.example.org/new.xml"
    sources.sync_sources([("rss", moved), ("api", "file:///api.xml"), ("blog", "file:///blog.xml")])
    rss, api = sources.source_state("rss"), sources.source_state("api")
    assert rss is not None and api is not None
    assert (rss.url, rss.etag, rss.last_modified, rss.body_hash, rss.next_fetch_at) == (
        moved,
        None,
        None,
        None,
        None,
    )
    assert rss.last_fetch_at == T0
    assert (api.url, api.etag, api.last_modified, api.body_hash, api.next_fetch_at) == (
        "file:///api.xml",
        fetched.etag,
        fetched.last_modified,
        fetched.body_hash,
        fetched.next_fetch_at,
    )


def test_feed_order_is_newest_first_with_ties_broken_by_id(sources: Store) -> None:
    batch = [
        entry(
            "rss",
            f"r{i}",
            f"Paper {i} with a long enough title",
            arxiv_id=f"2411.1000{i}v1",
            published=T0 + timedelta(days=i // 2),
        )
        for i in range(6)
    ]
    store_batch(sources, "rss", batch, done(), now=T0)
    first = sources.papers_page(PageQuery(limit=4))
    papers = first.papers
    assert first.total == 6 and first.more
    keys = [(p.published, p.id) for p in papers]
    assert keys == sorted(keys, reverse=True)
    rest = sources.papers_page(PageQuery(limit=4, offset=4)).papers
    assert len(rest) == 2 and {p.id for p in rest}.isdisjoint(p.id for p in papers)
    assert sources.papers_page(PageQuery(limit=4, after=first.last)).papers == rest
    assert not sources.papers_page(PageQuery(limit=2, offset=4)).more  # the last page, full
    assert not sources.papers_page(PageQuery(limit=6)).more
    assert len(page(sources, since=T0 + timedelta(days=2))) == 2
    assert page(sources, source="blog") == []


def test_lease_lets_one_worker_at_a_time(sources: Store) -> None:
    assert sources.claim("rss", now=T0, until=T0 + timedelta(minutes=10))
    assert not sources.claim("rss", now=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=11))
    assert sources.claim("rss", now=T0 + timedelta(minutes=11), until=T0 + timedelta(minutes=21))


def test_readers_never_see_database_is_locked_while_a_source_is_written(sources: Store) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                sources.papers_page(PageQuery(limit=20))
                sources.source_states()
            except BaseException as exc:
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for round_ in range(15):
            at = T0 + timedelta(minutes=round_)
            batch = [
                entry(
                    "rss",
                    f"r{round_}-{i}",
                    f"Paper {round_} {i} with a long enough title",
                    arxiv_id=f"24{round_:02d}.{i:05d}v1",
                    now=at,
                )
                for i in range(40)
            ]
            store_batch(sources, "rss", batch, done(at), now=at)
            sources.record_failure("blog", "fetch: down", now=at, next_fetch_at=at)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert errors == []
    assert sources.papers_page(PageQuery(limit=1)).total == 600


def test_head_revision_constant_names_the_newest_migration() -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from aggregator.store.database import HEAD_REVISION, MIGRATIONS

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_upgrade_from_the_first_revision_reaches_head(empty_database_url: str) -> None:
    database_url = empty_database_url
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from aggregator.store.database import HEAD_REVISION, MIGRATIONS, current_revision, make_engine, upgrade

    engine = make_engine(database_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.commit()
    assert current_revision(engine) == "0001"
    upgrade(engine)
    assert current_revision(engine) == HEAD_REVISION
    engine.dispose()


def test_a_corrected_arxiv_link_follows_the_paper_without_breaking_the_source(sources: Store) -> None:
    wrong = entry("blog", "b1", "A post about a paper", link="https://arxiv.org/abs/2401.00001")
    store_batch(sources, "blog", [wrong], done(), now=T0)
    other = entry(
        "rss",
        "r2",
        "The real paper with a long title",
        arxiv_id="2401.00002v1",
        authority=Authority.ARXIV_LISTING,
    )
    store_batch(sources, "rss", [other], done(), now=T0)
    later = T0 + timedelta(hours=1)
    fixed = entry("blog", "b1", "A post about a paper", link="https://arxiv.org/abs/2401.00002", now=later)
    outcome = store_batch(sources, "blog", [fixed], done(later), now=later)
    assert not outcome.failed
    [paper] = page(sources)
    assert paper.arxiv_id == "2401.00002"
    assert {s.entry_id for s in paper.sightings} == {"b1", "r2"}
    # a source that names the old id later gets a paper of its own, not a clash of entry ids
    again = entry(
        "rss",
        "r1",
        "Another paper entirely, it turns out",
        arxiv_id="2401.00001v1",
        authority=Authority.ARXIV_LISTING,
        now=later,
    )
    assert not store_batch(sources, "rss", [again], done(later), now=later).failed
    assert len({p.feed_id for p in page(sources)}) == 2


# --- papers found only through a shared title are read light, planned the same -----------------

STUB_TITLES = (
    "A Study of Repeated Titles in Research Feeds",
    "Reply to the Comment on Widgets and Gadgets",
    "A Remarkably Long and Specific Title That Several Groups Used For Their Papers",
    "Introduction",
)
STUB_PEOPLE = ("Ada Lovelace", "Charles Babbage", "Grace Hopper", "Alan Turing", "Emmy Noether", "Kurt Gödel")


def same_title_scenario(seed: int) -> list[tuple[str, list[Sighting], datetime]]:
    """Batches from three sources on a few titles: repeated titles, overlapping authors, arXiv
    ids (same-titled papers with different ones), links and DOIs as keys, entries sighted again
    with other titles, authors and links (an entry keeps its arXiv id: one that changes it can
    trip the unique papers.arxiv_id, read light or not, a matter of its own)."""
    import random

    rng = random.Random(seed)
    arxiv_ids: dict[tuple[str, int], str | None] = {}
    batches = []
    for number in range(8):
        source = rng.choice(("rss", "api", "blog"))
        at = T0 + timedelta(hours=number)
        batch = {}
        for _ in range(rng.randint(5, 30)):
            n = rng.randint(0, 40)
            arxiv = arxiv_ids.setdefault(
                (source, n), rng.choice((None, None, None, f"2401.0000{rng.randint(1, 6)}v1"))
            )
            link = rng.choice((None, None, f"https://example.org/p/{rng.randint(1, 8)}"))
            doi = rng.choice((None, None, None, f"10.1000/x{rng.randint(1, 5)}"))
            people = tuple(rng.sample(STUB_PEOPLE, rng.randint(0, 3)))
            batch[n] = entry(
                source,
                f"{source}-{n}",
                rng.choice(STUB_TITLES),
                authors=people,
                arxiv_id=arxiv,
                link=link,
                doi=doi,
                published=at,
                now=at,
            )
        batches.append((source, list(batch.values()), at))
    return batches


def store_contents(store: Store) -> dict[str, list[tuple]]:
    from sqlalchemy import text

    queries = {
        "papers": "SELECT * FROM papers ORDER BY id",
        "sightings": "SELECT * FROM sightings ORDER BY id",
        "paper_keys": "SELECT * FROM paper_keys ORDER BY key",
        "store_meta": "SELECT * FROM store_meta WHERE name IN ('papers', 'version') ORDER BY name",
    }
    with store.engine.connect() as conn:
        return {name: [tuple(row) for row in conn.execute(text(sql))] for name, sql in queries.items()}


def ingest_scenario(url: str, seed: int, monkeypatch: pytest.MonkeyPatch, light: bool) -> tuple[dict, int]:
    """The scenario through store_batch into a fresh store; its contents, and how many papers
    the store read light and handed to plan_ingest only as counts by title."""
    from aggregator.ingest import pipeline

    handed = 0
    plan = pipeline.plan_ingest

    def counting(incoming: list, known: list, *, unread: dict[str, int]) -> list:
        nonlocal handed
        handed += sum(unread.values())
        return plan(incoming, known, unread=unread)

    monkeypatch.setattr(candidates, "READ_LIGHT", light)
    monkeypatch.setattr(pipeline, "plan_ingest", counting)
    store = Store.open(url, tag_authority="papers.example.org")
    try:
        store.sync_sources(
            [("rss", "file:///rss.xml"), ("api", "file:///api.xml"), ("blog", "file:///b.xml")]
        )
        for source, batch, at in same_title_scenario(seed):
            outcome = store_batch(store, source, batch, done(at), now=at)
            assert not outcome.failed
        return store_contents(store), handed
    finally:
        store.close()
        monkeypatch.undo()


@pytest.mark.parametrize("seed", range(6))
def test_ingest_reading_same_titled_papers_light_writes_what_loading_every_candidate_would(
    database_url: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    from tests.conftest import reset_postgres

    light, handed = ingest_scenario(database_url, seed, monkeypatch, light=True)
    if database_url.startswith("sqlite"):
        again = database_url.replace("store.db", "full.db")
    else:
        reset_postgres(database_url)
        again = database_url
    full, none = ingest_scenario(again, seed, monkeypatch, light=False)
    assert handed > 0 and none == 0  # papers were read light, and only where asked
    assert len(light["papers"]) < len(light["sightings"])  # and papers merged
    assert light == full


def test_the_migration_fills_match_keys_as_ingest_writes_them(
    sources: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from aggregator.store.database import upgrade

    for source, batch, at in same_title_scenario(7):
        store_batch(sources, source, batch, done(at), now=at)
    before = store_contents(sources)
    with sources.engine.begin() as conn:  # as revision 0004 left it: no match keys
        conn.execute(text("UPDATE sightings SET match_keys = NULL"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    upgrade(sources.engine)
    assert store_contents(sources) == before


def test_a_sighting_without_match_keys_has_its_paper_loaded_in_full(
    sources: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from aggregator.ingest import pipeline
    from aggregator.records import KnownPaper

    handed: list = []
    unread: dict[str, int] = {}
    plan = pipeline.plan_ingest

    def keeping(incoming: list, known: list, **options: Any) -> list:
        handed.extend(known)
        unread.update(options["unread"])
        return plan(incoming, known, **options)

    monkeypatch.setattr(pipeline, "plan_ingest", keeping)
    title = "A Study of Repeated Titles in Research Feeds"
    store_batch(sources, "blog", [entry("blog", "b1", title, authors=("Ada Lovelace",))], done(), now=T0)
    store_batch(sources, "blog", [entry("blog", "b2", title, authors=("Grace Hopper",))], done(), now=T0)
    assert handed == [] and unread == {title_key(title): 1}  # other people: only counted
    with sources.engine.begin() as conn:  # as a tool that knows nothing of them would write it
        conn.execute(text("UPDATE sightings SET match_keys = NULL WHERE entry_id = 'b1'"))
    handed.clear()
    unread.clear()
    store_batch(sources, "blog", [entry("blog", "b3", title, authors=("Alan Turing",))], done(), now=T0)
    assert [(type(p), p.id) for p in handed] == [(KnownPaper, 1)] and unread == {title_key(title): 1}


def test_a_same_titled_paper_only_counted_keeps_an_unattributed_one_from_merging(sources: Store) -> None:
    """Two stored papers bear a long title (kept apart by their arXiv ids): one names nobody, the
    other other people. A named sighting of the title must not join the unnamed one, as it would
    if the title were theirs alone: the other paper, read light and only counted (nothing in the
    batch reaches it), still counts among those bearing the title."""
    title = "A Remarkably Long and Specific Title That Several Groups Used For Their Papers"
    store_batch(sources, "blog", [entry("blog", "b1", title, arxiv_id="2401.00001")], done(), now=T0)
    named = entry("rss", "r1", title, arxiv_id="2401.00002", authors=("Li Wei",))
    store_batch(sources, "rss", [named], done(), now=T0)
    assert len(page(sources)) == 2
    later = T0 + timedelta(hours=1)
    other = entry("api", "a1", title, authors=("Kurt Gödel",), now=later)
    store_batch(sources, "api", [other], done(later), now=later)
    assert len(page(sources)) == 3  # as with both papers in full: two bear the title, no merge


def test_a_paper_reached_through_the_authors_of_its_other_title_is_merged(sources: Store) -> None:
    """A stored paper found through one title whose authors agree only with the names of its
    sighting of another title: read light, it must still be found reachable (all its sightings'
    names count), loaded in full and merged."""
    title = "A Study of Repeated Titles in Research Feeds"
    retitled = "Repeated Titles in Research Feeds: A Study"
    link = "https://blog.example.org/study"
    for source, entry_id, titled, author in (
        ("blog", "b1", title, "Ada Lovelace"),
        ("rss", "r1", retitled, "Grace Hopper"),
    ):
        store_batch(
            sources, source, [entry(source, entry_id, titled, link=link, authors=(author,))], done(), now=T0
        )
    assert len(page(sources)) == 1  # one paper, bearing both titles (the link joined them)
    later = T0 + timedelta(hours=1)
    hopper = entry("api", "a1", title, authors=("G. Hopper",), now=later)
    store_batch(sources, "api", [hopper], done(later), now=later)
    assert len(page(sources)) == 1


def test_a_merge_that_changes_no_record_still_moves_the_version(sources: Store) -> None:
    """Two papers of one blog become one when an entry's link changes to the other's: the
    survivor reads as before, but the absorbed paper leaves every feed, so caches must see a
    new store version."""
    title = "An alpha study of many long things"
    one = entry("blog", "e1", title, link="https://blog.example.org/a", authors=("Ann Lee",))
    two = entry("blog", "e2", title, link="https://blog.example.org/b", authors=("Bo Chen",))
    store_batch(sources, "blog", [one, two], done(), now=T0)
    assert len(page(sources)) == 2
    version = sources.version()
    later = T0 + timedelta(hours=1)
    moved = entry("blog", "e2", title, link="https://blog.example.org/a", authors=("Bo Chen",), now=later)
    store_batch(sources, "blog", [one, moved], done(later), now=later)
    assert len(page(sources)) == 1
    assert sources.version() > version


def test_papers_loaded_in_full_bring_their_family_names_back_as_written(
    sources: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored sighting's family names come back from sightings.match_keys, the same names a
    title merge would compute from its authors; without match keys they are computed."""
    from sqlalchemy import text

    from aggregator.ingest import pipeline
    from aggregator.records import KnownPaper
    from aggregator.text import author_keys

    handed: list = []
    plan = pipeline.plan_ingest

    def keeping(incoming: list, known: list, **options: object) -> list:
        # what the store handed, before planning computes any name
        handed.extend((p, [s._names for s in p.sightings]) for p in known if isinstance(p, KnownPaper))
        return plan(incoming, known, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "plan_ingest", keeping)
    title = "A Study of Repeated Titles in Research Feeds"
    authors = ("Ada Lovelace", "Charles Babbage", "Émilie du Châtelet")
    store_batch(sources, "blog", [entry("blog", "b1", title, authors=authors)], done(), now=T0)
    store_batch(sources, "blog", [entry("blog", "b2", title, authors=authors[:1])], done(), now=T0)
    [(paper, [read_back])] = handed
    assert read_back == author_keys(authors)  # read back with the sighting, not computed
    with sources.engine.begin() as conn:
        conn.execute(text("UPDATE sightings SET match_keys = NULL"))
    handed.clear()
    store_batch(sources, "blog", [entry("blog", "b3", title, authors=authors[1:2])], done(), now=T0)
    [(paper, read_back)] = handed
    assert read_back == [None] * len(paper.sightings)  # not known: made on first use
    assert author_keys(authors) in {s.names for s in paper.sightings}


LEFT_TITLE = "A Study of Repeated Titles in Research Feeds"


def leave_for_a_corrected_arxiv_id(
    store: Store, listing: dict[str, object], corrected: dict[str, object]
) -> tuple[PaperView, dict[int, PaperView]]:
    """A listing entry (`listing`'s fields) and a blog post linking its arXiv id make one paper;
    the entry is then re-sighted with another arXiv id (`corrected`'s fields), which the blog post
    does not name. The shared paper before, and every paper after."""
    first = entry("rss", "e", LEFT_TITLE, arxiv_id="2401.00001", authority=Authority.ARXIV_LISTING, **listing)
    blog = entry(
        "blog", "h", LEFT_TITLE, link="https://arxiv.org/abs/2401.00001", authors=listing.get("authors", ())
    )
    store_batch(store, "rss", [first], done(), now=T0)
    store_batch(store, "blog", [blog], done(), now=T0)
    [shared] = page(store)
    later = T0 + timedelta(hours=1)
    again = entry(
        "rss",
        "e",
        LEFT_TITLE,
        arxiv_id="2401.00002",
        authority=Authority.ARXIV_LISTING,
        now=later,
        **corrected,
    )
    store_batch(store, "rss", [again], done(later), now=later)
    return shared, {p.id: p for p in page(store)}


def test_a_paper_an_entry_left_for_a_corrected_arxiv_id_says_only_what_its_other_sightings_say(
    sources: Store,
) -> None:
    """A listing entry re-sighted with another arXiv id leaves the paper it shared with a blog
    post (which still links the old id) for a paper of its own: the paper left behind is merged
    again from the blog post alone, not left saying what the listing said."""
    abstract = "The listing's own abstract, long enough to be taken as the best one here."
    authors = ("Ada Lovelace",)
    shared, papers = leave_for_a_corrected_arxiv_id(
        sources, {"authors": authors, "summary": abstract}, {"authors": authors, "summary": "Corrected."}
    )
    assert shared.abstract == abstract and {s.source for s in shared.sightings} == {"rss", "blog"}
    left = papers[shared.id]
    assert [s.source for s in left.sightings] == ["blog"]
    assert left.abstract != abstract  # what the blog post says, merged again without the listing
    moved = next(p for p in papers.values() if p.id != shared.id)
    assert moved.arxiv_id == "2401.00002" and moved.abstract == "Corrected."


def test_an_entry_that_left_its_paper_takes_its_other_identity_keys_along(sources: Store) -> None:
    """The listing entry names a DOI besides its arXiv id; re-sighted with a corrected arXiv id it
    leaves the paper it shared with a blog post, and its DOI goes with it: a later sighting of
    that DOI alone joins the entry's new paper, not the one it left."""
    doi = {"doi": "10.1000/left"}
    shared, papers = leave_for_a_corrected_arxiv_id(sources, doi, doi)
    moved = next(p for p in papers.values() if p.id != shared.id)
    latest = T0 + timedelta(hours=2)
    venue = entry(
        "api", "v", "Another Title Entirely, as a Journal Prints It", doi="10.1000/left", now=latest
    )
    store_batch(sources, "api", [venue], done(latest), now=latest)
    papers = {p.id: {s.source for s in p.sightings} for p in page(sources)}
    assert papers == {shared.id: {"blog"}, moved.id: {"rss", "api"}}


def test_a_pages_total_counts_the_papers_its_filters_allow(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No filter: the store's count; a topic alone: its tagged papers; other filters: a count of
    the papers they allow, stopped at COUNT_CAP (and then not exact)."""
    from aggregator.store import pages
    from aggregator.topics.match import Tagger
    from aggregator.types import TopicSpec

    store = Store.open(
        database_url, tag_authority="papers.example.org", tagger=Tagger([TopicSpec("graph", "graph*")])
    )
    try:
        store.sync_sources([("rss", "file:///rss.xml"), ("blog", "file:///blog.xml")])
        early, late = T0, T0 + timedelta(days=3)
        rss = [  # 8 papers, 4 on graphs (2 of them with "graph" in the title, which scores higher)
            entry(
                "rss",
                f"r{i}",
                f"{'Graph' if i < 2 else 'Sparse'} paper number {i} with a long enough title",
                arxiv_id=f"2411.1000{i}v1",
                summary="Graphs of many kinds." if i < 4 else "Nothing in particular.",
                published=T0 + timedelta(hours=i),
                now=early,
            )
            for i in range(8)
        ]
        store_batch(store, "rss", rss, done(early), now=early)
        blog = [  # 3 more, 1 on graphs, later
            entry(
                "blog",
                f"b{i}",
                f"{'Graph' if i == 0 else 'Dense'} post number {i} with a long enough title",
                arxiv_id=f"2411.2000{i}v1",
                published=late + timedelta(hours=i),
                now=late,
            )
            for i in range(3)
        ]
        store_batch(store, "blog", blog, done(late), now=late)
        with store.engine.connect() as conn:
            scores = sorted(conn.execute(text("SELECT score FROM paper_topics")).scalars())
        assert scores == [1.0, 1.0, 3.0, 3.0, 3.0]  # in the abstract; in the title

        def total(**kw: object) -> tuple[int | None, bool]:
            found = store.papers_page(PageQuery(limit=2, **kw))  # type: ignore[arg-type]
            return found.total, found.exact

        assert total() == (11, True)
        assert total(topic="graph") == (5, True)
        assert total(source="rss") == (8, True)
        assert total(since=late) == (3, True)
        assert total(topic="graph", source="rss") == (4, True)
        assert total(topic="graph", since=late) == (1, True)
        assert total(topic="graph", min_score=3) == (3, True)
        assert total(min_score=3) == (3, True)  # in any topic
        assert total(source="rss", min_score=3) == (2, True)
        monkeypatch.setattr(pages, "COUNT_CAP", 4)
        assert total(topic="graph") == (5, True)  # from the topic's own count, never capped
        assert total(source="rss") == (4, False)
        assert total(topic="graph", source="rss") == (4, False)
        assert total(since=late) == (3, True)
    finally:
        store.close()


def store_numbered_papers(store: Store, count: int, title: Callable[[int], str]) -> None:
    """`count` arXiv papers of one feed, a minute apart (the newest last), titled `title(i)`."""
    batch = [
        entry("rss", f"r{i}", title(i), arxiv_id=f"2411.{i:05d}v1", published=T0 + timedelta(minutes=i))
        for i in range(count)
    ]
    store_batch(store, "rss", batch, done(), now=T0)


@contextmanager
def feed_order_reads(store: Store) -> Iterator[list[str]]:
    """The statements that read the feed order (a walk's batches), as they run."""
    from sqlalchemy import event

    reads: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "ORDER BY papers.published DESC" in statement:
            reads.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        yield reads
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)


def test_a_screened_walk_asks_once_a_batch_and_matches_only_what_the_page_needs(
    sources: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a screen (the index saying which papers of a batch are candidates), a walk reads
    SCREEN_BATCH keys at a time (at most what `at_most` leaves), asks the screen once a batch,
    and matches its candidates a part at a time: what the page still needs over the share that
    matched, with a margin. Full inside a batch, it has read up to the last paper it matched;
    where the screen cannot say (None), the batch's papers are matched the same way."""
    from aggregator.store import walks
    from aggregator.store.deadline import Deadline
    from aggregator.store.pages import TextQuery
    from aggregator.store.walks import Walk, Walked, confirmed_walk

    monkeypatch.setattr(walks, "SCREEN_BATCH", 100)
    store_numbered_papers(
        sources,
        400,
        lambda i: f"{'Graph' if i % 4 == 3 else 'Sparse'} paper number {i} with a long enough title",
    )
    matched: list[str] = []

    def graphs(doc: PaperText) -> bool:
        matched.append(doc.title)
        return doc.title.startswith("Graph")

    query = TextQuery(graphs, None)
    with sources.engine.connect() as conn:
        order = Walk(conn, PageQuery()).keys(400, Deadline(10.0))
        titles = {i: t for i, t in conn.execute(text("SELECT id, title FROM papers"))}
        candidates = {i for _, i in order if titles[i].startswith("Graph")}
        in_order = [k for k in order if k[1] in candidates]  # one in four
        asked: list[int] = []

        def screen(ids: Sequence[int]) -> set[int] | None:
            asked.append(len(ids))
            return candidates.intersection(ids)

        def walked(wanted: int, **kw: Any) -> Walked:
            matched.clear()
            asked.clear()
            with feed_order_reads(sources) as reads:
                found = confirmed_walk(
                    conn, Walk(conn, PageQuery()), None, query, wanted, Deadline(10.0), **kw
                )
            assert len(reads) == len(asked) or kw.get("screen") is not screen
            return found

        walk = walked(16, screen=screen)
        assert asked == [100] and len(matched) == 20  # 16 x 1.25 of the batch's 25 candidates
        assert walk.found == in_order[:16]
        assert (walk.last, walk.read, walk.matched) == (in_order[19], order.index(in_order[19]) + 1, 20)
        walk = walked(40, screen=screen)  # the first batch's 25, then 15 x 1.25 of the next one's
        assert asked == [100, 100] and len(matched) == 25 + 19
        assert walk.found == in_order[:40] and walk.read == order.index(in_order[43]) + 1
        probe = walked(500, screen=screen, at_most=150)
        first_150 = {i for _, i in order[:150]}
        assert (asked, probe.read, len(matched)) == ([100, 50], 150, len(candidates & first_150))
        unscreened = walked(16, screen=lambda ids: None)
        assert unscreened.found == in_order[:16]
        # 20 papers (a share of 1 assumed: 5 match), then the 11 still needed x 1.25 / (5 / 20)
        assert len(matched) == 20 + 55


def test_a_walk_reads_as_many_papers_as_the_share_matched_so_far_says_the_page_needs(sources: Store) -> None:
    """Matching as it walks the feed order, a walk reads FIRST_BATCH papers, then what the share
    that matched says the page still needs, with a margin of a quarter: a query matching one paper
    in four fills a page of 50 in two reads. Through a set of candidate ids it reads WALK_BATCH
    keys at a time."""
    from aggregator.store.deadline import Deadline
    from aggregator.store.pages import TextQuery
    from aggregator.store.walks import FIRST_BATCH, Walk, confirmed_walk

    store_numbered_papers(
        sources,
        400,
        lambda i: f"{'Graph' if i % 4 == 3 else 'Sparse'} paper number {i} with a long enough title",
    )
    graphs = TextQuery(lambda doc: doc.title.startswith("Graph"), None)
    with feed_order_reads(sources) as reads, sources.engine.connect() as conn:
        walk = Walk(conn, PageQuery())
        first = confirmed_walk(conn, walk, None, graphs, 16, Deadline(10.0))  # all in the first read
        assert (len(reads), first.read, len(first.found)) == (1, FIRST_BATCH, 16)
        reads.clear()
        page = confirmed_walk(conn, walk, None, graphs, 51, Deadline(10.0))
        assert len(reads) == 2 and len(page.found) == 51
        assert page.read <= 1.25 * 4 * 51  # 64, then 1.25 x (51 - 16) x 64 / 16
        ids = {i for _, i in walk.keys(400, Deadline(10.0))[::4]}
        reads.clear()
        through = confirmed_walk(conn, walk, ids, graphs, 500, Deadline(10.0))
        assert len(reads) == 1 and through.ended and through.read == 400


def test_a_walk_reads_the_keys_a_page_wants_in_one_statement_and_stops_there(sources: Store) -> None:
    """Asked for fewer keys than LAST_BATCH, a walk reads exactly that many in one statement,
    the newest first, and reads nothing more once it has them (not a batch of FIRST_BATCH
    grown fourfold, nor on to the end of the feed)."""
    from aggregator.store.deadline import Deadline
    from aggregator.store.walks import FIRST_BATCH, Walk

    store_numbered_papers(sources, 150, lambda i: f"Paper number {i} with a long enough title")
    with feed_order_reads(sources) as reads, sources.engine.connect() as conn:
        walk = Walk(conn, PageQuery())
        wanted = FIRST_BATCH + 36
        keys = walk.keys(wanted, Deadline(10.0))
        assert len(reads) == 1 and len(keys) == wanted
        assert keys == sorted(keys, reverse=True)
        assert [p.id for p in page(sources, limit=wanted)] == [i for _, i in keys]


def test_a_page_past_the_largest_batch_keeps_each_key_once_in_feed_order(sources: Store) -> None:
    """A page whose offset needs more keys than LAST_BATCH walks on in a second batch: the keys
    of both batches are kept, in feed order, and no more than the page wants."""
    from aggregator.store.deadline import Deadline
    from aggregator.store.walks import LAST_BATCH, Walk

    store_numbered_papers(sources, LAST_BATCH + 20, lambda i: f"Paper number {i} with a long enough title")
    with sources.engine.connect() as conn:
        keys = Walk(conn, PageQuery()).keys(LAST_BATCH + 10, Deadline(10.0))
    assert len(keys) == LAST_BATCH + 10 and keys == sorted(set(keys), reverse=True)
    deep = page(sources, offset=LAST_BATCH + 5, limit=5)
    assert [p.id for p in deep] == [i for _, i in keys[LAST_BATCH + 5 :]]


# --- the batch's reads and writes at their bounds ---------------------------------------------


def test_a_title_of_the_minimum_length_finds_the_stored_paper_it_merges_with(sources: Store) -> None:
    """A title key of exactly MIN_TITLE_KEY characters is long enough to merge on, across batches
    too: the store looks up the stored papers bearing it, and reads them light by it, so a later
    sighting whose authors agree joins the stored paper, as it would within one batch."""
    title = "Pruning Attention"
    assert len(title_key(title)) == MIN_TITLE_KEY
    store_batch(sources, "blog", [entry("blog", "b1", title, authors=("Ada Lovelace",))], done(), now=T0)
    later = T0 + timedelta(hours=1)
    venue = entry("api", "a1", title + ".", authors=("A. Lovelace", "C. Babbage"), now=later)
    store_batch(sources, "api", [venue], done(later), now=later)
    [paper] = page(sources)
    assert {s.source for s in paper.sightings} == {"blog", "api"}


FAMILY_NAMES = (
    "Lovelace", "Babbage", "Hopper", "Turing", "Noether", "Goedel", "Curie", "Meitner", "Franklin",
    "Hamilton", "Liskov", "Knuth", "Dijkstra", "Hoare", "Backus", "Kernighan", "Ritchie", "Thompson",
    "Wirth", "Lamport", "Milner", "Church",
)  # fmt: skip


@pytest.mark.parametrize(
    ("bearing", "joined"),
    [(candidates.MAX_TITLE_CANDIDATES, True), (candidates.MAX_TITLE_CANDIDATES + 1, False)],
)
def test_a_title_borne_by_more_than_max_title_candidates_papers_finds_none_of_them(
    sources: Store, bearing: int, joined: bool
) -> None:
    """Stored papers of one title (each by other people) are candidates of a batch bearing the
    title while no more than MAX_TITLE_CANDIDATES bear it: a sighting by the authors of the first
    joins it. One paper more and the title is generic: none of them is a candidate, and the
    sighting makes a paper of its own."""
    title = "A Study of Repeated Titles in Research Feeds"
    batch = [entry("blog", f"b{n}", title, authors=(f"Ann {FAMILY_NAMES[n]}",)) for n in range(bearing)]
    store_batch(sources, "blog", batch, done(), now=T0)
    assert len(page(sources)) == bearing
    later = T0 + timedelta(hours=1)
    again = entry("api", "a1", title, authors=(f"A. {FAMILY_NAMES[0]}",), now=later)
    store_batch(sources, "api", [again], done(later), now=later)
    [first] = [p for p in page(sources) if any(s.entry_id == "b0" for s in p.sightings)]
    assert len(page(sources)) == bearing + (not joined)
    assert {s.entry_id for s in first.sightings} == ({"b0", "a1"} if joined else {"b0"})


def test_a_paper_a_batch_changes_is_found_by_its_new_title_and_not_by_its_old(sources: Store) -> None:
    """The search index follows a paper's record when a batch changes it: its entry is replaced,
    so the words of its new title find it and those of the old one no longer do."""
    link = "https://blog.example.org/widgets"
    store_batch(
        sources, "blog", [entry("blog", "b1", "Sparse Widgets for Everyone", link=link)], done(), now=T0
    )
    [paper] = page(sources)
    later = T0 + timedelta(hours=1)
    renamed = entry("blog", "b1", "Dense Gadgets for Nobody", link=link, now=later)
    assert store_batch(sources, "blog", [renamed], done(later), now=later).updated == 1

    def found(query: str) -> list[str]:
        return [feed_id for feed_id, *_ in sources.documents(narrow(parse_query(query)))]

    assert found('"dense gadgets"') == [paper.feed_id]
    assert found('"sparse widgets"') == []


def test_a_change_its_source_dates_no_later_than_the_stored_date_is_dated_when_seen(sources: Store) -> None:
    """A changed record takes the source's `updated` only when the source dates it after the
    stored one; a source that changes the title but still gives the stored date is not believed:
    the paper is dated when the change was seen."""
    fields = {
        "arxiv_id": "2411.00004v1",
        "authority": Authority.ARXIV_API,
        "published": T0,
        "updated": T0,
        "authors": ("A. Author",),
    }
    store_batch(sources, "api", [entry("api", "a1", "First title of it", **fields)], done(), now=T0)
    [paper] = page(sources)
    assert paper.updated == T0
    later = T0 + timedelta(days=2)
    again = entry("api", "a1", "Corrected title of it", now=later, **fields)
    store_batch(sources, "api", [again], done(later), now=later)
    [revised] = page(sources)
    assert (revised.title, revised.updated) == ("Corrected title of it", later)


def test_a_re_sighting_that_changes_nothing_readers_see_is_no_update(sources: Store) -> None:
    """A blog post re-sighted with another summary, on a paper whose abstract comes from the
    arXiv listing: the sighting is written, but the paper reads as before, so it counts as
    unchanged and the store's version (which readers' caches key on) stays."""
    abstract = "The listing's abstract, long and authoritative enough to be the paper's abstract."
    listing = entry(
        "rss", "r1", LEFT_TITLE, arxiv_id="2411.00005v1", authority=Authority.ARXIV_LISTING, summary=abstract
    )
    store_batch(sources, "rss", [listing], done(), now=T0)
    link = "https://arxiv.org/abs/2411.00005"
    store_batch(
        sources, "blog", [entry("blog", "b1", "On widgets", link=link, summary="Short.")], done(), now=T0
    )
    [paper] = page(sources)
    version = sources.version()
    later = T0 + timedelta(hours=1)
    again = entry("blog", "b1", "On widgets", link=link, summary="Shorter.", now=later)
    outcome = store_batch(sources, "blog", [again], done(later), now=later)
    assert (outcome.new, outcome.updated, outcome.unchanged) == (0, 0, 1)
    assert sources.version() == version
    assert page(sources) == [paper]


def test_a_key_its_paper_no_longer_holds_moves_to_the_paper_of_the_batch_that_does(sources: Store) -> None:
    """Two papers kept apart by their arXiv ids share a DOI, first held (paper_keys) by the
    listing's paper. A batch re-sights the listing without the DOI and adds a sighting to the
    other paper, which still holds the DOI through its API entry: the key moves to that paper
    (the store knows every key of the papers it loads, not only those the batch names), so a
    later sighting of the DOI alone joins it."""
    doi = "10.1000/shared"
    listing = {"arxiv_id": "2401.00011", "authority": Authority.ARXIV_LISTING}
    store_batch(
        sources,
        "rss",
        [entry("rss", "r1", "The Listing's Paper on Widgets", doi=doi, **listing)],
        done(),
        now=T0,
    )
    api = entry(
        "api",
        "a2",
        "The Other Paper on Gadgets",
        doi=doi,
        arxiv_id="2401.00012",
        authority=Authority.ARXIV_API,
    )
    store_batch(sources, "api", [api], done(), now=T0)
    assert len(page(sources)) == 2  # the DOI could not join papers of two arXiv ids
    later = T0 + timedelta(hours=1)
    batch = [
        entry("rss", "r1", "The Listing's Paper on Widgets", now=later, **listing),
        entry(
            "rss",
            "r2",
            "The Other Paper on Gadgets",
            arxiv_id="2401.00012",
            authority=Authority.ARXIV_LISTING,
            now=later,
        ),
    ]
    store_batch(sources, "rss", batch, done(later), now=later)
    latest = later + timedelta(hours=1)
    venue = entry("venue", "v", "Gadgets, as a Journal Prints the Title", doi=doi, now=latest)
    sources.sync_sources([("venue", "file:///venue.xml")])
    store_batch(sources, "venue", [venue], done(latest), now=latest)
    papers = sorted(sorted(s.entry_id for s in p.sightings) for p in page(sources))
    assert papers == [["a2", "r2", "v"], ["r1"]]


def test_a_same_titled_paper_sharing_a_key_held_by_another_paper_is_loaded_in_full(sources: Store) -> None:
    """A DOI is held (paper_keys) by the paper that named it first; a paper of another arXiv id
    whose listing names the DOI later keeps its own title. A sighting bearing that title and
    the DOI finds the first paper by the key and the second only by the title: read light, the
    second must still be reached through the keys of all its sightings (not its last one's), be
    loaded in full and take the sighting, as reading every candidate in full would."""
    title = "A Study of Repeated Titles in Research Feeds"
    doi = "10.1000/shared"
    listing = {"arxiv_id": "2401.00021", "authority": Authority.ARXIV_LISTING, "authors": ("Ada Lovelace",)}
    store_batch(sources, "rss", [entry("rss", "r1", title, **listing)], done(), now=T0)
    other = entry(
        "api", "a2", "Another Title Entirely", doi=doi, arxiv_id="2401.00022", authority=Authority.ARXIV_API
    )
    store_batch(sources, "api", [other], done(), now=T0)
    later = T0 + timedelta(hours=1)
    store_batch(
        sources, "rss", [entry("rss", "r1", title, doi=doi, now=later, **listing)], done(later), now=later
    )
    post = entry("blog", "b1", title, link="https://arxiv.org/abs/2401.00021", now=later)
    store_batch(sources, "blog", [post], done(later), now=later)
    assert sorted(sorted(s.entry_id for s in p.sightings) for p in page(sources)) == [["a2"], ["b1", "r1"]]
    latest = later + timedelta(hours=1)
    sources.sync_sources([("venue", "file:///venue.xml")])
    venue = entry("venue", "v", title, doi=doi, authors=("Kurt Gödel",), now=latest)
    store_batch(sources, "venue", [venue], done(latest), now=latest)
    papers = sorted(sorted(s.entry_id for s in p.sightings) for p in page(sources))
    assert papers == [["a2"], ["b1", "r1", "v"]]


def test_a_doi_two_papers_of_different_arxiv_ids_share_stays_with_the_first_to_name_it(
    sources: Store,
) -> None:
    """A listing names a DOI, then an API entry of another arXiv id names it too: the two stay
    apart, and the DOI stays with the paper that named it first (a batch moves a key only from a
    paper it plans that no longer holds it), so a sighting of the DOI alone joins that paper."""
    doi = "10.1000/shared"
    first = entry("rss", "r1", "The Listing's Paper on Widgets", doi=doi, arxiv_id="2401.00031")
    store_batch(sources, "rss", [first], done(), now=T0)
    second = entry("api", "a2", "The Other Paper on Gadgets", doi=doi, arxiv_id="2401.00032")
    store_batch(sources, "api", [second], done(), now=T0)
    later = T0 + timedelta(hours=1)
    venue = entry("blog", "v", "Widgets or Gadgets, as a Journal Prints It", doi=doi, now=later)
    store_batch(sources, "blog", [venue], done(later), now=later)
    papers = sorted(sorted(s.entry_id for s in p.sightings) for p in page(sources))
    assert papers == [["a2"], ["r1", "v"]]


def test_every_new_key_of_a_paper_is_written_after_one_it_already_holds(sources: Store) -> None:
    """A blog post naming a DOI is re-sighted with a link as well: the paper already holds the
    DOI, and the link, which comes after it among the paper's keys, is written all the same, so
    a later sighting of that link alone joins the paper."""
    doi = "10.1000/post"
    store_batch(sources, "blog", [entry("blog", "b1", "A Post on Widgets", doi=doi)], done(), now=T0)
    later = T0 + timedelta(hours=1)
    link = "https://blog.example.org/widgets-post"
    again = entry("blog", "b1", "A Post on Widgets", doi=doi, link=link, now=later)
    store_batch(sources, "blog", [again], done(later), now=later)
    latest = later + timedelta(hours=1)
    shared = entry("rss", "r9", "Widgets, Discussed Elsewhere", link=link, now=latest)
    store_batch(sources, "rss", [shared], done(latest), now=latest)
    [paper] = page(sources)
    assert {s.entry_id for s in paper.sightings} == {"b1", "r9"}


def test_a_merge_keeps_the_paper_first_seen_earliest_even_when_its_id_is_newer(sources: Store) -> None:
    """A listing entry first seen at T0 leaves its paper for a corrected arXiv id: its new paper
    is made after a blog post's, but first seen before it (the entry's first sighting). When a
    sighting then bridges the two, the paper first seen earliest survives, with its feed id, not
    the one of the lower id."""
    listing = {"authority": Authority.ARXIV_LISTING, "authors": ("Ada Lovelace",)}
    first = entry("rss", "e", LEFT_TITLE, arxiv_id="2401.00041", **listing)
    store_batch(sources, "rss", [first], done(), now=T0)
    post = entry("blog", "h", LEFT_TITLE, link="https://arxiv.org/abs/2401.00041", authors=("Ada Lovelace",))
    store_batch(sources, "blog", [post], done(), now=T0)
    later = T0 + timedelta(hours=1)
    link = "https://blog.example.org/other"
    other = entry("blog", "x", "Another Title Entirely, Posted Later", link=link, now=later)
    store_batch(sources, "blog", [other], done(later), now=later)
    latest = T0 + timedelta(hours=2)
    corrected = entry("rss", "e", LEFT_TITLE, arxiv_id="2401.00043", now=latest, **listing)
    store_batch(sources, "rss", [corrected], done(latest), now=latest)
    moved = next(p for p in page(sources) if p.arxiv_id == "2401.00043")
    posted = next(p for p in page(sources) if {s.entry_id for s in p.sightings} == {"x"})
    assert moved.id > posted.id
    last = latest + timedelta(hours=1)
    bridge = entry("api", "y", "A Bridge", arxiv_id="2401.00043", link=link, now=last)
    store_batch(sources, "api", [bridge], done(last), now=last)
    [merged] = [p for p in page(sources) if p.arxiv_id == "2401.00043"]
    assert {s.entry_id for s in merged.sightings} == {"e", "x", "y"}
    assert (merged.id, merged.feed_id) == (moved.id, moved.feed_id)


def test_a_re_sighted_entry_rewrites_its_own_source_s_sighting_not_another_s_of_the_same_id(
    sources: Store,
) -> None:
    """Two sources give the same entry id to entries of different papers (a mirror, a shared
    numbering): re-sighted with a new title in one source, only that source's sighting and paper
    change; the other source's entry of that id keeps its paper and its title."""
    mirror = {"link": "https://mirror.example.org/1"}
    store_batch(
        sources, "blog", [entry("blog", "1", "A Post on Widgets and Things", **mirror)], done(), now=T0
    )
    other = entry("rss", "1", "Gadgets, a Different Paper", link="https://other.example.org/1")
    store_batch(sources, "rss", [other], done(), now=T0)
    later = T0 + timedelta(hours=1)
    again = entry("blog", "1", "A Post on Widgets, Retitled", now=later, **mirror)
    store_batch(sources, "blog", [again], done(later), now=later)
    by_source = {p.sightings[0].source: (p.title, len(p.sightings)) for p in page(sources)}
    assert by_source == {"blog": ("A Post on Widgets, Retitled", 1), "rss": ("Gadgets, a Different Paper", 1)}
    with sources.engine.connect() as conn:
        rows = conn.execute(text("SELECT source, paper_id, link FROM sightings ORDER BY source")).all()
    assert [(source, link) for source, _, link in rows] == [
        ("blog", "https://mirror.example.org/1"),
        ("rss", "https://other.example.org/1"),
    ]
    assert rows[0].paper_id != rows[1].paper_id


def test_a_new_paper_of_several_sightings_whose_arxiv_url_is_taken_gets_a_tag_uri(sources: Store) -> None:
    """A blog post's arXiv link is corrected, so its paper keeps the abstract URL of the old id
    (feed ids never change). Two sightings that name the old id later make a new paper of their
    own: it cannot have that URL and is given a tag: URI, minted from its earliest sighting."""
    wrong = entry("blog", "b1", "A post about a paper", link="https://arxiv.org/abs/2401.00051")
    store_batch(sources, "blog", [wrong], done(), now=T0)
    later = T0 + timedelta(hours=1)
    fixed = entry("blog", "b1", "A post about a paper", link="https://arxiv.org/abs/2401.00052", now=later)
    store_batch(sources, "blog", [fixed], done(later), now=later)
    [moved] = page(sources)
    assert moved.feed_id == "https://arxiv.org/abs/2401.00051" and moved.arxiv_id == "2401.00052"
    latest = later + timedelta(hours=1)
    listing = {"arxiv_id": "2401.00051v1", "authority": Authority.ARXIV_LISTING, "now": latest}
    title = "Another paper entirely, it turns out"
    batch = [entry("rss", "r2", title, **listing), entry("rss", "r1", title, **listing)]
    assert not store_batch(sources, "rss", batch, done(latest), now=latest).failed
    [new] = [p for p in page(sources) if p.id != moved.id]
    assert new.arxiv_id == "2401.00051" and {s.entry_id for s in new.sightings} == {"r1", "r2"}
    assert new.feed_id.startswith("tag:papers.example.org,")


ABS = "https://arxiv.org/abs/"


def test_an_entry_leaving_for_a_taken_arxiv_url_does_not_take_the_tag_of_the_paper_it_left(
    sources: Store,
) -> None:
    """A blog post first seen with no arXiv id makes a paper with a tag: URI minted from it; it
    later names an arXiv id, then another, which a listing does not name, so it leaves for a new
    paper. That id's abstract URL is held by an older paper (whose own link was corrected since),
    so the new paper gets a tag: URI, minted from its earliest sighting: the same post, first
    seen the same day, so the same tag as the paper it left. The batch must still be written,
    the new paper with a tag of its own."""
    title = "A post about a paper"
    store_batch(
        sources, "api", [entry("api", "q", "Quite another paper", link=f"{ABS}2401.00062")], done(), now=T0
    )
    t1 = T0 + timedelta(minutes=10)
    moved = entry("api", "q", "Quite another paper", link=f"{ABS}2401.00063", now=t1)
    store_batch(sources, "api", [moved], done(t1), now=t1)
    store_batch(
        sources, "blog", [entry("blog", "e", title, link="https://blog.example.org/e")], done(), now=T0
    )
    [left] = [p for p in page(sources) if p.arxiv_id is None]
    assert left.feed_id.startswith("tag:")
    t2 = T0 + timedelta(minutes=20)
    store_batch(
        sources, "blog", [entry("blog", "e", title, link=f"{ABS}2401.00061", now=t2)], done(t2), now=t2
    )
    listing = entry("rss", "r", title, arxiv_id="2401.00061v1", authority=Authority.ARXIV_LISTING, now=t2)
    store_batch(sources, "rss", [listing], done(t2), now=t2)
    t3 = T0 + timedelta(minutes=30)
    again = entry("blog", "e", title, link=f"{ABS}2401.00062", now=t3)
    assert not store_batch(sources, "blog", [again], done(t3), now=t3).failed
    papers = {p.arxiv_id: p for p in page(sources)}
    assert {s.entry_id for s in papers["2401.00061"].sightings} == {"r"}
    assert papers["2401.00061"].feed_id == left.feed_id
    new = papers["2401.00062"]
    assert {s.entry_id for s in new.sightings} == {"e"}
    assert new.feed_id.startswith("tag:") and new.feed_id not in {
        p.feed_id for p in papers.values() if p is not new
    }
