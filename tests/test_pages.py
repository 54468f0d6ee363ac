"""The HTML pages `/` and `/topics/<slug>`: content, autodiscovery, escaping, and a real browser."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from aggregator import create_app
from aggregator.config import Config
from aggregator.ingest.pipeline import Pipeline
from aggregator.runtime import open_store
from aggregator.store.pages import PageQuery
from aggregator.store.repository import Store
from aggregator.topics.query import parse_query, positive_terms
from aggregator.web.pages import http_url, marked_title
from tests.conftest import make_config, shared_database_url

DEDUP = Path(__file__).parent / "data" / "dedup-dev"
DOCS = Path(__file__).parent.parent / "docs"
BASE = "http://papers.example.org"
REQUIRE_BROWSERS = os.environ.get("AGGREGATOR_REQUIRE_BROWSERS") == "1"

HOSTILE_ITEM = """<item>
<title>&lt;script&gt;alert(1)&lt;/script&gt;Pruning &lt;b&gt;LLMs&lt;/b&gt;</title>
<link>https://blog.example.net/posts/pruning-llms</link>
<guid>https://blog.example.net/posts/pruning-llms</guid>
<description>&lt;img src=x onerror=alert(1)&gt; We prune large language models
&lt;a href="javascript:alert(2)"&gt;here&lt;/a&gt;.</description>
</item>"""
# Markup written as text (escaped twice): it survives cleaning as literal `<script>` characters.
LITERAL_ITEM = """<item>
<title>Sparse LLMs &amp;lt;script&amp;gt;alert(3)&amp;lt;/script&amp;gt;
&amp;lt;img src=x onerror=alert(4)&amp;gt;</title>
<link>javascript:alert(5)</link>
<guid isPermaLink="false">literal-markup</guid>
<description>&amp;lt;img src=x onerror=alert(6)&amp;gt; LLM pruning, written as text.</description>
</item>"""
# Long unbroken words must wrap on a phone rather than widen the page.
LONG_ITEM = f"""<item>
<title>LLM {"Overlong" * 20} https://example.org/{"path/" * 20}</title>
<link>https://blog.example.net/posts/{"long-" * 30}</link>
<guid>https://blog.example.net/posts/long</guid>
<pubDate>Mon, 01 Jan 2001 00:00:00 GMT</pubDate>
<author>{"Authorname" * 12}</author>
<category>{"category." * 7}</category>
<description>Language models, {"again" * 40}.</description>
</item>"""

TOPICS = """topics:
  - slug: llm
    title: Language models
    description: Large language models & what they do
    query: 'LLM* OR "language model*"'
  - slug: vision
    title: Vision
    description: Images and video
    query: image* OR vision OR visual OR video*
  - slug: efficient-llms
    title: Efficient LLMs
    query: topic:llm AND (prun* OR sparse OR quantiz* OR efficien* OR "KV cache")
