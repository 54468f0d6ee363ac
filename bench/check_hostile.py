"""Hostile feeds served from 127.0.0.1 beside the five healthy dedup-dev sources: ingest must survive.

    python bench/check_hostile.py [--per-suite 150] [--seed N] [--timeout 1800] [HOSTILE_DIR]

HOSTILE_DIR defaults to tests/data/hostile (the suites the tests use). A sample of each suite (the
seed is printed; pass it back to repeat a run) is served by a local HTTP server on 127.0.0.1 (`.gz`
files with Content-Encoding: gzip) and configured as sources together with tests/data/dedup-dev;
`aggregator ingest --all` runs as a subprocess into a temporary SQLite store. Checks: exit status 0
or 1; no Traceback on stderr; no source failed with "internal error" (each is replayed in-process
to show its traceback); every healthy source has papers; no stored title, abstract, author or link
holds active content (markup that was escaped text in the source is reported, not failed). Prints
peak RSS and wall time of the ingest. Exits 0 when all holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import gzip
import html.parser
import http.server
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import feedparser

from aggregator import create_app
from aggregator.config import config_from_text, load_config
from aggregator.ingest.pipeline import Pipeline
from aggregator.runtime import open_store

PROJECT = Path(__file__).resolve().parents[1]
HEALTHY = PROJECT / "tests/data/dedup-dev"
SUFFIXES = (".xml", ".rss", ".atom", ".rdf", ".gz", ".json")
ACTIVE = {  # as measure.py looks for it, plus the brief's literal markers
    "<script": r"<script", "javascript: URL": r"(?:java|vb)script\s*:", "onerror=": r"onerror\s*=",
    "on* handler": r"<[a-z][^>]*\son[a-z]+\s*=", "<iframe": r"<iframe[\s>/]", "<object": r"<object[\s>/]",
    "<embed": r"<embed[\s>/]", "<base": r"<base[\s>/]", "<meta refresh": r"<meta[^>]*refresh",
    "css expression": r"expression\s*\(",
}  # fmt: skip
ACTIVE_SCHEME = re.compile(r"(?:java|vb)script:|data:", re.I)  # checked with whitespace and controls removed
BIGGEST = 1_000_000  # characters: no real title or abstract comes near (the largest real blog post is 90 KB)


class Files(http.server.BaseHTTPRequestHandler):
    root = Path()

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        f = (self.root / unquote(urlsplit(self.path).path).lstrip("/")).resolve()
        if not f.is_file() or self.root not in f.parents:
            self.send_error(404)
            return
        body = f.read_bytes()
        self.send_response(200)
        if f.suffix == ".gz":
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Type", "application/json" if f.suffix == ".json" else "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def sample(root: Path, per_suite: int, seed: int) -> list[Path]:
    suites: dict[str, list[Path]] = {}
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.suffix in SUFFIXES and "LICENSE" not in f.name:
            suites.setdefault(f.relative_to(root).parts[0], []).append(f)
    rng, chosen = random.Random(seed), []
    for files in suites.values():
        chosen += files if len(files) <= per_suite else rng.sample(files, per_suite)
    return chosen


def run_ingest(config: Path, timeout: float) -> tuple[int, str, int, float]:
    """Exit status, stderr, peak RSS (KiB) and wall time of `aggregator ingest --all`; killed at timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    exe, err = Path(sys.executable).parent / "aggregator", config.parent / "ingest.err"
    start = time.perf_counter()
    with err.open("w") as stderr:
        child = subprocess.Popen(
            [str(exe), "--config", str(config), "ingest", "--all"],
            stdout=subprocess.DEVNULL, stderr=stderr, env=env, start_new_session=True,
        )  # fmt: skip
        watchdog = threading.Timer(timeout, os.killpg, (child.pid, signal.SIGKILL))
        watchdog.start()
        _, status, usage = os.wait4(child.pid, 0)
        watchdog.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, err.read_text(errors="replace"), usage.ru_maxrss, time.perf_counter() - start


