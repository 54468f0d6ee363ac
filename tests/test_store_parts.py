"""The store's small parts, each through its own functions: the ranking of digests, the counters
of store_meta, the numbers of dedupe locks, the SQLite engine, the migration's errors and the
deadline watchdog."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from aggregator.errors import StoreError
from aggregator.ingest.pipeline import store_batch
from aggregator.records import MIN_TITLE_KEY
from aggregator.store import locks
from aggregator.store.bulk import CHUNK, among
from aggregator.store.deadline import Deadline, Watchdog
from aggregator.store.digests import digest_top
from aggregator.store.pages import PageQuery
from aggregator.store.repository import Store
from aggregator.store.schema import paper_topics, papers
from aggregator.topics.match import Tagger, TopicSpec
from tests.test_store import T0, done, entry

START = datetime(2026, 11, 20, tzinfo=UTC)
END = START + timedelta(days=1)
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def stored(store: Store, count: int) -> list[int]:
    """The ids of `count` new papers of unrelated titles, in the order they were written."""
    store.sync_sources([("blog", "file:///blog.xml")])
    batch = [entry("blog", f"p{n}", f"On the {WORDS[n]} method of counting sheep") for n in range(count)]
    store_batch(store, "blog", batch, done(), now=T0)
    with store.engine.connect() as conn:
        return list(conn.scalars(select(papers.c.id).order_by(papers.c.id)))


def test_a_digest_of_all_papers_ranks_the_upvoted_then_the_newest_within_the_period(store: Store) -> None:
    """Upvoted papers first, most upvotes first, ties by date then id; then those never upvoted,
    newest first; a paper published at the very start of the period is in it, none twice."""
    a, b, c, d, e, f, g, h = stored(store, 8)
    shape = {  # id: (published, upvotes)
        a: (START + timedelta(hours=3), 5),
        b: (START + timedelta(hours=2), 9),
        c: (START, 5),
        d: (START + timedelta(hours=6), None),
        e: (START + timedelta(hours=5), None),
        f: (START + timedelta(hours=5), None),
        g: (START - timedelta(seconds=1), 50),  # the day before
        h: (START, None),
    }
    with store.engine.begin() as conn:
        for pid, (published, votes) in shape.items():
            conn.execute(update(papers).where(papers.c.id == pid).values(published=published, upvotes=votes))
    with store.engine.connect() as conn:
        assert digest_top(conn, None, START, END, 10) == [b, a, c, d, f, e, h]
        assert digest_top(conn, None, START, END, 3) == [b, a, c]
        assert digest_top(conn, None, START, END, 5) == [b, a, c, d, f]
    with store.engine.begin() as conn:  # the same votes and date: the later id first
        conn.execute(update(papers).where(papers.c.id.in_([a, c])).values(published=START, upvotes=5))
    with store.engine.connect() as conn:
        assert digest_top(conn, None, START, END, 10) == [b, c, a, d, f, e, h]


def test_a_topic_digest_ranks_by_score_then_upvotes_then_date(store: Store) -> None:
    """Among a topic's papers of the period: the best score first; a tie of score goes to the
    most upvoted, a paper never upvoted after one of 0 votes; the top is cut after `top`."""
    ids = stored(store, 6)
    q1, q2, q3, q4, q5, q6 = ids
    shape = {  # id: (score, upvotes, published)
        q1: (3.0, None, START + timedelta(hours=4)),
        q2: (3.0, 10, START),
        q3: (3.0, 0, START + timedelta(hours=1)),
        q4: (2.0, 100, START + timedelta(hours=2)),
        q5: (5.0, None, START + timedelta(hours=3)),
        q6: (9.0, None, END),  # the next period
    }
    with store.engine.begin() as conn:
        for pid, (score, votes, published) in shape.items():
            conn.execute(update(papers).where(papers.c.id == pid).values(upvotes=votes))
            row = {"slug": "llm", "paper_id": pid, "score": score, "matched": [], "published": published}
            conn.execute(insert(paper_topics).values(**row))
    with store.engine.connect() as conn:
        assert digest_top(conn, "llm", START, END, 3) == [q5, q2, q3]
        assert digest_top(conn, "llm", START, END, 5) == [q5, q2, q3, q1, q4]
        assert digest_top(conn, "llm", START, END, 1) == [q5]
        assert digest_top(conn, "other", START, END, 3) == []


def test_every_write_moves_the_version_by_one_and_stamps_when(store: Store) -> None:
    assert store.version() == 0
    before = datetime.now(UTC).replace(microsecond=0)
    stored(store, 1)
    version, changed = store.version_stamp()
    assert version == 1 and before <= changed <= datetime.now(UTC)
    time.sleep(1)
    store.sync_sources([("blog", "file:///blog.xml")])
    store_batch(store, "blog", [entry("blog", "q", "A second and unrelated paper title")], done(), now=T0)
    assert store.version_stamp()[0] == 2 and store.version_stamp()[1] > changed


def test_a_batch_locks_each_identity_key_and_each_title_long_enough_to_merge_on() -> None:
    short, long_enough = "x" * (MIN_TITLE_KEY - 1), "y" * MIN_TITLE_KEY
    batch = [entry("blog", "a", short, link="https://blog.example.org/a"), entry("blog", "b", long_enough)]
    assert {s.title_key for s in batch} == {short, long_enough}
    keys = locks.dedupe_keys(batch)
    assert keys == set(batch[0].keys) | set(batch[1].keys) | {"title:" + long_enough}


def test_a_key_s_lock_number_is_the_same_in_every_version_of_the_code() -> None:
    """Writers running different builds at once (a rolling deploy) must take the same locks: the
    number is pinned, signed, and big-endian."""
    assert locks.key_number("arxiv:2409.17481") == 158191615058066919
    assert locks.key_number("arxiv:2501.00001") == -2392671160240809052


def test_a_sqlite_store_in_a_folder_not_there_yet_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "store.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        assert store.paper_count() == 0 and path.is_file()
    finally:
        store.close()


def test_a_file_that_is_no_database_cannot_be_migrated_and_says_which(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"not a database, but a file of text that is long enough to be read" * 100)
    with pytest.raises(StoreError, match=r"store: cannot migrate sqlite:///.*store\.db: .*not a database"):
        Store.open(f"sqlite:///{path}")


def test_a_page_longer_than_one_id_list_reads_every_paper_its_sightings_and_topics(database_url: str) -> None:
    """The reads by id (papers, sightings, topics) take the ids as one array on PostgreSQL and as
    IN lists of CHUNK on SQLite: a page of more papers than one list holds loses none of them."""
    tagger = Tagger([TopicSpec("pruning", "pruning"), TopicSpec("vision", "vision")])
    store = Store.open(database_url, tag_authority="papers.example.org", tagger=tagger)
    store.sync_sources([("blog", "file:///blog.xml"), ("rss", "file:///rss.xml")])
    count = CHUNK + 101
    titles = [f"Sparse attention pruning, part {n} of the {WORDS[n % 8]} series" for n in range(count)]
    store_batch(store, "blog", [entry("blog", f"b{n}", t) for n, t in enumerate(titles)], done(), now=T0)
    later = T0 + timedelta(hours=1)
    store_batch(
        store,
        "rss",
        [entry("rss", f"r{n}", t, now=later) for n, t in enumerate(titles)],
        done(later),
        now=later,
    )
    shown = store.papers_page(PageQuery(limit=count, count=False)).papers
    assert sorted(p.title for p in shown) == sorted(titles)
    assert all([s.source for s in p.sightings] == ["blog", "rss"] for p in shown)
    assert {t.slug for p in shown for t in p.topics} == {"pruning"}
    assert all(len(p.topics) == 1 for p in shown)
    store.close()


def test_among_gives_one_condition_on_postgresql_and_one_per_chunk_on_sqlite(store: Store) -> None:
    """Every id asked for is in one of the conditions, whichever list (or chunk) it falls in."""
    first, middle, last = stored(store, 3)
    absent = iter(range(10**9, 2 * 10**9))
    ids = (
        [first]
        + [next(absent) for _ in range(CHUNK + 4)]
        + [middle]
        + [next(absent) for _ in range(CHUNK)]
        + [last]
    )
    with store.engine.connect() as conn:
        conditions = list(among(conn, papers.c.id, ids))
        assert len(conditions) == (1 if conn.dialect.name == "postgresql" else 3)
        found = [i for c in conditions for i in conn.scalars(select(papers.c.id).where(c))]
        assert list(among(conn, papers.c.id, [])) == []
    assert sorted(found) == [first, middle, last]


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.005)
    return condition()


@pytest.fixture
def looking_every_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watchdog sleeps until a deadline could be due by the clock on the wall; these tests'
    clocks jump ahead of it, so it looks every POLL instead: a check that nothing happened yet
    then follows a look."""
    monkeypatch.setattr(Watchdog, "MAX_PAUSE", Watchdog.POLL)


