"""Fetching at scale: many sources at once in a worker, leases with owners that every record of a
fetch checks, and per-host spacing that holds across workers sharing a store."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import Config, SourceConfig
from aggregator.errors import LeaseLost
from aggregator.ingest import transport
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.pipeline import Pipeline, utcnow
from aggregator.ingest.turns import TurnQueue
from aggregator.runtime import open_store
from aggregator.scheduler import IDLE_POLL, LEASE, Scheduler
from aggregator.store.repository import Store
from aggregator.types import FetchDone
from tests.conftest import Clock, make_config

DATA = Path(__file__).parent / "data"
LISTING = (DATA / "dedup-dev" / "arxiv-rss.xml").read_bytes()
T0 = datetime(2026, 12, 6, 12, tzinfo=UTC)


def name_the_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """feeds.example.test resolves to 127.0.0.1: a host that is not loopback by its name, so
    its requests are spaced as any remote host's."""
    real = transport._getaddrinfo

    def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "feeds.example.test" else real(host, port)

    monkeypatch.setattr(transport, "_getaddrinfo", resolve)


def one_item_feed(n: int) -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>'
        f"<item><title>A study of feed number {n} and its many properties</title>"
        f"<link>https://blog.example.org/{n}</link><guid>post-{n}</guid></item></channel></rss>"
    ).encode()


