"""Real clients read the feeds over HTTP: newsboat (a terminal feed reader) subscribes to every
feed /feeds.opml lists and must read back every entry that feedparser finds in them.

newsboat is installed by .ci/run, which sets AGGREGATOR_REQUIRE_BROWSERS=1 and makes this
mandatory; elsewhere the test skips when the program is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import threading
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from tests.test_feeds import HOSTILE, TOPICS, Site, build

REQUIRE_CLIENTS = os.environ.get("AGGREGATOR_REQUIRE_BROWSERS") == "1"


@pytest.fixture
def newsboat() -> str:
    found = shutil.which("newsboat")
    if found is None:
        if REQUIRE_CLIENTS:
            pytest.fail("newsboat is required (AGGREGATOR_REQUIRE_BROWSERS=1) but not installed")
        pytest.skip("newsboat not installed (apt-get install newsboat)")
    return found


class _Late:
    """A WSGI app bound after the server: the server's port goes into the config's base_url
    before the app (and its absolute links) exist."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[str, Site]]:
    late = _Late()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, late, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    site = build(
        tmp_path,
        database_url,
        topics=dict(TOPICS, hostile="hostile"),
        extra={"hostile": ("hostile.xml", HOSTILE)},
        base_url=base,
    )
    late.app = site.app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, site
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        site.store.close()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: bytes = response.read()
    return body


def run_newsboat(binary: str, folder: Path, urls: list[str]) -> int:
    """Subscribe to `urls`, reload them all, and return the unread count newsboat prints."""
    folder.mkdir()
    (folder / "urls").write_text("\n".join(urls) + "\n")
    done = subprocess.run(
        [
            binary,
            "-u",
            folder / "urls",
            "-c",
            folder / "cache.db",
            "-C",
            "/dev/null",
            "-x",
            "reload",
            "print-unread",
        ],
        env=dict(os.environ, HOME=str(folder)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.match(r"\s*(\d+) unread articles?", done.stdout)
    assert match, done.stdout + done.stderr
    return int(match.group(1))


def web(link: str | None) -> str:
    """A link a reader can open; feedparser offers a tag: id as the link of an entry without one."""
    return link if link and link.startswith(("http://", "https://")) else ""


def articles(folder: Path) -> dict[str, tuple[str, str]]:
    """What newsboat stored: id -> (title, link)."""
    with sqlite3.connect(folder / "cache.db") as conn:
        rows = conn.execute("SELECT guid, title, url FROM rss_item").fetchall()
    return {guid: (title, url) for guid, title, url in rows}


def test_newsboat_reads_every_feed_of_the_opml(
    newsboat: str, served: tuple[str, Site], tmp_path: Path
) -> None:
    binary, (base, site) = newsboat, served
    opml = ET.fromstring(fetch(f"{base}/feeds.opml?feeds=all"))
    urls = [o.get("xmlUrl") or "" for o in opml.iter("outline")]
    assert urls == [f"{base}/feeds/{s}.atom" for s in site.slugs()]

    ids: dict[str, list[str]] = {}
    entries: dict[str, dict[str, tuple[str, str]]] = {}
    for url in urls:  # what a reference parser finds in each one, read over HTTP
        parsed = feedparser.parse(fetch(url))
        assert parsed.bozo == 0, (url, parsed.get("bozo_exception"))
        ids[url] = [e.id for e in parsed.entries]
        entries[url] = {e.id: (e.title, web(e.get("link"))) for e in parsed.entries}
    assert ids[f"{base}/feeds/nothing.atom"] == []
    assert ids[f"{base}/feeds/hostile.atom"]
    # newsboat keeps one article per id, whichever feeds carry it (a paper is in `all` and its topics)
    distinct = len({i for found in ids.values() for i in found})
    assert distinct > 50

    assert run_newsboat(binary, tmp_path / "atom", urls) == distinct
    for n, url in enumerate(urls):  # and each feed on its own gives every one of its entries
        assert run_newsboat(binary, tmp_path / f"atom-{n}", [url]) == len(ids[url]), url
        assert articles(tmp_path / f"atom-{n}") == entries[url]  # same ids, titles and links
    # the RSS twin of every feed reads the same
    rss = [u.removesuffix(".atom") + ".rss" for u in urls]
    for url in rss:
        parsed = feedparser.parse(fetch(url))
        assert parsed.bozo == 0, (url, parsed.get("bozo_exception"))
        assert [e.id for e in parsed.entries] == ids[url.removesuffix(".rss") + ".atom"]
    assert run_newsboat(binary, tmp_path / "rss", rss) == distinct


def test_newsboat_finds_every_topic_of_the_default_opml_with_its_papers(
    newsboat: str, served: tuple[str, Site], tmp_path: Path
) -> None:
    """Subscribed to the default OPML at once, newsboat shows every topic that has papers with
    papers of its own: no feed there repeats another's entries wholesale (`all` is left out)."""
    binary, (base, _site) = newsboat, served
    opml = ET.fromstring(fetch(f"{base}/feeds.opml"))
    urls = [o.get("xmlUrl") or "" for o in opml.iter("outline")]
    assert f"{base}/feeds/all.atom" not in urls and urls
    with_papers = [u for u in urls if feedparser.parse(fetch(u)).entries]
    assert len(with_papers) >= 2
    run_newsboat(binary, tmp_path / "default", urls)
    with sqlite3.connect(tmp_path / "default" / "cache.db") as conn:
        shown = dict(conn.execute("SELECT feedurl, count(*) FROM rss_item GROUP BY feedurl").fetchall())
    assert all(shown.get(url, 0) > 0 for url in with_papers), shown
