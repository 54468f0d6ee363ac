"""Search and scale (issue "Scale"): `q=` latency, cold feeds, deep pages, hostile queries and a
load of distinct queries, on SQLite and PostgreSQL stores of 10k to 1M papers.

    python bench/bench_search.py --workdir DIR [--sizes 10000,100000,1000000] \
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/bench_search] [--pg-sizes 100000,1000000] \
        [--queries 200] [--broad 40] [--phrases 60] [--load-seconds 60] [--clients 8] [--no-sqlite]

Loads only 127.0.0.1 and stops every server it starts. Exit status 0 when every goal holds.

1. Stores, kept under --workdir and reused (delete the folder when the schema changes): SQLite
   files built by bench_serve's builder (`ensure_store`: synthetic papers from the real bundled
   listing, written with the ingest code's rows, the full-text index and the paper count);
   PostgreSQL databases `<name>_<size>` built from the same rows (COPY, the GIN index made after
   the load, then ANALYZE). The database named `test` is never touched.
2. Queries come from the synthetic store's own vocabulary (the atoms of the listing's titles and
   abstracts, which every synthetic paper recombines): selective words (in one title or abstract of
   the listing: about 1/1,500 of papers, 665 at 1M), broad words (in 28-40 % of papers) and
   selective phrases (two words that are each in >= 5 % of papers but side by side in one
   abstract only). Their match counts are measured on each store and printed. For the 1M / 10k
   ratio of selective queries, each store also gets words that about 600-1,000 of its own papers
   hold ("sized": the same answer size at every size; the same words would return a full page
   at 1M against a few papers at 10k).
3. Over HTTP, one gunicorn per store under the repo's gunicorn.conf.py (`gunicorn -c
   gunicorn.conf.py "aggregator:create_app()"`, gthread, a worker per core, 4 threads), the stores
   of one backend served side by side and asked in turn (so a drift of the machine hits all):
   every request is a URL never asked before (the response cache cannot flatter), one client at
   a time; /healthz on the same servers is the floor.
4. In process (the app's test client, `time.process_time()` around each call; the loaded app
   frozen out of the collector's walks, as the servers freeze it): cold 200-entry topic
   feed, `/` warm, the first and last pages of a topic feed walked with its `next` links, the
   first and last pages of /feeds/all.atom (`after=` the oldest papers) and of a selective `q=`;
   hostile queries: CPU seconds, wall time, status and message of each (PostgreSQL: plus the
   CPU the database server spent, read from /proc, an upper bound on a shared machine).
5. Load: the largest store of each backend, --clients threads sending distinct `q=` requests
   (/api/papers, /feeds/all.atom, /search in turn; selective, broad and phrase queries) for
   --load-seconds, while a separate process asks /healthz every 0.5 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/bench_search.py` from the project root
    sys.path.insert(0, str(ROOT))

from aggregator.config import load_config  # noqa: E402
from aggregator.runtime import topic_specs  # noqa: E402
from aggregator.topics.document import atoms  # noqa: E402
from aggregator.types import Sighting  # noqa: E402
from bench import bench_serve as bs  # noqa: E402

HOST = "127.0.0.1"
FEED_LIMIT = 200
PROBE_EVERY = 0.5
SELECTIVE_MAX = 0.001  # share of papers: <= 1,000 of 1M
BROAD_SHARE = (0.28, 0.40)
PHRASE_WORD_MIN = 0.05
SIZED_MATCHES = (600, 1000)  # the same answer size at every store size: what 1M's selective words get


# --- queries -----------------------------------------------------------------------------------


class Vocabulary:
    """Which atoms the synthetic papers hold, and in what share of papers: each synthetic paper
    takes one title and one abstract of the listing at random, so a word's share is
    1 - (1 - titles with it / titles) * (1 - abstracts with it / abstracts)."""

    def __init__(self, seeds: list[Sighting]) -> None:
        titles = [s.title for s in seeds if s.title]
        abstracts = [s.abstract for s in seeds if s.abstract]
        self.titles, self.abstracts = len(titles), len(abstracts)
        self.title_df = Counter(w for t in titles for w in set(atoms(t)))
        self.abstract_df = Counter(w for a in abstracts for w in set(atoms(a)))
        self.title_pairs = Counter(p for t in titles for p in set(_pairs(t)))
        # pairs inside one sentence: sentences are shuffled, so pairs across them do not last
        self.abstract_pairs = Counter(
            p for a in abstracts for p in {q for s in re.split(r"(?<=\.)\s+", a) for q in _pairs(s)}
        )

    def share(self, word: str) -> float:
        return 1 - (1 - self.title_df[word] / self.titles) * (1 - self.abstract_df[word] / self.abstracts)

    def words(self) -> list[str]:
        return sorted(set(self.title_df) | set(self.abstract_df))

    def selective(self) -> list[str]:
        return [
            w
            for w in self.words()
            if w.isalpha() and w.isascii() and len(w) >= 5 and self.share(w) <= SELECTIVE_MAX
        ]

    def sized(self, n: int, matches: tuple[int, int] = SIZED_MATCHES) -> list[str]:
        """Words that about `matches` papers of a store of n hold: a selective query (<= 1,000
        matches) whose answer is the same size at every store size."""
        low, high = matches
        return [
            w
            for w in self.words()
            if w.isalpha() and w.isascii() and len(w) >= 5 and low <= self.share(w) * n <= high
        ]

    def broad(self) -> list[str]:
        low, high = BROAD_SHARE
        return [w for w in self.words() if w.isalpha() and len(w) >= 4 and low <= self.share(w) <= high]

    def phrases(self) -> list[str]:
        found = []
        for (a, b), count in sorted(self.abstract_pairs.items()):
            if count != 1 or self.title_pairs[(a, b)] or a == b:
                continue
            if not (a.isalpha() and b.isalpha() and len(a) >= 3 and len(b) >= 3):
                continue
            if min(self.share(a), self.share(b)) >= PHRASE_WORD_MIN:
                found.append(f'"{a} {b}"')
        return found


def _pairs(text: str) -> Iterator[tuple[str, str]]:
    words = atoms(text)
    return itertools.pairwise(words)


class QuerySource:
    """Query strings never handed out before (by this source), of each kind."""

    def __init__(self, vocab: Vocabulary, rng: random.Random) -> None:
        self.vocab = vocab
        self.selective = vocab.selective()
        self.broad = vocab.broad()
        self.phrases = vocab.phrases()
        for values in (self.selective, self.broad, self.phrases):
            rng.shuffle(values)
        self.used: Counter[str] = Counter()
        self.lock = threading.Lock()

    def take(self, kind: str) -> str:
        """The next query of this kind: each word once, then words with a distinct term that
        excludes nothing (`-zq<n>`: no paper holds it), so that every URL stays new."""
        with self.lock:
            pool = getattr(self, kind)
            n = self.used[kind]
            self.used[kind] += 1
            base = pool[n % len(pool)]
            return base if n < len(pool) else f"{base} -zq{n}"

    def counts(self) -> dict[str, int]:
        return {"selective": len(self.selective), "broad": len(self.broad), "phrases": len(self.phrases)}


# --- stores ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    """One store: its backend, size and database URL."""

    backend: str  # "sqlite" | "postgresql"
    n: int
    url: str
    info: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.backend} {self.n:,}"


def sqlite_target(folder: Path, n: int, specs: list[Any], seeds: list[Sighting]) -> Target:
    info = bs.ensure_store(folder, n, specs, seeds)
    return Target("sqlite", n, f"sqlite:///{folder / f'store-{n}.db'}", info)


def postgres_target(base_url: str, folder: Path, n: int, specs: list[Any], seeds: list[Sighting]) -> Target:
    url = f"{base_url}_{n}"
    done = folder / f"pg-{n}.json"
    if done.exists() and _database_exists(url):
        info: dict[str, Any] = json.loads(done.read_text())
        print(f"  PostgreSQL store of {n:,} papers: reused {_database_name(url)}")
        return Target("postgresql", n, url, info)
    print(f"  PostgreSQL store of {n:,} papers: building {_database_name(url)} ...", flush=True)
    info = build_postgres(url, n, specs, seeds)
    done.write_text(json.dumps(info))
    print(f"  PostgreSQL store of {n:,} papers: {info['bytes'] / 1e9:.2f} GB in {info['seconds']:.0f} s")
    return Target("postgresql", n, url, info)


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _server_url(url: str) -> str:
    """The psycopg URL of the same server's `postgres` database."""
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    return parts._replace(path="/postgres").geturl()