def served_config(tmp_path: Path, database_url: str, urls: dict[str, str], fetch: str = "") -> Config:
    lines = ["fetch:", "  allow_networks: [127.0.0.0/8]", "  timeout: 5s", *fetch.splitlines(), "sources:"]
    for name, url in urls.items():
        lines += [f"  - name: {name}", f"    url: '{url}'", "    every: 1h"]
    return make_config(tmp_path, "\n".join(lines) + "\n", database_url)


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    """A local server answering many requests at once (pytest-httpserver's default takes one at
    a time, which would hide what the pool does)."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def venue(tmp_path: Path, database_url: str) -> Iterator[tuple[Config, Store, SourceConfig]]:
    shutil.copy(DATA / "dedup-dev" / "venue.atom", tmp_path / "venue.atom")
    config = make_config(tmp_path, "sources:\n  - {name: venue, url: 'file:venue.atom'}\n", database_url)
    store = open_store(config)
    yield config, store, config.source("venue")
    store.close()


# --- leases with owners ---------------------------------------------------------------------------


def test_a_lease_belongs_to_its_token(venue: tuple[Config, Store, SourceConfig]) -> None:
    _, store, _ = venue
    mine = store.claim("venue", now=T0, until=T0 + LEASE)
    assert mine is not None and mine.source == "venue"
    assert store.claim("venue", now=T0, until=T0 + LEASE) is None  # held
    assert store.renew(mine, until=T0 + 2 * LEASE)
    assert (
        store.claim("venue", now=T0 + LEASE + timedelta(seconds=1), until=T0 + 3 * LEASE) is None
    )  # renewed
    later = T0 + 2 * LEASE + timedelta(seconds=1)  # this worker stalled: its lease ran out
    theirs = store.claim("venue", now=later, until=later + LEASE)
    assert theirs is not None and theirs.token != mine.token
    assert not store.renew(mine, until=later + LEASE)
    done = FetchDone(None, None, None, later + timedelta(hours=1))
    with pytest.raises(LeaseLost, match="venue"):
        store.record_unchanged("venue", done, now=later, lease=mine)
    with pytest.raises(LeaseLost):
        store.record_failure("venue", "fetch: down", now=later, next_fetch_at=later, lease=mine)
    [state] = store.source_states()
    assert state.last_fetch_at is None and state.error_count == 0  # neither was recorded
    store.record_unchanged("venue", done, now=later, lease=theirs)
    [state] = store.source_states()
    assert state.last_fetch_at == later


def test_a_lease_holds_until_the_moment_it_ends(venue: tuple[Config, Store, SourceConfig]) -> None:
    """A source is claimable once its lease has ended, not at the very instant it ends."""
    _, store, _ = venue
    assert store.claim("venue", now=T0, until=T0 + LEASE)
    assert store.claim("venue", now=T0 + LEASE, until=T0 + 2 * LEASE) is None
    assert store.claim("venue", now=T0 + LEASE + timedelta(microseconds=1), until=T0 + 2 * LEASE)


def test_a_source_is_due_at_the_moment_its_next_fetch_comes(
    venue: tuple[Config, Store, SourceConfig],
) -> None:
    _, store, _ = venue
    lease = store.claim("venue", now=T0, until=T0 + LEASE)
    assert lease is not None
    next_fetch_at = T0 + timedelta(hours=1)
    store.record_unchanged("venue", FetchDone(None, None, None, next_fetch_at), now=T0, lease=lease)
    assert (
        store.claim("venue", now=next_fetch_at - timedelta(microseconds=1), until=next_fetch_at + LEASE)
        is None
    )
    assert store.claim("venue", now=next_fetch_at, until=next_fetch_at + LEASE)


def test_a_worker_that_lost_its_lease_mid_fetch_commits_nothing(
    venue: tuple[Config, Store, SourceConfig],
) -> None:
    config, store, source = venue
    clock = Clock(T0)
    mine = store.claim("venue", now=T0, until=T0 + LEASE)
    assert mine is not None
    # the fetch stalls past its lease and another worker takes the source over meanwhile
    clock.now = T0 + LEASE + timedelta(seconds=1)
    theirs = store.claim("venue", now=clock.now, until=clock.now + LEASE)
    assert theirs is not None
    outcome = Pipeline(config, store, clock=clock).refresh(source, mine)
    assert outcome.discarded and not outcome.failed and outcome.new == 0
    assert store.paper_count() == 0
    [state] = store.source_states()
    assert state.last_fetch_at is None and state.body_hash is None
    outcome = Pipeline(config, store, clock=clock).refresh(source, theirs)
    assert outcome.new > 0 and store.paper_count() == outcome.new


def test_the_lease_is_renewed_while_a_fetch_runs(
    tmp_path: Path, database_url: str, httpserver: HTTPServer
) -> None:
    """A fetch that outlasts the lease keeps it: no other worker can claim the source meanwhile."""
    started, release = threading.Event(), threading.Event()

    def slow(_request: Request) -> Response:
        started.set()
        release.wait(10)
        return Response(one_item_feed(1), content_type="application/rss+xml")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    config = served_config(tmp_path, database_url, {"slow": httpserver.url_for("/slow")})
    store, rival = open_store(config), open_store(config)
    lease = timedelta(seconds=0.6)
    scheduler = Scheduler(Pipeline(config, store), lease=lease)
    try:
        worker = threading.Thread(target=scheduler.run_once)
        worker.start()
        assert started.wait(10)
        claims = []
        for _ in range(4):  # 1.2 s: twice the lease, renewed every 0.2 s
            time.sleep(0.3)
            now = utcnow()
            claims.append(rival.claim("slow", now=now, until=now + lease))
        release.set()
        worker.join(10)
        assert claims == [None] * 4
        [state] = store.source_states()
        assert state.last_success_at is not None and store.paper_count() == 1
    finally:
        release.set()
        store.close()
        rival.close()


def test_a_killed_workers_sources_are_due_again_within_a_minute(
    venue: tuple[Config, Store, SourceConfig],
) -> None:
    config, store, _ = venue
    assert LEASE.total_seconds() + IDLE_POLL <= 60  # its lease runs out, then the next poll finds it
    dead = store.claim("venue", now=T0, until=T0 + LEASE)  # a worker that never comes back
    assert dead is not None
    clock = Clock(T0 + LEASE / 2)
    other = Scheduler(Pipeline(config, store, clock=clock))
    assert other.run_once() == 0
    clock.now = T0 + LEASE + timedelta(seconds=1)
    assert other.run_once() == 1
    assert store.paper_count() > 0


# --- many sources at once -------------------------------------------------------------------------


def test_a_worker_fetches_many_sources_at_once_and_a_stalled_one_holds_no_other(
    tmp_path: Path, database_url: str, threaded_server: HTTPServer
) -> None:
    httpserver = threaded_server
    in_flight, most = 0, 0
    lock, stall = threading.Lock(), threading.Event()

    def feed(request: Request) -> Response:
        nonlocal in_flight, most
        n = int(request.path.rsplit("/", 1)[1])
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            if n == 0:
                stall.wait(10)  # the stalled source, answered once every other one is stored
            else:
                time.sleep(0.2)
            return Response(one_item_feed(n), content_type="application/rss+xml")
        finally:
            with lock:
                in_flight -= 1

    httpserver.expect_request("/feed/0").respond_with_handler(feed)
    for n in range(1, 12):
        httpserver.expect_request(f"/feed/{n}").respond_with_handler(feed)
    urls = {f"s{n}": httpserver.url_for(f"/feed/{n}") for n in range(12)}
    config = served_config(tmp_path, database_url, urls, fetch="  concurrency: 4")
    store = open_store(config)
    try:
        worker = threading.Thread(target=Scheduler(Pipeline(config, store)).run_once)
        worker.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and store.paper_count() < 11:
            time.sleep(0.05)
        assert store.paper_count() == 11  # all but the stalled one, while it still stalls
        stall.set()
        worker.join(10)
        assert store.paper_count() == 12
        assert most == 4  # the pool, not one at a time
    finally:
        stall.set()
        store.close()


def test_overlapping_sources_fetched_at_once_make_no_duplicate(
    tmp_path: Path, database_url: str, threaded_server: HTTPServer
) -> None:
    httpserver = threaded_server
    """Eight sources serving the same arXiv listing, fetched at once: one paper each."""
    httpserver.expect_request("/listing").respond_with_data(LISTING, content_type="application/rss+xml")
    papers = {e.arxiv_id for e in parse_feed(LISTING).entries}
    assert len(papers) > 10 and None not in papers
    urls = {f"copy{n}": httpserver.url_for("/listing") + f"?copy={n}" for n in range(8)}
    config = served_config(tmp_path, database_url, urls, fetch="  concurrency: 8")
    store = open_store(config)
    try:
        assert Scheduler(Pipeline(config, store)).run_once() == 8
        assert store.paper_count() == len(papers)
        assert all(s.last_success_at for s in store.source_states())
    finally:
        store.close()


# --- politeness shared by every worker --------------------------------------------------------------


def test_each_host_has_its_own_slot(venue: tuple[Config, Store, SourceConfig]) -> None:
    """Taking or putting back one host's slot neither takes nor frees another's; a slot put back
    is free from the time it was put back to, not before."""
    _, store, _ = venue
    hold = T0 + timedelta(seconds=30)
    assert store.take_host_slot("a.example.org", now=T0, hold_until=hold) is None
    assert store.take_host_slot("b.example.org", now=T0, hold_until=hold) is None
    assert store.take_host_slot("a.example.org", now=T0, hold_until=hold) == hold  # held
    store.put_back_host_slot("a.example.org", next_at=T0 + timedelta(seconds=1), held=hold)
    # b, held until the same moment, is not put back with a
    assert store.take_host_slot("b.example.org", now=T0 + timedelta(seconds=1), hold_until=hold) == hold
    store.put_back_host_slot("b.example.org", next_at=T0 + timedelta(seconds=1), held=hold)
    assert store.take_host_slot("a.example.org", now=T0 + timedelta(seconds=1), hold_until=hold) is None
    # b's slot is free too, and taking it leaves a's as a left it
    assert store.take_host_slot("b.example.org", now=T0 + timedelta(seconds=2), hold_until=hold) is None
    assert store.take_host_slot("a.example.org", now=T0 + timedelta(seconds=2), hold_until=hold) == hold


def test_four_workers_space_their_requests_to_one_host(
    tmp_path: Path, database_url: str, threaded_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 sources on one host name (resolved to 127.0.0.1 here), four workers each with their own
    store connection, as four processes would have: every gap between requests to the host is at
    least the configured delay."""
    name_the_local_server(monkeypatch)
    arrivals: list[float] = []
    ends: list[float] = []

    def feed(request: Request) -> Response:
        arrivals.append(time.monotonic())
        n = int(request.path.rsplit("/", 1)[1])
        time.sleep(0.02)
        ends.append(time.monotonic())
        return Response(one_item_feed(n), content_type="application/rss+xml")

    for n in range(40):
        threaded_server.expect_request(f"/feed/{n}").respond_with_handler(feed)
    base = f"http://feeds.example.test:{threaded_server.port}"
    urls = {f"s{n}": f"{base}/feed/{n}" for n in range(40)}
    delay = 0.1
    config = served_config(
        tmp_path, database_url, urls, fetch=f"  per_host_delay: {delay}s\n  concurrency: 4"
    )
    stores = [open_store(config) for _ in range(4)]
    try:
        workers = [threading.Thread(target=Scheduler(Pipeline(config, s)).run_once) for s in stores]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert len(arrivals) == 40  # each source once
        gaps = [b - a for a, b in zip(sorted(arrivals), sorted(arrivals)[1:], strict=False)]
        assert min(gaps) >= delay, sorted(gaps)[:5]
        assert stores[0].paper_count() == 40
    finally:
        for store in stores:
            store.close()


