"""One pass over sources: fetch | parse | normalise | dedupe+store, each source on its own.

This is the one place in ingest that does I/O. A source that fails (network, HTTP, a broken or
hostile body) is recorded on its row with a back-off and reported; the other sources go on and
nothing already stored is touched. A 304, or a body identical to the last one, costs no parse
and no paper write.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aggregator.collector import collector_held
from aggregator.config import Config, SourceConfig
from aggregator.errors import LeaseLost, SourceError, WriteConflict
from aggregator.ingest.dedupe import TitleReach, plan_ingest
from aggregator.ingest.fetch import Gone, RetryLater, fetch
from aggregator.ingest.normalize import normalize_entry
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.parse.hints import feed_hints
from aggregator.ingest.schedule import host_budget, next_fetch
from aggregator.ingest.turns import TurnQueue
from aggregator.store.repository import Store
from aggregator.types import (
    STOPPED,
    FetchDone,
    FetchedBody,
    Lease,
    NotModified,
    Sighting,
    SourceOutcome,
    SourceState,
)

log = logging.getLogger(__name__)

# Bump when parsing or normalising changes what a body yields: identical bodies are then re-read.
PIPELINE_VERSION = "1"
FIRST_RETRY = timedelta(minutes=5)
LONGEST_RETRY = timedelta(days=1)
WRITE_ATTEMPTS = 5  # a batch that meets another writer over the same papers is tried again


class Stopped(Exception):
    """The pipeline was stopped before this source's request could be sent."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def retry_delay(errors: int, every: timedelta, retry_after: float | None = None) -> timedelta:
    """Back-off after `errors` failures in a row: 5 min doubling, capped by the source's interval."""
    doublings = min(max(errors - 1, 0), 16)  # 5 min x 2**16 is far past any cap; more would overflow
    delay = min(FIRST_RETRY * (1 << doublings), max(every, FIRST_RETRY), LONGEST_RETRY)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=min(retry_after, LONGEST_RETRY.total_seconds())))
    return delay