def _database_exists(url: str) -> bool:
    import psycopg

    with psycopg.connect(_server_url(url), autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (_database_name(url),)
        ).fetchone()
    return found is not None


def _recreate_database(url: str) -> None:
    import psycopg

    name = _database_name(url)
    if name in ("test", "postgres", "template0", "template1") or not re.fullmatch(r"[a-z0-9_]+", name):
        raise SystemExit(f"bench_search: will not recreate the database {name!r}")
    with psycopg.connect(_server_url(url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def build_postgres(url: str, n: int, specs: list[Any], seeds: list[Sighting]) -> dict[str, Any]:
    """A PostgreSQL store of n synthetic papers (the same rows as bench_serve's SQLite builder):
    schema by the migrations, rows by COPY, the GIN indexes made after the load, then ANALYZE."""
    import psycopg
    from sqlalchemy import JSON

    from aggregator.store import meta
    from aggregator.store.codec import json_text
    from aggregator.store.indexing import index_version
    from aggregator.store.repository import Store
    from aggregator.store.schema import paper_topics, papers, sightings
    from aggregator.store.search import pairs_text, tsvector_text
    from aggregator.store.tagging import remember_topics
    from aggregator.topics.match import Tagger, fingerprints

    began = time.perf_counter()
    _recreate_database(url)
    store = Store.open(url, tag_authority=HOST)
    store.sync_sources([(bs.SOURCE, bs.SAMPLE.as_uri())])
    tagger = Tagger(specs)
    synth = bs.Synthesizer(seeds, n, random.Random(n))
    topics: Counter[str] = Counter()

    def copy(cur: Any, table: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        names = list(rows[0])
        as_json = [isinstance(table.c[c].type, JSON) for c in names]
        with cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as out:
            for row in rows:
                out.write_row(
                    [
                        (json_text(row[c]) if row[c] is not None else None) if j else row[c]
                        for c, j in zip(names, as_json, strict=True)
                    ]
                )

    raw_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw_url) as raw:
        raw.execute("DROP INDEX IF EXISTS ix_paper_index_doc")
        raw.execute("DROP INDEX IF EXISTS ix_paper_pairs_pairs")
        raw.commit()
        for start in range(0, n, bs.CHUNK):
            rows = bs.synthetic_rows(synth, store, tagger, start, min(n, start + bs.CHUNK))
            with raw.cursor() as cur:
                copy(cur, papers, rows.papers)
                copy(cur, sightings, rows.sightings)
                copy(cur, paper_topics, rows.topics)
                with cur.copy("COPY paper_index (paper_id, doc) FROM STDIN") as out:
                    for pid, entry in rows.index:
                        out.write_row((pid, tsvector_text(entry)))
                with cur.copy("COPY paper_pairs (paper_id, pairs) FROM STDIN") as out:
                    for pid, entry in rows.index:
                        out.write_row((pid, pairs_text(entry)))
            raw.commit()
            topics.update(r["slug"] for r in rows.topics)
            if (start // bs.CHUNK) % 10 == 9:
                print(f"    {start + bs.CHUNK:,} papers ({time.perf_counter() - began:.0f} s)", flush=True)
        raw.execute("SET maintenance_work_mem = '1GB'")
        for table, column in (("paper_index", "doc"), ("paper_pairs", "pairs")):
            raw.execute(f"CREATE INDEX ix_{table}_{column} ON {table} USING GIN ({column})")
        for table in ("papers", "sightings"):
            raw.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {max(n, 1)})")
        raw.commit()
    with store.engine.connect() as conn:
        meta.put(conn, "papers", n)
        meta.put(conn, "index_version", index_version(conn))
        remember_topics(conn, fingerprints(specs))
        meta.bump_version(conn)
        conn.commit()
    store.close()
    with psycopg.connect(raw_url, autocommit=True) as raw:
        raw.execute("VACUUM ANALYZE")
        size = raw.execute("SELECT pg_database_size(current_database())").fetchone()
    return {
        "papers": n,
        "topics": dict(topics.most_common()),
        "bytes": int(size[0]) if size else 0,
        "seconds": round(time.perf_counter() - began, 1),
    }


def warm_cache(target: Target) -> None:
    """Read the store's files into the OS page cache: this machine gives back page cache it has not
    used lately (a 1M store read an hour ago is mostly gone), and a cold store measures the disk.
    SQLite: the database file and its WAL; PostgreSQL: every relation, through pg_prewarm."""
    began = time.perf_counter()
    if target.backend == "sqlite":
        path = Path(target.url.removeprefix("sqlite:///"))
        buffer = bytearray(16 << 20)
        for part in (path, path.with_name(path.name + "-wal")):
            if part.exists():
                with part.open("rb", buffering=0) as f:
                    while f.readinto(buffer):
                        pass
    else:
        import psycopg

        with psycopg.connect(
            target.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        ) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            conn.execute(
                "SELECT sum(pg_prewarm(oid, 'read')) FROM pg_class "
                "WHERE relkind IN ('r', 'i', 't', 'm') AND relpersistence = 'p'"
            )
    cached = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("Cached:")
        ),
        0,
    )
    print(
        f"  {target.name}: store read into the page cache in {time.perf_counter() - began:.1f} s "
        f"(page cache now {cached / 1e6:.1f} GB)",
        flush=True,
    )