def test_turns_go_in_order_one_source_per_host_budget_and_local_files_one_by_one() -> None:
    def source(name: str, url: str) -> SourceConfig:
        return SourceConfig(name, url, None, 3600.0)

    queue = TurnQueue(
        per_host_delay=3.0,
        sources=[
            source("arxiv-a", "https://rss.arxiv.org/rss/cs.CL"),
            source("arxiv-b", "https://export.arxiv.org/api/query?q=x"),
            source("file-a", "file:///srv/a.xml"),
            source("blog", "https://blog.example.org/feed"),
            source("file-b", "file:///srv/b.xml"),
            source("mine", "http://127.0.0.1:8000/feed"),
        ],
    )
    taken = [queue.take() for _ in range(4)]
    assert [s.name for s in taken if s] == ["arxiv-a", "file-a", "blog", "mine"]
    later: list[str] = []
    waiting = threading.Thread(target=lambda: later.append(getattr(queue.take(), "name", "")))
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive()  # arXiv and the files are both busy: it waits for one of them
    queue.done(taken[1])  # file-a
    waiting.join(5)
    assert later == ["file-b"]
    queue.done(taken[0])
    assert getattr(queue.take(), "name", None) == "arxiv-b"
    assert queue.take() is None


def test_a_renewal_after_the_fetch_was_recorded_is_no_lost_lease(
    venue: tuple[Config, Store, SourceConfig],
) -> None:
    _, store, _ = venue
    mine = store.claim("venue", now=T0, until=T0 + LEASE)
    assert mine is not None
    store.record_unchanged("venue", FetchDone(None, None, None, T0 + timedelta(hours=1)), now=T0, lease=mine)
    assert store.renew(mine, until=T0 + LEASE)  # recorded: nobody else holds it
    later = T0 + timedelta(hours=2)
    theirs = store.claim("venue", now=later, until=later + LEASE)
    assert theirs is not None and not store.renew(mine, until=later + LEASE)