def store_batch(
    store: Store,
    name: str,
    batch: Sequence[Sighting],
    done: FetchDone,
    *,
    now: datetime,
    lease: Lease | None = None,
) -> SourceOutcome:
    """One source's normalised sightings into the store, merged into papers, with its fetch
    state, in one transaction: the store reads the papers they may touch, dedupe decides how
    they merge, the store writes the plans (and tags and indexes what changed). With a lease,
    nothing is written unless it is still this worker's (LeaseLost). Two writers that met over
    the same papers (WriteConflict, PostgreSQL) make this one start again, a few times."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with collector_held():
                return _store_once(store, name, batch, done, now=now, lease=lease)
        except WriteConflict as exc:
            if attempt == WRITE_ATTEMPTS:
                raise
            log.info("%s: %s; trying again", name, exc)
            time.sleep(random.uniform(0.05, 0.2) * attempt)
    raise AssertionError("unreachable")


def _store_once(
    store: Store,
    name: str,
    batch: Sequence[Sighting],
    done: FetchDone,
    *,
    now: datetime,
    lease: Lease | None,
) -> SourceOutcome:
    with store.source_batch(name, batch, done, now=now, lease=lease) as source:
        if source.changed:
            # Papers found only through a shared title are read light; TitleReach says which
            # a sighting could join, and only those are loaded in full.
            found = source.candidates(TitleReach(source.changed))
            source.write(plan_ingest(source.changed, found.papers, unread=found.unread))
    return source.outcome


class Pipeline:
    """Refreshes configured sources into a store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock  # what fetch times are recorded and compared with
        # Set to give up: no source is handed out any more and no wait for a host goes on.
        self.stopping = threading.Event()
        store.sync_sources((s.name, s.url) for s in config.sources)

    def due(self, names: Iterable[str] | None = None) -> list[SourceConfig]:
        """Configured sources (all, or these names) whose next fetch time has come."""
        now = self.clock()
        states = {s.name: s for s in self.store.source_states()}
        chosen = [s for s in self.select(names) if _is_due(states.get(s.name), now)]
        # Local files first: they take no time and cannot hang, so a new server has papers at once.
        return sorted(chosen, key=lambda s: not s.url.startswith("file:"))

    def select(self, names: Iterable[str] | None = None) -> list[SourceConfig]:
        if names is None:
            return list(self.config.sources)
        return [self.config.source(n) for n in names]

    def run(
        self, sources: Sequence[SourceConfig], on_done: Callable[[SourceOutcome], None] | None = None
    ) -> list[SourceOutcome]:
        """Refresh these sources now (`aggregator ingest`), `fetch.concurrency` at a time; the
        outcomes in the order of `sources`. No lease: a manual run is the user's own say-so."""
        sources = list({s.name: s for s in sources}.values())  # a source named twice runs once
        turns = TurnQueue(sources, per_host_delay=self.config.fetch.per_host_delay, stopping=self.stopping)
        queue, outcomes = turns, {}
        reported = threading.Lock()

        def drain() -> None:
            while (source := queue.take()) is not None:
                try:
                    outcome = self.refresh(source)
                finally:
                    queue.done(source)
                with reported:
                    outcomes[source.name] = outcome
                    if on_done:
                        on_done(outcome)

        threads = max(1, min(self.config.fetch.concurrency, len(sources)))
        with ThreadPoolExecutor(threads, thread_name_prefix="ingest") as pool:
            for running in [pool.submit(drain) for _ in range(threads)]:
                running.result()
        found = [outcomes[s.name] for s in sources if s.name in outcomes]
        if any(o.new for o in found):
            self.store.refresh_statistics()
        return found

    def refresh(self, source: SourceConfig, lease: Lease | None = None) -> SourceOutcome:
        """Fetch, parse and store one source; failures are recorded, never raised. With a lease
        (the scheduler's), nothing is recorded once it has passed to another worker: the outcome
        is then `discarded`."""
        started = time.monotonic()
        try:
            outcome = self._refresh_or_fail(source, lease)
        except (LeaseLost, Stopped) as exc:  # the outcome says so: the worker logs it
            log.debug("%s: %s", source.name, exc)
            outcome = SourceOutcome(source.name, discarded=True)
        return replace(outcome, seconds=time.monotonic() - started)

    def _refresh_or_fail(self, source: SourceConfig, lease: Lease | None) -> SourceOutcome:
        state = self.store.source_state(source.name) or SourceState(source.name, source.url)
        now = self.clock()
        try:
            return self._refresh(source, state, now, lease)
        except RetryLater as exc:
            return self._fail(source, state, str(exc), now, lease, exc.retry_after)
        except Gone as exc:  # stopped: due again only once the config gives it another URL
            self.store.record_failure(source.name, str(exc), now=now, next_fetch_at=STOPPED, lease=lease)
            log.debug("%s: %s", source.name, exc)
            return SourceOutcome(source.name, error=str(exc))
        except (SourceError, WriteConflict) as exc:  # a conflict that outlasted its retries waits its turn
            return self._fail(source, state, str(exc), now, lease)
        except LeaseLost:
            raise
        except Exception as exc:  # a bug must not take the other sources down; it is logged in full
            log.exception("ingest: unexpected error on source %s", source.name)
            return self._fail(source, state, f"internal error: {type(exc).__name__}: {exc}", now, lease)

    def _refresh(
        self, source: SourceConfig, state: SourceState, now: datetime, lease: Lease | None
    ) -> SourceOutcome:
        with self._host_turn(source):
            response = fetch(
                source.url, etag=state.etag, last_modified=state.last_modified, settings=self.config.fetch
            )
        if isinstance(response, NotModified):  # the feed's hints are those of its last body
            hints = state.hints
            next_at = next_fetch(source.name, now, source.every, hints=hints, fresh_for=response.fresh_for)
            done = FetchDone(response.etag, response.last_modified, state.body_hash, next_at, hints=hints)
            self.store.record_unchanged(source.name, done, now=now, lease=lease)
            return SourceOutcome(source.name, unchanged=state.entries, not_modified=True)
        body_hash = _body_hash(response)
        if body_hash == state.body_hash:
            hints = feed_hints(response.body)
            next_at = next_fetch(source.name, now, source.every, hints=hints, fresh_for=response.fresh_for)
            done = FetchDone(response.etag, response.last_modified, body_hash, next_at, hints=hints)
            self.store.record_unchanged(source.name, done, now=now, lease=lease)
            return SourceOutcome(source.name, unchanged=state.entries, not_modified=True)
        with collector_held():
            feed = parse_feed(response.body, kind=source.kind, url=response.url)
            batch = [
                normalize_entry(e, source=source.name, authority=feed.authority, now=now)
                for e in feed.entries
            ]
        next_at = next_fetch(source.name, now, source.every, hints=feed.hints, fresh_for=response.fresh_for)
        done = FetchDone(response.etag, response.last_modified, body_hash, next_at, hints=feed.hints)
        if feed.problem:  # keep what was read; keep no validators or hash, so the next fetch reads anew
            done = FetchDone(None, None, None, next_at, warning=feed.problem, hints=feed.hints)
            log.debug("%s: %s", source.name, feed.problem)
        outcome = store_batch(self.store, source.name, batch, done, now=now, lease=lease)
        return replace(outcome, warning=feed.problem)

    @contextmanager
    def _host_turn(self, source: SourceConfig) -> Iterator[None]:
        """Wait for the source's host to be free in the store (every worker shares it), hold it
        while the request runs, and put it back spaced by the host's delay. Stopped if the
        pipeline is stopping meanwhile."""
        budget = host_budget(source.url)
        delay = self.config.fetch.per_host_delay if source.per_host_delay is None else source.per_host_delay
        if budget is None or delay <= 0:
            yield
            return
        hold = timedelta(seconds=self.config.fetch.timeout + delay)
        while True:
            now = utcnow()  # the real time: every worker's slots are compared in it
            frees = self.store.take_host_slot(budget, now=now, hold_until=now + hold)
            if frees is None:
                break
            wait = (frees - now).total_seconds()
            if wait > delay:  # a request is in flight: its end is not known yet, so look again soon
                wait = min(delay, 0.5)
            if self.stopping.wait(max(wait, 0.01)):
                raise Stopped(f"stopped while waiting for {budget}")
        try:
            yield
        finally:
            self.store.put_back_host_slot(
                budget, next_at=utcnow() + timedelta(seconds=delay), held=now + hold
            )

    def _fail(
        self,
        source: SourceConfig,
        state: SourceState,
        error: str,
        now: datetime,
        lease: Lease | None,
        retry_after: float | None = None,
    ) -> SourceOutcome:
        delay = retry_delay(state.error_count + 1, timedelta(seconds=source.every), retry_after)
        self.store.record_failure(source.name, error, now=now, next_fetch_at=now + delay, lease=lease)
        log.debug("%s: %s (next try in %s)", source.name, error, delay)
        return SourceOutcome(source.name, error=error)


def held_back(state: SourceState | None, now: datetime) -> str | None:
    """Why a manual ingest should not fetch this source now, or None: the feed is gone, or the
    last fetch failed and its back-off (or the server's Retry-After) has not run out. A source
    that is merely not due yet is fetched."""
    if state is None or state.next_fetch_at is None:
        return None
    if state.next_fetch_at >= STOPPED:
        return "stopped: the feed is gone (410); give it another URL in the config"
    if state.error_count and state.next_fetch_at > now:
        until = f"{state.next_fetch_at:%Y-%m-%d %H:%M} UTC"
        return f"backing off after {state.error_count} failed fetches, until {until}"
    return None


def _is_due(state: SourceState | None, now: datetime) -> bool:
    return state is None or state.next_fetch_at is None or state.next_fetch_at <= now


def _body_hash(response: FetchedBody) -> str:
    h = hashlib.blake2b(response.body, digest_size=16)
    h.update(PIPELINE_VERSION.encode())
    return h.hexdigest()