def write_config(folder: Path, target: Target, port: int) -> Path:
    raw = yaml.safe_load(bs.DEFAULT_CONFIG.read_text())
    config = {
        "database": target.url,
        "site": {"title": raw["site"]["title"], "base_url": f"http://{HOST}:{port}"},
        "sources": [{"name": bs.SOURCE, "url": bs.SAMPLE.as_uri(), "every": "1d"}],
        "topics": raw["topics"],
    }
    path = folder / f"search-config-{target.backend}-{target.n}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- servers and clients -----------------------------------------------------------------------


class Server:
    """`gunicorn -c gunicorn.conf.py "aggregator:create_app()"` from the project root, over one store."""

    def __init__(self, folder: Path, target: Target) -> None:
        self.target = target
        self.port = bs.free_port()
        self.config = write_config(folder, target, self.port)
        self.log_path = folder / f"search-gunicorn-{target.backend}-{target.n}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("AGGREGATOR_DATABASE_URL", None)
        env.pop("WEB_CONCURRENCY", None)
        env.pop("GUNICORN_BIND", None)
        env.update(
            AGGREGATOR_CONFIG=str(self.config),
            AGGREGATOR_BASE_URL=f"http://{HOST}:{self.port}",
            PORT=str(self.port),
            HOST=HOST,
            PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "aggregator:create_app()"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise SystemExit(f"bench_search: gunicorn ({self.target.name}) exited:\n{self.log_tail()}")
            try:
                if bs.get(self.port, "/healthz", timeout=5).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"bench_search: gunicorn ({self.target.name}) not ready:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        """SIGTERM to the whole process group (master and workers), SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


def q_path(endpoint: str, query: str, extra: str = "") -> str:
    return f"{endpoint}?q={quote(query, safe='')}{extra}"


@dataclasses.dataclass
class Timed:
    ms: float
    status: int
    total: int | None = None
    exact: bool | None = None


def ask(port: int, path: str) -> Timed:
    reply = bs.get(port, path, timeout=60)
    total = exact = None
    if reply.status == 200 and path.startswith("/api/papers"):
        body = json.loads(reply.body)
        total, exact = body.get("total"), body.get("total_exact")
    return Timed(reply.ms, reply.status, total, exact)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def summary(timed: list[Timed]) -> dict[str, Any]:
    ms = [t.ms for t in timed]
    totals = [t.total for t in timed if t.total is not None]
    return {
        "n": len(ms),
        "p50": statistics.median(ms),
        "p99": pct(ms, 99),
        "max": max(ms),
        "statuses": dict(Counter(t.status for t in timed)),
        "matches_median": statistics.median(totals) if totals else None,
        "matches_range": (min(totals), max(totals)) if totals else None,
        "exact": sum(1 for t in timed if t.exact) if totals else None,
    }


def interleaved(servers: list[Server], paths: list[str]) -> dict[str, list[Timed]]:
    """Each path on every server in turn, the order of the servers rotating: a drift of the
    machine hits every store alike."""
    found: dict[str, list[Timed]] = {s.target.name: [] for s in servers}
    for i, path in enumerate(paths):
        for k in range(len(servers)):
            server = servers[(i + k) % len(servers)]
            found[server.target.name].append(ask(server.port, path))
    return found


def interleaved_own(servers: list[Server], paths: dict[str, list[str]]) -> dict[str, list[Timed]]:
    """As interleaved, each server with its own paths (the i-th of each, in turn)."""
    found: dict[str, list[Timed]] = {s.target.name: [] for s in servers}
    for i in range(min(len(v) for v in paths.values())):
        for k in range(len(servers)):
            server = servers[(i + k) % len(servers)]
            found[server.target.name].append(ask(server.port, paths[server.target.name][i]))
    return found


PROBE = """
import http.client, json, sys, time
port, seconds, every, out = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
found = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    began = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
        conn.close()
    except OSError:
        status = 0
    ms = (time.perf_counter() - began) * 1000
    found.append((ms, status))
    time.sleep(max(0.0, every - ms / 1000))
json.dump(found, open(out, "w"))
"""


def load(server: Server, source: QuerySource, clients: int, seconds: float, folder: Path) -> dict[str, Any]:
    """`clients` threads asking distinct `q=` URLs for `seconds`, while a separate process
    probes /healthz every PROBE_EVERY s."""
    endpoints = ["/api/papers", "/feeds/all.atom", "/search"]
    kinds = ["selective", "selective", "broad", "phrases"]
    counter = iter(range(10**9))
    lock = threading.Lock()
    results: list[tuple[str, str, float, int]] = []
    probe_out = folder / f"probe-{server.target.backend}-{server.target.n}.json"
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(server.port), str(seconds), str(PROBE_EVERY), str(probe_out)]
    )
    end = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < end:
            with lock:
                n = next(counter)
            kind = kinds[n % len(kinds)]
            endpoint = endpoints[(n // len(kinds)) % len(endpoints)]
            path = q_path(endpoint, source.take(kind))
            try:
                reply = bs.get(server.port, path, timeout=60)
                status, ms = reply.status, reply.ms
            except OSError:
                status, ms = 0, float("nan")
            with lock:
                results.append((kind, endpoint, ms, status))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    try:
        for t in threads:
            t.start()
    finally:
        for t in threads:
            t.join()
        probe.wait(timeout=seconds + 60)
    probes = json.loads(probe_out.read_text())
    probe_ms = [ms for ms, _ in probes]
    by_kind = {}
    for kind in dict.fromkeys(kinds):
        ms = [r[2] for r in results if r[0] == kind and r[3] == 200]
        by_kind[kind] = {
            "n": len(ms),
            "p50": statistics.median(ms) if ms else None,
            "p99": pct(ms, 99) if ms else None,
        }
    return {
        "requests": len(results),
        "seconds": seconds,
        "statuses": dict(Counter(r[3] for r in results)),
        "errors_5xx": sum(1 for r in results if r[3] >= 500 or r[3] == 0),
        "by_kind": by_kind,
        "by_endpoint_5xx": dict(Counter(r[1] for r in results if r[3] >= 500 or r[3] == 0)),
        "by_kind_5xx": dict(Counter(r[0] for r in results if r[3] >= 500 or r[3] == 0)),
        "probe": {
            "n": len(probes),
            "max": max(probe_ms),
            "p99": pct(probe_ms, 99),
            "p50": statistics.median(probe_ms),
            "not_200": sum(1 for _, s in probes if s != 200),
        },
    }


# --- in process --------------------------------------------------------------------------------


class PostgresCPU:
    """CPU seconds spent by every `postgres` process on this machine (live ones, and the children
    the postmaster reaped: parallel workers): an upper bound on what one request cost the server
    when other databases on it are busy too."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")

    def now(self) -> float:
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            if name != "postgres":
                continue
            total += sum(int(v) for v in rest[11:15])  # utime stime cutime cstime
        return total / self.tick


class InProcess:
    """The app over one store, called as a WSGI app through its test client."""

    def __init__(self, folder: Path, target: Target) -> None:
        from aggregator import create_app
        from aggregator.collector import freeze_loaded

        self.target = target
        self.config_path = write_config(folder, target, 80)
        self.app = create_app(str(self.config_path))
        self.client = self.app.test_client()
        # As every server of the app does before its first request (gunicorn's pre_fork,
        # `aggregator serve`): what is loaded stays out of the collector's full walks.
        freeze_loaded()
        self.pg = PostgresCPU() if target.backend == "postgresql" else None

    def close(self) -> None:
        self.app.extensions["aggregator"].store.close()

    def get(self, path: str) -> tuple[float, float, float, int, bytes, str]:
        """(wall ms, CPU ms of this process, CPU ms of the database server, status, body, type)"""
        server_before = self.pg.now() if self.pg else 0.0
        cpu, wall = time.process_time(), time.perf_counter()
        response = self.client.get(path)
        body = response.get_data()
        wall, cpu = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
        server = (self.pg.now() - server_before) * 1000 if self.pg else 0.0
        return wall, cpu, server, response.status_code, body, response.content_type or ""

    def both(self, paths: list[str]) -> dict[str, Any]:
        """Each path asked once: median wall ms and CPU ms (this process; the database server's
        separately), each wall time, and the statuses (a 503, past the query budget, is a figure
        too: its time counts)."""
        walls, cpus, servers, statuses = [], [], [], []
        for path in paths:
            wall, cpu, server, code, body, _ = self.get(path)
            if code not in (200, 503):
                raise SystemExit(f"bench_search: {path} answered {code}: {body[:300]!r}")
            walls.append(wall)
            cpus.append(cpu)
            servers.append(server)
            statuses.append(code)
        return {
            "wall": statistics.median(walls),
            "p99": pct(walls, 99),
            "cpu": statistics.median(cpus),
            "server_cpu": statistics.median(servers),
            "walls": walls,
            "statuses": dict(Counter(statuses)),
        }

    def index_count(self, raw: str) -> int:
        """How many papers the full-text index gives as candidates for a query."""
        from sqlalchemy import func, select

        from aggregator.store.search import candidates
        from aggregator.web.params import text_query

        services = self.app.extensions["aggregator"]
        found = text_query(raw, services.config)
        assert found is not None and found.narrowed is not None
        with services.store.engine.connect() as conn:
            sub = candidates(conn, found.narrowed).subquery()
            return int(conn.execute(select(func.count()).select_from(sub)).scalar_one())

    def ms(self, path: str, status: int = 200) -> float:
        wall, _, _, code, body, _ = self.get(path)
        if code != status:
            raise SystemExit(f"bench_search: {path} answered {code}: {body[:300]!r}")
        return wall

    def walk(
        self,
        path: str,
        next_of: Callable[[bytes], str | None],
        entries: Callable[[bytes], int],
        limit: int = 10_000,
    ) -> dict[str, Any]:
        """Every page from `path` on, following next links (ms of each), then the first and the
        last full page (the last one may hold a few entries only) asked again in turn, 5 times
        each with a distinct `limit` (a distinct URL, nearly the same work): first and last are
        the medians of those, so that a drift of the machine during the walk does not decide
        the ratio."""
        times: list[float] = []
        last, full = path, 0
        while path and len(times) < limit:
            wall, _, _, code, body, _ = self.get(path)
            if code != 200:
                raise SystemExit(f"bench_search: {path} answered {code}: {body[:300]!r}")
            times.append(wall)
            if entries(body) >= full:
                last, full = path, entries(body)
            found = next_of(body)
            path = _local(found) if found else ""
        firsts, lasts = [], []
        for k in range(1, 6):
            for into, base in ((firsts, _first_of(last)), (lasts, last)):
                wall, cpu, server, code, _, _ = self.get(_with_limit(base, k))
                into.append((wall, cpu + server))
        return {
            "pages": len(times),
            "last_full_entries": full,
            "walk_first": times[0],
            "walk_last": times[-1],
            "walk_median": statistics.median(times),
            "walk_max": max(times),
            "first": statistics.median(w for w, _ in firsts),
            "last": statistics.median(w for w, _ in lasts),
            "first_cpu": statistics.median(c for _, c in firsts),
            "last_cpu": statistics.median(c for _, c in lasts),
        }

    def oldest_cursor(self, skip: int) -> str:
        """The `after=` cursor that leaves the `skip` oldest papers of the whole store."""
        from sqlalchemy import select

        from aggregator.store.schema import papers
        from aggregator.web.params import cursor_text

        store = self.app.extensions["aggregator"].store
        with store.engine.connect() as conn:
            row = conn.execute(
                select(papers.c.published, papers.c.id)
                .order_by(papers.c.published, papers.c.id)
                .offset(skip)
                .limit(1)
            ).one()
        return cursor_text(row[0], row[1])


def _first_of(path: str) -> str:
    """The first page of the walk `path` belongs to: the same URL without its cursor."""
    base, _, query = path.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith(("after=", "offset="))]
    return base + ("?" + "&".join(kept) if kept else "")


def _with_limit(path: str, less: int) -> str:
    """The same page asked with a limit `less` smaller (a distinct URL for the response cache)."""
    base, _, query = path.partition("?")
    parts = [p for p in query.split("&") if p]
    limit = next((int(p[6:]) for p in parts if p.startswith("limit=")), 50)
    parts = [p for p in parts if not p.startswith("limit=")] + [f"limit={limit - less}"]
    return base + "?" + "&".join(parts)


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def atom_next(body: bytes) -> str | None:
    found = re.search(rb'<link[^>]*rel="next"[^>]*>', body)
    if not found:
        return None
    href = re.search(rb'href="([^"]+)"', found[0])
    return href[1].decode().replace("&amp;", "&") if href else None


def atom_entries(body: bytes) -> int:
    return body.count(b"<entry>")


def json_entries(body: bytes) -> int:
    return len(json.loads(body)["papers"])


def json_next(body: bytes) -> str | None:
    found: str | None = json.loads(body).get("next")
    return found


def hostile_queries(vocab: Vocabulary) -> list[tuple[str, str]]:
    """(label, path) of queries meant to cost as much as the language allows."""
    letters = "abcdefghijklmnop"
    common = sorted(vocab.words(), key=vocab.share, reverse=True)
    common = [w for w in common if w.isalpha()][:70]
    two = []
    for w in common:
        if w[:2] not in two:
            two.append(w[:2])
    two = two[:16]
    nested = "(" * 64 + common[0] + ")" * 64
    nots = "NOT (" * 30 + common[0] + ")" * 30
    mixed = "(" * 20 + " OR ".join(f"{c}* AND NOT {c}*" for c in letters[:8]) + ")" * 20
    long_query = " OR ".join(f'"{common[i % 60]} {common[(i + 1) % 60]}"' for i in range(32))
    cases = [
        ("16 one-letter wildcards ORed", " OR ".join(f"{c}*" for c in letters)),
        ("16 two-letter wildcards ORed (common prefixes)", " OR ".join(f"{p}*" for p in two)),
        (
            "8 one- and 8 two-letter wildcards ORed",
            " OR ".join([*(f"{c}*" for c in letters[:8]), *(f"{p}*" for p in two[:8])]),
        ),
        ("NOT a common word", f"NOT {common[0]}"),
        ("NOT a broad word", f"NOT {vocab.broad()[0]}"),
        ("NOT a word no paper holds", "NOT zqzqzq"),
        ("-word (the minus form)", f"-{common[1]}"),
        ("a* AND NOT a*", "a* AND NOT a*"),
        ("two-letter p* AND NOT p*", f"{two[0]}* AND NOT {two[0]}*"),
        ("64 nested parentheses", nested),
        ("65 nested parentheses (over the limit)", "(" + nested + ")"),
        ("30 nested NOTs", nots),
        ("20-deep groups of 8 x AND NOT x*", mixed),
        ("64 common words ORed", " OR ".join(common[:64])),
        ("64 common words ANDed", " ".join(common[:64])),
        ("65 terms (over the limit)", " OR ".join(common[:65])),
        ("17 wildcards (over the limit)", " OR ".join(f"{c}*" for c in "abcdefghijklmnopq")),
        ("32 phrases of common words ORed", long_query),
        ("phrase of 60 common words", '"' + " ".join(common[:60]) + '"'),
        ("a common word alone", common[0]),
        ("author:a*", "author:a*"),
        ("category:c*", "category:c*"),
        ("title:(a* OR e*) AND NOT abstract:(a* OR e*)", "title:(a* OR e*) AND NOT abstract:(a* OR e*)"),
        ("topic:x AND NOT topic:x", "topic:efficient-llms AND NOT topic:efficient-llms"),
        ("4,000-character query", ("(" + " OR ".join(common[:12]) + ") ") * 40),
    ]
    paths = []
    for label, query in cases:
        query = query[:4000]
        paths.append((f"/api/papers {label}", q_path("/api/papers", query)))
    for label, query in cases[:9]:
        paths.append((f"/feeds/all.atom {label}", q_path("/feeds/all.atom", query)))
        paths.append((f"/search {label}", q_path("/search", query)))
        paths.append((f"/api/preview {label}", q_path("/api/preview", query, "&sample=100")))
    paths += [
        ("/api/papers broad word, offset 1e9", q_path("/api/papers", common[0], "&offset=1000000000")),
        ("/api/papers NOT word, offset 1e9", q_path("/api/papers", "NOT zqzqzq", "&offset=1000000000")),
        ("/feeds/all.atom offset 1e9, limit 500", "/feeds/all.atom?offset=1000000000&limit=500"),
        ("/api/papers 500 with a broad word", q_path("/api/papers", common[0], "&limit=500")),
        ("/api/papers since 1970, no q", "/api/papers?since=1970-01-01&limit=500&offset=100000"),
        ("/api/papers min_score 0 deep", "/api/papers?min_score=0&offset=500000"),
    ]
    return paths


def in_process(
    folder: Path, target: Target, source: QuerySource, vocab: Vocabulary, hostile: bool
) -> dict[str, Any]:
    slug = next(iter(target.info["topics"]))
    proc = InProcess(folder, target)
    out: dict[str, Any] = {"slug": slug, "topic_papers": target.info["topics"][slug]}
    try:
        proc.ms("/healthz")
        out["healthz"] = statistics.median(proc.ms("/healthz") for _ in range(50))
        # how many papers the queries match: the index's candidates (a single word's are its matches)
        counts = QuerySource(vocab, random.Random(1))
        out["index_counts"] = {
            kind: statistics.median(proc.index_count(counts.take(kind)) for _ in range(15))
            for kind in ("selective", "broad", "phrases")
        }
        # cold 200-entry topic feed: distinct URLs (offset 1..11), each asked once
        out["cold_feed"] = proc.both(
            [f"/feeds/{slug}.atom?limit={FEED_LIMIT}&offset={k}" for k in range(1, 12)]
        )
        # `/`: the first request renders, the rest are warm
        out["index_cold"] = proc.ms("/")
        out["index_warm"] = proc.both(["/"] * 200)
        # a topic feed walked with its next links, 200 entries a page
        out["topic_walk"] = proc.walk(f"/feeds/{slug}.atom?limit={FEED_LIMIT}", atom_next, atom_entries)
        # /feeds/all.atom: first pages vs last pages (after= a cursor among the oldest papers)
        first = proc.both([f"/feeds/all.atom?limit={FEED_LIMIT}&offset={k}" for k in range(1, 6)])
        last = proc.both(
            [
                f"/feeds/all.atom?limit={FEED_LIMIT}&after={proc.oldest_cursor(FEED_LIMIT + k)}"
                for k in range(1, 6)
            ]
        )
        out["all_first_last"] = {"first": first["wall"], "last": last["wall"]}
        # deep `offset=` (not keyset): what an old-style link costs
        deep = max(0, out["topic_papers"] - FEED_LIMIT)
        out["topic_deep_offset"] = proc.ms(f"/feeds/{slug}.atom?limit={FEED_LIMIT}&offset={deep}")
        # a selective q= walked with next links (50 a page) and a broad one's last page by after=
        word = source.take("selective")
        out["selective_walk"] = proc.walk(q_path("/api/papers", word), json_next, json_entries)
        broad = source.take("broad")
        firsts = proc.both([q_path("/api/papers", f"{broad} -zqfirst{k}") for k in range(3)])
        lasts = proc.both(
            [
                q_path("/api/papers", f"{broad} -zqlast{k}", f"&after={proc.oldest_cursor(200 + k)}")
                for k in range(3)
            ]
        )
        out["broad_first_last"] = {
            "first": firsts["wall"],
            "last": lasts["wall"],
            "statuses": [firsts["statuses"], lasts["statuses"]],
        }
        # selective and broad q= in process (the HTTP figures minus the server)
        out["selective_inproc"] = proc.both(
            [q_path("/api/papers", source.take("selective")) for _ in range(40)]
        )
        out["broad_inproc"] = proc.both([q_path("/api/papers", source.take("broad")) for _ in range(10)])
        out["phrase_inproc"] = proc.both([q_path("/api/papers", source.take("phrases")) for _ in range(20)])
        if hostile:
            rows = []
            for label, path in hostile_queries(vocab):
                wall, cpu, server, code, body, kind = proc.get(path)
                message = ""
                if code != 200:
                    text = body.decode(errors="replace")
                    if kind.startswith("application/json"):
                        text = json.loads(body).get("error", text)
                    message = " ".join(text.split())[:110]
                rows.append(
                    {
                        "label": label,
                        "wall": wall,
                        "cpu": cpu,
                        "server_cpu": server,
                        "status": code,
                        "type": kind.split(";")[0],
                        "message": message,
                    }
                )
                print(
                    f"    hostile {label}: {code} in {wall:.0f} ms, CPU {cpu:.0f} ms"
                    + (f" + server {server:.0f} ms" if proc.pg else "")
                    + (f" ({message})" if message else ""),
                    flush=True,
                )
            out["hostile"] = rows
    finally:
        proc.close()
    return out


# --- main --------------------------------------------------------------------------------------


def http_figures(
    folder: Path, targets: list[Target], source: QuerySource, args: argparse.Namespace
) -> dict[str, Any]:
    """Selective, broad and phrase queries over HTTP on every store of one backend, side by side;
    then the load on the largest."""
    servers = [Server(folder, t) for t in targets]
    out: dict[str, Any] = {}
    for target in targets:
        warm_cache(target)
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        for server in servers:  # warm-up: the first requests of a worker import and connect
            for _ in range(10):
                bs.get(server.port, "/healthz")
            for k in range(4):
                ask(server.port, q_path("/api/papers", f"warmup{k}"))
        floor = interleaved(servers, ["/healthz"] * 30)
        for server in servers:
            ask(server.port, "/")  # rendered once; then warm from the cache
        index = interleaved(servers, ["/"] * 30)
        selective = [q_path("/api/papers", source.take("selective")) for _ in range(args.queries)]
        broad = [q_path("/api/papers", source.take("broad")) for _ in range(args.broad)]
        phrases = [q_path("/api/papers", source.take("phrases")) for _ in range(args.phrases)]
        print(
            f"  {len(selective)} selective, {len(broad)} broad, {len(phrases)} phrase queries ...", flush=True
        )
        sized = {}
        for server in servers:
            words = source.vocab.sized(server.target.n)
            random.Random(args.seed).shuffle(words)
            sized[server.target.name] = [q_path("/api/papers", w) for w in words[: args.queries]]
        found = {
            "healthz": floor,
            "index": index,
            "selective": interleaved(servers, selective),
            "sized": interleaved_own(servers, sized),
            "broad": interleaved(servers, broad),
            "phrases": interleaved(servers, phrases),
        }
        for kind, per_store in found.items():
            out[kind] = {name: summary(timed) for name, timed in per_store.items()}
        big = servers[-1]
        for server in servers[:-1]:
            server.stop()
        warm_cache(big.target)
        print(f"  load: {args.clients} clients, {args.load_seconds:g} s on {big.target.name} ...", flush=True)
        out["load"] = load(big, source, args.clients, args.load_seconds, folder)
        out["load"]["load_average"] = os.getloadavg()[0]
    finally:
        for server in servers:
            server.stop()
    return out


def goals_of(
    backend: str, targets: list[Target], http: dict[str, Any], inproc: dict[str, Any]
) -> list[tuple[str, str, bool | None]]:
    """(goal, figure, held) rows for one backend; held None: not measured at that size."""
    names = [t.name for t in targets]
    small, large = names[0], names[-1]
    by_n = {t.n: t.name for t in targets}
    rows: list[tuple[str, str, bool | None]] = []
    sel, broad = http["selective"], http["broad"]
    at = f"{targets[-1].n:,}"
    rows.append(
        (
            f"selective `q=` p50 <= 100 ms, HTTP, {at}",
            f"{sel[large]['p50']:.1f} ms{_not_ok(sel[large])} (matches {sel[large]['matches_median']}, "
            f"{sel[large]['matches_range']})",
            sel[large]["p50"] <= 100,
        )
    )
    rows.append(
        (
            f"selective `q=` p99 <= 500 ms, HTTP, {at}",
            f"{sel[large]['p99']:.1f} ms (max {sel[large]['max']:.0f})",
            sel[large]["p99"] <= 500,
        )
    )
    rows.append(
        (
            f"broad `q=` first page <= 300 ms (p50), HTTP, {at}",
            f"{broad[large]['p50']:.1f} ms{_not_ok(broad[large])} (p99 {broad[large]['p99']:.0f}, "
            f"max {broad[large]['max']:.0f}; "
            f"index matches {inproc[large]['index_counts']['broad']:,.0f})",
            broad[large]["p50"] <= 300,
        )
    )
    sized = http["sized"]
    ratio = sized[large]["p50"] / sized[small]["p50"]
    rows.append(
        (
            f"selective p50 latency {at} / {targets[0].n:,} <= 1.5: queries of the same answer size "
            f"({SIZED_MATCHES[0]:,}-{SIZED_MATCHES[1]:,} matches at each size)",
            f"{ratio:.2f}x ({sized[large]['p50']:.1f} / {sized[small]['p50']:.1f} ms; matches "
            f"{sized[large]['matches_median']} / {sized[small]['matches_median']})",
            ratio <= 1.5,
        )
    )
    ratio = sel[large]["p50"] / sel[small]["p50"]
    rows.append(
        (
            f"(not a goal) the same selective words at both sizes, {at} / {targets[0].n:,}",
            f"{ratio:.2f}x ({sel[large]['p50']:.1f} / {sel[small]['p50']:.1f} ms; matches "
            f"{sel[large]['matches_median']} / {sel[small]['matches_median']}: a full page against a few)",
            None,
        )
    )
    ratio = broad[large]["p50"] / broad[small]["p50"]
    rows.append(
        (
            f"broad p50 latency {at} / {targets[0].n:,} <= 1.5",
            f"{ratio:.2f}x ({broad[large]['p50']:.1f} / {broad[small]['p50']:.1f} ms)",
            ratio <= 1.5,
        )
    )
    if 100_000 in by_n:
        ph = http["phrases"][by_n[100_000]]
        rows.append(
            (
                "selective phrase p50 <= 50 ms, HTTP, 100,000",
                f"{ph['p50']:.1f} ms{_not_ok(ph)} (p99 {ph['p99']:.0f}; "
                f"matches {ph['matches_median']}, {ph['matches_range']})",
                ph["p50"] <= 50,
            )
        )
    big = inproc[large]
    cold = big["cold_feed"]
    rows.append(
        (
            f"cold 200-entry topic feed <= 40 ms, in process, {at}",
            f"{cold['wall']:.1f} ms (median of 11; {min(cold['walls']):.0f}-{max(cold['walls']):.0f}; "
            f"CPU {cold['cpu']:.1f} ms)",
            cold["wall"] <= 40,
        )
    )
    rows.append(
        (
            f"`/` warm <= 10 ms, in process, {at}",
            f"{big['index_warm']['wall']:.2f} ms (p99 {big['index_warm']['p99']:.2f}; "
            f"cold {big['index_cold']:.0f}; over HTTP {http['index'][large]['p50']:.2f} ms)",
            big["index_warm"]["wall"] <= 10,
        )
    )
    walk = big["topic_walk"]
    ratio = walk["last"] / walk["first"]
    rows.append(
        (
            f"last full page / first page <= 1.5, topic feed walked by `next` "
            f"({walk['pages']} pages of 200), {at}",
            f"{ratio:.2f}x ({walk['last']:.1f} / {walk['first']:.1f} ms; CPU "
            f"{walk['last_cpu']:.1f} / {walk['first_cpu']:.1f}; in the walk {walk['walk_last']:.0f} / "
            f"{walk['walk_first']:.0f}, median {walk['walk_median']:.0f})",
            ratio <= 1.5,
        )
    )
    allfl = big["all_first_last"]
    ratio = allfl["last"] / allfl["first"]
    rows.append(
        (
            f"last page / first page <= 1.5, /feeds/all.atom `after=`, {at}",
            f"{ratio:.2f}x ({allfl['last']:.1f} / {allfl['first']:.1f} ms)",
            ratio <= 1.5,
        )
    )
    sw = big["selective_walk"]
    ratio = sw["last"] / sw["first"]
    rows.append(
        (
            f"last page / first page <= 1.5, selective `q=` by `next` ({sw['pages']} pages), {at}",
            f"{ratio:.2f}x ({sw['last']:.1f} / {sw['first']:.1f} ms; CPU {sw['last_cpu']:.1f} / "
            f"{sw['first_cpu']:.1f})",
            ratio <= 1.5,
        )
    )
    bfl = big["broad_first_last"]
    ratio = bfl["last"] / bfl["first"]
    rows.append(
        (
            f"last page / first page <= 1.5, broad `q=` `after=` the oldest, {at}",
            f"{ratio:.2f}x ({bfl['last']:.1f} / {bfl['first']:.1f} ms)",
            ratio <= 1.5,
        )
    )
    hostile = big.get("hostile", [])
    if hostile:
        worst_cpu = max(hostile, key=lambda h: h["cpu"] + h["server_cpu"])
        worst_wall = max(hostile, key=lambda h: h["wall"])
        bad = [
            h
            for h in hostile
            if h["status"] not in (200, 400, 503)
            or (h["status"] != 200 and not h["message"])
            or h["cpu"] + h["server_cpu"] > 1000
        ]
        cpu_ok = all(h["cpu"] + h["server_cpu"] <= 1000 for h in hostile)
        statuses = Counter(h["status"] for h in hostile)
        rows.append(
            (
                f"hostile requests ({len(hostile)}): CPU <= 1 s each, {at}",
                f"max {worst_cpu['cpu'] + worst_cpu['server_cpu']:.0f} ms ({worst_cpu['label']})",
                cpu_ok,
            )
        )
        rows.append(
            (
                f"hostile: 200, or 400/503 with a plain message, within the CPU budget, {at}",
                f"statuses {dict(statuses)}; slowest wall {worst_wall['wall']:.0f} ms ({worst_wall['label']})"
                + (f"; wrong: {[h['label'] for h in bad]}" if bad else ""),
                not bad,
            )
        )
    ld = http["load"]
    rows.append(
        (
            f"load, {ld['seconds']:g} s of distinct `q=`: zero 5xx, {at}",
            f"{ld['errors_5xx']} of {ld['requests']} ({ld['statuses']})",
            ld["errors_5xx"] == 0,
        )
    )
    rows.append(
        (
            "load: /healthz within 100 ms throughout (max)",
            f"max {ld['probe']['max']:.1f} ms, p99 {ld['probe']['p99']:.1f}, p50 {ld['probe']['p50']:.1f} "
            f"({ld['probe']['n']} probes, {ld['probe']['not_200']} not 200)",
            ld["probe"]["max"] <= 100 and ld["probe"]["not_200"] == 0,
        )
    )
    return rows


def _not_ok(found: dict[str, Any]) -> str:
    """`, 3 of 60 answered 503` when some requests did not answer 200."""
    bad = {k: v for k, v in found["statuses"].items() if k != 200}
    return "".join(f", {v} of {found['n']} answered {k}" for k, v in sorted(bad.items()))


def print_report(
    backend: str,
    targets: list[Target],
    http: dict[str, Any],
    inproc: dict[str, Any],
    rows: list[tuple[str, str, bool | None]],
) -> None:
    names = [t.name for t in targets]
    print()
    print(f"## {backend}")
    print(
        "| store | /healthz (HTTP floor) | selective p50 / p99 | broad p50 / p99 | phrase p50 / p99 "
        "| matches (index): selective, broad, phrase | in process, wall (CPU): selective, broad, phrase "
        "| cold 200 feed | `/` warm |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        h, s, b, p, ip = (
            http["healthz"][name],
            http["selective"][name],
            http["broad"][name],
            http["phrases"][name],
            inproc[name],
        )
        counts = ", ".join(f"{ip['index_counts'][k]:,.0f}" for k in ("selective", "broad", "phrases"))
        local = ", ".join(
            f"{ip[k]['wall']:.1f} ({ip[k]['cpu']:.1f})"
            for k in ("selective_inproc", "broad_inproc", "phrase_inproc")
        )
        print(
            f"| {name} | {h['p50']:.1f} ms | {s['p50']:.1f} / {s['p99']:.1f} ms "
            f"| {b['p50']:.1f} / {b['p99']:.1f} ms | {p['p50']:.1f} / {p['p99']:.1f} ms "
            f"| {counts} | {local} ms "
            f"| {ip['cold_feed']['wall']:.1f} ms (CPU {ip['cold_feed']['cpu']:.1f}) "
            f"| {ip['index_warm']['wall']:.2f} ms |"
        )
    ld = http["load"]
    print(
        f"load: {ld['requests']} requests in {ld['seconds']:g} s, statuses {ld['statuses']}, per kind "
        + ", ".join(
            f"{k} p50 {v['p50']:.0f} / p99 {v['p99']:.0f} ms (n {v['n']})"
            for k, v in ld["by_kind"].items()
            if v["p50"] is not None
        )
    )
    print("| goal | figure | held |")
    print("|---|---|---|")
    for goal, figure, held in rows:
        print(f"| {goal} | {figure} | {'yes' if held else 'NO' if held is not None else '-'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="keep (and reuse) the stores here")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="SQLite stores (papers)")
    parser.add_argument("--postgres", help="base URL: databases <its name>_<size> are made on that server")
    parser.add_argument("--pg-sizes", default="10000,100000,1000000", help="PostgreSQL stores (papers)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--queries", type=int, default=200, help="distinct selective queries per store")
    parser.add_argument("--broad", type=int, default=40, help="distinct broad queries per store")
    parser.add_argument("--phrases", type=int, default=60, help="distinct phrase queries per store")
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    folder = args.workdir.resolve()
    specs = topic_specs(load_config(bs.DEFAULT_CONFIG))
    seeds = bs.seed_sightings()
    vocab = Vocabulary(seeds)
    source = QuerySource(vocab, random.Random(args.seed))
    print(f"vocabulary: {source.counts()} (selective <= {SELECTIVE_MAX:.1%} of papers, broad {BROAD_SHARE})")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    backends: list[tuple[str, list[Target]]] = []
    print(f"stores under {folder}:")
    if not args.no_sqlite:
        sizes = sorted(int(s) for s in args.sizes.split(","))
        backends.append(("sqlite", [sqlite_target(folder, n, specs, seeds) for n in sizes]))
    if args.postgres:
        sizes = sorted(int(s) for s in args.pg_sizes.split(","))
        backends.append(
            ("postgresql", [postgres_target(args.postgres, folder, n, specs, seeds) for n in sizes])
        )
    results: dict[str, Any] = {"args": vars(args) | {"workdir": str(folder)}, "backends": {}}
    ok = True
    for backend, targets in backends:
        source = QuerySource(vocab, random.Random(args.seed))  # the same queries on every backend
        print(f"{backend}: over HTTP ...", flush=True)
        http = http_figures(folder, targets, source, args)
        results["backends"][backend] = {"http": http}  # kept even if what follows fails
        (folder / "search-results.json").write_text(json.dumps(results, indent=1, default=str))
        inproc = {}
        for target in targets:
            print(f"{target.name}: in process ...", flush=True)
            warm_cache(target)
            inproc[target.name] = in_process(folder, target, source, vocab, hostile=target is targets[-1])
        rows = goals_of(backend, targets, http, inproc)
        results["backends"][backend] = {"http": http, "in_process": inproc, "goals": rows}
        (folder / "search-results.json").write_text(json.dumps(results, indent=1, default=str))
        print_report(backend, targets, http, inproc, rows)
        ok = ok and all(held is not False for _, _, held in rows)
    print(f"\nload average at the end {os.getloadavg()}; results in {folder / 'search-results.json'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
