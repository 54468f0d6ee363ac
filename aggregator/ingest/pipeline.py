"""One pass over sources: fetch | parse | normalise | dedupe+store, each source on its own.

This is the one place in ingest that does I/O. A source that fails (network, HTTP, a broken or
hostile body) is recorded on its row with a back-off and reported; the other sources go on and
nothing already stored is touched. A 304, or a body identical to the last one, costs no parse
and no paper write.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from aggregator.config import Config, SourceConfig
from aggregator.errors import SourceError
from aggregator.ingest.dedupe import plan_ingest, stubs_to_load
from aggregator.ingest.fetch import Gone, HostThrottle, RetryLater, fetch
from aggregator.ingest.normalize import normalize_entry
from aggregator.ingest.parse import parse_feed
from aggregator.records import Candidate
from aggregator.store.repository import Store
from aggregator.types import (
    STOPPED,
    FetchDone,
    FetchedBody,
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
    store: Store, name: str, batch: Sequence[Sighting], done: FetchDone, *, now: datetime
) -> SourceOutcome:
    """One source's normalised sightings into the store, merged into papers, with its fetch
    state, in one transaction: the store reads the papers they may touch, dedupe decides how
    they merge, the store writes the plans (and tags and indexes what changed)."""
    with store.source_batch(name, batch, done, now=now) as source:
        if source.changed:
            full, stubs = source.candidates()
            # Same-titled papers come as stubs; those a sighting could join are read in full.
            joined = stubs_to_load(source.changed, stubs)
            known: list[Candidate] = [
                *full,
                *source.load_papers(joined),
                *(s for s in stubs if s.id not in joined),
            ]
            known.sort(key=lambda paper: paper.id)
            source.write(plan_ingest(source.changed, known, stubs_checked=True))
    return source.outcome


class Pipeline:
    """Refreshes configured sources into a store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        throttle: HostThrottle | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.throttle = throttle or HostThrottle(config.fetch.min_host_interval)
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
        outcomes = []
        for source in sources:
            outcome = self.refresh(source)
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
        if any(o.new for o in outcomes):
            self.store.refresh_statistics()
        return outcomes

    def refresh(self, source: SourceConfig) -> SourceOutcome:
        """Fetch, parse and store one source; failures are recorded, never raised."""
        state = self.store.source_state(source.name) or SourceState(source.name, source.url)
        now = self.clock()
        try:
            return self._refresh(source, state, now)
        except RetryLater as exc:
            return self._fail(source, state, str(exc), now, exc.retry_after)
        except Gone as exc:  # stopped: due again only once the config gives it another URL
            self.store.record_failure(source.name, str(exc), now=now, next_fetch_at=STOPPED)
            log.warning("%s: %s", source.name, exc)
            return SourceOutcome(source.name, error=str(exc))
        except SourceError as exc:
            return self._fail(source, state, str(exc), now)
        except Exception as exc:  # a bug must not take the other sources down; it is logged in full
            log.exception("ingest: unexpected error on source %s", source.name)
            return self._fail(source, state, f"internal error: {type(exc).__name__}: {exc}", now)

    def _refresh(self, source: SourceConfig, state: SourceState, now: datetime) -> SourceOutcome:
        if _needs_throttle(source.url):
            self.throttle.wait(source.url)
        response = fetch(
            source.url, etag=state.etag, last_modified=state.last_modified, settings=self.config.fetch
        )
        next_fetch = now + timedelta(seconds=source.every)
        if isinstance(response, NotModified):
            done = FetchDone(response.etag, response.last_modified, state.body_hash, next_fetch)
            self.store.record_unchanged(source.name, done, now=now)
            return SourceOutcome(source.name, unchanged=state.entries, not_modified=True)
        body_hash = _body_hash(response)
        done = FetchDone(response.etag, response.last_modified, body_hash, next_fetch)
        if body_hash == state.body_hash:
            self.store.record_unchanged(source.name, done, now=now)
            return SourceOutcome(source.name, unchanged=state.entries, not_modified=True)
        feed = parse_feed(response.body, kind=source.kind, url=response.url)
        batch = [
            normalize_entry(e, source=source.name, authority=feed.authority, now=now) for e in feed.entries
        ]
        if feed.problem:  # keep what was read; keep no validators or hash, so the next fetch reads anew
            done = FetchDone(None, None, None, next_fetch, warning=feed.problem)
            log.warning("%s: %s", source.name, feed.problem)
        outcome = store_batch(self.store, source.name, batch, done, now=now)
        return replace(outcome, warning=feed.problem)

    def _fail(
        self,
        source: SourceConfig,
        state: SourceState,
        error: str,
        now: datetime,
        retry_after: float | None = None,
    ) -> SourceOutcome:
        delay = retry_delay(state.error_count + 1, timedelta(seconds=source.every), retry_after)
        self.store.record_failure(source.name, error, now=now, next_fetch_at=now + delay)
        log.warning("%s: %s (next try in %s)", source.name, error, delay)
        return SourceOutcome(source.name, error=error)


def _needs_throttle(url: str) -> bool:
    """Remote hosts get one request per few seconds; files and the user's own loopback do not."""
    if not url.startswith(("http://", "https://")):
        return False
    host = (urlsplit(url).hostname or "").lower()
    return not (host == "localhost" or host.startswith("127.") or host == "::1")


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
