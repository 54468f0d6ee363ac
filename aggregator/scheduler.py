"""Which source is due and who fetches it: the loop behind `serve` and `worker`.

A pass hands the due sources to a pool of `fetch.concurrency` threads, so that one slow source
costs only its own deadline. Sources whose requests share a host budget (schedule.host_budget)
go one at a time within a worker, so that the pool never sits waiting on one polite host while
others are due; across workers the store spaces them.

Several workers may share one PostgreSQL store. Before fetching a source, a worker takes a
short lease on it with a token of its own and renews it while the fetch runs (`LeaseKeeper`);
the store records the fetch only while the token is still the source's. A killed worker's
sources are due again once its leases run out, within `LEASE`.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from aggregator.config import SourceConfig
from aggregator.ingest.pipeline import Pipeline
from aggregator.ingest.turns import TurnQueue
from aggregator.metrics import record_fetch
from aggregator.types import Lease, SourceOutcome

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)  # renewed every third of it while the fetch runs
IDLE_POLL = 15.0  # seconds between looks at the sources when none is due


class Scheduler:
    """Refreshes due sources until stopped."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        poll: float = IDLE_POLL,
        concurrency: int | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.pipeline = pipeline
        self.poll = poll
        self.concurrency = concurrency or pipeline.config.fetch.concurrency
        self.lease = lease
        self.stopping = pipeline.stopping  # one event: a stop also ends the waits for hosts
        self._thread: threading.Thread | None = None

    def run_once(self, *, local_only: bool = False) -> int:
        """Refresh every source that is due and not leased by another worker (only `file:`
        sources if asked), `concurrency` at a time; returns how many ran."""
        due = [s for s in self.pipeline.due() if not local_only or s.url.startswith("file:")]
        if not due or self.stopping.is_set():
            return 0
        queue = TurnQueue(
            due,
            per_host_delay=self.pipeline.config.fetch.per_host_delay,
            stopping=self.stopping,
            refill=(lambda: []) if local_only else self.pipeline.due,
        )
        keeper = LeaseKeeper(self.pipeline, self.lease)
        keeper.start()
        try:
            threads = min(self.concurrency, len(due))
            try:
                with ThreadPoolExecutor(threads, thread_name_prefix="fetch") as pool:
                    counts = [pool.submit(self._drain, queue, keeper) for _ in range(threads)]
            except BaseException:  # Ctrl-C: the fetches in flight finish, no new one starts
                self.stopping.set()
                raise
            return sum(c.result() for c in counts)
        finally:
            keeper.stop()  # after the pool: leases are renewed as long as a fetch runs

    def _drain(self, queue: TurnQueue, keeper: LeaseKeeper) -> int:
        ran = 0
        while not self.stopping.is_set() and (source := queue.take()) is not None:
            try:
                ran += self._fetch(source, keeper)
            finally:
                queue.done(source)
        return ran

    def _fetch(self, source: SourceConfig, keeper: LeaseKeeper) -> bool:
        now = self.pipeline.clock()
        lease = self.pipeline.store.claim(source.name, now=now, until=now + self.lease)
        if lease is None:
            return False
        keeper.hold(lease)
        try:
            outcome = self.pipeline.refresh(source, lease)
        finally:
            keeper.drop(lease)
        record_fetch(outcome)
        log_fetch(outcome)
        return True

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception:  # the store may be briefly away; try again at the next poll
                log.exception("scheduler: pass failed")
            self.stopping.wait(self.poll)

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run_forever, name="fetcher", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = None) -> None:
        self.stopping.set()
        if self._thread:
            self._thread.join(timeout)


def log_fetch(outcome: SourceOutcome) -> None:
    """One line per fetch: source, what happened, how long it took."""
    level = logging.WARNING if outcome.failed else logging.INFO
    log.log(level, "%s: %s in %.2f s", outcome.source, outcome.describe(), outcome.seconds)


class LeaseKeeper:
    """Renews this worker's leases while their fetches run, every third of the lease."""

    def __init__(self, pipeline: Pipeline, lease: timedelta) -> None:
        self.pipeline = pipeline
        self.lease = lease
        self._held: set[Lease] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def hold(self, lease: Lease) -> None:
        with self._lock:
            self._held.add(lease)

    def drop(self, lease: Lease) -> None:
        with self._lock:
            self._held.discard(lease)

    def renew(self) -> None:
        """Extend every lease held now; one that passed to another worker is let go (its fetch
        will be refused when it is recorded)."""
        with self._lock:
            held = list(self._held)
        for lease in held:
            now = self.pipeline.clock()
            if not self.pipeline.store.renew(lease, until=now + self.lease):
                log.warning("%s: the lease passed to another worker", lease.source)
                self.drop(lease)

    def _run(self) -> None:
        while not self._stopping.wait(self.lease.total_seconds() / 3):
            try:
                self.renew()
            except Exception:  # the store may be briefly away: the lease then runs out, safely
                log.exception("scheduler: renewing leases failed")
