"""Which source is due and who fetches it: the loop behind `serve` and `worker`.

Several workers may share one PostgreSQL store: a worker takes a short lease on a source
before fetching it, so two workers never fetch the same source at once.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from aggregator.ingest.pipeline import Pipeline
from aggregator.metrics import record_fetch

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)  # longer than the slowest fetch-parse-store of one source
IDLE_POLL = 30.0  # seconds between looks at the sources when none is due


class Scheduler:
    """Refreshes due sources until stopped."""

    def __init__(self, pipeline: Pipeline, *, poll: float = IDLE_POLL) -> None:
        self.pipeline = pipeline
        self.poll = poll
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, *, local_only: bool = False) -> int:
        """Refresh every source that is due and not leased by another worker (only `file:`
        sources if asked); returns how many ran."""
        ran = 0
        for source in self.pipeline.due():
            if local_only and not source.url.startswith("file:"):
                continue
            if self.stopping.is_set():
                break
            now = self.pipeline.clock()
            if not self.pipeline.store.claim(source.name, now=now, until=now + LEASE):
                continue
            outcome = self.pipeline.refresh(source)
            record_fetch(outcome)
            ran += 1
            log.info("%s: %s", source.name, outcome)
        return ran

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
