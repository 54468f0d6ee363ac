"""Serving feeds under gunicorn, side by side with a trivial view of the same app returning the same bytes.

    python bench/bench_serve.py [--small 10000] [--main 100000] [--large 1000000] \
        [--seconds 4] [--rounds 7] [--cold 31] [--workdir DIR] [--topic SLUG]

Needs wrk (Debian: `apt-get install -y wrk`) and gunicorn; loads only 127.0.0.1 and stops by itself.

1. Stores: SQLite files of --small, --main and --large papers (kept under --workdir and reused if
   given, else in a temporary folder removed at the end). Papers are synthetic, made from the real
   entries of the bundled arXiv listing (config/samples): each takes the metadata of one entry,
   the title of another and the abstract of a third with its sentences shuffled, a fresh arXiv id,
   and a date (500 papers a day, the newest on 2024-11-28). Each goes through the code ingest runs
   for a paper seen once (normalised Sighting -> `merge_record` -> `paper_values`, `mint_feed_id`,
   `encode_sighting`, tagged by the default topics with `Tagger.tag_paper(paper_text(...))`), and
   the rows are written with the store's own driver-level executemany (`store.bulk.bulk_insert`)
   into papers, sightings and paper_topics, with each paper's full-text index entry
   (`store.search.write_index` of `indexed_text` of the same PaperText it is tagged with) and
   the store's paper count: the schema comes from the migrations, topic fingerprints are
   remembered, the index marked current and the version set, so the app starts on it without
   re-tagging or re-indexing.
2. One gunicorn per store (`-w 2 -k gthread --threads 4 -b 127.0.0.1:PORT bench.wsgi_bench:app`,
   AGGREGATOR_CONFIG and AGGREGATOR_BASE_URL set): the real app plus /bench/trivial (the same
   bytes as the feed, precomputed) and /bench/trivial304 (a bare 304 with the same validators).
3. Measured in this one run, interleaved: wrk, 2 threads, 16 connections, after warm-up loads;
   each comparison is made of rounds, each round loading the two sides A B B A (B A A B in
   odd rounds) for --seconds each, so each side gets 2 x --seconds per round under the same
   conditions. Goals in brackets:
   * warm topic feed /feeds/<slug>.atom vs /bench/trivial on the main store [>= 0.8x req/s];
   * `If-None-Match: <etag>` on the feed (a 304) vs /bench/trivial304 [>= 0.8x req/s];
   * cold render of 200 entries: the first request of `?limit=200&offset=N` for --cold distinct N
     (median ms, body size), on every store, and in process split into query and render; and the
     first request of a page past the end (no entries), on every store;
   * warm feed latency (wrk's mean and p50) with the large store vs the small one [<= 1.2x], and
     as a control for the noise, /bench/trivial on the same two servers.
   Ratios are medians of the per-round ratios: this machine (2 cores, shared) drifts by 30-50 %
   and more from one 8-second load to the next, so only ratios within a round mean anything.
   Exit status 0 when every goal holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from aggregator.config import load_config
from aggregator.ingest.merge import merge_record
from aggregator.ingest.normalize import normalize_entry, title_key
from aggregator.ingest.parse import parse_feed
from aggregator.publish.feeds import FeedPage, atom, content_html
from aggregator.records import StoredSighting
from aggregator.runtime import topic_specs
from aggregator.store import meta
from aggregator.store.bulk import bulk_insert
from aggregator.store.codec import digest, encode_sighting, record_digest
from aggregator.store.indexing import index_version
from aggregator.store.repository import PageQuery, Store
from aggregator.store.rows import paper_text, paper_values
from aggregator.store.schema import paper_topics, papers, sightings
from aggregator.store.search import write_index
from aggregator.store.tagging import remember_topics
from aggregator.topics.index_query import IndexedPaper, indexed_text
from aggregator.topics.match import Tagger, fingerprints
from aggregator.types import Sighting, TopicSpec

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "config" / "samples" / "arxiv-listing-2024-11-28.xml"
DEFAULT_CONFIG = ROOT / "config" / "aggregator.yaml"
SOURCE = "sample-arxiv-listing"
NEWEST = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)  # arXiv announces at 05:00 UTC
PER_DAY = 500
CHUNK = 10_000  # papers per write transaction
HOST = "127.0.0.1"
GUNICORN = ["-w", "2", "-k", "gthread", "--threads", "4"]
WRK = ["-t2", "-c16"]
COLD_LIMIT = 200


# --- stores ------------------------------------------------------------------------------------


def seed_sightings() -> list[Sighting]:
    """The bundled listing's entries, parsed and normalised as ingest does."""
    feed = parse_feed(SAMPLE.read_bytes(), url=SAMPLE.as_uri())
    now = datetime.now(UTC)
    return [normalize_entry(e, source=SOURCE, authority=feed.authority, now=now) for e in feed.entries]


