"""Digest feeds at scale: the CPU one cold render of /feeds/<slug>/daily|weekly costs, on stores
of 10k, 100k and 1M papers, against the cold render of the plain feed beside it.

    python bench/bench_digest.py --workdir DIR [--sizes 10000,100000,1000000] [--runs 5]

Stores come from bench_serve's builder (synthetic papers from the bundled listing, the default
topics; kept under --workdir and reused). Each URL is asked --runs times through the app's test
client with the response cache emptied first (`time.process_time()` around the request: the
render and the queries, SQLite in process), median reported. URLs: `all` and the store's largest
topic, daily and weekly, with the defaults and with the most a request may ask (10 periods of
50 papers, as many as a feed page); the plain 50-entry feed of the same topic is the baseline.
Goals: no digest request over 1 s of CPU at any size, and the 1M / 10k ratio of each default
digest's CPU per paper shown within 1.5 (a small store has fewer periods to show).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_serve import DEFAULT_CONFIG, ensure_store, seed_sightings, write_config  # noqa: E402

from aggregator import create_app  # noqa: E402
from aggregator.config import load_config  # noqa: E402
from aggregator.runtime import open_store, topic_specs  # noqa: E402

MAX_CPU, MAX_RATIO = 1.0, 1.5


def measure(folder: Path, n: int, runs: int, slug: str | None) -> tuple[str, dict[str, tuple[float, int]]]:
    config = load_config(write_config(folder, n, 8000))
    store = open_store(config, read_only=True)
    try:
        app = create_app(config, store=store)
        client = app.test_client()
        topic = slug or max(store.topic_counts().items(), key=lambda kv: kv[1])[0]
        urls = [
            f"/feeds/{topic}.atom",
            "/feeds/all/daily.atom",
            "/feeds/all/weekly.atom",
            f"/feeds/{topic}/daily.atom",
            f"/feeds/{topic}/weekly.atom",
            "/feeds/all/weekly.atom?periods=10&top=50",
            f"/feeds/{topic}/weekly.atom?periods=10&top=50",
        ]
        found: dict[str, tuple[float, int]] = {}
        for url in urls:
            spent = []
            for _ in range(runs):
                app.extensions.pop("aggregator.feed_cache", None)
                start = time.process_time()
                response = client.get(url)
                spent.append(time.process_time() - start)
                assert response.status_code == 200, (url, response.data[:200])
            # Papers shown: a digest lists each period's papers as links to their abstracts.
            shown = response.data.count(b"<entry>") if "/daily" not in url and "/weekly" not in url else 0
            shown = shown or response.data.count(b"&lt;li&gt;")
            found[url.replace(topic, "TOPIC")] = (statistics.median(spent), shown)
        return topic, found
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="keep (and reuse) the stores here")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    specs = topic_specs(load_config(DEFAULT_CONFIG))
    seeds = seed_sightings()
    results: dict[int, dict[str, tuple[float, int]]] = {}
    slug = None
    for n in sizes:
        ensure_store(args.workdir, n, specs, seeds)
        slug, results[n] = measure(args.workdir, n, args.runs, slug)
    print(f"\ntopic: {slug}; CPU ms of one cold request (median of {args.runs}) and the papers it shows;")
    print("the ratio is of CPU per paper shown (a small store has fewer periods to show)")
    print(
        "| request | " + " | ".join(f"{n:,}" for n in sizes) + f" | {sizes[-1]:,} / {sizes[0]:,} per paper |"
    )
    print("|---|" + "---|" * (len(sizes) + 1))
    ok = True
    for url in results[sizes[0]]:
        row = [results[n][url] for n in sizes]
        per = [cpu / max(shown, 1) for cpu, shown in row]
        ratio = per[-1] / per[0] if per[0] else float("inf")
        digest = "/daily" in url or "/weekly" in url
        if digest and (max(cpu for cpu, _ in row) > MAX_CPU or ("periods=" not in url and ratio > MAX_RATIO)):
            ok = False
        cells = " | ".join(f"{cpu * 1000:.1f} ({shown})" for cpu, shown in row)
        print(f"| `{url}` | {cells} | {ratio:.2f}x |")
    print(f"goals (no digest over {MAX_CPU:.0f} s CPU; default digests within {MAX_RATIO}x): "
          f"{'hold' if ok else 'fail'}")  # fmt: skip
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