"""


def build(
    folder: Path, database_url: str, items: tuple[str, ...] = (HOSTILE_ITEM, LONG_ITEM)
) -> tuple[Config, Store]:
    """The dedup-dev sources plus a hand-written blog feed, ingested and tagged."""
    for name in ("arxiv-rss.xml", "hf-daily.json", "venue.atom"):
        shutil.copy(DEDUP / name, folder / name)
    (folder / "blog.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Blog</title>'
        "<link>https://blog.example.net/</link><description>a blog</description>\n"
        + "\n".join(items)
        + "\n</channel></rss>\n"
    )
    sources = "sources:\n" + "".join(
        f"  - {{name: {name}, url: 'file:{file}'}}\n"
        for name, file in [
            ("rss", "arxiv-rss.xml"),
            ("hf", "hf-daily.json"),
            ("venue", "venue.atom"),
            ("blog", "blog.xml"),
        ]
    )
    config = make_config(folder, sources + TOPICS, database_url)
    store = open_store(config)
    pipeline = Pipeline(config, store)
    outcomes = pipeline.run(pipeline.select())
    assert not [o for o in outcomes if o.failed], outcomes
    return config, store


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, Store]]:
    """One site for the tests that only read it."""
    folder = tmp_path_factory.mktemp("pages")
    config, store = build(folder, shared_database_url(folder, "pages"))
    yield create_app(config, store=store), store
    store.close()


@pytest.fixture
def client(site: tuple[Flask, Store]) -> FlaskClient:
    return site[0].test_client()


class Page(HTMLParser):
    """What the tests look at in a page: tags with attributes, link texts, headings, text."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.headings: list[tuple[int, str]] = []
        self.marks: list[str] = []
        self.text: list[str] = []
        self._open: list[tuple[str, dict[str, str], list[str]]] = []
        self.feed(body)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append((tag, found))
        if tag in ("a", "h1", "h2", "h3", "h4", "mark"):
            self._open.append((tag, found, []))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            _, attrs, parts = self._open.pop()
            text = " ".join("".join(parts).split())
            if tag == "a":
                self.links.append((attrs.get("href", ""), text))
            elif tag == "mark":
                self.marks.append(text)
            else:
                self.headings.append((int(tag[1]), text))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for _, _, parts in self._open:
            parts.append(data)

    def all(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in wanted.items())]

    def alternates(self) -> dict[str, str]:
        return {a["href"]: a["type"] for a in self.all("link", rel="alternate")}


def page(client: FlaskClient, path: str) -> Page:
    response = client.get(path)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/html"
    return Page(response.get_data(as_text=True))


# --- the index ---------------------------------------------------------------------------------


def test_index_lists_every_topic_with_its_count_and_feed_urls(client: FlaskClient) -> None:
    counts = {t["slug"]: t["count"] for t in client.get("/api/topics").get_json()["topics"]}
    assert all(counts.values()), counts
    index = page(client, "/")
    text = " ".join("".join(index.text).split())
    hrefs = {href for href, _ in index.links}
    for slug, title, count in [
        ("llm", "Language models", counts["llm"]),
        ("vision", "Vision", counts["vision"]),
        ("efficient-llms", "Efficient LLMs", counts["efficient-llms"]),
    ]:
        assert ("/topics/" + slug, title) in index.links
        assert f"{count} paper" in text
        for ext in ("atom", "rss", "json"):
            url = f"{BASE}/feeds/{slug}.{ext}"
            assert url in hrefs
            assert url not in text  # a card stays compact: the URLs to copy are on the topic page
        assert f"/topics/{slug}#subscribe" in hrefs
        assert f"{BASE}/feeds/{slug}.atom" in "".join(page(client, f"/topics/{slug}").text)
    assert "Large language models & what they do" in text
    for url in (
        f"{BASE}/feeds.opml",
        f"{BASE}/feeds/all.atom",
        f"{BASE}/feeds/all.rss",
        f"{BASE}/feeds/all.json",
    ):
        assert url in hrefs and url in text
    # every subscribe URL answers on this server
    for href in hrefs:
        if href.startswith(BASE + "/feeds"):
            assert client.get(href.removeprefix(BASE)).status_code == 200, href


def test_index_shows_the_twenty_newest_papers_with_topic_badges(client: FlaskClient) -> None:
    newest = client.get("/api/papers?limit=20").get_json()["papers"]
    index = page(client, "/")
    h3 = [text for level, text in index.headings if level == 3]
    titles = [p["title"] for p in newest]
    assert h3[-len(titles) :] == titles  # in feed order, after the topic cards
    assert len(titles) == 20
    badges = [href for href, _ in index.links if href.startswith("/topics/")]
    assert len(badges) > len({"llm", "vision", "efficient-llms"})
    arxiv = next(p for p in newest if p["arxiv_id"])
    assert (f"https://arxiv.org/abs/{arxiv['arxiv_id']}", arxiv["title"]) in index.links
    body = client.get("/").get_data(as_text=True)
    assert f'<time datetime="{arxiv["published"].replace("Z", "+00:00")}">' in body


