"""A request's budget for reading the store, kept by the request's own thread, by the database and, on
SQLite, by a watchdog thread that interrupts what the database cannot break off itself."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aggregator.errors import BudgetExceeded

log = logging.getLogger(__name__)

WALL_FACTOR = 4  # a query's wall-clock cap, in multiples of its CPU budget


class Deadline:
    """A request's budget: `work` seconds of CPU in all, of which this thread may spend `cpu`
    (what the query costs this process, however many other requests share the machine: a
    wall-clock budget would fail queries merely for waiting their turn under load), and a
    wall-clock cap well above it, which is also what the database is told. PostgreSQL's work is
    not this thread's CPU: a statement that may run long (a search of the index) is given what
    is left of `work` after this thread's share so far, in wall-clock time, and its time then
    counts as work spent (`elsewhere`)."""

    def __init__(
        self,
        cpu: float,
        wall: float | None = None,
        cpu_clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        *,
        work: float | None = None,
    ) -> None:
        self.work = work if work is not None else cpu
        self.cpu, self.wall = cpu, wall if wall is not None else self.work * WALL_FACTOR
        # By default the CPU time of the thread that made it, read from whichever thread asks
        # (the Watchdog's among them).
        self._cpu_clock, self._wall_clock = cpu_clock or thread_cpu_clock(), wall_clock
        self._cpu_start, self._wall_end = self._cpu_clock(), wall_clock() + self.wall
        self._cpu_end = self._cpu_start + self.cpu
        self._lead = 0.0  # how long before the deadline the watchdog interrupts (`coarse`)
        self._elsewhere = 0.0  # the database's time on statements run `elsewhere`
        self._elsewhere_since: float | None = None  # when the statement run `elsewhere` began
        self._sooner: Callable[[], None] = _nothing  # told when `due` may come sooner (`listen`)

    def wall_left(self) -> float:
        return self._wall_end - self._wall_clock()

    def left(self) -> float:
        """Seconds of CPU left to this thread, or of work or of wall-clock time if less."""
        cpu = self._cpu_clock()
        return min(self._cpu_end - cpu, self._work_left(cpu), self.wall_left())

    def database_left(self) -> float:
        """Seconds a long statement may run in the database: the work left once this thread's
        CPU and the database's statements so far are counted, or the wall-clock time left if
        that is less."""
        return min(self._work_left(self._cpu_clock()), self.wall_left())

    def _work_left(self, cpu: float) -> float:
        return self.work - (cpu - self._cpu_start) - self._elsewhere

    def expired(self) -> bool:
        return self._past(0.0)

    def due(self) -> bool:
        """Whether the watchdog should interrupt now: the deadline passed, or, inside `coarse`,
        is nearer than the work may run on after an interrupt."""
        return self._past(self._lead)

    def _past(self, lead: float) -> bool:
        cpu = self._cpu_clock()
        return cpu >= self._cpu_end - lead or self._work_left(cpu) <= lead or self.wall_left() <= lead

    def until_due(self) -> float:
        """Wall-clock seconds before `due` can be true, at the least: one thread spends CPU no
        faster than wall-clock time passes, and work no faster either (a statement run
        `elsewhere` counts its whole wall time when it ends: counted here from when it began).
        Only a coarse block beginning brings it nearer, and that is told (`listen`)."""
        since = self._elsewhere_since  # read first: `elsewhere` adds its time, then clears it
        cpu, lead = self._cpu_clock(), self._lead
        work = self._work_left(cpu)
        if since is not None:
            work -= self._wall_clock() - since
        return min(self._cpu_end - cpu, work, self.wall_left()) - lead

    def listen(self, sooner: Callable[[], None] | None) -> None:
        """Call `sooner` whenever the deadline may be due earlier than `until_due` said (the
        watchdog, which sleeps until then); None: nobody."""
        self._sooner = sooner or _nothing

    @contextmanager
    def elsewhere(self) -> Iterator[None]:
        """A statement the database works on by itself (given `database_left`): its time, less
        this thread's CPU meanwhile (counted already), is work spent, so that this thread's
        work after it and the database's together stay within `work`. Wall-clock time, as the
        statement_timeout it was given: the server's CPU for one statement is not known here."""
        wall, cpu = self._wall_clock(), self._cpu_clock()
        self._elsewhere_since = wall
        try:
            yield
        finally:
            self._elsewhere += max(0.0, (self._wall_clock() - wall) - (self._cpu_clock() - cpu))
            self._elsewhere_since = None

    @contextmanager
    def coarse(self, tail: float) -> Iterator[None]:
        """Work that heeds an interrupt only every `tail` seconds or so (FTS5 expanding a
        prefix): the watchdog interrupts it `tail` before the deadline, so that it stops by then."""
        outer, self._lead = self._lead, max(self._lead, tail)
        if self._lead > outer:
            self._sooner()
        try:
            yield
        finally:
            self._lead = outer

    def check(self) -> None:
        if self.expired():
            raise self.exceeded()

    def exceeded(self) -> BudgetExceeded:
        return BudgetExceeded(
            f"the query needs more than {self.work:g} s of work (or {self.wall:g} s in all); narrow it"
        )


