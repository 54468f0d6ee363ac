"""What Python's garbage collector costs ingest and the web, with and without collector.py.

    python bench/bench_collector.py [--rounds 12] [--renders 60]

1. Ingest: the bundled arXiv listing (1,504 entries) parsed, normalised and stored into a fresh
   SQLite store, the way the pipeline does it (`parse_feed`, `normalize_entry`, `store_batch`),
   in rounds that alternate two arms in one process: as shipped (`collector_held` around the
   parse and the store: the young generation collected every BATCH_THRESHOLD allocations) and
   with the collector left at Python's defaults. Figure: median time held / median time plain.
2. The web: a loaded app (create_app over a small store, the same listing) and the cost of one
   full collection (`gc.collect()`) before and after `freeze_loaded` (what gunicorn's pre_fork,
   `aggregator serve` and `aggregator worker` do); cold 200-entry renders of /feeds/all.atom
   through the test client before and after, with each collection's time (gc.callbacks): the
   longest pause.

Exit status 0 when the held ingest is faster than the plain one and a frozen app's full
collection costs under a tenth of the unfrozen one.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aggregator.ingest.pipeline as pipeline  # noqa: E402
from aggregator import create_app  # noqa: E402
from aggregator.collector import freeze_loaded  # noqa: E402
from aggregator.ingest.normalize import normalize_entry  # noqa: E402
from aggregator.ingest.parse import parse_feed  # noqa: E402
from aggregator.store.repository import Store  # noqa: E402
from aggregator.types import FetchDone  # noqa: E402

LISTING = ROOT / "config" / "samples" / "arxiv-listing-2024-11-28.xml"
NOW = datetime(2024, 11, 28, 6, tzinfo=UTC)


def ingest_once(body: bytes, folder: Path) -> float:
    """Seconds to parse, normalise and store the listing into a fresh store."""
    store = Store.open(f"sqlite:///{folder / 'store.db'}")
    store.sync_sources([("listing", LISTING.as_uri())])
    try:
        start = time.perf_counter()
        with pipeline.collector_held():
            feed = parse_feed(body, url=LISTING.as_uri())
            batch = [
                normalize_entry(e, source="listing", authority=feed.authority, now=NOW) for e in feed.entries
            ]
        pipeline.store_batch(store, "listing", batch, FetchDone(None, None, None, NOW), now=NOW)
        return time.perf_counter() - start
    finally:
        store.close()


def ingest_arms(rounds: int) -> dict[str, list[float]]:
    body = LISTING.read_bytes()
    shipped = pipeline.collector_held
    arms: dict[str, Any] = {"held": shipped, "plain": contextlib.nullcontext}
    times: dict[str, list[float]] = {name: [] for name in arms}
    try:
        for n in range(rounds):
            for name in arms if n % 2 == 0 else reversed(list(arms)):
                pipeline.collector_held = arms[name]  # the pipeline's own reference
                with tempfile.TemporaryDirectory() as folder:
                    times[name].append(ingest_once(body, Path(folder)))
    finally:
        pipeline.collector_held = shipped
    return times


def full_collection_ms() -> float:
    gc.collect()
    start = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - start) * 1000


def web(renders: int, folder: Path) -> dict[str, Any]:
    config = folder / "aggregator.yaml"
    config.write_text(
        f"database: sqlite:///{folder / 'web.db'}\nsources:\n  - name: listing\n    url: {LISTING.as_uri()}\n"
    )
    app = create_app(str(config))
    store = app.extensions["aggregator"].store
    ingest = pipeline.Pipeline(app.extensions["aggregator"].config, store)
    ingest.run(ingest.select())
    client = app.test_client()
    client.get("/healthz")
    pauses: dict[str, list[float]] = {"before": [], "after": []}
    arm, started = ["before"], [0.0]

    def timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[arm[0]].append((time.perf_counter() - started[0]) * 1000)

    def render(offsets: range) -> None:  # distinct URLs: each a cold render
        gc.callbacks.append(timer)
        try:
            for k in offsets:
                assert client.get(f"/feeds/all.atom?limit=200&offset={k}").status_code == 200
        finally:
            gc.callbacks.remove(timer)

    try:
        render(range(renders))
        collected = statistics.median(full_collection_ms() for _ in range(5))
        tracked = len(gc.get_objects())
        freeze_loaded()
        frozen = statistics.median(full_collection_ms() for _ in range(5))
        arm[0] = "after"
        render(range(renders, 2 * renders))
    finally:
        gc.unfreeze()
        store.close()
    return {"tracked": tracked, "before": collected, "after": frozen, "pauses": pauses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="ingests of the listing per arm")
    parser.add_argument("--renders", type=int, default=60, help="cold feed renders after freezing")
    args = parser.parse_args()

    times = ingest_arms(args.rounds)
    held, plain = statistics.median(times["held"]), statistics.median(times["plain"])
    print(f"ingest of the listing (parse, normalise, store), median of {args.rounds} each, interleaved:")
    print(
        f"  collector held {held * 1000:.0f} ms (fastest {min(times['held']) * 1000:.0f}), "
        f"plain {plain * 1000:.0f} ms (fastest {min(times['plain']) * 1000:.0f}): {held / plain:.2f}x"
    )
    with tempfile.TemporaryDirectory() as folder:
        found = web(args.renders, Path(folder))
    print(
        f"a loaded app: {found['tracked']:,} tracked objects; a full collection {found['before']:.1f} ms, "
        f"{found['after']:.1f} ms once frozen ({found['after'] / found['before']:.2f}x)"
    )
    for arm, pauses in found["pauses"].items():
        print(
            f"  {args.renders} cold 200-entry renders of all.atom {arm} freezing: {len(pauses)} collections, "
            f"longest {max(pauses, default=0):.1f} ms, {sum(pauses):.1f} ms in all"
        )
    ok = held < plain and found["after"] < found["before"] / 10
    print("holds" if ok else "fails")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