def test_a_host_slot_is_put_back_only_by_its_holder(store: Store) -> None:
    assert store.take_host_slot("example.org", now=T0, hold_until=T0 + timedelta(seconds=10)) is None
    # the request outlived its hold; another worker took the slot
    later = T0 + timedelta(seconds=11)
    assert store.take_host_slot("example.org", now=later, hold_until=later + timedelta(seconds=10)) is None
    store.put_back_host_slot("example.org", next_at=later, held=T0 + timedelta(seconds=10))  # the first
    assert store.take_host_slot(
        "example.org", now=later + timedelta(seconds=1), hold_until=later
    ) == later + timedelta(seconds=10)  # still the second worker's hold


def test_a_host_without_delay_is_not_a_turn() -> None:
    def source(name: str, delay: float | None = None) -> SourceConfig:
        return SourceConfig(name, f"https://blog.example.org/{name}", None, 3600.0, delay)

    def second_waits_for_the_first(queue: TurnQueue) -> None:
        first = queue.take()
        assert first is not None and first.name == "a"
        later: list[str] = []
        waiting = threading.Thread(target=lambda: later.append(getattr(queue.take(), "name", "")))
        waiting.start()
        waiting.join(0.2)
        assert waiting.is_alive() and later == []  # b waits for a's turn on the host
        queue.done(first)
        waiting.join(5)
        assert later == ["b"]

    queue = TurnQueue([source("a"), source("b")], per_host_delay=0.0)
    assert [getattr(queue.take(), "name", None) for _ in range(2)] == ["a", "b"]  # both at once
    # A source's own delay, not the pool's, decides: even half a second between requests is a turn
    second_waits_for_the_first(TurnQueue([source("a", 3.0), source("b", 3.0)], per_host_delay=0.0))
    second_waits_for_the_first(TurnQueue([source("a", 0.5), source("b", 0.5)], per_host_delay=0.0))
    second_waits_for_the_first(TurnQueue([source("a"), source("b")], per_host_delay=0.5))
    stopped = threading.Event()
    eager = TurnQueue([source("a", 0.0), source("b", 0.0)], per_host_delay=3.0, stopping=stopped)
    timer = threading.Timer(5.0, stopped.set)  # were b to wait, it would be handed out as None
    timer.start()
    assert [getattr(eager.take(), "name", None) for _ in range(2)] == ["a", "b"]  # no delay of their own
    timer.cancel()
    stopping = threading.Event()
    waiting = TurnQueue([source("a"), source("b")], per_host_delay=3.0, stopping=stopping)
    assert getattr(waiting.take(), "name", None) == "a"
    stopping.set()
    assert waiting.take() is None  # stopping: b is not handed out, and nothing waits for a