def replay(url: str, tmp: Path) -> str:
    """The traceback of one source's internal error, replayed in-process into a fresh store."""
    caught: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                caught.append("".join(traceback.format_exception(*record.exc_info)))

    log = logging.getLogger("aggregator.ingest.pipeline")
    log.addHandler(handler := Catch())
    db = tmp / f"replay{len(list(tmp.glob('replay*')))}.db"
    text = f"database: sqlite:///{db}\nfetch:\n  timeout: 10s\n  allow_networks: [127.0.0.0/8]\n"
    config = config_from_text(
        text + f"sources:\n  - name: x\n    url: {json.dumps(url)}\n", base_dir=tmp, env={}
    )
    store = open_store(config)
    try:
        Pipeline(config, store).run(list(config.sources))
    finally:
        store.close()
        log.removeHandler(handler)
    return caught[0] if caught else "(not reproduced in-process)"


class _Text(html.parser.HTMLParser):
    """The text a browser shows for a piece of HTML (script and style bodies dropped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        self.parts.append("" if self.skip else data)


def source_text(file: Path, entry_id: str, field: str) -> str | None:
    """What the source meant as text for this field of this entry (HTML rendered), None if not found."""
    body = file.read_bytes()
    body = gzip.decompress(body) if file.suffix == ".gz" else body
    d: Any = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    for e in d.entries:
        if entry_id not in (e.get("id"), e.get("link"), e.get("title")):
            continue
        details = {"title": [e.get("title_detail")], "authors": [a for a in e.get("authors", [])]}
        details["abstract"] = [e.get("summary_detail"), *e.get("content", [])]
        out = []
        for det in filter(None, details.get(field, [])):
            value, kind = det.get("value") or det.get("name") or "", det.get("type") or "text/plain"
            if "html" in kind:
                (p := _Text()).feed(value)
                value = "".join(p.parts)
            out.append(value)
        return "\n".join(out)
    return None


def read_back(config_file: Path, healthy: dict[str, str]) -> tuple[dict[str, Any], list[Any], list[str]]:
    """Source states and every paper, through the API as a user reads them; healthy sources checked."""
    config, problems = load_config(config_file, env={}), []
    store = open_store(config)
    try:
        client = create_app(config, store=store).test_client()
        states = {s["name"]: s for s in client.get("/api/sources").get_json()["sources"]}
        for name in healthy:
            total = client.get(f"/api/papers?source={name}&limit=1").get_json()["total"]
            if not total or states[name]["last_error"]:
                problems.append(
                    f"healthy source {name}: {total} papers, error {states[name]['last_error']!r}"
                )
        papers: list[Any] = []
        url: str | None = "/api/papers?limit=500"
        while url:
            page = client.get(url).get_json()
            papers += page["papers"]
            url = (lambda u: f"{u.path}?{u.query}")(urlsplit(page["next"])) if page["next"] else None
    finally:
        store.close()
    return states, papers, problems


def scan(p: dict[str, Any], files: dict[str, Path], problems: list[str], notes: list[str]) -> list[str]:
    """Active content, active links and oversized fields in one paper; returns its non-http(s) links."""
    odd = []
    links = [(f"links.{k}", v) for k, v in p["links"].items()]
    for field, value in links + [("sightings.link", s["link"]) for s in p["sightings"] if s["link"]]:
        if ACTIVE_SCHEME.match(re.sub(r"[\x00-\x20]", "", value)):
            problems.append(f"active link {field}={value[:120]!r} in paper {p['id']}")
        elif not re.match(r"https?://", value, re.I):
            odd.append(f"{field}={value[:80]!r}")
    origin = [str(files.get(s["source"], s["source"])) for s in p["sightings"]]
    if not p["title"].strip():
        notes.append(f"empty title: paper {p['id']} from {origin}")
    for field, value in [("title", p["title"]), ("abstract", p["abstract"])] + [
        ("authors", a) for a in p["authors"]
    ]:
        if len(value) > BIGGEST:
            problems.append(f"{field} of {len(value):,} characters stored (paper {p['id']}, from {origin})")
        kinds = [k for k, rx in ACTIVE.items() if re.search(rx, value, re.I)]
        if not kinds:
            continue
        seen = next((s for s in p["sightings"] if s["source"] in files), None)
        meant = source_text(files[seen["source"]], seen["entry_id"], field) if seen else None
        where = f"{origin} {field} {value[:120]!r}"
        if meant is not None and all(re.search(ACTIVE[k], meant, re.I) for k in kinds):
            notes.append(f"{', '.join(kinds)} (escaped text in source): {where}")
        else:
            problems.append(f"active content {', '.join(kinds)} not from source text: {where}")
    return odd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=str(PROJECT / "tests" / "data" / "hostile"))
    ap.add_argument("--per-suite", type=int, default=150)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds before the ingest is killed")
    args = ap.parse_args()
    root = Path(args.root).resolve()
    chosen = sample(root, args.per_suite, args.seed)
    healthy = json.loads((HEALTHY / "truth.json").read_text())["sources"]
    Files.root = root
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    files = {f"h{i}": f for i, f in enumerate(chosen)}
    urls = {name: f"{base}/{quote(f.relative_to(root).as_posix())}" for name, f in files.items()}
    urls |= {name: (HEALTHY / f).as_uri() for name, f in healthy.items()}
    print(f"seed {args.seed}: {len(chosen)} hostile inputs + {len(healthy)} healthy sources; ingesting ...")
    notes: list[str] = []
    odd: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="check-hostile-") as tmp_name:
            tmp = Path(tmp_name)
            src = "".join(f"  - name: {n}\n    url: {json.dumps(u)}\n" for n, u in urls.items())
            (tmp / "config.yaml").write_text(
                f"database: sqlite:///{tmp}/store.db\nsite:\n  base_url: http://127.0.0.1:8000\n"
                f"fetch:\n  timeout: 10s\n  allow_networks: [127.0.0.0/8]\nsources:\n{src}"
            )
            rc, stderr, peak, took = run_ingest(tmp / "config.yaml", args.timeout)
            states, papers, problems = read_back(tmp / "config.yaml", healthy)
            if rc not in (0, 1):
                problems.append(f"ingest exited {rc}: {stderr.strip()[-300:]}")
            if "Traceback" in stderr:
                problems.append("a traceback escaped ingest:\n" + stderr[stderr.index("Traceback") :][:2000])
            internal = {
                n: s["last_error"] for n, s in states.items() if "internal error" in (s["last_error"] or "")
            }
            for name, error in internal.items():
                tb = replay(urls[name], tmp).strip().replace("\n", "\n    ")
                problems.append(f"internal error on {files[name]}: {error}\n    {tb}")
            for p in papers:
                odd += scan(p, files, problems, notes)
    finally:
        server.shutdown()
    if odd:
        notes.append(f"{len(odd)} links are not http(s), e.g. {', '.join(odd[:3])}")
    failed = sum(1 for s in states.values() if s["last_error"])
    per_input = took / max(1, len(chosen))
    print(f"ingest exit {rc}; {took:.1f} s ({per_input:.3f} s per input); peak RSS {peak / 1024:.0f} MB")
    print(f"{len(states)} sources, {failed} failed, {len(internal)} internal errors; {len(papers)} papers")
    reasons = Counter(
        re.sub(r"\S+://\S+|\d+", "#", s["last_error"])[:90] for s in states.values() if s["last_error"]
    )
    for reason, n in reasons.most_common():
        print(f"  {n:4} failed: {reason}")
    for line in notes:
        print("NOTE", line)
    for line in problems:
        print("PROBLEM", line)
    print(f"{len(problems)} problem(s)" if problems else "all checks hold", f"(seed {args.seed})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