class Synthesizer:
    """Realistic papers recombined from real ones, in publication order, with fresh arXiv ids."""

    def __init__(self, seeds: list[Sighting], total: int, rng: random.Random) -> None:
        self.seeds = seeds
        self.titles = [s.title for s in seeds if s.title]
        self.abstracts = [re.split(r"(?<=\.)\s+", s.abstract) for s in seeds if s.abstract]
        self.rng = rng
        self.days = max(1, math.ceil(total / PER_DAY))
        self.serial: Counter[str] = Counter()

    def sighting(self, n: int) -> tuple[Sighting, datetime]:
        rng = self.rng
        published = NEWEST - timedelta(days=self.days - 1 - n // PER_DAY)
        month = f"{published:%y%m}"
        self.serial[month] += 1
        arxiv_id = f"{month}.{self.serial[month]:05d}"
        base = rng.choice(self.seeds)
        title = rng.choice(self.titles)
        sentences = list(rng.choice(self.abstracts))
        rng.shuffle(sentences)
        links = {"abs": f"https://arxiv.org/abs/{arxiv_id}", "pdf": f"https://arxiv.org/pdf/{arxiv_id}"}
        if base.code_urls:
            links["code"] = base.code_urls[0]
        s = dataclasses.replace(
            base,
            entry_id=f"oai:arXiv.org:{arxiv_id}v{base.version or 1}",
            link=links["abs"],
            title=title,
            title_key=title_key(title),
            abstract=" ".join(sentences),
            keys=(f"arxiv:{arxiv_id}",),
            arxiv_id=arxiv_id,
            doi=None,
            published=published,
            updated=None,
            links=links,
        )
        return s, published + timedelta(hours=1, seconds=rng.randrange(3600))


@dataclasses.dataclass
class Rows:
    """What the ingest writer writes for a batch of papers seen once."""

    papers: list[dict[str, Any]]
    sightings: list[dict[str, Any]]
    topics: list[dict[str, Any]]
    index: list[tuple[int, IndexedPaper]]  # each paper's full-text index entry


def synthetic_rows(synth: Synthesizer, store: Store, tagger: Tagger, start: int, stop: int) -> Rows:
    """Rows for papers start..stop-1 as the ingest writer would write them for papers seen once."""
    paper_rows: list[dict[str, Any]] = []
    sighting_rows: list[dict[str, Any]] = []
    topic_rows: list[dict[str, Any]] = []
    index_rows: list[tuple[int, IndexedPaper]] = []
    for n in range(start, stop):
        pid = n + 1
        s, first_seen = synth.sighting(n)
        stored = StoredSighting(s, first_seen)
        record = merge_record([stored])
        values = paper_values(record)
        published = record.published or first_seen
        paper_rows.append(
            {
                "id": pid,
                **values,
                "feed_id": store.mint_feed_id(record, stored),
                "published": published,
                "updated": max(published, record.source_updated or published),
                "first_seen": first_seen,
                "content_hash": record_digest(values),
            }
        )
        data = encode_sighting(s)
        sighting_rows.append(
            {
                "id": pid,
                "paper_id": pid,
                "source": SOURCE,
                "entry_id": s.entry_id,
                "link": s.link,
                "title_key": s.title_key,
                "first_seen": first_seen,
                "authority": int(s.authority),
                "data": data,
                "data_hash": digest(data),
            }
        )
        paper = paper_text(record, [(s.source, s.authority)])
        index_rows.append((pid, indexed_text(paper)))  # the atoms tagging uses below
        for match in tagger.tag_paper(paper):
            topic_rows.append(
                {
                    "slug": match.slug,
                    "paper_id": pid,
                    "score": match.score,
                    "matched": list(match.matched),
                    "published": published,
                }
            )
    return Rows(paper_rows, sighting_rows, topic_rows, index_rows)


def build_store(path: Path, n: int, specs: list[TopicSpec], seeds: list[Sighting]) -> dict[str, Any]:
    """A store of n synthetic papers at path; returns what it holds."""
    began = time.perf_counter()
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    store = Store.open(f"sqlite:///{path}", tag_authority=HOST)
    store.sync_sources([(SOURCE, SAMPLE.as_uri())])
    tagger = Tagger(specs)
    synth = Synthesizer(seeds, n, random.Random(n))
    topics: Counter[str] = Counter()
    with store.engine.connect().execution_options(write=True) as conn:
        conn.exec_driver_sql("PRAGMA cache_size=-1000000")  # 1 GB while building
        conn.commit()
        for start in range(0, n, CHUNK):
            rows = synthetic_rows(synth, store, tagger, start, min(n, start + CHUNK))
            bulk_insert(conn, papers, rows.papers)
            bulk_insert(conn, sightings, rows.sightings)
            if rows.topics:
                bulk_insert(conn, paper_topics, rows.topics)
            write_index(conn, rows.index, replace=False)
            conn.commit()
            topics.update(r["slug"] for r in rows.topics)
            if n >= 100_000 and (start // CHUNK) % 10 == 9:
                print(f"    {start + CHUNK:,} papers ({time.perf_counter() - began:.0f} s)", flush=True)
        meta.put(conn, "papers", n)  # the count the store keeps with every write
        meta.put(conn, "index_version", index_version(conn))  # the index is current: no rebuild at start
        remember_topics(conn, fingerprints(specs))  # the app re-tags nothing at start
        store._bump_version(conn)  # the version and change time, as ingest stamps them
        conn.commit()
    store.close()  # the last connection to close checkpoints the WAL into the file
    return {
        "papers": n,
        "topics": dict(topics.most_common()),
        "bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - began, 1),
    }


def ensure_store(folder: Path, n: int, specs: list[TopicSpec], seeds: list[Sighting]) -> dict[str, Any]:
    path = folder / f"store-{n}.db"
    done = folder / f"store-{n}.json"
    if done.exists() and path.exists():
        info: dict[str, Any] = json.loads(done.read_text())
        print(f"  store of {n:,} papers: reused {path} ({info['bytes'] / 1e9:.2f} GB)")
        return info
    built = [json.loads(p.read_text()) for p in folder.glob("store-*.json")]
    per_paper = max((b["bytes"] / b["papers"] for b in built), default=5000)
    free = shutil.disk_usage(folder).free
    if per_paper * n * 1.3 > free:
        raise SystemExit(
            f"bench_serve: a store of {n:,} papers needs about {per_paper * n / 1e9:.1f} GB, "
            f"{free / 1e9:.1f} GB free under {folder}; use a smaller --large or another --workdir"
        )
    print(f"  store of {n:,} papers: building {path} ...", flush=True)
    info = build_store(path, n, specs, seeds)
    done.write_text(json.dumps(info))
    print(
        f"  store of {n:,} papers: {info['bytes'] / 1e9:.2f} GB in {info['seconds']:.0f} s; "
        f"topics {info['topics']}"
    )
    return info


def write_config(folder: Path, n: int, port: int) -> Path:
    """The default config's site and topics over this store, with the bundled listing as its source."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config = {
        "database": f"sqlite:///{folder / f'store-{n}.db'}",
        "site": {"title": raw["site"]["title"], "base_url": f"http://{HOST}:{port}"},
        "sources": [{"name": SOURCE, "url": SAMPLE.as_uri(), "every": "1d"}],
        "topics": raw["topics"],
    }
    path = folder / f"config-{n}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- servers and clients -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """One gunicorn serving bench.wsgi_bench:app over one store, on 127.0.0.1."""

    def __init__(self, name: str, folder: Path, n: int, slug: str) -> None:
        self.name, self.n, self.slug = name, n, slug
        self.port = free_port()
        self.config = write_config(folder, n, self.port)
        self.log_path = folder / f"gunicorn-{n}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("AGGREGATOR_DATABASE_URL", None)
        env.update(
            AGGREGATOR_CONFIG=str(self.config),
            AGGREGATOR_BASE_URL=f"http://{HOST}:{self.port}",
            BENCH_FEED=self.slug,
        )
        # An empty config file of our own: without one, gunicorn reads the repo's gunicorn.conf.py
        # from the working folder, whose max_requests recycles a worker every ~20,000 requests,
        # in the middle of a load (wrk then counts the reset connections as errors).
        settings = self.log_path.with_name("gunicorn-bench.conf.py")
        settings.write_text('"""bench_serve: the settings are on the command line."""\n')
        command = [sys.executable, "-m", "gunicorn", "-c", str(settings), *GUNICORN]
        command += ["-b", f"{HOST}:{self.port}", "--chdir", str(ROOT), "--log-level", "warning"]
        command.append("bench.wsgi_bench:app")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise SystemExit(f"bench_serve: gunicorn ({self.name}) exited:\n{self.log_tail()}")
            try:
                if get(self.port, "/healthz", timeout=5).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(
            f"bench_serve: gunicorn ({self.name}) not ready in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    ms: float


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 120) -> Reply:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        began = time.perf_counter()
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        ms = (time.perf_counter() - began) * 1000
        return Reply(response.status, dict(response.getheaders()), body, ms)
    finally:
        conn.close()


@dataclasses.dataclass
class Load:
    rps: float
    mean_ms: float
    p50_ms: float
    p99_ms: float
    requests: int


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def wrk(url: str, seconds: float, headers: dict[str, str] | None = None) -> Load:
    command = ["wrk", *WRK, f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if bad or errors:
        raise SystemExit(f"bench_serve: wrk saw failures on {url}:\n{out}")
    mean = re.search(r"Latency\s+([\d.]+)(us|ms|s|m)\s", out)
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s|m)", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s|m)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not (mean and p50 and p99 and rps and total):
        raise SystemExit(f"bench_serve: cannot read wrk's output:\n{out}")
    return Load(float(rps[1]), _ms(*mean.groups()), _ms(*p50.groups()), _ms(*p99.groups()), int(total[1]))


# --- measurements ------------------------------------------------------------------------------


def check_same_bytes(server: Server) -> tuple[str, int]:
    """The trivial views answer what the feed answers; returns the feed's ETag and size."""
    feed = get(server.port, f"/feeds/{server.slug}.atom")
    trivial = get(server.port, "/bench/trivial")
    if feed.status != 200 or feed.body != trivial.body:
        raise SystemExit(f"bench_serve: /bench/trivial differs from the feed on {server.name}")
    for name in ("Content-Type", "ETag", "Last-Modified", "Content-Length"):
        if feed.headers.get(name) != trivial.headers.get(name):
            raise SystemExit(f"bench_serve: {name} differs between the feed and /bench/trivial")
    etag = feed.headers["ETag"]
    conditional = get(server.port, f"/feeds/{server.slug}.atom", {"If-None-Match": etag})
    bare = get(server.port, "/bench/trivial304", {"If-None-Match": etag})
    if conditional.status != 304 or bare.status != 304 or conditional.body or bare.body:
        raise SystemExit(f"bench_serve: expected two empty 304s, got {conditional.status}, {bare.status}")
    return etag, len(feed.body)


def cold_renders(server: Server, count: int) -> dict[str, float]:
    """The first request of `count` never-asked 200-entry pages: median ms, KB and entries."""
    times, sizes, entries = [], [], []
    for offset in range(1, count + 1):
        reply = get(server.port, f"/feeds/{server.slug}.atom?limit={COLD_LIMIT}&offset={offset}")
        if reply.status != 200:
            raise SystemExit(f"bench_serve: cold render answered {reply.status} on {server.name}")
        times.append(reply.ms)
        sizes.append(len(reply.body))
        entries.append(reply.body.count(b"<entry>"))
    return {
        "ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "kb": statistics.median(sizes) / 1000,
        "entries": statistics.median(entries),
    }


def empty_pages(server: Server, count: int) -> float:
    """The first request of `count` never-asked pages past the topic's end (no entries): median ms."""
    times = []
    for n in range(count):
        reply = get(server.port, f"/feeds/{server.slug}.atom?offset={10_000_000 + n}")
        if reply.status != 200 or b"<entry>" in reply.body:
            raise SystemExit(f"bench_serve: a page past the end answered {reply.status} on {server.name}")
        times.append(reply.ms)
    return statistics.median(times)


def render_split(config_path: Path, slug: str, pages: int) -> dict[str, float]:
    """In process, the two halves of a cold 200-entry page, the store's query and the Atom render, with
    the share of each spent on the `count(*)` papers_page runs for a topic (the same statement, built
    here the same way) and on `content_html` (the entries' HTML bodies)."""
    config = load_config(config_path)
    store = Store.open(config.database_url, migrate=False)
    topic = next(t for t in config.topics if t.slug == slug)
    base = config.site.base_url
    on_topic = (paper_topics.c.paper_id == papers.c.id) & (paper_topics.c.slug == slug)
    count = select(func.count()).select_from(select(papers).join(paper_topics, on_topic).subquery())
    query_ms, render_ms, count_ms, html_ms = [], [], [], []
    try:
        for offset in range(1, pages + 1):
            began = time.perf_counter()
            found = store.papers_page(PageQuery(topic=slug, limit=COLD_LIMIT, offset=offset)).papers
            middle = time.perf_counter()
            atom(
                FeedPage(
                    title=f"{config.site.title}: {topic.title}",
                    description=topic.description,
                    self_url=f"{base}/feeds/{slug}.atom?limit={COLD_LIMIT}&offset={offset}",
                    feed_url=f"{base}/feeds/{slug}.atom",
                    html_url=f"{base}/topics/{slug}",
                    topics_url=f"{base}/topics/",
                    papers=found,
                    updated=max(p.updated for p in found),
                )
            )
            query_ms.append((middle - began) * 1000)
            render_ms.append((time.perf_counter() - middle) * 1000)
            began = time.perf_counter()
            with store.engine.connect() as conn:
                conn.execute(count).scalar_one()
            count_ms.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            for paper in found:
                content_html(paper, f"{base}/topics/")
            html_ms.append((time.perf_counter() - began) * 1000)
    finally:
        store.close()
    return {
        "query_ms": statistics.median(query_ms),
        "count_ms": statistics.median(count_ms),
        "render_ms": statistics.median(render_ms),
        "html_ms": statistics.median(html_ms),
    }


def paired(
    first: tuple[str, dict[str, str] | None],
    second: tuple[str, dict[str, str] | None],
    seconds: float,
    flip: bool,
) -> tuple[Load, Load]:
    """Both sides twice, A B B A (B A A B when flipped), so that a drift of the machine during
    the round hits both alike; each side's figures are those of its two loads together."""
    one, two = (second, first) if flip else (first, second)
    loads = [wrk(url, seconds, headers) for url, headers in (one, two, two, one)]
    outer, inner = combined(loads[0], loads[3]), combined(loads[1], loads[2])
    return (inner, outer) if flip else (outer, inner)


def combined(a: Load, b: Load) -> Load:
    """Two equal-length loads as one: mean weighted by requests; percentiles averaged."""
    total = a.requests + b.requests
    return Load(
        rps=(a.rps + b.rps) / 2,
        mean_ms=(a.mean_ms * a.requests + b.mean_ms * b.requests) / total,
        p50_ms=(a.p50_ms + b.p50_ms) / 2,
        p99_ms=(a.p99_ms + b.p99_ms) / 2,
        requests=total,
    )


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="papers in the small store")
    parser.add_argument("--main", type=int, default=100_000, help="papers in the main store")
    parser.add_argument("--large", type=int, default=1_000_000, help="papers in the large store")
    parser.add_argument("--seconds", type=float, default=4, help="length of each wrk load (4 per round)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cold", type=int, default=31, help="cold 200-entry renders per store")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the stores here")
    parser.add_argument("--topic", help="the topic feed to serve (default: the main store's largest)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench_serve: wrk is not installed (Debian: apt-get install -y wrk)")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        folder = args.workdir.resolve()
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    sizes = {"small": args.small, "main": args.main, "large": args.large}
    specs = topic_specs(load_config(DEFAULT_CONFIG))
    try:
        print(f"stores under {folder}:")
        seeds = seed_sightings()
        infos = {name: ensure_store(folder, n, specs, seeds) for name, n in sizes.items()}
        slug = args.topic or next(iter(infos["main"]["topics"]))
        counts = ", ".join(f"{info['topics'].get(slug, 0):,}" for info in infos.values())
        print(f"topic feed: /feeds/{slug}.atom ({counts} papers in the small, main and large stores)")
        servers = {name: Server(name, folder, n, slug) for name, n in sizes.items()}
        try:
            for server in servers.values():
                server.start()
            for server in servers.values():
                server.wait_ready()
            results = measure(servers, args)
        finally:
            for server in servers.values():
                server.stop()
        ok = report(results, infos, sizes, slug, args)
    finally:
        if not args.workdir:
            shutil.rmtree(folder, ignore_errors=True)
    sys.exit(0 if ok else 1)


def measure(servers: dict[str, Server], args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"etag": {}, "feed_bytes": {}, "load": [os.getloadavg()[0]]}
    for name, server in servers.items():
        results["etag"][name], results["feed_bytes"][name] = check_same_bytes(server)
    main, small, large = servers["main"], servers["small"], servers["large"]
    feed_path = f"/feeds/{main.slug}.atom"
    conditional = {"If-None-Match": results["etag"]["main"]}
    print("cold renders of 200 entries ...", flush=True)
    results["cold"] = {name: cold_renders(server, args.cold) for name, server in servers.items()}
    results["empty"] = {name: empty_pages(server, 5) for name, server in servers.items()}
    results["split"] = {
        name: render_split(server.config, server.slug, min(args.cold, 11)) for name, server in servers.items()
    }
    print("warm-up ...", flush=True)
    for server in servers.values():
        for _ in range(20):
            get(server.port, feed_path)
    wrk(main.url(feed_path), 2)
    wrk(main.url("/bench/trivial"), 2)
    wrk(main.url(feed_path), 2, conditional)
    wrk(main.url("/bench/trivial304"), 2, conditional)
    wrk(small.url(feed_path), 2)
    wrk(large.url(feed_path), 2)
    wrk(small.url("/bench/trivial"), 2)
    wrk(large.url("/bench/trivial"), 2)
    rounds: list[dict[str, Load]] = []
    for r in range(args.rounds):
        flip = r % 2 == 1
        loads: dict[str, Load] = {}
        loads["feed"], loads["trivial"] = paired(
            (main.url(feed_path), None), (main.url("/bench/trivial"), None), args.seconds, flip
        )
        loads["feed304"], loads["trivial304"] = paired(
            (main.url(feed_path), conditional),
            (main.url("/bench/trivial304"), conditional),
            args.seconds,
            flip,
        )
        loads["small"], loads["large"] = paired(
            (small.url(feed_path), None), (large.url(feed_path), None), args.seconds, flip
        )
        loads["small_trivial"], loads["large_trivial"] = paired(
            (small.url("/bench/trivial"), None), (large.url("/bench/trivial"), None), args.seconds, flip
        )
        rounds.append(loads)
        print(
            f"  round {r + 1}: feed {loads['feed'].rps:,.0f} / trivial {loads['trivial'].rps:,.0f} req/s; "
            f"304 {loads['feed304'].rps:,.0f} / trivial 304 {loads['trivial304'].rps:,.0f} req/s; "
            f"latency small {loads['small'].mean_ms:.2f} ms (p50 {loads['small'].p50_ms:.2f}), "
            f"large {loads['large'].mean_ms:.2f} ms (p50 {loads['large'].p50_ms:.2f}); trivial small "
            f"{loads['small_trivial'].mean_ms:.2f} ms, large {loads['large_trivial'].mean_ms:.2f} ms",
            flush=True,
        )
    results["rounds"] = rounds
    results["load"].append(os.getloadavg()[0])
    return results


def report(
    results: dict[str, Any], infos: dict[str, Any], sizes: dict[str, int], slug: str, args: argparse.Namespace
) -> bool:
    rounds: list[dict[str, Load]] = results["rounds"]
    n = {name: f"{size:,}" for name, size in sizes.items()}
    kb = {name: size / 1000 for name, size in results["feed_bytes"].items()}

    def med(key: str, field: str = "rps") -> float:
        return statistics.median(getattr(r[key], field) for r in rounds)

    def ratio(a: str, b: str, field: str = "rps") -> tuple[float, str]:
        each = [getattr(r[a], field) / getattr(r[b], field) for r in rounds]
        return statistics.median(each), ", ".join(f"{v:.2f}" for v in each)

    warm, warm_each = ratio("feed", "trivial")
    cond, cond_each = ratio("feed304", "trivial304")
    lat_mean, lat_mean_each = ratio("large", "small", "mean_ms")
    lat_p50, lat_p50_each = ratio("large", "small", "p50_ms")
    control, control_each = ratio("large_trivial", "small_trivial", "mean_ms")
    rows = [
        (
            f"warm topic feed, {n['main']} papers ({kb['main']:.0f} kB, 50 entries)",
            f"{med('feed'):,.0f} req/s",
            f"{med('trivial'):,.0f} req/s",
            f"**{warm:.2f}x** ({warm_each})",
            ">= 0.8x",
        ),
        (
            f"conditional `If-None-Match` -> 304, {n['main']} papers",
            f"{med('feed304'):,.0f} req/s",
            f"{med('trivial304'):,.0f} req/s",
            f"**{cond:.2f}x** ({cond_each})",
            ">= 0.8x",
        ),
        (
            f"warm feed mean latency, {n['large']} ({kb['large']:.0f} kB) vs {n['small']} papers "
            f"({kb['small']:.0f} kB)",
            f"{med('large', 'mean_ms'):.2f} ms",
            f"{med('small', 'mean_ms'):.2f} ms",
            f"**{lat_mean:.2f}x** ({lat_mean_each})",
            "<= 1.2x",
        ),
        (
            f"warm feed p50 latency, {n['large']} vs {n['small']} papers",
            f"{med('large', 'p50_ms'):.2f} ms",
            f"{med('small', 'p50_ms'):.2f} ms",
            f"**{lat_p50:.2f}x** ({lat_p50_each})",
            "<= 1.2x",
        ),
        (
            f"control: /bench/trivial mean latency, {n['large']} vs {n['small']} server",
            f"{med('large_trivial', 'mean_ms'):.2f} ms",
            f"{med('small_trivial', 'mean_ms'):.2f} ms",
            f"{control:.2f}x ({control_each})",
            "",
        ),
    ]
    for name in ("small", "main", "large"):
        c, split = results["cold"][name], results["split"][name]
        rows.append(
            (
                f"cold render, `?limit=200&offset=N`, {n[name]} papers "
                f"({infos[name]['topics'].get(slug, 0):,} in the topic)",
                f"{c['ms']:.1f} ms median ({c['min_ms']:.0f}-{c['max_ms']:.0f}), "
                f"{c['entries']:.0f} entries, {c['kb']:.0f} kB",
                f"in process: query {split['query_ms']:.1f} ms (its count(*) {split['count_ms']:.1f}) "
                f"+ Atom {split['render_ms']:.1f} ms (content_html {split['html_ms']:.1f})",
                "",
                "reported",
            )
        )
    rows.append(
        (
            "cold empty page (`?offset=` past the end), "
            + ", ".join(f"{n[name]}" for name in ("small", "main", "large"))
            + " papers",
            ", ".join(f"{results['empty'][name]:.0f} ms" for name in ("small", "main", "large")),
            "",
            "",
            "reported",
        )
    )
    print()
    print(
        f"/feeds/{slug}.atom; gunicorn {' '.join(GUNICORN)}; wrk {' '.join(WRK)}, "
        f"{args.seconds:g} s per load, A B B A, {args.rounds} rounds; medians over rounds; "
        f"load average (1 min) {results['load'][0]:.1f} before the loads, {results['load'][1]:.1f} after"
    )
    print("| measure | ours | baseline (same app, same bytes) | ratio (each round) | goal |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        f"also: feed req/s small store {med('small'):,.0f}, large store {med('large'):,.0f}; "
        f"p99 feed {med('feed', 'p99_ms'):.1f} ms vs trivial {med('trivial', 'p99_ms'):.1f} ms; stores "
        + ", ".join(
            f"{n[name]} papers {infos[name]['bytes'] / 1e9:.2f} GB built in {infos[name]['seconds']:.0f} s"
            for name in sizes
        )
    )
    goals = {
        "warm feed >= 0.8x trivial": warm >= 0.8,
        "304 >= 0.8x trivial 304": cond >= 0.8,
        "large/small warm latency (mean and p50) <= 1.2x": lat_mean <= 1.2 and lat_p50 <= 1.2,
        f"cold render of {COLD_LIMIT} entries measured": results["cold"]["main"]["entries"] == COLD_LIMIT,
    }
    for goal, held in goals.items():
        print(f"  {'ok  ' if held else 'FAIL'} {goal}")
    return all(goals.values())


if __name__ == "__main__":
    main()
