"""The per-worker response cache and the store-version watch."""

from __future__ import annotations

from datetime import UTC, datetime

from aggregator.web.cache import Rendered, ResponseCache, VersionWatch

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def rendered(size: int, version: int = 1) -> Rendered:
    return Rendered(b"x" * size, "text/plain", '"e"', NOW, version)


def test_cache_answers_only_for_the_same_store_version() -> None:
    cache = ResponseCache()
    cache.put("/feeds/a.atom", rendered(10, version=1))
    assert cache.get("/feeds/a.atom", 1) is not None
    assert cache.get("/feeds/a.atom", 2) is None


def test_cache_is_bounded_in_entries_and_bytes() -> None:
    cache = ResponseCache(size=3, max_bytes=1000)
    for n in range(5):
        cache.put(f"/{n}", rendered(100))
    assert [cache.get(f"/{n}", 1) is not None for n in range(5)] == [False, False, True, True, True]
    cache.put("/big", rendered(240))
    cache.put("/bigger", rendered(240))
    cache.put("/biggest", rendered(240))
    assert cache.get("/2", 1) is None  # pushed out by bytes
    cache.put("/huge", rendered(600))  # over a quarter of the budget: never kept
    assert cache.get("/huge", 1) is None


def test_version_is_read_at_most_once_per_interval() -> None:
    reads, clock = [], [0.0]

    def read() -> tuple[int, datetime]:
        reads.append(clock[0])
        return len(reads), NOW

    watch = VersionWatch(read, interval=2.0, clock=lambda: clock[0])
    assert watch.current()[0] == 1
    clock[0] = 1.5
    assert watch.current()[0] == 1
    clock[0] = 2.1
    assert watch.current()[0] == 2
    assert reads == [0.0, 2.1]
