"""Ingest every real capture under a folder of feeds, each as its own source, and check the store.

    python bench/check_captures.py FEEDS_DIR        # e.g. tests/data, or a larger set of captures

In-process, through the real code path (config_from_text, open_store, Pipeline) into a fresh
temporary SQLite store; papers are read back through /api/papers with the app's test client.
Checks: every arXiv id a capture names is stored once (and carries that capture's sighting);
author counts (rss.arxiv.org: comma-split dc:creator; API: <author> elements); the two error
feeds fail with a message and yield no paper; no title "Error" or empty; no `<script`, XML-illegal
character or mojibake in title, abstract or authors; every `published` plausible. Files in formats
that are no feed (arXiv exchange wrappers, Semantic Scholar, medRxiv, ACL XML) may fail, but not
with an internal error. Prints a table per file; exits 0 when all holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser

from aggregator import create_app
from aggregator.config import config_from_text
from aggregator.ingest import pipeline as pipeline_module
from aggregator.ingest.parse import parse_feed as real_parse
from aggregator.ingest.pipeline import Pipeline
from aggregator.runtime import open_store
from aggregator.types import ParsedFeed

ARXIV_ID = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)/|arXiv:|oai:arXiv\.org:|huggingface\.co/papers/)"
    r"((?:\d{4}\.\d{4,5})|(?:[a-z-]+(?:\.[A-Z]{2})?/\d{7}))"
)
ERROR_FEEDS = ("arxiv-rss/aioarxiv-2024-11-28/error_rss_mock_feed.xml", "arxiv-api/arxiv-py-2026/xml/id_abc_")
NOT_FEEDS = ("semantic-scholar/", "medrxiv-api/", "acl-anthology/")
ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|â€|Â[\u00a0-\u00bf]|Ã©|Ã¼|\ufffd")
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


def capture_files(root: Path) -> list[Path]:
    suffixes = (".xml", ".json", ".atom", ".rss")
    return sorted(f for f in root.rglob("*") if f.is_file() and f.suffix in suffixes)


def is_feed(rel: str) -> bool:
    """A feed format the product must read (not an exchange wrapper or another service's JSON/XML)."""
    return not any(p in rel for p in NOT_FEEDS) and not re.match(r"arxiv-api/arxiv-py-2026/[^/]+\.json$", rel)


def expected_ids(path: Path) -> tuple[set[str], dict[str, tuple[int, bool]]]:
    """arXiv ids the capture names, and author counts (count, from the API) where the format fixes them."""
    ids: set[str] = set()
    authors: dict[str, tuple[int, bool]] = {}
    if path.suffix == ".json":
        data = json.loads(path.read_bytes())
        items = data if isinstance(data, list) else data.get("items", []) if isinstance(data, dict) else []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("paper"), dict):
                ids.add(str(item["paper"]["id"]))
            elif isinstance(item, dict):
                text = " ".join(str(item.get(k) or "") for k in ("id", "url", "external_url"))
                ids.update(m.group(1) for m in [ARXIV_ID.search(text)] if m)
        return ids, authors
    d: Any = feedparser.parse(path.read_bytes())
    where = (d.feed.get("id") or "") + " " + (d.feed.get("link") or "")
    for e in d.entries:
        text = " ".join(
            [e.get("id", ""), e.get("link", "")] + [lk.get("href", "") for lk in e.get("links", [])]
        )
        m = ARXIV_ID.search(text)
        if not m or "api/errors" in e.get("id", ""):
            continue
        ids.add(m.group(1))
        if "rss.arxiv.org" in where and e.get("author"):
            authors[m.group(1)] = (len([a for a in e["author"].split(",") if a.strip()]), False)
        elif "arxiv.org/api" in where and e.get("authors"):
            authors[m.group(1)] = (len(e["authors"]), True)
    return ids, authors


def read_papers(app: Any, source: str | None = None) -> list[dict[str, Any]]:
    client, out = app.test_client(), []
    url: str | None = "/api/papers?limit=500" + (f"&source={source}" if source else "")
    while url:
        page = client.get(url).get_json()
        out += page["papers"]
        url = (lambda u: f"{u.path}?{u.query}")(urlsplit(page["next"])) if page["next"] else None
    return out


