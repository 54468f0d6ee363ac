"""Writers at the same time (PostgreSQL: each batch locks its dedupe keys and the papers it
merges into, not the whole store): sources carrying the same papers, stored by as many
writers at once, make the same papers as stored one after another, with no duplicate."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from aggregator.config import Config
from aggregator.errors import WriteConflict
from aggregator.ingest.pipeline import WRITE_ATTEMPTS, Pipeline, store_batch
from aggregator.runtime import open_store
from aggregator.store import locks
from aggregator.store.repository import Store
from aggregator.store.schema import papers
from aggregator.types import SourceOutcome
from tests.conftest import make_config, reset_postgres
from tests.test_store import T0, done, entry

DEDUP = Path(__file__).parent / "data" / "dedup-dev"
FILES = ("arxiv-api.xml", "arxiv-rss.xml", "blog.xml", "hf-daily.json", "venue.atom")


def config_of(tmp_path: Path, database_url: str, copies: int) -> Config:
    lines = ["sources:"]
    for name in FILES:
        shutil.copy(DEDUP / name, tmp_path / name)
        for n in range(copies):
            lines.append(f"  - {{name: {Path(name).stem}-{n}, url: 'file:{name}'}}")
    return make_config(tmp_path, "\n".join(lines) + "\n", database_url)


def partition(store: Store) -> set[frozenset[str]]:
    """Which entries of which sources each stored paper holds, with source copies counted as one."""
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT paper_id, source, entry_id FROM sightings")).all()
    papers: dict[int, set[str]] = {}
    for paper_id, source, entry_id in rows:
        papers.setdefault(paper_id, set()).add(f"{source.rsplit('-', 1)[0]} {entry_id}")
    return {frozenset(entries) for entries in papers.values()}


def fresh(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("postgresql"):
        reset_postgres(database_url)
    else:
        Path(database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)


def test_sources_stored_at_once_make_the_papers_they_make_one_after_another(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every batch here by its keys (these feeds have more than a large batch may lock)
    monkeypatch.setattr(locks, "MAX_KEY_LOCKS", 100_000)
    config = config_of(tmp_path, database_url, copies=3)
    sequential = open_store(config)
    try:
        pipeline = Pipeline(config, sequential)
        for source in config.sources:
            assert not pipeline.refresh(source).failed
        expected = partition(sequential)
        count = sequential.paper_count()
    finally:
        sequential.close()
    assert count == len(expected) and count < sum(1 for _ in config.sources) * 10
    for _ in range(3):  # a few times: the order writers meet in changes every time
        fresh(database_url, tmp_path)
        stores = [open_store(config) for _ in config.sources]
        start = threading.Barrier(len(stores))
        outcomes: list[SourceOutcome] = []
        threads = [
            threading.Thread(target=_write_when_all_are_ready, args=(config, s, n, start, outcomes))
            for n, s in enumerate(stores)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert [o.error for o in outcomes if o.failed] == []
            assert partition(stores[0]) == expected
            assert stores[0].paper_count() == count
        finally:
            for store in stores:
                store.close()


def _write_when_all_are_ready(
    config: Config, store: Store, n: int, start: threading.Barrier, outcomes: list[SourceOutcome]
) -> None:
    start.wait()
    outcomes.append(Pipeline(config, store).refresh(config.sources[n]))


def test_each_key_is_one_lock_taken_in_order_and_a_huge_batch_takes_the_store() -> None:
    numbers = [locks.key_number(k) for k in ("arxiv:2409.17481", "doi:10.1/x", "title:a study")]
    assert len(set(numbers)) == 3 and all(-(2**63) <= n < 2**63 for n in numbers)
    assert locks.key_number("arxiv:2409.17481") == numbers[0]  # the same in every process
    assert locks.STORE_LOCK not in numbers
    assert locks.MAX_KEY_LOCKS <= 64  # PostgreSQL's default share of its lock table per connection


def test_a_batch_that_meets_another_writer_starts_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry of store_batch: a conflict on the first attempts, then the batch goes through."""
    import aggregator.ingest.pipeline as pipeline_module
    from aggregator.types import FetchDone

    real, calls = pipeline_module._store_once, []

    def conflicting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) < 3:
            raise WriteConflict("store: another writer got there first")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline_module, "_store_once", conflicting)
    monkeypatch.setattr(pipeline_module.time, "sleep", lambda _s: None)
    store.sync_sources([("s", "file:x.xml")])
    from datetime import UTC, datetime

    now = datetime(2026, 12, 6, tzinfo=UTC)
    outcome = store_batch(store, "s", [], FetchDone(None, None, None, now), now=now)
    assert len(calls) == 3 and not outcome.failed
    calls.clear()
    monkeypatch.setattr(
        pipeline_module, "_store_once", lambda *a, **k: (_ for _ in ()).throw(WriteConflict("x"))
    )
    with pytest.raises(WriteConflict):
        store_batch(store, "s", [], FetchDone(None, None, None, now), now=now)
    assert WRITE_ATTEMPTS >= 3


class _ReachesAll:
    def reaches(self, titles: Iterable[str], keys: Iterable[str], names: Collection[str]) -> bool:
        return True


def test_a_batch_loads_a_paper_another_writer_is_changing_as_that_writer_commits_it(
    database_url: str,
) -> None:
    """A batch starts its merge from the stored paper as last committed: one that another
    writer's open transaction has changed is read only once that writer commits (PostgreSQL:
    the papers a batch loads are read FOR UPDATE; SQLite: one writer at a time), never as it was
    before the change, which the batch's update would then write back over it."""
    store = Store.open(database_url, tag_authority="papers.example.org")
    store.sync_sources([("blog", "file:///blog.xml")])
    title = "A study of sparse attention pruning"
    store_batch(store, "blog", [entry("blog", "b1", title)], done(), now=T0)
    with store.engine.connect() as conn:
        pid = conn.scalar(select(papers.c.id))
    earlier, later = T0 - timedelta(days=3), T0 + timedelta(hours=1)
    loaded: list[datetime] = []

    def load() -> None:
        revised = [entry("blog", "b1", f"{title}, revised", now=later)]
        with store.source_batch("blog", revised, done(later), now=later) as batch:
            loaded.extend(p.first_seen for p in batch.candidates(_ReachesAll()).papers)

    other = store.engine.connect()
    try:
        with other.begin():  # another writer, which has changed the paper and not yet committed
            other.execute(update(papers).where(papers.c.id == pid).values(first_seen=earlier))
            reader = threading.Thread(target=load)
            reader.start()
            reader.join(0.5)
            assert reader.is_alive() and loaded == []  # waiting for that writer
        reader.join(30)
    finally:
        other.close()
    assert not reader.is_alive()
    assert loaded == [earlier]
    store.close()
