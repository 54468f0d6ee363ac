"""A request's budget for reading the store, kept by the request's own thread and by the database."""

from __future__ import annotations

import time
from collections.abc import Callable

from aggregator.errors import BudgetExceeded

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
