"""A fetch cycle over many slow sources, by real `aggregator worker` processes.

    python bench/bench_fetch.py [--sources 1000] [--latency 0.3] [--stalled 20] [--timeout 5]
        [--pool 32] [--database postgresql+psycopg://postgres@127.0.0.1:5432/bench_fetch]
        [--skip-sequential] [--kill-test]

A threaded HTTP server on 127.0.0.1 serves --sources RSS feeds, each answering after --latency
seconds; --stalled of them never answer before the fetch deadline (--timeout). Each feed holds
--posts posts of its own (2) and three arXiv papers drawn from a pool of 200, so the same papers
arrive through many sources at once. `--latency 0 --stalled 0 --posts 100` makes the cycle about
writing rather than waiting. Every run starts from an empty store and lasts until every
source has a recorded fetch (the store is polled); the workers are then stopped.

Runs, each timed from the workers' start to the last recorded fetch:
  1. one worker, a pool of one fetch: the sequential baseline;
  2. one worker with a pool of --pool fetches [goal: under 1/10 of run 1];
  3. four workers, a pool of one fetch each [goal: at least 3x faster than run 1; PostgreSQL].
After each: every source requested exactly once, no duplicate paper (the store holds the 200
pool papers at most once and every post once).
--kill-test: a worker SIGKILLed while it fetches a source that stalls; the time until another
worker asks for that source again [goal: within 60 s].
Exit status 0 when every goal holds. Loads only 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
POOL_PAPERS = 200


def feed(n: int, posts: int = 2) -> bytes:
    rng = random.Random(n)
    items = []
    for paper in sorted(rng.sample(range(POOL_PAPERS), 3)):
        arxiv_id = f"2412.{10000 + paper:05d}"
        items.append(
            f"<item><title>Shared paper {paper}: scaling sparse attention for long contexts</title>"
            f"<link>https://arxiv.org/abs/{arxiv_id}</link><guid>oai:arXiv.org:{arxiv_id}v1</guid>"
            f"<description>arXiv:{arxiv_id}v1 Announce Type: new Abstract: A study number {paper}."
            "</description></item>"
        )
    for post in range(posts):
        items.append(
            f"<item><title>Lab notes {n}-{post}: what we learned from run {n * 7 + post}</title>"
            f"<link>https://blog{n}.example.org/{post}</link><guid>blog-{n}-{post}</guid></item>"
        )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Source {n}</title>'
        f"<link>https://blog{n}.example.org/</link>{''.join(items)}</channel></rss>"
    ).encode()


class Feeds(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sources: int, latency: float, stalled: set[int], stall: float, posts: int = 2) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies = [feed(n, posts) for n in range(sources)]
        self.latency, self.stalled, self.stall = latency, stalled, stall
        self.requests: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.first: float | None = None
        self.seen = threading.Condition()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.first = None


class Handler(BaseHTTPRequestHandler):
    server: Feeds

    def do_GET(self) -> None:
        n = int(self.path.rsplit("/", 1)[1])
        with self.server.lock:
            self.server.requests[n] += 1
            self.server.first = self.server.first or time.monotonic()
        with self.server.seen:
            self.server.seen.notify_all()
        time.sleep(self.server.stall if n in self.server.stalled else self.server.latency)
        body = self.server.bodies[n]
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the fetcher gave up (its deadline) or was killed
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


def write_config(folder: Path, database: str, port: int, sources: int, timeout: float, pool: int) -> Path:
    lines = [
        f"database: {database}",
        "fetch:",
        "  allow_networks: [127.0.0.0/8]",
        f"  timeout: {timeout}s",
        f"  concurrency: {pool}",
        "sources:",
    ]
    for n in range(sources):
        lines += [f"  - name: s{n}", f"    url: http://127.0.0.1:{port}/feed/{n}", "    every: 1d"]
    path = folder / f"aggregator-{pool}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def empty_database(url: str) -> None:
    """A PostgreSQL database emptied (made if missing), or a SQLite file removed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database or "").unlink(missing_ok=True)
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}):
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    engine = create_engine(parsed)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def prepare(config: Path) -> None:
    """The schema and source rows, made before the clock starts."""
    subprocess.run([*command(config), "db", "upgrade"], check=True, capture_output=True)


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "aggregator", "--config", str(config)]


def recorded(database: str) -> tuple[int, int]:
    engine = create_engine(make_url(database))
    try:
        with engine.connect() as conn:
            fetched = conn.scalar(text("SELECT count(*) FROM sources WHERE last_fetch_at IS NOT NULL")) or 0
            papers = conn.scalar(text("SELECT count(*) FROM papers")) or 0
    finally:
        engine.dispose()
    return fetched, papers