def test_every_page_has_absolute_autodiscovery_links(client: FlaskClient) -> None:
    index = page(client, "/").alternates()
    for slug in ("llm", "vision", "efficient-llms", "all"):
        assert index[f"{BASE}/feeds/{slug}.atom"] == "application/atom+xml"
    assert index[f"{BASE}/feeds/all.rss"] == "application/rss+xml"
    assert index[f"{BASE}/feeds/all.json"] == "application/feed+json"
    topic = page(client, "/topics/vision").alternates()
    assert topic == {
        f"{BASE}/feeds/vision.atom": "application/atom+xml",
        f"{BASE}/feeds/vision.rss": "application/rss+xml",
        f"{BASE}/feeds/vision.json": "application/feed+json",
    }
    for found in (index, topic):
        for href in found:
            parts = urlsplit(href)
            assert parts.scheme == "http" and parts.netloc == "papers.example.org"
            assert client.get(parts.path).status_code == 200
    found = Page(client.get("/topics/vision").get_data(as_text=True))
    titles = [a["title"] for a in found.all("link", rel="alternate")]
    assert titles == ["Test: Vision (Atom)", "Test: Vision (RSS)", "Test: Vision (JSON Feed)"]


# --- a topic -----------------------------------------------------------------------------------


def test_topic_page_marks_matched_terms_and_shows_scores(client: FlaskClient) -> None:
    expected = client.get("/api/papers?topic=llm&limit=50").get_json()
    topic = page(client, "/topics/llm")
    text = " ".join("".join(topic.text).split())
    assert [t for level, t in topic.headings if level == 1] == ["Language models"]
    assert 'LLM* OR "language model*"' in text  # the query, shown
    h3 = [t for level, t in topic.headings if level == 3]
    assert h3 == [p["title"] for p in expected["papers"]]  # newest first, as in the feed
    assert topic.marks[0] == "marked"  # the legend
    marks = topic.marks[1:]
    assert marks and all(m.lower().startswith(("llm", "language model")) for m in marks)
    for paper in expected["papers"]:
        [match] = [t for t in paper["topics"] if t["slug"] == "llm"]
        assert f"Score {match['score']:g}: " + ", ".join(match["matched"]) in text
    assert "in title" in text and "in abstract" in text
    assert f"{expected['total']} papers" in text
    pdfs = [href for href, name in topic.links if name == "PDF"]
    assert pdfs and all(h.startswith("https://arxiv.org/pdf/") for h in pdfs if "arxiv" in h)
    assert "cs.CL" in text  # categories


def test_a_composed_topic_highlights_the_terms_of_the_topics_it_names(client: FlaskClient) -> None:
    topic = page(client, "/topics/efficient-llms")
    marked = {m.lower() for m in topic.marks[1:]}
    assert any(m.startswith(("llm", "language model")) for m in marked), marked  # from topic:llm
    assert any(m.startswith(("prun", "sparse", "kv cache", "efficien", "quantiz")) for m in marked), marked


def test_topic_page_pages_with_newer_and_older_links(client: FlaskClient) -> None:
    total = client.get("/api/papers?topic=vision").get_json()["total"]
    assert total > 4
    first = page(client, "/topics/vision?limit=2")
    [older] = [href for href, text in first.links if text == "Older papers →"]
    assert not [href for href, text in first.links if text == "← Newer papers"]
    assert parse_qs(urlsplit(older).query) == {"limit": ["2"], "offset": ["2"]}
    second = page(client, older)
    [newer] = [href for href, text in second.links if text == "← Newer papers"]
    assert parse_qs(urlsplit(newer).query) == {"limit": ["2"]}
    assert [t for level, t in page(client, newer).headings if level == 3] == [
        t for level, t in first.headings if level == 3
    ]
    last = page(client, f"/topics/vision?limit=2&offset={total - 1}")
    assert not [href for href, text in last.links if text == "Older papers →"]
    assert len([t for level, t in last.headings if level == 3]) == 1