@pytest.mark.usefixtures("looking_every_poll")
def test_the_watchdog_interrupts_once_past_the_deadline_and_never_after_its_block() -> None:
    past = threading.Event()
    deadline = Deadline(1.0, wall=60, cpu_clock=lambda: 2.0 if past.is_set() else 0.0)
    calls: list[float] = []
    watchdog = Watchdog()
    with watchdog.watching(deadline, lambda: calls.append(time.monotonic())):
        time.sleep(Watchdog.POLL * 5)
        assert calls == []  # within its budget: left alone
        past.set()
        assert _wait_for(lambda: len(calls) == 1)
        time.sleep(Watchdog.POLL * 5)
        assert len(calls) == 1  # once
    later = threading.Event()
    ended = Deadline(1.0, wall=60, cpu_clock=lambda: 2.0 if later.is_set() else 0.0)
    late: list[int] = []
    with watchdog.watching(ended, lambda: late.append(1)):
        pass
    later.set()
    time.sleep(Watchdog.POLL * 5)
    assert late == []  # its block is over: the connection may be another request's by now


@pytest.mark.usefixtures("looking_every_poll")
def test_inside_coarse_work_the_watchdog_interrupts_that_much_before_the_deadline() -> None:
    """Work that heeds an interrupt only now and then (FTS5 merging a prefix's posting lists)
    is interrupted `tail` before the deadline, so that it stops by the deadline; before and
    after it, at the deadline itself. The deadline is not moved: only the watchdog acts early."""
    clock = [0.0]
    deadline = Deadline(1.0, wall=60, cpu_clock=lambda: clock[0])
    calls: list[float] = []
    watchdog = Watchdog()
    with watchdog.watching(deadline, lambda: calls.append(clock[0])):
        clock[0] = 0.8
        time.sleep(Watchdog.POLL * 5)
        assert calls == []  # 0.2 s left: nothing to do yet
        with deadline.coarse(0.3):
            assert _wait_for(lambda: calls == [0.8])  # 0.3 s of tail would run past the deadline
            assert not deadline.expired() and deadline.due()
        assert not deadline.due()
    clock[0] = 0.0
    outside = Deadline(1.0, wall=60, cpu_clock=lambda: clock[0])
    later: list[int] = []
    with watchdog.watching(outside, lambda: later.append(1)):
        clock[0] = 0.8
        time.sleep(Watchdog.POLL * 5)
        assert later == []  # 0.8 of 1.0 s, nothing coarse under way
        clock[0] = 1.0
        assert _wait_for(lambda: later == [1])


