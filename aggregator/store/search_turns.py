"""Searches take turns: how many one process runs at once, and how many may wait."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aggregator.errors import SearchesBusy

# One search at a time per process, as Python runs one thread at a time anyway; gunicorn.conf.py
# starts a process per core, so a machine searches on every core.
SEARCHES_AT_ONCE = 1
SEARCHES_WAITING = 8  # more wait their turn; past that, a search is refused at once
SEARCH_WAIT = 5.0  # seconds a search waits for its turn before it is refused


class SearchTurns:
    """At most `at_once` searches of this process run at a time; up to `waiting` more wait their
    turn, each up to `wait` seconds; past either, SearchesBusy. A search's budget starts when its
    turn does.

    Python runs one thread at a time per process, so searches running side by side in one
    process only slice its CPU between them: each takes longer in wall-clock time, and the
    wall-clock caps (PostgreSQL's statement_timeout above all) then fail queries that were
    merely waiting. Taking turns, each runs at full speed and the same work gets done. A waiting
    search holds a server thread: bounding how many wait keeps threads free for everything else
    (gunicorn.conf.py gives each process more threads than this)."""

    def __init__(
        self, at_once: int = SEARCHES_AT_ONCE, waiting: int = SEARCHES_WAITING, wait: float = SEARCH_WAIT
    ) -> None:
        if at_once < 1 or waiting < 0:
            raise ValueError("at_once must be at least 1 and waiting at least 0")
        self.at_once, self.waiting, self.wait = at_once, waiting, wait
        self._slots = threading.BoundedSemaphore(at_once)
        self._lock = threading.Lock()
        self._holding = 0  # searches running or waiting
        self._mine = threading.local()  # how many turns this thread holds

    @contextmanager
    def turn(self) -> Iterator[None]:
        """This thread's turn; a thread that holds one already (a search started inside another)
        goes on at once, instead of waiting for itself."""
        held = getattr(self._mine, "turns", 0)
        if held:
            self._mine.turns = held + 1
            try:
                yield
            finally:
                self._mine.turns = held
            return
        with self._lock:
            if self._holding >= self.at_once + self.waiting:
                raise SearchesBusy(
                    f"{self._holding} searches already running or waiting here; try again shortly"
                )
            self._holding += 1
        try:
            if not self._slots.acquire(timeout=self.wait):
                raise SearchesBusy(
                    f"{self.at_once} search(es) already running here for {self.wait:g} s; try again shortly"
                )
            self._mine.turns = 1
            try:
                yield
            finally:
                self._mine.turns = 0
                self._slots.release()
        finally:
            with self._lock:
                self._holding -= 1
