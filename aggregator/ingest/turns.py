"""Sources handed out to a pool of fetching threads: in order, but never two that share a host
budget (schedule.host_budget) at once, so that the pool's threads are not all left waiting on
one polite host while sources elsewhere are due. Local files take turns too, in order: they
cost nothing to read, and stored in the same order every time they give the same store (which
source first brings a paper decides, for instance, whether a later one updates it)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from aggregator.config import SourceConfig
from aggregator.ingest.schedule import host_budget

REFILL_EVERY = 5.0  # seconds between looks for newly due sources while the pool waits on hosts


class TurnQueue:
    def __init__(
        self,
        sources: list[SourceConfig],
        *,
        per_host_delay: float = 0.0,
        stopping: threading.Event | None = None,
        refill: Callable[[], Sequence[SourceConfig]] | None = None,
        refill_every: float = REFILL_EVERY,
    ) -> None:
        self._waiting = deque(sources)
        self._seen = {s.name for s in sources}
        self._busy: set[str] = set()
        self._changed = threading.Condition()
        self._delay = per_host_delay  # fetch.per_host_delay: a source without its own takes it
        self._stopping = stopping or threading.Event()
        # What is due now: asked while every waiting source is behind a busy host, so that a
        # source falling due during a long pass does not wait for the next one.
        self._refill = refill
        self._refill_every = refill_every
        self._refilled = time.monotonic()

    def take(self) -> SourceConfig | None:
        """The next source whose host budget no other thread is using, waiting for one to be
        free if need be; None when every source has been handed out, or once stopping."""
        with self._changed:
            while self._waiting and not self._stopping.is_set():
                for source in self._waiting:
                    budget = self._turn(source)
                    if budget is None or budget not in self._busy:
                        self._waiting.remove(source)
                        if budget is not None:
                            self._busy.add(budget)
                        return source
                if self._refill is not None and time.monotonic() - self._refilled >= self._refill_every:
                    self._refilled = time.monotonic()
                    fresh = [s for s in self._refill() if s.name not in self._seen]
                    self._seen.update(s.name for s in fresh)
                    self._waiting.extend(fresh)
                    if fresh:
                        continue
                self._changed.wait(0.5)  # and look at `stopping` now and then
            return None

    def done(self, source: SourceConfig) -> None:
        """The source's fetch is over: its host budget is free for the next."""
        with self._changed:
            self._busy.discard(self._turn(source) or "")
            self._changed.notify_all()

    def _turn(self, source: SourceConfig) -> str | None:
        if source.url.startswith(_LOCAL):
            return _LOCAL
        delay = self._delay if source.per_host_delay is None else source.per_host_delay
        return host_budget(source.url) if delay > 0 else None


_LOCAL = "file:"  # not a host name: one turn for every local file