def test_until_due_is_the_least_wall_time_before_the_deadline_can_be_due() -> None:
    """CPU and work are spent no faster than wall-clock time passes: the watchdog may sleep that
    long. A coarse block brings it nearer by its tail (and says so), a statement run elsewhere by
    the time it has run, the wall-clock cap when it is nearer still."""
    cpu, wall = [0.0], [100.0]
    deadline = Deadline(1.0, wall=60, cpu_clock=lambda: cpu[0], wall_clock=lambda: wall[0], work=2.0)
    cpu[0] = 0.25
    told: list[int] = []
    deadline.listen(lambda: told.append(1))
    assert deadline.until_due() == pytest.approx(0.75)  # this thread's share: 1.0 of CPU
    with deadline.coarse(0.25):
        assert deadline.until_due() == pytest.approx(0.5)
        with deadline.coarse(0.1):  # nested, shorter: the lead stays, nobody is told again
            assert deadline.until_due() == pytest.approx(0.5)
    assert told == [1]
    assert deadline.until_due() == pytest.approx(0.75)
    with deadline.elsewhere():  # the database's statement: work spent as its wall time runs
        wall[0] += 1.5
        assert deadline.until_due() == pytest.approx(0.25)  # 2.0 of work - 0.25 - 1.5
    assert deadline.until_due() == pytest.approx(0.25)
    wall[0] += 58.0  # half a second left of the 60 s cap, more than the work left
    assert deadline.until_due() == pytest.approx(0.25)
    wall[0] += 0.4
    assert deadline.until_due() == pytest.approx(0.1)  # the cap, nearer now
    deadline.listen(None)
    with deadline.coarse(0.5):
        assert told == [1]


