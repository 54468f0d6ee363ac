"""The fetch loop behind `serve` and `worker`: due sources are fetched once, by one worker at a time."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.ingest.pipeline import Pipeline
from aggregator.runtime import open_store
from aggregator.scheduler import LEASE, Scheduler
from tests.conftest import make_config

DEDUP = Path(__file__).parent / "data" / "dedup-dev"
T0 = datetime(2026, 12, 6, 12, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_source_leased_by_another_worker_is_left_to_it(tmp_path: Path, database_url: str) -> None:
    for name in ("arxiv-rss.xml", "venue.atom"):
        shutil.copy(DEDUP / name, tmp_path / name)
    body = "sources:\n  - {name: rss, url: 'file:arxiv-rss.xml'}\n  - {name: venue, url: 'file:venue.atom'}\n"
    config = make_config(tmp_path, body, database_url)
    store = open_store(config)
    try:
        clock = Clock(T0)
        scheduler = Scheduler(Pipeline(config, store, clock=clock))
        # another worker holds the lease on `rss` (it is fetching it now)
        assert store.claim("rss", now=T0, until=T0 + LEASE)
        assert scheduler.run_once() == 1  # venue only
        fetched = {s.name: s.last_fetch_at for s in store.source_states()}
        assert fetched["rss"] is None and fetched["venue"] is not None
        assert scheduler.run_once() == 0  # venue is not due again; rss is still leased
        clock.now = T0 + LEASE + timedelta(seconds=1)  # the other worker died: its lease ran out
        assert scheduler.run_once() == 1
        assert {s.name: s.last_fetch_at for s in store.source_states()}["rss"] is not None
    finally:
        store.close()


def test_serve_fetches_local_snapshots_first(tmp_path: Path, database_url: str) -> None:
    shutil.copy(DEDUP / "venue.atom", tmp_path / "venue.atom")
    body = (
        "sources:\n  - {name: venue, url: 'file:venue.atom'}\n"
        "  - {name: remote, url: 'https://feeds.example.invalid/x.xml'}\n"
    )
    config = make_config(tmp_path, body, database_url)
    store = open_store(config)
    try:
        scheduler = Scheduler(Pipeline(config, store, clock=Clock(T0)))
        assert scheduler.run_once(local_only=True) == 1
        states = {s.name: s for s in store.source_states()}
        assert states["venue"].last_fetch_at is not None and states["remote"].last_fetch_at is None
    finally:
        store.close()