def _nothing() -> None:
    pass


def thread_cpu_clock() -> Callable[[], float]:
    """The CPU time of the calling thread, as a clock any thread can read (time.thread_time
    where the platform has no per-thread clock ids: then only this thread reads it right)."""
    get_clock_id = getattr(time, "pthread_getcpuclockid", None)
    if get_clock_id is None:
        return time.thread_time
    clock_id = get_clock_id(threading.get_ident())
    return lambda: time.clock_gettime(clock_id)


class Watchdog:
    """Interrupts the database's work once a request's deadline has passed (or, inside
    `Deadline.coarse`, is that near), from a thread of its own. SQLite's progress handler runs
    between the steps of its virtual machine, but FTS5 merges the posting lists of every token a
    prefix stands for within one step (about a second for a two-letter prefix at a million
    papers): `sqlite3.Connection.interrupt`, which FTS5 heeds, stops it there.

    The thread sleeps until the first watched deadline can be due (`Deadline.until_due`), then
    looks every POLL seconds; never longer than MAX_PAUSE at a time, and woken sooner by a
    coarse block beginning (or a request whose deadline could come before its next look). Each
    time it wakes it takes the interpreter's lock from the request threads, which hand it back
    and forth on every SQLite call: waking every POLL through a whole request cost a tenth of
    the request's CPU time again. A forked process starts its own."""

    POLL = 0.01
    MAX_PAUSE = 0.25  # also how late a clock faster than the wall's (a test's) is looked at

    def __init__(self) -> None:
        self._keys = itertools.count()
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked worker: no thread, and no lock held by one
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[Deadline, Callable[[], None]]] = {}
        self._wake = threading.Event()
        self._next_look = 0.0  # when the thread will look next (time.monotonic)
        self._process = 0  # the process whose thread is running

    @contextmanager
    def watching(self, deadline: Deadline, interrupt: Callable[[], None]) -> Iterator[None]:
        """Call `interrupt` (once) if the deadline becomes due before the block ends; never after."""
        key = next(self._keys)
        with self._lock:
            if self._process != os.getpid():
                self._process = os.getpid()
                threading.Thread(target=self._run, name="deadline-watchdog", daemon=True).start()
            self._watched[key] = (deadline, interrupt)
            deadline.listen(self._wake.set)
            # Woken only if it would look too late: a request's budget is longer than MAX_PAUSE,
            # and a wake-up for every request would cost what polling did under load.
            try:
                soon = deadline.until_due() < self._next_look - time.monotonic()
            except Exception:  # a broken clock: the thread's loop gives up on it
                soon = True
            if soon:
                self._wake.set()
        try:
            yield
        finally:
            with self._lock:  # an interrupt is called under the lock: none comes after this
                self._watched.pop(key, None)
                deadline.listen(None)

    def _run(self) -> None:
        while True:
            with self._lock:
                pause = self._pause()
                self._next_look = time.monotonic() + pause
            self._wake.wait(pause)
            self._wake.clear()  # a wake-up set since is seen below: the watched are read anew
            with self._lock:
                for key, (deadline, interrupt) in list(self._watched.items()):
                    try:
                        if deadline.due():
                            del self._watched[key]
                            interrupt()
                    except Exception:  # one broken clock or connection must not end the watch
                        log.exception("deadline watchdog: giving up on one request")
                        self._watched.pop(key, None)

    def _pause(self) -> float:
        """How long to sleep: until the first watched deadline can be due, between POLL and
        MAX_PAUSE (MAX_PAUSE while nothing is watched)."""
        soonest = self.MAX_PAUSE
        for deadline, _ in self._watched.values():
            try:
                soonest = min(soonest, deadline.until_due())
            except Exception:  # looked at again, and given up on, by the loop
                soonest = self.POLL
        return max(soonest, self.POLL)


WATCHDOG = Watchdog()
