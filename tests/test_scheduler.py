"""The fetch loop behind `serve` and `worker`: due sources are fetched once, by one worker at a time."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import Config, SourceConfig
from aggregator.ingest.pipeline import Pipeline
from aggregator.ingest.turns import REFILL_EVERY
from aggregator.runtime import open_store
from aggregator.scheduler import LEASE, LeaseKeeper, Scheduler
from aggregator.store.repository import Store
from aggregator.types import Lease, SourceOutcome
from tests.conftest import Clock, make_config

DEDUP = Path(__file__).parent / "data" / "dedup-dev"
T0 = datetime(2026, 12, 6, 12, tzinfo=UTC)


def two_local_sources(tmp_path: Path, database_url: str) -> Config:
    """`rss` and `venue`, both files."""
    for name in ("arxiv-rss.xml", "venue.atom"):
        shutil.copy(DEDUP / name, tmp_path / name)
    body = "sources:\n  - {name: rss, url: 'file:arxiv-rss.xml'}\n  - {name: venue, url: 'file:venue.atom'}\n"
    return make_config(tmp_path, body, database_url)


def test_a_source_leased_by_another_worker_is_left_to_it(tmp_path: Path, database_url: str) -> None:
    config = two_local_sources(tmp_path, database_url)
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


# --- the loop and its lease, as `serve` and `worker` run it ----------------------------------


class Watched(Pipeline):
    """The pipeline, watched: each outcome, and whether another worker could claim the source
    while this one fetched it."""

    def __init__(self, config: Config, store: Store, *, clock: Callable[[], datetime]) -> None:
        super().__init__(config, store, clock=clock)
        self.outcomes: list[SourceOutcome] = []
        self.rival_claims: list[bool] = []
        self.before_refresh: Callable[[], None] = lambda: None
        self.failing_passes = 0

    def due(self, names: Iterable[str] | None = None) -> list[SourceConfig]:
        if self.failing_passes:
            self.failing_passes -= 1
            raise RuntimeError("the store is away")
        return super().due(names)

    def refresh(self, source: SourceConfig, lease: Lease | None = None) -> SourceOutcome:
        now = self.clock()
        self.rival_claims.append(self.store.claim(source.name, now=now, until=now + LEASE) is not None)
        self.before_refresh()
        outcome = super().refresh(source, lease)
        self.outcomes.append(outcome)
        return outcome


@pytest.fixture
def local_store(tmp_path: Path, database_url: str) -> Iterable[tuple[Store, Watched, Clock]]:
    """A store with one local source, `venue`, and a watched pipeline on a clock of our own."""
    shutil.copy(DEDUP / "venue.atom", tmp_path / "venue.atom")
    config = make_config(tmp_path, "sources:\n  - {name: venue, url: 'file:venue.atom'}\n", database_url)
    store = open_store(config)
    clock = Clock(T0)
    yield store, Watched(config, store, clock=clock), clock
    store.close()


def fetched_at(store: Store, name: str) -> datetime | None:
    return {s.name: s.last_fetch_at for s in store.source_states()}[name]


def eventually(condition: Callable[[], object], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the fetch loop did not get there in time"
        time.sleep(0.01)


def test_a_pass_fetches_every_due_source_remote_ones_too(
    tmp_path: Path, database_url: str, httpserver: HTTPServer
) -> None:
    shutil.copy(DEDUP / "venue.atom", tmp_path / "venue.atom")
    httpserver.expect_request("/rss").respond_with_data(
        (DEDUP / "arxiv-rss.xml").read_bytes(), content_type="application/rss+xml"
    )
    body = (
        "fetch: {allow_networks: [127.0.0.0/8]}\nsources:\n  - {name: venue, url: 'file:venue.atom'}\n"
        f"  - {{name: rss, url: '{httpserver.url_for('/rss')}'}}\n"
    )
    config = make_config(tmp_path, body, database_url)
    store = open_store(config)
    try:
        assert Scheduler(Pipeline(config, store, clock=Clock(T0))).run_once() == 2
        assert fetched_at(store, "venue") is not None and fetched_at(store, "rss") is not None
    finally:
        store.close()


def test_no_other_worker_can_claim_a_source_while_it_is_fetched(
    local_store: tuple[Store, Watched, Clock],
) -> None:
    _, pipeline, _ = local_store
    assert Scheduler(pipeline).run_once() == 1
    assert pipeline.rival_claims == [False]


def test_each_fetch_is_logged_with_its_source_and_outcome(
    local_store: tuple[Store, Watched, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    _, pipeline, _ = local_store
    with caplog.at_level(logging.INFO, logger="aggregator.scheduler"):
        Scheduler(pipeline).run_once()
    [outcome] = pipeline.outcomes
    assert [r.getMessage() for r in caplog.records if r.name == "aggregator.scheduler"] == [
        f"venue: {outcome.new} new, 0 updated, 0 unchanged in {outcome.seconds:.2f} s"
    ]
    assert outcome.new > 0 and outcome.seconds > 0


def test_a_stopped_worker_starts_no_fetch(local_store: tuple[Store, Watched, Clock]) -> None:
    store, pipeline, _ = local_store
    scheduler = Scheduler(pipeline)
    scheduler.stopping.set()
    assert scheduler.run_once() == 0
    assert fetched_at(store, "venue") is None


def test_a_pass_with_nothing_due_fetches_nothing(local_store: tuple[Store, Watched, Clock]) -> None:
    """Right after a pass, at the same moment, no source is due: the next pass is empty and
    returns 0 without starting a pool (which would refuse zero threads)."""
    _, pipeline, _ = local_store
    scheduler = Scheduler(pipeline)
    assert scheduler.run_once() == 1
    assert pipeline.due() == []
    assert scheduler.run_once() == 0


def test_the_background_loop_fetches_what_falls_due_until_stopped(
    local_store: tuple[Store, Watched, Clock],
) -> None:
    store, pipeline, clock = local_store
    scheduler = Scheduler(pipeline, poll=0.01)
    thread = scheduler.start()
    try:
        assert thread.daemon  # a fetch in progress never keeps the process from exiting
        eventually(lambda: fetched_at(store, "venue") is not None)
        first = fetched_at(store, "venue")
        clock.now = T0 + timedelta(days=1)  # due again: the next poll fetches it
        eventually(lambda: fetched_at(store, "venue") != first)
    finally:
        scheduler.stop(timeout=10)
    assert not thread.is_alive()


def test_a_failed_pass_is_logged_and_the_loop_goes_on(
    local_store: tuple[Store, Watched, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    store, pipeline, _ = local_store
    pipeline.failing_passes = 1
    scheduler = Scheduler(pipeline, poll=0.01)
    scheduler.start()
    try:
        eventually(lambda: fetched_at(store, "venue") is not None)
    finally:
        scheduler.stop(timeout=10)
    [failure] = [r for r in caplog.records if r.name == "aggregator.scheduler" and r.levelno == logging.ERROR]
    assert failure.getMessage() == "scheduler: pass failed" and failure.exc_info is not None


def test_stop_waits_no_longer_than_its_timeout_for_a_fetch_in_progress(
    local_store: tuple[Store, Watched, Clock],
) -> None:
    _, pipeline, _ = local_store
    fetching, release = threading.Event(), threading.Event()

    def hold() -> None:
        fetching.set()
        release.wait(5)

    pipeline.before_refresh = hold
    scheduler = Scheduler(pipeline, poll=0.01)
    thread = scheduler.start()
    try:
        assert fetching.wait(20)
        started = time.monotonic()
        scheduler.stop(timeout=0.1)
        assert time.monotonic() - started < 2.5 and thread.is_alive()
    finally:
        release.set()
    thread.join(10)
    assert not thread.is_alive()  # and the fetch in progress, once done, ended the loop


def test_one_thread_drains_every_due_source_and_counts_each(tmp_path: Path, database_url: str) -> None:
    """With a pool of one, the single thread takes the sources one after another: the pass
    counts every fetch it made, not only the last."""
    config = two_local_sources(tmp_path, database_url)
    store = open_store(config)
    try:
        assert Scheduler(Pipeline(config, store, clock=Clock(T0)), concurrency=1).run_once() == 2
        assert fetched_at(store, "rss") is not None and fetched_at(store, "venue") is not None
    finally:
        store.close()


def test_a_failed_fetch_is_logged_as_a_warning_a_good_one_as_info(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Operators watch for WARNING: a fetch that failed says so at that level, one that
    worked stays at INFO."""
    shutil.copy(DEDUP / "venue.atom", tmp_path / "venue.atom")
    body = "sources:\n  - {name: venue, url: 'file:venue.atom'}\n  - {name: gone, url: 'file:missing.xml'}\n"
    config = make_config(tmp_path, body, database_url)
    store = open_store(config)
    try:
        with caplog.at_level(logging.INFO, logger="aggregator.scheduler"):
            assert Scheduler(Pipeline(config, store, clock=Clock(T0))).run_once() == 2
    finally:
        store.close()
    levels = {
        r.getMessage().split(":")[0]: r.levelno for r in caplog.records if r.name == "aggregator.scheduler"
    }
    assert levels == {"venue": logging.INFO, "gone": logging.WARNING}


