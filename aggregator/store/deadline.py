"""A request's budget for reading the store, kept by the request's own thread and by the database,
and its turn: how many searches one process runs at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aggregator.errors import BudgetExceeded, SearchesBusy

WALL_FACTOR = 4  # a query's wall-clock cap, in multiples of its CPU budget


class Deadline:
    """A request's budget: `work` seconds of CPU in all, of which this thread may spend `cpu`
    (what the query costs this process, however many other requests share the machine: a
    wall-clock budget would fail queries merely for waiting their turn under load), and a
    wall-clock cap well above it, which is also what the database is told. PostgreSQL's work is
    not this thread's CPU: a statement that may run long (a search of the index) is given what
    is left of `work` after this thread's share so far, in wall-clock time."""

    def __init__(
        self,
        cpu: float,
        wall: float | None = None,
        cpu_clock: Callable[[], float] = time.thread_time,
        wall_clock: Callable[[], float] = time.monotonic,
        *,
        work: float | None = None,
    ) -> None:
        self.work = work if work is not None else cpu
        self.cpu, self.wall = cpu, wall if wall is not None else self.work * WALL_FACTOR
        self._cpu_clock, self._wall_clock = cpu_clock, wall_clock
        self._cpu_start, self._wall_end = cpu_clock(), wall_clock() + self.wall
        self._cpu_end = self._cpu_start + self.cpu

    def wall_left(self) -> float:
        return self._wall_end - self._wall_clock()

    def left(self) -> float:
        """Seconds of CPU left, or of wall-clock time if that is less."""
        return min(self._cpu_end - self._cpu_clock(), self.wall_left())

    def database_left(self) -> float:
        """Seconds a long statement may run in the database: the work left once this thread's
        CPU so far is counted, or the wall-clock time left if that is less."""
        return min(self.work - (self._cpu_clock() - self._cpu_start), self.wall_left())

    def expired(self) -> bool:
        return self._cpu_clock() >= self._cpu_end or self.wall_left() <= 0

    def check(self) -> None:
        if self.expired():
            raise self.exceeded()

    def exceeded(self) -> BudgetExceeded:
        return BudgetExceeded(
            f"the query needs more than {self.work:g} s of work (or {self.wall:g} s in all); narrow it"
        )


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

    def __init__(self, at_once: int, waiting: int = 8, wait: float = 5.0) -> None:
        if at_once < 1 or waiting < 0:
            raise ValueError("at_once must be at least 1 and waiting at least 0")
        self.at_once, self.waiting, self.wait = at_once, waiting, wait
        self._slots = threading.BoundedSemaphore(at_once)
        self._lock = threading.Lock()
        self._holding = 0  # searches running or waiting

    @contextmanager
    def turn(self) -> Iterator[None]:
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
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._holding -= 1
