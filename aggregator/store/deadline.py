"""A request's budget for reading the store, kept by the request's own thread and by the database."""

from __future__ import annotations

import time
from collections.abc import Callable

from aggregator.errors import BudgetExceeded

WALL_FACTOR = 4  # a query's wall-clock cap, in multiples of its CPU budget


class Deadline:
    """A request's budget: CPU seconds of its own thread (what the query costs the server,
    however many other requests share the machine: a wall-clock budget would fail queries merely
    for waiting their turn under load), and a wall-clock cap well above it, which is also what
    the database is told. PostgreSQL's work is not this thread's CPU: a statement that may run
    long (a search of the index) is given only the budget left, in wall-clock time."""

    def __init__(
        self,
        cpu: float,
        wall: float | None = None,
        cpu_clock: Callable[[], float] = time.thread_time,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cpu, self.wall = cpu, wall if wall is not None else cpu * WALL_FACTOR
        self._cpu_clock, self._wall_clock = cpu_clock, wall_clock
        self._cpu_end, self._wall_end = cpu_clock() + self.cpu, wall_clock() + self.wall

    def wall_left(self) -> float:
        return self._wall_end - self._wall_clock()

    def left(self) -> float:
        """Seconds of CPU left, or of wall-clock time if that is less."""
        return min(self._cpu_end - self._cpu_clock(), self.wall_left())

    def expired(self) -> bool:
        return self._cpu_clock() >= self._cpu_end or self.wall_left() <= 0

    def check(self) -> None:
        if self.expired():
            raise self.exceeded()

    def exceeded(self) -> BudgetExceeded:
        return BudgetExceeded(
            f"the query needs more than {self.cpu:g} s of work (or {self.wall:g} s in all); narrow it"
        )