def text_problems(p: dict[str, Any], now: datetime) -> list[str]:
    found, pid = [], p.get("arxiv_id") or p["id"]
    title = (p.get("title") or "").strip()
    if not title or title.lower() == "error":
        found.append(f"{pid}: title {title!r}")
    for field, value in [("title", p.get("title")), ("abstract", p.get("abstract"))] + [
        ("authors", a) for a in p.get("authors") or []
    ]:
        for what, rx in (
            ("<script", re.compile("<script", re.I)),
            ("illegal char", ILLEGAL),
            ("mojibake", MOJIBAKE),
        ):
            if value and (m := rx.search(value)):
                found.append(f"{pid}: {what} in {field}: {value[max(0, m.start() - 30) : m.end() + 30]!r}")
    published = datetime.fromisoformat(p["published"].replace("Z", "+00:00"))
    if not EARLIEST <= published <= now + timedelta(days=1):
        found.append(f"{pid}: implausible published {p['published']}")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feeds", help="a folder of captured feeds (searched recursively)")
    root = Path(ap.parse_args().feeds).resolve()
    logging.basicConfig(level=logging.ERROR)  # internal errors are logged with their traceback
    files = capture_files(root)
    if not files:
        print(f"no captures under {root}")
        return 1
    rel = {f"c{i:02d}": f.relative_to(root).as_posix() for i, f in enumerate(files)}
    seen: dict[str, tuple[str, int]] = {}

    def recording_parse(body: bytes, *, kind: str | None = None, url: str | None = None) -> ParsedFeed:
        feed = real_parse(body, kind=kind, url=url)
        seen[url or ""] = (feed.kind, len(feed.entries))  # what the pipeline saw, entries not kept
        return feed

    vars(pipeline_module)["parse_feed"] = recording_parse  # observe the kind the pipeline detects
    problems: list[str] = []
    expected: dict[str, set[str]] = {}  # arXiv id -> sources naming it
    authors: dict[str, tuple[int, bool, str]] = {}
    with tempfile.TemporaryDirectory(prefix="check-captures-") as tmp:
        sources = "".join(
            f"  - name: {n}\n    url: {json.dumps((root / r).as_uri())}\n" for n, r in rel.items()
        )
        text = f"database: sqlite:///{tmp}/store.db\nsite:\n  base_url: http://127.0.0.1:8000\nsources:\n{sources}"
        config = config_from_text(text, base_dir=Path(tmp), env={})
        store = open_store(config)
        try:
            outcomes = {o.source: o for o in Pipeline(config, store).run(list(config.sources))}
            app = create_app(config, store=store)
            papers = read_papers(app)
            by_source = {n: len(read_papers(app, n)) for n, r in rel.items() if r.startswith(ERROR_FEEDS)}
        finally:
            store.close()
    now = datetime.now(UTC)
    print(f"{'file':<70} {'kind':<15} {'entries':>7} {'new':>5} {'ids':>4}  result")
    for name, r in rel.items():
        o, feed = outcomes[name], seen.get((root / r).as_uri())
        ids, counts = expected_ids(root / r) if is_feed(r) and not r.startswith(ERROR_FEEDS) else (set(), {})
        for i in ids:
            expected.setdefault(i, set()).add(name)
        for i, (n, api) in counts.items():
            if api or not authors.get(i, (0, False, ""))[1]:
                authors[i] = (n, api, r)
        kind, entries = feed if feed else ("-", "-")
        expect_fail = r.startswith(ERROR_FEEDS) or not is_feed(r)
        result = "ok" if not o.failed else f"{'failed as expected' if expect_fail else 'FAILED'}: {o.error}"
        print(f"{r[-70:]:<70} {kind:<15} {entries:>7} {o.new:>5} {len(ids):>4}  {result}")
        if o.error and "internal error" in o.error:
            problems.append(f"{r}: {o.error}")
        if r.startswith(ERROR_FEEDS):
            if not o.error or "error" not in o.error.lower() or "internal error" in o.error:
                problems.append(f"{r}: error feed did not fail with a clear message ({o.error!r})")
            if by_source.get(name):
                problems.append(f"{r}: error feed produced {by_source[name]} paper(s)")
        elif o.failed and is_feed(r):
            problems.append(f"{r}: real feed failed: {o.error}")
    by_id: dict[str, list[dict[str, Any]]] = {}
    for p in papers:
        if p.get("arxiv_id"):
            by_id.setdefault(re.sub(r"v\d+$", "", p["arxiv_id"]), []).append(p)
        problems += text_problems(p, now)
    for i, names in sorted(expected.items()):
        if i not in by_id:
            problems.append(f"{i} (named in {rel[min(names)]}) not stored")
            continue
        if len(by_id[i]) > 1:
            problems.append(f"{i} stored {len(by_id[i])} times: ids {[p['id'] for p in by_id[i]]}")
        have = {s["source"] for p in by_id[i] for s in p["sightings"]}
        if names - have:
            problems.append(f"{i}: no sighting from {[rel[n] for n in sorted(names - have)]}")
    for i, (n, _api, r) in sorted(authors.items()):
        got = len(by_id[i][0]["authors"]) if i in by_id else None
        if got is not None and got != n:
            problems.append(f"{i}: {got} authors stored, {n} in {r}")
    print(
        f"\n{len(files)} captures, {sum(o.failed for o in outcomes.values())} failed; "
        f"{len(papers)} papers stored; "
        f"{len(expected)} arXiv ids expected, author counts checked for {len(authors)}"
    )
    for line in problems[:25]:
        print("PROBLEM", line)
    if len(problems) > 25:
        print(f"... and {len(problems) - 25} more")
    print(f"{len(problems)} problem(s)" if problems else "all checks hold")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