def cycle(
    feeds: Feeds, config: Path, database: str, workers: int, sources: int, folder: Path
) -> dict[str, Any]:
    empty_database(database)
    prepare(config)
    feeds.reset()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    logs = [open(folder / f"worker-{w}.log", "wb") for w in range(workers)]  # noqa: SIM115
    started = time.monotonic()
    procs = [
        subprocess.Popen([*command(config), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:
        while True:
            fetched, papers = recorded(database)
            if fetched == sources:
                break
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a worker died: {(folder / 'worker-0.log').read_text()[-2000:]}")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()
    after_first = elapsed - ((feeds.first or started) - started)
    return {
        "seconds": elapsed,
        "from_first_request": after_first,
        "requests": dict(Counter(feeds.requests.values())),
        "papers": papers,
    }


def kill_test(feeds: Feeds, folder: Path, database: str, timeout: float) -> float:
    """Seconds from a worker's SIGKILL, mid-fetch, to another worker asking for the same source."""
    empty_database(database)
    stalled = next(iter(sorted(feeds.stalled)))
    config = folder / "kill.yaml"
    port = feeds.server_address[1]
    config.write_text(
        f"database: {database}\nfetch:\n  allow_networks: [127.0.0.0/8]\n  timeout: {max(timeout, 20)}s\n"
        f"sources:\n  - name: stalled\n    url: http://127.0.0.1:{port}/feed/{stalled}\n    every: 1d\n"
    )
    prepare(config)
    feeds.reset()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    first = subprocess.Popen(
        [*command(config), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with feeds.seen:
        feeds.seen.wait_for(lambda: feeds.requests[stalled] >= 1, timeout=60)
    first.kill()
    killed = time.monotonic()
    first.wait()
    second = subprocess.Popen(
        [*command(config), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with feeds.seen:
            asked = feeds.seen.wait_for(lambda: feeds.requests[stalled] >= 2, timeout=120)
        return time.monotonic() - killed if asked else float("inf")
    finally:
        second.kill()
        second.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--stalled", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=5.0, help="the fetch deadline, seconds")
    parser.add_argument("--pool", type=int, default=32, help="the pool of run 2")
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench_fetch")
    parser.add_argument("--skip-sequential", action="store_true", help="run 1 taken as the sum of latencies")
    parser.add_argument("--kill-test", action="store_true")
    parser.add_argument("--posts", type=int, default=2, help="own posts a feed (more: more to write)")
    args = parser.parse_args()
    stalled = set(random.Random(7).sample(range(args.sources), args.stalled))
    feeds = Feeds(args.sources, args.latency, stalled, args.timeout + 2, args.posts)
    threading.Thread(target=feeds.serve_forever, daemon=True).start()
    port = feeds.server_address[1]
    pooled = {p for n in range(args.sources) if n not in stalled for p in _pool_of(n)}
    expected_papers = len(pooled) + args.posts * (args.sources - args.stalled)
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
        folder = Path(tmp)
        results = {}
        runs = [("pool", 1, args.pool), ("four", 4, 1)]
        if not args.skip_sequential:
            runs.insert(0, ("sequential", 1, 1))
        for name, workers, pool in runs:
            config = write_config(folder, args.database, port, args.sources, args.timeout, pool)
            result = cycle(feeds, config, args.database, workers, args.sources, folder)
            results[name] = result
            once = result["requests"] == {1: args.sources}
            no_duplicates = result["papers"] == expected_papers
            ok &= once and no_duplicates
            print(
                f"{name:>10}: {workers} worker(s) x pool {pool}: {result['seconds']:7.1f} s "
                f"({result['from_first_request']:.1f} s from the first request); requests per source "
                f"{result['requests']}; papers {result['papers']:,} (expected {expected_papers:,})",
                flush=True,
            )
        sequential = (
            results["sequential"]["seconds"]
            if "sequential" in results
            else args.sources * args.latency + args.stalled * args.timeout
        )
        pool_ratio = results["pool"]["seconds"] / sequential
        four_speedup = sequential / results["four"]["seconds"]
        ok &= pool_ratio < 0.1 and four_speedup >= 3
        print(f"one worker, pool {args.pool}: {pool_ratio:.3f} of the sequential time (goal < 0.1)")
        print(f"four workers, pool 1: {four_speedup:.2f}x faster than one (goal >= 3x)")
        if args.kill_test:
            seconds = kill_test(feeds, folder, args.database, args.timeout)
            ok &= seconds <= 60
            print(f"killed worker's source asked again by another after {seconds:.1f} s (goal <= 60 s)")
    feeds.shutdown()
    sys.exit(0 if ok else 1)


def _pool_of(n: int) -> list[int]:
    return random.Random(n).sample(range(POOL_PAPERS), 3)


if __name__ == "__main__":
    main()