def test_stopping_ends_a_pass_at_the_fetches_in_flight(
    tmp_path: Path, database_url: str, threaded_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight sources on one polite host: a stop half a second in ends the pass once the request
    in flight is answered, instead of after all eight."""
    name_the_local_server(monkeypatch)

    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return Response(
            one_item_feed(int(request.path.rsplit("/", 1)[1])), content_type="application/rss+xml"
        )

    for n in range(8):
        threaded_server.expect_request(f"/feed/{n}").respond_with_handler(slow)
    urls = {f"s{n}": f"http://feeds.example.test:{threaded_server.port}/feed/{n}" for n in range(8)}
    config = served_config(tmp_path, database_url, urls, fetch="  per_host_delay: 0.5s")
    store = open_store(config)
    try:
        scheduler = Scheduler(Pipeline(config, store))
        ran: list[int] = []
        worker = threading.Thread(target=lambda: ran.append(scheduler.run_once()))
        worker.start()
        time.sleep(0.5)
        scheduler.stop()
        worker.join(10)
        assert not worker.is_alive() and ran and ran[0] <= 2
        assert len(threaded_server.log) <= 2
    finally:
        store.close()


def test_a_failed_fetch_is_one_line_of_the_worker_log(
    venue: tuple[Config, Store, SourceConfig], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    config, store, _ = venue
    (tmp_path / "venue.atom").unlink()
    with caplog.at_level(logging.INFO, logger="aggregator"):
        Scheduler(Pipeline(config, store)).run_once()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1 and lines[0].startswith("venue: failed: fetch: no such file"), lines


def test_a_source_due_during_a_long_pass_is_taken_while_the_pool_waits_on_a_host() -> None:
    def source(name: str, url: str) -> SourceConfig:
        return SourceConfig(name, url, None, 3600.0)

    arxiv = [source(f"arxiv-{n}", f"https://rss.arxiv.org/rss/cs.{n}") for n in range(3)]
    blog = source("blog", "https://blog.example.org/feed")
    due_now: list[SourceConfig] = [*arxiv]
    queue = TurnQueue(list(arxiv), per_host_delay=3.0, refill=lambda: due_now, refill_every=0.0)
    first = queue.take()
    assert first is not None and first.name == "arxiv-0"
    due_now.append(blog)  # falls due while arXiv's turn is taken
    taken = queue.take()  # does not wait for arXiv: it finds the blog
    assert taken is not None and taken.name == "blog"
    queue.done(first)
    assert [getattr(queue.take(), "name", None) for _ in range(1)] == ["arxiv-1"]


def test_a_source_due_while_every_thread_waits_on_a_host_is_taken_without_a_fetch_ending() -> None:
    """A thread waiting for a busy host looks for newly due sources again and again, not only
    when a fetch ends: the blog falling due a second into the wait is taken soon after."""
    arxiv = [SourceConfig(f"arxiv-{n}", f"https://rss.arxiv.org/rss/cs.{n}", None, 3600.0) for n in range(2)]
    due_now = [*arxiv]
    queue = TurnQueue(list(arxiv), per_host_delay=3.0, refill=lambda: list(due_now), refill_every=0.0)
    assert getattr(queue.take(), "name", None) == "arxiv-0"  # its fetch never ends here
    taken: list[str] = []
    waiting = threading.Thread(target=lambda: taken.append(getattr(queue.take(), "name", "")), daemon=True)
    waiting.start()
    waiting.join(1.2)  # meanwhile it has looked more than once and found nothing new
    assert waiting.is_alive()
    due_now.append(SourceConfig("blog", "https://blog.example.org/feed", None, 3600.0))
    waiting.join(5)
    assert taken == ["blog"]


def test_the_queue_asks_for_due_sources_at_most_once_per_refill_interval() -> None:
    """Looking for due sources reads the store: while a thread waits on a host, not more often
    than `refill_every`."""
    arxiv = [SourceConfig(f"arxiv-{n}", f"https://rss.arxiv.org/rss/cs.{n}", None, 3600.0) for n in range(2)]
    asked: list[int] = []

    def due() -> list[SourceConfig]:
        asked.append(1)
        return arxiv

    stopping = threading.Event()
    queue = TurnQueue(list(arxiv), per_host_delay=3.0, stopping=stopping, refill=due, refill_every=60.0)
    assert getattr(queue.take(), "name", None) == "arxiv-0"
    waiting = threading.Thread(target=queue.take, daemon=True)
    waiting.start()
    waiting.join(1.2)  # two or three looks at `stopping`, no minute gone by
    stopping.set()
    waiting.join(5)
    assert not waiting.is_alive() and asked == []