def test_the_watchdog_sleeps_until_a_deadline_can_be_due_rather_than_polling() -> None:
    """Each time it wakes it takes the interpreter's lock from the request's thread: over half a
    second of a request far from its deadline it wakes a few times (MAX_PAUSE), not every POLL."""
    checks: list[int] = []

    class Counted(Deadline):
        def due(self) -> bool:
            checks.append(1)
            return super().due()

    deadline = Counted(1.0, wall=60, cpu_clock=lambda: 0.0)
    watchdog = Watchdog()
    with watchdog.watching(deadline, lambda: None):
        time.sleep(0.5)
    assert 1 <= len(checks) <= 0.5 / Watchdog.MAX_PAUSE + 3  # polling would have looked about 50 times


def test_a_coarse_block_beginning_wakes_the_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asleep until the deadline could first be due, it is woken when a coarse block makes it
    due sooner: here at once, where its next look would have been ten seconds away."""
    monkeypatch.setattr(Watchdog, "MAX_PAUSE", 60.0)
    clock = [0.0]
    deadline = Deadline(20.0, wall=600, cpu_clock=lambda: clock[0])
    clock[0] = 10.0
    calls: list[float] = []
    watchdog = Watchdog()
    with watchdog.watching(deadline, lambda: calls.append(clock[0])):
        time.sleep(Watchdog.POLL * 5)  # asleep for the ten seconds this deadline has left
        with deadline.coarse(11.0):
            assert _wait_for(lambda: calls == [10.0])


@pytest.mark.usefixtures("looking_every_poll")
def test_one_broken_clock_does_not_stop_the_watchdog() -> None:
    readings = iter([0.0])  # the second reading raises StopIteration
    broken = Deadline(1.0, wall=60, cpu_clock=lambda: next(readings))
    past = threading.Event()
    deadline = Deadline(1.0, wall=60, cpu_clock=lambda: 2.0 if past.is_set() else 0.0)
    calls: list[int] = []
    watchdog = Watchdog()
    with watchdog.watching(broken, lambda: calls.append(0)):
        time.sleep(Watchdog.POLL * 5)
    with watchdog.watching(deadline, lambda: calls.append(1)):
        past.set()
        assert _wait_for(lambda: calls == [1])


def test_a_deadline_reads_its_own_threads_clock_from_any_thread() -> None:
    deadline = Deadline(0.05, wall=60)
    seen: list[bool] = []
    waiter = threading.Thread(target=lambda: seen.append(deadline.expired()))
    waiter.start()
    waiter.join()
    assert seen == [False]  # the other thread's own CPU time is not this thread's
    end = time.thread_time() + 0.1
    while time.thread_time() < end:  # this thread spends its budget
        pass
    waiter = threading.Thread(target=lambda: seen.append(deadline.expired()))
    waiter.start()
    waiter.join()
    assert seen == [False, True]


def test_a_forked_worker_gets_a_watchdog_of_its_own() -> None:
    """gunicorn forks its workers from a master that may have started the thread: the child has
    no thread, and its lock may have been held at the fork; it starts afresh."""
    watchdog = Watchdog()
    with watchdog.watching(Deadline(60.0, wall=60), lambda: None):
        pass  # the thread runs in this process now
    with watchdog._lock:  # held, as the parent's thread may hold it at the moment of a fork
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit status
            signal.alarm(5)  # a lock inherited held would hang it
            past = threading.Event()
            deadline = Deadline(1.0, wall=60, cpu_clock=lambda: 2.0 if past.is_set() else 0.0)
            calls: list[int] = []
            with watchdog.watching(deadline, lambda: calls.append(1)):
                past.set()
                interrupted = _wait_for(lambda: calls == [1])
            os._exit(0 if interrupted else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