def test_unknown_topic_is_404_and_a_bad_parameter_400(client: FlaskClient) -> None:
    missing = client.get("/topics/nope")
    assert missing.status_code == 404 and missing.mimetype == "text/plain"
    assert "nope" in missing.get_data(as_text=True)
    for query, message in [
        ("limit=banana", "limit: 'banana' is not a whole number"),
        ("limit=0", "limit: 0 is out of range"),
        ("offset=-1", "offset: -1 is out of range"),
        ("color=red", "unknown parameter 'color'"),
    ]:
        bad = client.get(f"/topics/llm?{query}")
        assert bad.status_code == 400 and bad.mimetype == "text/plain"
        assert message in bad.get_data(as_text=True)
    assert client.get("/topics/").status_code in (301, 302, 308)


def test_pages_render_with_an_empty_store(tmp_path: Path, database_url: str) -> None:
    body = (
        "topics:\n  - slug: pruning\n    title: Pruning\n    query: prun*\n"
        "    exclude: vision\n    min_score: 2\n"
    )
    config = make_config(tmp_path, body, database_url)
    store = open_store(config)
    try:
        client = create_app(config, store=store).test_client()
        index = " ".join("".join(page(client, "/").text).split())
        assert "0 papers in 1 topic." in index and "No papers yet" in index
        topic = " ".join("".join(page(client, "/topics/pruning").text).split())
        assert "No papers match this topic yet." in topic
        assert "except those matching" in topic and "score of at least 2" in topic
        assert '<code class="query">vision</code>' in client.get("/topics/pruning").get_data(as_text=True)
        assert "No papers on this page." in "".join(page(client, "/topics/pruning?offset=50").text)
    finally:
        store.close()


# --- untrusted text ----------------------------------------------------------------------------


def test_hostile_entries_are_shown_as_text(client: FlaskClient) -> None:
    for path in ("/", "/topics/llm", "/topics/efficient-llms"):
        body = client.get(path).get_data(as_text=True)
        assert "Pruning" in body, path  # the hostile paper is on the page
        lowered = body.lower()
        assert "<script" not in lowered and "onerror=" not in lowered and "javascript:" not in lowered
        assert "<b>" not in lowered and "<img" not in lowered


def test_markup_written_as_text_is_stripped_too(tmp_path: Path, database_url: str) -> None:
    """A title that sends markup escaped is still markup to a reader that renders titles as HTML
    (feed readers do): a title is plain text, so it is stripped like any other markup."""
    config, store = build(tmp_path, database_url, (HOSTILE_ITEM, LITERAL_ITEM, LONG_ITEM))
    client = create_app(config, store=store).test_client()
    for path in ("/", "/topics/llm"):
        body = client.get(path).get_data(as_text=True)
        assert "alert(3)" not in body and "alert(4)" not in body, path
        found = Page(body)
        assert not found.all("script") and not found.all("img")
        assert all(not k.startswith("on") for _, attrs in found.tags for k in attrs)
        assert "javascript:" not in body.lower()
        for href, _ in found.links:
            assert href.startswith(("/", "#", "http://", "https://")), href
        assert any(level == 3 and t == "Sparse LLMs" for level, t in found.headings), found.headings
    for path in ("/feeds/llm.atom", "/feeds/llm.rss", "/feeds/llm.json"):
        body = client.get(path).get_data(as_text=True)
        assert "alert(3)" not in body and "alert(4)" not in body, path
    store.close()