def test_a_fetch_whose_lease_passed_to_another_worker_is_discarded(
    local_store: tuple[Store, Watched, Clock],
) -> None:
    """The scheduler hands its lease to the pipeline: a fetch that stalled past its lease while
    another worker took the source over writes nothing."""
    store, pipeline, clock = local_store

    def stall_and_be_taken_over() -> None:
        clock.now = T0 + LEASE + timedelta(seconds=1)
        assert store.claim("venue", now=clock.now, until=clock.now + LEASE)

    pipeline.before_refresh = stall_and_be_taken_over
    assert Scheduler(pipeline).run_once() == 1
    [outcome] = pipeline.outcomes
    assert outcome.discarded and outcome.new == 0
    assert store.paper_count() == 0 and fetched_at(store, "venue") is None


def test_a_lease_lost_to_another_worker_is_warned_about_once_and_let_go(
    local_store: tuple[Store, Watched, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    """The keeper stops renewing a lease another worker took over: one warning naming the
    source, not one at every renewal until the fetch ends."""
    store, pipeline, clock = local_store
    mine = store.claim("venue", now=T0, until=T0 + LEASE)
    assert mine is not None
    keeper = LeaseKeeper(pipeline, LEASE)
    keeper.hold(mine)
    clock.now = T0 + LEASE / 2
    keeper.renew()  # still this worker's: renewed until T0 + 1.5 LEASE
    assert store.claim("venue", now=T0 + LEASE + timedelta(seconds=1), until=T0 + 2 * LEASE) is None
    clock.now = T0 + 2 * LEASE  # the worker stalled; its lease ran out and a rival took it
    assert store.claim("venue", now=clock.now, until=clock.now + LEASE) is not None
    with caplog.at_level(logging.INFO, logger="aggregator.scheduler"):
        keeper.renew()
        keeper.renew()
    lines = [r.getMessage() for r in caplog.records if r.name == "aggregator.scheduler"]
    assert lines == ["venue: the lease passed to another worker"]
    assert [r.levelno for r in caplog.records if r.name == "aggregator.scheduler"] == [logging.WARNING]


EMPTY_FEED = '<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'


def quiet_local_sources(tmp_path: Path, database_url: str, extra: str = "") -> Config:
    """`a` and `b`, files of empty feeds, fetched every hour (one turn: both are files)."""
    (tmp_path / "quiet.xml").write_text(EMPTY_FEED)
    body = "sources:\n" + "".join(f"  - {{name: {n}, url: 'file:quiet.xml', every: 1h}}\n" for n in "ab")
    return make_config(tmp_path, body + extra, database_url)


def test_a_source_falling_due_during_a_long_pass_is_fetched_in_that_pass(
    tmp_path: Path, database_url: str
) -> None:
    """While the pool waits on a fetch that takes long, the pass looks for sources that fell due
    meanwhile and fetches them too, instead of leaving them to the next pass."""
    config = quiet_local_sources(
        tmp_path, database_url, "  - {name: late, url: 'file:quiet.xml', every: 12h}\n"
    )
    store = open_store(config)
    clock = Clock(T0)
    pipeline = Watched(config, store, clock=clock)
    scheduler = Scheduler(pipeline, concurrency=2)
    try:
        assert scheduler.run_once() == 3
        clock.now = T0 + timedelta(hours=2)  # a and b are due, `late` is not
        stalled: list[bool] = []

        def stall_the_first_fetch() -> None:
            if not stalled:
                stalled.append(True)
                clock.now = T0 + timedelta(hours=20)  # `late` falls due while it runs
                time.sleep(REFILL_EVERY + 0.7)  # long enough for the pool to look again

        pipeline.before_refresh = stall_the_first_fetch
        assert scheduler.run_once() == 3
        assert fetched_at(store, "late") == T0 + timedelta(hours=20)
    finally:
        store.close()


def test_a_local_only_pass_takes_no_remote_source_that_is_due_meanwhile(
    tmp_path: Path, database_url: str
) -> None:
    """serve's first pass reads the local files only: when it looks again for due sources
    during a long fetch, the remote one (due all along) is still left to the next pass."""
    config = quiet_local_sources(
        tmp_path, database_url, "  - {name: remote, url: 'https://feeds.example.invalid/x.xml'}\n"
    )
    store = open_store(config)
    pipeline = Watched(config, store, clock=Clock(T0))
    stalled: list[bool] = []

    def stall_the_first_fetch() -> None:
        if not stalled:
            stalled.append(True)
            time.sleep(REFILL_EVERY + 0.7)

    pipeline.before_refresh = stall_the_first_fetch
    try:
        assert Scheduler(pipeline, concurrency=2).run_once(local_only=True) == 2
        assert fetched_at(store, "remote") is None
    finally:
        store.close()
