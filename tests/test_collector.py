"""The garbage collector run less often while a source is parsed and stored (collector.py):
its young threshold raised inside, back as it was after (errors included, batches overlapping in
threads), the cyclic garbage made inside freed at the end; a real ingest parses and stores so.
And what a long-running process loaded, frozen out of its walks (gunicorn's pre_fork)."""

from __future__ import annotations

import gc
import runpy
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

import aggregator.ingest.pipeline as pipeline_module
from aggregator.collector import BATCH_THRESHOLD, collector_held, freeze_loaded
from aggregator.ingest.pipeline import Pipeline
from aggregator.store.repository import Store
from tests.conftest import make_config
from tests.test_pipeline import LISTING, config_for


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was, thresholds = gc.isenabled(), gc.get_threshold()
    gc.enable()
    yield
    if not was:
        gc.disable()
    gc.set_threshold(*thresholds)


def held() -> bool:
    """Whether a batch's threshold is in force."""
    return gc.get_threshold()[0] == BATCH_THRESHOLD


class Node:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_the_young_threshold_is_raised_inside_and_put_back_after() -> None:
    gc.set_threshold(500, 7, 9)
    with collector_held():
        assert gc.get_threshold() == (BATCH_THRESHOLD, 7, 9)
        assert gc.isenabled()
    assert gc.get_threshold() == (500, 7, 9)


def test_the_thresholds_come_back_after_an_error_inside() -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError), collector_held():
        raise ValueError("a broken batch")
    assert gc.get_threshold() == before


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_held():
        pass
    assert not gc.isenabled()


def test_cyclic_garbage_made_inside_is_freed_at_the_end() -> None:
    with collector_held():
        node = Node()
        gone = weakref.ref(node)
        del node
        assert gone() is not None  # a cycle: only a collection frees it
    assert gone() is None


def test_overlapping_batches_in_threads_keep_the_threshold_until_the_last_ends() -> None:
    """Three threads inside at once: the first two to leave do not put the threshold back, yet
    garbage is freed as each leaves (no pile-up while batches overlap); the last puts it back."""
    before = gc.get_threshold()
    inside, leave = threading.Barrier(4), [threading.Event() for _ in range(3)]
    left = [threading.Event() for _ in range(3)]
    freed: list[weakref.ref[Node]] = []

    def batch(n: int) -> None:
        with collector_held():
            node = Node()
            freed.append(weakref.ref(node))
            del node
            inside.wait()
            leave[n].wait()
        left[n].set()

    threads = [threading.Thread(target=batch, args=(n,), daemon=True) for n in range(3)]
    for t in threads:
        t.start()
    try:
        inside.wait(timeout=10)
        assert held()
        for n in (0, 1):
            leave[n].set()
            assert left[n].wait(timeout=10)
            assert held()
        assert all(ref() is None for ref in freed)  # freed by the young collection of those that left
    finally:
        for event in leave:
            event.set()
        for t in threads:
            t.join(timeout=10)
    assert gc.get_threshold() == before


def test_an_ingest_parses_and_stores_with_the_batch_threshold(
    httpserver: HTTPServer,
    tmp_path: Path,
    database_url: str,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, bool] = {}
    parse, plan = pipeline_module.parse_feed, pipeline_module.plan_ingest

    def parse_watched(*args: object, **kwargs: object) -> object:
        seen["parse"] = held()
        return parse(*args, **kwargs)  # type: ignore[arg-type]

    def plan_watched(*args: object, **kwargs: object) -> object:
        seen["plan"] = held()
        return plan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline_module, "parse_feed", parse_watched)
    monkeypatch.setattr(pipeline_module, "plan_ingest", plan_watched)
    httpserver.expect_request("/rss").respond_with_data(LISTING, content_type="application/rss+xml")
    config = make_config(
        tmp_path, config_for(tmp_path, database_url, {"rss": httpserver.url_for("/rss")}), database_url
    )
    pipeline = Pipeline(config, store)
    outcome = pipeline.run(pipeline.select())[0]
    assert outcome.new == 53 and not outcome.failed
    assert seen == {"parse": True, "plan": True}
    assert not held()


def test_what_is_loaded_is_frozen_out_of_the_walks_and_its_garbage_freed_first() -> None:
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    kept = Node()
    try:
        freeze_loaded()
        assert gone() is None  # collected, not frozen
        assert gc.is_tracked(kept) and kept not in gc.get_objects()  # frozen: walked no more
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_gunicorn_freezes_the_preloaded_app_before_forking_workers() -> None:
    settings = runpy.run_path(str(Path(__file__).parent.parent / "gunicorn.conf.py"))
    assert settings["preload_app"]
    try:
        settings["pre_fork"](None, None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