def test_marked_title_escapes_everything_but_its_marks() -> None:
    terms = positive_terms(parse_query('prun* OR "language model*" OR abstract:sparse'))
    out = marked_title("<b>Pruning</b> Large Language Models & sparse <i>x</i>", terms)
    assert str(out) == (
        "&lt;b&gt;<mark>Pruning</mark>&lt;/b&gt; Large <mark>Language Models</mark> &amp; sparse "
        "&lt;i&gt;x&lt;/i&gt;"
    )
    assert str(marked_title("nothing here", terms)) == "nothing here"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://arxiv.org/abs/2411.00001", "https://arxiv.org/abs/2411.00001"),
        ("http://example.org/x", "http://example.org/x"),
        ("javascript:alert(1)", None),
        (" JavaScript:alert(1)", None),
        ("data:text/html,<script>", None),
        ("//evil.example/x", None),
        ("/relative", None),
        ("http://[bad", None),
        (None, None),
    ],
)
def test_only_http_urls_become_links(url: str | None, expected: str | None) -> None:
    assert http_url(url) == expected


# --- accessibility basics ----------------------------------------------------------------------


def first_paper_path(client: FlaskClient) -> str:
    """The page of the first paper the `llm` topic lists."""
    found = re.search(r'href="(/papers/\d+)"', client.get("/topics/llm").get_data(as_text=True))
    assert found, "the topic page links no paper page"
    return found[1]


@pytest.mark.parametrize("path", ["/", "/topics/llm", "/search?q=model*", "PAPER"])
def test_pages_are_accessible_without_javascript(client: FlaskClient, path: str) -> None:
    path = first_paper_path(client) if path == "PAPER" else path
    body = client.get(path).get_data(as_text=True)
    found = Page(body)
    [html] = found.all("html")
    assert html["lang"] == "en"
    assert found.all("meta", name="viewport")[0]["content"] == "width=device-width, initial-scale=1"
    assert found.all("header") and found.all("main") and found.all("nav") and found.all("footer")
    assert not found.all("script") and " on" not in "".join(f" {k}" for _, a in found.tags for k in a)
    # Nothing is loaded but the site's own stylesheet: no images, fonts or scripts from anywhere.
    loaded = [a for t, a in found.tags if t in ("link", "img") and a.get("rel") != "alternate"]
    assert [(a.get("rel"), a.get("href")) for a in loaded] == [("stylesheet", "/static/site.css")]
    body += client.get("/static/site.css").get_data(as_text=True)
    levels = [level for level, _ in found.headings]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))  # no level skipped
    assert all(text.strip() for _, text in found.links)  # every link has text
    assert ":focus-visible" in body and "@media" in body


# --- a real browser ----------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if REQUIRE_BROWSERS:
            pytest.fail("chromium is required (AGGREGATOR_REQUIRE_BROWSERS=1) but not installed")
        pytest.skip("chromium not installed")
    return found


@pytest.fixture
def served(site: tuple[Flask, Store]) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, site[0], threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def browser_command(binary: str, profile: Path, width: int, height: int, *args: str) -> list[str]:
    """Headless Chromium with nothing of its own on the network, in a fresh profile."""
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        *args,
    ]


def run_chromium(
    binary: str, profile: Path, *args: str, width: int = 390, height: int = 1200
) -> subprocess.CompletedProcess[str]:
    command = browser_command(binary, profile, width, height, *args)
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def horizontal_overflow(binary: str, profile: Path, url: str, width: int = 375) -> dict[str, object]:
    """The page laid out on a phone-wide screen, measured through the DevTools protocol on a pipe.

    Returns the document's scroll and client widths and the elements that stick out on the right.
    Chromium reads NUL-terminated JSON commands on fd 3 and answers on fd 4.
    """
    to_child, commands = os.pipe()
    replies, from_child = os.pipe()
    deadline = time.monotonic() + 60

    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WIRE,
            str(to_child),
            str(from_child),
            *browser_command(binary, profile, width, 800, "--remote-debugging-pipe", "about:blank"),
        ],
        pass_fds=(to_child, from_child),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_child)
    os.close(from_child)
    pending = b""
    counter = 0

    def call(method: str, params: dict[str, object] | None = None, session: str | None = None) -> dict:
        nonlocal pending, counter
        counter += 1
        message: dict[str, object] = {"id": counter, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in pending:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([replies], [], [], left)[0]:
                    raise TimeoutError(f"chromium did not answer {method}")
                chunk = os.read(replies, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                pending += chunk
            raw, pending = pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == counter:
                assert "error" not in reply, reply
                found: dict = reply["result"]
                return found

    def evaluate(expression: str, session: str) -> object:
        return call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)["result"][
            "value"
        ]

    try:
        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        metrics: dict[str, object] = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": True}
        call("Emulation.setDeviceMetricsOverride", metrics, session)
        call("Page.navigate", {"url": url}, session)
        loaded = f'document.readyState === "complete" && location.href === {json.dumps(url)}'
        while evaluate(loaded, session) is not True:
            assert time.monotonic() < deadline, "page did not load"
            time.sleep(0.05)
        measured = evaluate(MEASURE, session)
        assert isinstance(measured, str)
        result: dict[str, object] = json.loads(measured)
        return result
    finally:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError, AssertionError):
            call("Browser.close")
        os.close(commands)
        os.close(replies)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# Run in a child Python: put the two pipe ends on fds 3 and 4, where Chromium looks, then exec it.
WIRE = """import fcntl, os, sys
ends = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3]]
for target, end in zip((3, 4), ends):
    os.dup2(end, target)
os.execv(sys.argv[3], sys.argv[3:])
"""
MEASURE = """JSON.stringify({
  scroll: document.documentElement.scrollWidth,
  client: document.documentElement.clientWidth,
  wide: [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : "")),
})"""


# The docs' pictures of every page at both widths, refreshed on request; otherwise the index
# alone is drawn (a real render at both widths), and the other pages checked by DOM and layout.
UPDATE_SCREENSHOTS = os.environ.get("AGGREGATOR_UPDATE_SCREENSHOTS") == "1"


def test_pages_render_in_headless_chromium(served: str, tmp_path: Path) -> None:
    binary = chromium()
    shots = []
    with urllib.request.urlopen(served + "/topics/llm", timeout=30) as response:
        paper = re.search(r'href="(/papers/\d+)"', response.read().decode())
    assert paper
    for path, name, titles in [
        ("/", "index", ["Language models", "Vision", "Efficient LLMs"]),
        ("/topics/llm", "topic", ["Language models", "Pruning", "OverlongOverlong"]),
        (paper[1], "paper", ["Where it was seen", "Topics", "Abstract"]),
        ("/search?q=model*", "search", ["model"]),
    ]:
        url = served + path
        dom = run_chromium(binary, tmp_path / f"profile-dom-{name}", "--dump-dom", url).stdout
        assert "<main" in dom and "</html>" in dom, dom[:500]
        for title in titles:
            assert title in dom, (path, title)
        if name == "topic":
            assert "<mark>" in dom
        for width, suffix in ((390, ""), (1280, "-1280")):  # a phone, and a laptop
            if not (UPDATE_SCREENSHOTS or name == "index"):  # the DOM and layout checks cover the rest
                continue
            shot = tmp_path / f"{name}{suffix}.png"
            profile = tmp_path / f"profile-shot-{name}{suffix}"
            run_chromium(binary, profile, f"--screenshot={shot}", url, width=width, height=1200)
            assert shot.exists() and shot.stat().st_size > 5 * 1024, shot
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            shots.append((shot, DOCS / f"screenshot-{name}{suffix}.png"))
        layout = horizontal_overflow(binary, tmp_path / f"profile-layout-{name}", url)
        assert layout["scroll"] == layout["client"] == 375 and layout["wide"] == [], (path, layout)
    if UPDATE_SCREENSHOTS:
        DOCS.mkdir(exist_ok=True)
        for shot, kept in shots:
            shutil.copyfile(shot, kept)


A11Y = Path(__file__).parent / "a11y"  # axe-core and puppeteer-core, installed by .ci/run (npm ci)


def axe_command() -> list[str]:
    node = shutil.which("node")
    if node is None or not (A11Y / "node_modules" / "axe-core").is_dir():
        if REQUIRE_BROWSERS:
            pytest.fail("axe-core is required (AGGREGATOR_REQUIRE_BROWSERS=1): npm ci --prefix tests/a11y")
        pytest.skip("node or tests/a11y/node_modules missing (npm ci --prefix tests/a11y)")
    return [node, str(A11Y / "axe_check.js")]


def test_pages_pass_axe_in_chromium(served: str) -> None:
    """axe-core, run in the same Chromium at 1280 and 390 px, finds nothing serious on the index,
    a topic, a paper and a search page."""
    command, binary = axe_command(), chromium()
    with urllib.request.urlopen(served + "/topics/llm", timeout=30) as response:
        paper = re.search(r'href="(/papers/\d+)"', response.read().decode())
    assert paper
    urls = [served + path for path in ("/", "/topics/llm", paper[1], "/search?q=model*")]
    done = subprocess.run([*command, binary, *urls], capture_output=True, text=True, timeout=300, check=False)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert len(results) == 2 * len(urls)
    serious = [v for r in results for v in r["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []


# --- search ------------------------------------------------------------------------------------


def test_index_has_a_search_box(client: FlaskClient) -> None:
    index = page(client, "/")
    assert index.all("form", action="/search", method="get")
    assert index.all("input", name="q", type="search")


def test_search_shows_matches_with_highlights_explanations_and_feed_urls(client: FlaskClient) -> None:
    found = page(client, "/search?q=prun*+AND+LLM*")
    expected = client.get("/api/papers", query_string={"q": "prun* AND LLM*", "limit": 500}).get_json()
    titles = [h for level, h in found.headings if level == 3]
    assert len(titles) == len(expected["papers"]) > 0
    assert [t for t in titles] == [" ".join(p["title"].split()) for p in expected["papers"]][:25]
    assert any(m.lower().startswith("prun") for m in found.marks)
    text = " ".join("".join(found.text).split())
    assert "Score " in text and (" in title" in text or " in abstract" in text)
    hrefs = {href for href, _ in found.links}
    for ext in ("atom", "rss", "json"):
        url = f"{BASE}/feeds/all.{ext}?q=prun%2A+AND+LLM%2A"
        assert url in hrefs and url in found.alternates()
        assert client.get(url.removeprefix(BASE)).status_code == 200


def test_search_pages_continue_with_a_cursor(client: FlaskClient) -> None:
    first = page(client, "/search?q=model*")
    older = [href for href, text in first.links if text.startswith("Older")]
    assert older and "after=" in older[0]
    second = page(client, older[0])
    everything = client.get("/api/papers", query_string={"q": "model*", "limit": 500}).get_json()["papers"]
    titles = [" ".join(p["title"].split()) for p in everything]
    one = [h for level, h in first.headings if level == 3]
    two = [h for level, h in second.headings if level == 3]
    assert one + two == titles[: len(one) + len(two)] and len(one) == 25 and two
    assert any(text.startswith("← Newest") for _, text in second.links)


def test_search_reports_a_bad_query_in_the_page(client: FlaskClient) -> None:
    response = client.get("/search?q=(prun*")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "unbalanced parenthesis" in response.get_data(as_text=True)
    empty = page(client, "/search")
    assert empty.all("input", name="q") and not [h for level, h in empty.headings if level == 3]
    assert client.get("/search?q=x&offset=3").status_code == 400
    too_many = " OR ".join(f"{chr(97 + n % 26)}{n}*" for n in range(40))
    refused = client.get("/search", query_string={"q": too_many})
    assert refused.status_code == 400 and "wildcards" in refused.get_data(as_text=True)


def test_every_response_carries_its_security_headers(client: FlaskClient) -> None:
    """Pages may load their own stylesheet and nothing else, submit only here, never be framed;
    feeds, JSON and text run nothing if a browser opens them; nothing is sniffed or referred."""
    slug = client.get("/api/topics").get_json()["topics"][0]["slug"]
    pages = ["/", f"/topics/{slug}", "/search?q=model"]
    data = [
        "/feeds/all.atom",
        f"/feeds/{slug}.rss",
        f"/feeds/{slug}.json",
        "/feeds.opml",
        "/api/papers?limit=1",
        "/healthz",
        "/metrics",
        "/api/papers?limit=nope",  # a 400
        "/no/such/page",  # a 404
    ]
    for path in pages + data:
        response = client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "no-referrer", path
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy, path
        assert "unsafe-inline" not in policy and "script-src" not in policy, path
        if path in pages:
            assert response.status_code == 200 and "style-src 'self'" in policy, path
            body = response.get_data(as_text=True)
            assert "<style" not in body and " style=" not in body and "<script" not in body, path
        else:
            assert "sandbox" in policy, path
    (sheet,) = page(client, "/").all("link", rel="stylesheet")
    css = client.get(sheet["href"])
    assert css.status_code == 200 and css.mimetype == "text/css" and b"--text" in css.data


# --- the page of one paper ---------------------------------------------------------------------


def test_a_paper_page_shows_everything_known_of_it(site: tuple[Flask, Store]) -> None:
    app, store = site
    client = app.test_client()
    path = first_paper_path(client)
    paper = store.paper(int(path.rsplit("/", 1)[1]))
    assert paper is not None
    found = page(client, path)
    assert found.headings[0] == (1, " ".join(paper.title.split()))
    text = " ".join(" ".join(found.text).split())
    for name in paper.authors[:3]:
        assert name in text
    rows = [a for t, a in found.tags if t == "tr"]
    assert len(rows) == len(paper.sightings) + 1  # a row per sighting, under the header
    for sighting in paper.sightings:
        assert sighting.source in text and sighting.entry_id in text
    for match in paper.topics:
        assert any(href == f"/topics/{match.slug}" for href, _ in found.links)
        assert f"score {match.score:g}" in text
    assert paper.feed_id in text


def test_an_upvoted_paper_shows_its_upvotes_and_a_missing_one_is_404(site: tuple[Flask, Store]) -> None:
    app, store = site
    client = app.test_client()
    upvoted = next(p for p in store.papers_page(PageQuery(limit=500)).papers if p.upvotes is not None)
    text = " ".join(page(client, f"/papers/{upvoted.id}").text)
    assert f"{upvoted.upvotes} on Hugging Face" in " ".join(text.split())
    for missing in ("/papers/999999999", f"/papers/{10**30}", "/papers/-1", "/papers/x"):
        assert client.get(missing).status_code == 404


def test_the_index_leads_with_each_topics_latest_best_papers(site: tuple[Flask, Store]) -> None:
    app, store = site
    client = app.test_client()
    index = page(client, "/")
    levels = [text for level, text in index.headings if level == 2]
    assert levels[0] == "What is new"
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday())
    text = " ".join(" ".join(index.text).split())
    for slug in ("llm", "vision"):
        week = client.get(f"/api/papers?topic={slug}&since={monday.isoformat()}&limit=500").get_json()
        n = len(week["papers"])
        assert f"{n} paper{'' if n == 1 else 's'} this week" in text
        [latest] = store.digest(slug, "daily", top=3, periods=1, now=tomorrow)
        assert 1 <= len(latest.papers) <= 3
        for paper in latest.papers:
            assert (f"/papers/{paper.id}", f"Details of {paper.title}") in [
                (href, " ".join(text.split())) for href, text in index.links
            ]
