"""Feeds as readers get them: Atom 1.0, RSS 2.0 and JSON Feed 1.1 for every topic and `all`, and
the OPML list. What the W3C feed validator checks and matters is asserted here (well-formed XML,
RFC 3339 and RFC 822 dates, unique ids, a self link, absolute URLs, escaped HTML, no XML-illegal
characters), with feedparser reading every feed cleanly; then order, stable ids, parameters,
HTTP caching, and a hostile source.

The W3C feed validator itself (vendored under tools/feedvalidator/, or the command in
AGGREGATOR_FEEDVALIDATOR) runs over every rendered feed; CI requires it (AGGREGATOR_REQUIRE_VALIDATOR=1).
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import feedparser
import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from aggregator import create_app
from aggregator.config import Config, load_config
from aggregator.ingest.pipeline import Pipeline
from aggregator.publish.feeds import FeedPage, atom, content_html, json_feed, rss
from aggregator.runtime import open_store
from aggregator.store.pages import PageQuery
from aggregator.store.repository import Store
from aggregator.store.schema import papers, sightings
from aggregator.types import PaperView, TopicMatch
from tests.conftest import shared_database_url

DEDUP = Path(__file__).parent / "data" / "dedup-dev"
BASE = "http://papers.example.org"
A = "{http://www.w3.org/2005/Atom}"
SOURCES = {
    "rss": "arxiv-rss.xml",
    "api": "arxiv-api.xml",
    "hf": "hf-daily.json",
    "venue": "venue.atom",
    "blog": "blog.xml",
}
TOPICS = {
    "llm": 'LLM* OR "language model*"',
    "vision": "image* OR vision OR visual",
    "nothing": "title:zzyzxqqq",  # matches no paper: an empty, still valid, feed
}
FORMATS = ("atom", "rss", "json")
RFC3339 = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
)
RFC822 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (0[1-9]|[12]\d|3[01]) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} ([01]\d|2[0-3]):[0-5]\d:[0-5]\d "
    r"([+-]\d{4}|GMT|UT)"
)
# Characters XML 1.0 does not allow, raw or as character references.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
XML_ILLEGAL_REF = re.compile(
    r"&#(x0*([0-8bcef]|1[0-9a-f]|fff[ef])|0*([0-8]|1[124-9]|2\d|3[01]|6553[45]));", re.IGNORECASE
)
SAFE_TAGS = {"p", "b", "a", "ol", "li", "br"}  # all the markup the renderer writes (lists: digests)


# --- a site over the dedup-dev sources ------------------------------------------------------------


@dataclass
class Site:
    folder: Path
    config: Config
    store: Store
    app: Flask
    client: FlaskClient

    def get(self, url: str, **headers: str) -> TestResponse:
        """GET a path or an absolute URL of this site."""
        if url.startswith(BASE):
            url = url[len(BASE) :]
        return self.client.get(url, headers=headers)

    def ok(self, url: str) -> bytes:
        response = self.get(url)
        assert response.status_code == 200, (url, response.data[:300])
        body: bytes = response.data
        return body

    def ingest(self, *names: str) -> None:
        pipeline = Pipeline(self.config, self.store)
        outcomes = pipeline.run(pipeline.select(names or None))
        assert not [o for o in outcomes if o.failed], outcomes
        self.app.extensions.pop("aggregator.feed_cache", None)  # as if the version watch had looked

    def slugs(self) -> list[str]:
        return [t.slug for t in self.config.topics] + ["all"]


def build(
    folder: Path,
    database_url: str,
    topics: dict[str, str] = TOPICS,
    extra: dict[str, tuple[str, bytes]] | None = None,
    base_url: str = BASE,
) -> Site:
    """Config, store and app over the dedup-dev files (plus `extra`: name -> (file, body)), ingested."""
    sources = []
    for name, file in SOURCES.items():
        (folder / file).write_bytes((DEDUP / file).read_bytes())
        sources.append({"name": name, "url": f"file:{file}"})
    for name, (file, body) in (extra or {}).items():
        (folder / file).write_bytes(body)
        sources.append({"name": name, "url": f"file:{file}"})
    document = {
        "database": database_url,
        "site": {"title": "Test papers", "base_url": base_url},
        "sources": sources,
        "topics": [{"slug": s, "title": f"Topic {s}", "query": q} for s, q in topics.items()],
    }
    path = folder / "aggregator.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    config = load_config(path)
    store = open_store(config)
    app = create_app(config, store=store)
    site = Site(folder, config, store, app, app.test_client())
    site.ingest()
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One site for the tests that only read it (building one took about 2 s a test)."""
    folder = tmp_path_factory.mktemp("site")
    s = build(folder, shared_database_url(folder, "site"))
    yield s
    s.store.close()


@pytest.fixture
def fresh_site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    """A site of the test's own, for a test that changes what it serves."""
    s = build(tmp_path, database_url)
    yield s
    s.store.close()


# --- what every feed must be ----------------------------------------------------------------------


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def html_tags(fragment: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Html()
    parser.feed(fragment)
    parser.close()
    return parser.tags


def assert_inert_html(fragment: str) -> None:
    """The renderer's HTML: paragraphs, bold and links to http(s) pages; nothing that runs."""
    for tag, attrs in html_tags(fragment):
        assert tag in SAFE_TAGS, (tag, fragment[:200])
        for name, value in attrs:
            assert (tag, name) == ("a", "href"), (tag, name, value)
            assert_absolute(value)
    assert "<script" not in fragment.lower()


def assert_text_only(fragment: str) -> None:
    """An HTML field that holds escaped text: no element in it at all."""
    assert html_tags(fragment) == [], fragment[:200]


def assert_absolute(url: str | None) -> None:
    assert url, "empty URL"
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.netloc, url


def assert_xml_chars(body: bytes) -> None:
    text = body.decode("utf-8")  # strict: no lone surrogates or stray bytes either
    assert not XML_ILLEGAL.search(text), XML_ILLEGAL.search(text)
    assert not XML_ILLEGAL_REF.search(text), XML_ILLEGAL_REF.search(text)


def rfc3339(value: str | None) -> datetime:
    assert value is not None and RFC3339.fullmatch(value), value
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert when.year >= 1990, value  # validators call earlier dates implausible
    return when


def rfc822(value: str | None) -> datetime:
    assert value is not None and RFC822.fullmatch(value), value
    when = parsedate_to_datetime(value)
    assert when.strftime("%a") == value[:3], f"wrong weekday in {value}"
    assert when.year >= 1990, value
    return when


def assert_parses_cleanly(body: bytes, entries: int) -> None:
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert len(parsed.entries) == entries


def check_atom(body: bytes, url: str) -> list[ET.Element]:
    """Everything the validator would check on an Atom page; returns its entries."""
    assert_xml_chars(body)
    root = ET.fromstring(body)
    assert root.tag == f"{A}feed"
    rfc3339(root.findtext(f"{A}updated"))
    assert root.findtext(f"{A}id") and root.findtext(f"{A}title")
    links = root.findall(f"{A}link")
    assert [x.get("href") for x in links if x.get("rel") == "self"] == [url]
    for link in links:
        assert_absolute(link.get("href"))
    feed_authors = root.findall(f"{A}author")
    entries = root.findall(f"{A}entry")
    ids = [e.findtext(f"{A}id") for e in entries]
    assert len(set(ids)) == len(ids) and all(ids)
    for entry in entries:
        published = rfc3339(entry.findtext(f"{A}published"))
        assert rfc3339(entry.findtext(f"{A}updated")) >= published - timedelta(days=3650)
        assert entry.findtext(f"{A}title")
        assert entry.findall(f"{A}author") or feed_authors  # Atom wants an author for each entry
        for author in entry.findall(f"{A}author"):
            assert (author.findtext(f"{A}name") or "").strip()
        for link in entry.findall(f"{A}link"):
            assert_absolute(link.get("href"))
        content = entry.find(f"{A}content")
        assert content is not None and content.get("type") == "html"
        assert_inert_html(content.text or "")
        summary = entry.find(f"{A}summary")
        assert summary is not None
        if summary.get("type") == "html":
            assert_text_only(summary.text or "")
        for category in entry.findall(f"{A}category"):
            assert category.get("term")
            if category.get("scheme"):
                assert_absolute(category.get("scheme"))
    assert b"<script" not in body.lower()
    assert_parses_cleanly(body, len(entries))
    return entries


def check_rss(body: bytes, url: str) -> list[ET.Element]:
    """Everything the validator would check on an RSS page; returns its items."""
    assert_xml_chars(body)
    root = ET.fromstring(body)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("title") and channel.findtext("description")
    assert_absolute(channel.findtext("link"))
    assert [x.get("href") for x in channel.findall(f"{A}link") if x.get("rel") == "self"] == [url]
    if channel.find("lastBuildDate") is not None:
        rfc822(channel.findtext("lastBuildDate"))
    items = channel.findall("item")
    guids = [i.findtext("guid") for i in items]
    assert len(set(guids)) == len(guids) and all(guids)
    for item in items:
        assert item.findtext("title")
        rfc822(item.findtext("pubDate"))
        if item.find("link") is not None:
            assert_absolute(item.findtext("link"))
        guid = item.find("guid")
        assert guid is not None
        if guid.get("isPermaLink", "true") == "true":
            assert_absolute(guid.text)
        assert_text_only(item.findtext("description") or "")
        assert_inert_html(item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded") or "")
        for category in item.findall("category"):
            if category.get("domain"):
                assert_absolute(category.get("domain"))
    assert b"<script" not in body.lower()
    assert_parses_cleanly(body, len(items))
    return items


def check_json(body: bytes, url: str) -> list[dict[str, Any]]:
    """JSON Feed 1.1's required fields, and the same rules for ids, dates, URLs and HTML."""
    feed = json.loads(body)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] and feed["feed_url"] == url
    assert_absolute(feed["home_page_url"])
    if "next_url" in feed:
        assert_absolute(feed["next_url"])
    items = feed["items"]
    assert isinstance(items, list)
    ids = [i["id"] for i in items]
    assert len(set(ids)) == len(ids) and all(isinstance(i, str) and i for i in ids)
    for item in items:
        assert "content_html" in item or "content_text" in item
        assert_inert_html(item["content_html"])
        rfc3339(item["date_published"])
        rfc3339(item["date_modified"])
        for key in ("url", "external_url"):
            if key in item:
                assert_absolute(item[key])
        assert all(a["name"] for a in item["authors"])
        assert not XML_ILLEGAL.search(item["title"] + item.get("content_text", ""))
    return items


def check(fmt: str, body: bytes, url: str) -> list[str]:
    """Check one page in any format; returns its entry ids in order."""
    if fmt == "atom":
        return [e.findtext(f"{A}id") or "" for e in check_atom(body, url)]
    if fmt == "rss":
        return [i.findtext("guid") or "" for i in check_rss(body, url)]
    return [i["id"] for i in check_json(body, url)]


def read(site: Site, path: str, **params: Any) -> list[str]:
    """GET a feed page, check it, return its entry ids."""
    query = f"?{urlencode(params)}" if params else ""
    return check(path.rsplit(".", 1)[1], site.ok(path + query), BASE + path + query)


def api_papers(site: Site, **params: Any) -> list[dict[str, Any]]:
    page: dict[str, Any] = site.client.get("/api/papers", query_string={"limit": 500, **params}).get_json()
    return list(page["papers"])


# --- every feed -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_feed_is_valid(site: Site, fmt: str) -> None:
    for slug in site.slugs():
        for params in ({}, {"limit": 5}, {"limit": 500}):
            ids = read(site, f"/feeds/{slug}.{fmt}", **params)
            topic = {} if slug == "all" else {"topic": slug}
            expected = [p["id"] for p in api_papers(site, **topic)][: params.get("limit", 50)]
            assert ids == expected, (slug, params)
    assert len(read(site, f"/feeds/all.{fmt}", limit=500)) > 50  # enough for the default limit to bite


def test_atom_entries_carry_every_field(site: Site) -> None:
    by_id = {p["id"]: p for p in api_papers(site)}
    entries = check_atom(site.ok("/feeds/all.atom?limit=500"), f"{BASE}/feeds/all.atom?limit=500")
    assert len(entries) == len(by_id)
    for entry in entries:
        paper = by_id[entry.findtext(f"{A}id") or ""]
        assert entry.findtext(f"{A}title") == paper["title"]
        assert [a.findtext(f"{A}name") for a in entry.findall(f"{A}author")] == paper["authors"]
        assert rfc3339(entry.findtext(f"{A}published")) == rfc3339(paper["published"])
        assert rfc3339(entry.findtext(f"{A}updated")) == rfc3339(paper["updated"])
        links = [x.get("href") for x in entry.findall(f"{A}link") if x.get("rel", "alternate") == "alternate"]
        assert len(links) == 1
        link = paper["links"].get("abs") or paper["links"].get("link") or paper["links"].get("doi")
        assert links == [link]
        terms = {c.get("term") for c in entry.findall(f"{A}category")}
        assert {t["slug"] for t in paper["topics"]} | set(paper["categories"]) == terms
        content = entry.findtext(f"{A}content") or ""
        if paper["abstract"]:
            assert html.unescape(entry.findtext(f"{A}summary") or "").startswith(paper["abstract"][:40])
        for topic in paper["topics"]:
            assert f'href="{BASE}/topics/{topic["slug"]}"' in content
    # RSS says the same with its own elements
    items = check_rss(site.ok("/feeds/all.rss?limit=500"), f"{BASE}/feeds/all.rss?limit=500")
    for item in items:
        paper = by_id[item.findtext("guid") or ""]
        creators = [c.text for c in item.findall("{http://purl.org/dc/elements/1.1/}creator")]
        assert creators == paper["authors"]
        assert rfc822(item.findtext("pubDate")) == rfc3339(paper["published"]).replace(microsecond=0)


def test_entries_are_newest_first_with_ties_broken_by_id(site: Site) -> None:
    with site.store.engine.connect() as conn:
        rows = conn.execute(select(papers.c.feed_id, papers.c.published, papers.c.id)).all()
    key = {r.feed_id: (r.published, r.id) for r in rows}
    ties = 0
    for slug in site.slugs():
        entries = check_atom(site.ok(f"/feeds/{slug}.atom?limit=500"), f"{BASE}/feeds/{slug}.atom?limit=500")
        ids = [e.findtext(f"{A}id") or "" for e in entries]
        assert ids == sorted(ids, key=lambda i: key[i], reverse=True), slug
        published = [rfc3339(e.findtext(f"{A}published")) for e in entries]
        assert published == sorted(published, reverse=True)
        ties += len(published) - len(set(published))
    assert ties > 0, "the data should hold papers published at the same time"


def test_ids_stay_the_same_when_the_same_sources_are_read_again(fresh_site: Site) -> None:
    site = fresh_site
    before = {(s, f): read(site, f"/feeds/{s}.{f}", limit=500) for s in site.slugs() for f in FORMATS}
    for file in SOURCES.values():  # the same entries in a body that is new to the fetcher
        path = site.folder / file
        path.write_bytes(path.read_bytes() + b"\n")
    site.ingest()
    after = {(s, f): read(site, f"/feeds/{s}.{f}", limit=500) for s in site.slugs() for f in FORMATS}
    assert after == before
    assert before[("all", "atom")] == before[("all", "rss")] == before[("all", "json")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_topic_is_a_valid_empty_feed(site: Site, fmt: str) -> None:
    body = site.ok(f"/feeds/nothing.{fmt}")
    assert check(fmt, body, f"{BASE}/feeds/nothing.{fmt}") == []
    if fmt == "atom":
        rfc3339(ET.fromstring(body).findtext(f"{A}updated"))
    # a page past the end is empty too, and still valid
    assert read(site, f"/feeds/all.{fmt}", offset=10_000) == []


def test_json_feed_has_the_fields_of_version_1_1(site: Site) -> None:
    feed = json.loads(site.ok("/feeds/llm.json?limit=5"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == f"{BASE}/feeds/llm.json?limit=5"
    assert feed["home_page_url"] == f"{BASE}/topics/llm"
    assert feed["next_url"].startswith(f"{BASE}/feeds/llm.json?limit=5&after=")
    assert len(feed["items"]) == 5
    for item in feed["items"]:
        assert {"id", "title", "content_html", "date_published", "date_modified", "authors", "tags"} <= set(
            item
        )
        assert "llm" in item["tags"]
        assert item["_paper"]["topics"]
    response = site.get("/feeds/llm.json")
    assert response.mimetype == "application/feed+json"


def opml_urls(site: Site, query: str = "") -> list[str]:
    response = site.get("/feeds.opml" + query)
    assert response.status_code == 200 and "opml" in (response.mimetype or "")
    root = ET.fromstring(response.data)
    assert root.tag == "opml" and root.findtext("head/title")
    return [o.get("xmlUrl") or "" for o in root.iter("outline")]


def test_the_default_opml_leaves_out_the_feeds_that_repeat_others(tmp_path: Path, database_url: str) -> None:
    topics = dict(TOPICS, both="topic:llm OR topic:vision")
    site = build(tmp_path, database_url, topics=topics)
    try:
        assert opml_urls(site) == [f"{BASE}/feeds/{s}.atom" for s in ("llm", "vision", "nothing")]
        every = [f"{BASE}/feeds/{s}.atom" for s in ("llm", "vision", "nothing", "both", "all")]
        assert opml_urls(site, "?feeds=all") == every
        daily = [f"{BASE}/feeds/{s}/daily.atom" for s in ("llm", "vision", "nothing")]
        assert opml_urls(site, "?digest=daily") == daily
        assert opml_urls(site, "?digest=weekly&feeds=all")[-1] == f"{BASE}/feeds/all/weekly.atom"
        for url in opml_urls(site, "?digest=weekly&feeds=all"):
            check_atom(site.ok(url), url)
        for bad in ("?digest=monthly", "?feeds=some", "?x=1"):
            assert site.get("/feeds.opml" + bad).status_code == 400
    finally:
        site.store.close()


def test_opml_lists_one_outline_per_topic(site: Site) -> None:
    response = site.get("/feeds.opml?feeds=all")
    assert response.status_code == 200 and "opml" in (response.mimetype or "")
    root = ET.fromstring(response.data)
    assert root.tag == "opml" and root.findtext("head/title")
    outlines = list(root.iter("outline"))
    urls = [o.get("xmlUrl") for o in outlines]
    assert urls == [f"{BASE}/feeds/{s}.atom" for s in site.slugs()]
    for outline in outlines:
        assert outline.get("text") and outline.get("type") == "rss"
        assert_absolute(outline.get("xmlUrl"))
        assert_absolute(outline.get("htmlUrl"))
    for url in urls:  # each one is a feed
        assert url is not None
        check_atom(site.ok(url), url)


def test_content_types(site: Site) -> None:
    for fmt, mimetype in (("atom", "application/atom+xml"), ("rss", "application/rss+xml")):
        response = site.get(f"/feeds/all.{fmt}")
        assert response.mimetype == mimetype and response.mimetype_params["charset"] == "utf-8"


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["all", "llm"])
def test_next_links_walk_every_entry_exactly_once(site: Site, slug: str) -> None:
    everything = read(site, f"/feeds/{slug}.atom", limit=500)
    assert len(everything) > 7
    seen: list[str] = []
    url: str | None = f"{BASE}/feeds/{slug}.atom?limit=7"
    pages = 0
    while url:
        entries = check_atom(site.ok(url), url)
        seen += [e.findtext(f"{A}id") or "" for e in entries]
        links = {x.get("rel"): x.get("href") for x in ET.fromstring(site.ok(url)).findall(f"{A}link")}
        assert links["first"] == f"{BASE}/feeds/{slug}.atom?limit=7"  # the same feed, page 1
        assert ET.fromstring(site.ok(url)).findtext(f"{A}id") == f"{BASE}/feeds/{slug}.atom"
        if pages:  # pages after the first continue from a cursor: no previous link to guess
            assert "after=" in url and "previous" not in links
        url = links.get("next")
        pages += 1
        assert pages < 100
    assert seen == everything
    assert pages == -(-len(everything) // 7)
    # JSON Feed pages the same way
    seen = []
    url = f"{BASE}/feeds/{slug}.json?limit=7"
    while url:
        feed = json.loads(site.ok(url))
        seen += [i["id"] for i in feed["items"]]
        url = feed.get("next_url")
    assert seen == everything


def test_limit_defaults_to_50_and_goes_to_500(site: Site) -> None:
    everything = read(site, "/feeds/all.atom", limit=500)
    assert len(everything) > 50
    assert read(site, "/feeds/all.atom") == everything[:50]
    assert read(site, "/feeds/all.rss", limit=1) == everything[:1]
    assert read(site, "/feeds/all.atom", limit=10, offset=20) == everything[20:30]


def test_since_keeps_what_changed_since(site: Site) -> None:
    entries = check_atom(site.ok("/feeds/all.atom?limit=500"), f"{BASE}/feeds/all.atom?limit=500")
    updated = {e.findtext(f"{A}id"): rfc3339(e.findtext(f"{A}updated")) for e in entries}
    moments = sorted(set(updated.values()))
    middle = moments[len(moments) // 2]
    for since in (middle.date().isoformat(), middle.strftime("%Y-%m-%dT%H:%M:%SZ")):
        threshold = datetime.fromisoformat(since.replace("Z", "+00:00"))
        if threshold.tzinfo is None:
            threshold = threshold.replace(tzinfo=UTC)
        expected = [i for i, when in updated.items() if when >= threshold]
        assert 0 < len(expected) < len(updated)
        for fmt in FORMATS:
            assert read(site, f"/feeds/all.{fmt}", limit=500, since=since) == expected


def test_q_narrows_a_topic(site: Site) -> None:
    topic = read(site, "/feeds/llm.json", limit=500)
    narrowed = read(site, "/feeds/llm.json", limit=500, q="attack*")
    assert narrowed and set(narrowed) < set(topic)
    assert [i for i in topic if i in narrowed] == narrowed  # same order
    by_id = {p["id"]: p for p in api_papers(site, topic="llm")}
    titled = [i for i in topic if "attack" in by_id[i]["title"].lower()]
    assert set(titled) <= set(narrowed)
    assert read(site, "/feeds/llm.atom", limit=500, q="attack*") == narrowed


def test_source_keeps_papers_seen_in_it(site: Site) -> None:
    with site.store.engine.connect() as conn:
        seen = set(
            conn.execute(
                select(papers.c.feed_id)
                .join(sightings, sightings.c.paper_id == papers.c.id)
                .where(sightings.c.source == "venue")
            ).scalars()
        )
    everything = read(site, "/feeds/all.atom", limit=500)
    from_venue = read(site, "/feeds/all.atom", limit=500, source="venue")
    assert set(from_venue) == seen and 0 < len(seen) < len(everything)
    assert from_venue == [i for i in everything if i in seen]


def test_min_score_drops_weaker_matches(site: Site) -> None:
    def score(item: dict[str, Any]) -> float:
        return float(next(t["score"] for t in item["_paper"]["topics"] if t["slug"] == "llm"))

    items = json.loads(site.ok("/feeds/llm.json?limit=500"))["items"]
    strong = json.loads(site.ok("/feeds/llm.json?limit=500&min_score=3"))["items"]
    assert 0 < len(strong) < len(items)
    assert [i["id"] for i in strong] == [i["id"] for i in items if score(i) >= 3]
    assert read(site, "/feeds/llm.atom", limit=500, min_score=3) == [i["id"] for i in strong]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("limit=banana", "limit"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=-5", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("since=yesterday", "since"),
        ("since=2024-13-45", "since"),
        ("q=(a", "q"),
        ("q=titel:x", "q"),
        ("source=nope", "source"),
        ("min_score=high", "min_score"),
        ("min_score=-1", "min_score"),
        ("colour=red", "colour"),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_parameters_get_a_plain_400(site: Site, query: str, named: str, fmt: str) -> None:
    response = site.get(f"/feeds/llm.{fmt}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert named in response.get_data(as_text=True)
    assert "<" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/feeds/nope.atom", "/feeds/nope.rss", "/feeds/llm.xml", "/feeds/all.txt", "/feeds/llm"]
)
def test_unknown_feeds_are_404(site: Site, path: str) -> None:
    assert site.get(path).status_code == 404


# --- HTTP caching -----------------------------------------------------------------------------


def _validators(response: TestResponse) -> tuple[str, datetime]:
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")  # strong
    last_modified = response.headers["Last-Modified"]
    assert last_modified.endswith(" GMT") and RFC822.fullmatch(last_modified.replace("GMT", "+0000"))
    return etag, parsedate_to_datetime(last_modified)


@pytest.mark.parametrize("path", ["/feeds/llm.atom", "/feeds/all.rss", "/feeds/vision.json", "/feeds.opml"])
def test_responses_carry_validators_and_max_age(site: Site, path: str) -> None:
    response = site.get(path)
    assert response.status_code == 200
    etag, _ = _validators(response)
    match = re.search(r"max-age=(\d+)", response.headers["Cache-Control"])
    assert match and int(match.group(1)) > 0
    assert site.get(path).headers["ETag"] == etag  # the same bytes, the same tag


def test_if_none_match_gives_an_empty_304(site: Site) -> None:
    first = site.get("/feeds/all.atom")
    etag, _ = _validators(first)
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = site.get("/feeds/all.atom", **{"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.data == b""
        assert again.headers["ETag"] == etag
    assert site.get("/feeds/all.atom", **{"If-None-Match": '"something-else"'}).status_code == 200
    # another page of the same feed is another resource
    assert site.get("/feeds/all.atom?limit=5", **{"If-None-Match": etag}).status_code == 200


def test_uncommon_conditions_get_werkzeugs_whole_answer(site: Site) -> None:
    """If-Match and ranges are left to Werkzeug's make_conditional; the validators are the same."""
    first = site.get("/feeds/all.atom")
    etag, _ = _validators(first)
    unchanged = site.get("/feeds/all.atom", **{"Range": "bytes=0-9", "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b""
    for headers in ({"If-Match": etag}, {"If-Match": etag, "If-None-Match": etag}, {"If-Match": '"other"'}):
        answer = site.get("/feeds/all.atom", **headers)
        assert answer.status_code in (200, 304, 412) and answer.headers["ETag"] == etag, headers
    ranged = site.get("/feeds/all.atom", Range="bytes=0-9")
    assert ranged.status_code == 200 and ranged.data == first.data  # no partial feeds


def test_if_modified_since_is_compared_as_a_date(site: Site) -> None:
    response = site.get("/feeds/llm.atom")
    _, modified = _validators(response)
    equal = response.headers["Last-Modified"]
    earlier = format_datetime(modified - timedelta(seconds=1), usegmt=True)
    for header, status in [
        (equal, 304),
        (earlier, 200),
        (format_datetime(modified + timedelta(hours=1), usegmt=True), 304),
        (modified.strftime("%A, %d-%b-%y %H:%M:%S GMT"), 304),  # RFC 850
        ((modified - timedelta(seconds=1)).strftime("%A, %d-%b-%y %H:%M:%S GMT"), 200),
        (format_datetime(modified), 304),  # +0000 instead of GMT
        (
            format_datetime(modified.astimezone(timezone(timedelta(hours=2)))),
            304,
        ),  # the same instant elsewhere
        (modified.strftime("%a %b %d %H:%M:%S %Y"), 304),  # asctime
        ("yesterday", 200),
    ]:
        answer = site.get("/feeds/llm.atom", **{"If-Modified-Since": header})
        assert answer.status_code == status, header
        if status == 304:
            assert answer.data == b""
    # If-None-Match wins over If-Modified-Since
    both = {"If-None-Match": '"other"', "If-Modified-Since": equal}
    assert site.get("/feeds/llm.atom", **both).status_code == 200


def test_etag_is_the_same_in_every_worker(site: Site) -> None:
    first = site.get("/feeds/llm.rss")
    other = create_app(site.config, store=site.store).test_client().get("/feeds/llm.rss")
    assert other.data == first.data
    assert other.headers["ETag"] == first.headers["ETag"]
    assert other.headers["Last-Modified"] == first.headers["Last-Modified"]


LATE_EMPTY = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Late</title><link>https://late.example.org/</link>
<description>A source that has news later</description></channel></rss>
"""
LATE_ITEM = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Late</title><link>https://late.example.org/</link>
<description>A source that has news later</description>
<item><title>A large language model that arrives late</title><link>https://late.example.org/p/1</link>
<guid>https://late.example.org/p/1</guid><description>We study a language model.</description>
<pubDate>Wed, 25 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>
"""


def test_etag_changes_when_an_ingest_changes_the_topic(tmp_path: Path, database_url: str) -> None:
    site = build(tmp_path, database_url, extra={"late": ("late.xml", LATE_EMPTY)})
    try:
        before = site.get("/feeds/llm.atom")
        vision = site.get("/feeds/vision.atom")
        etag, _ = _validators(before)
        (tmp_path / "late.xml").write_bytes(LATE_ITEM)
        site.ingest("late")
        after = site.get("/feeds/llm.atom", **{"If-None-Match": etag})
        assert after.status_code == 200 and after.headers["ETag"] != etag
        assert b"https://late.example.org/p/1" in after.data
        check_atom(after.data, f"{BASE}/feeds/llm.atom")
        # a topic the new paper is not in keeps its tag
        again = site.get("/feeds/vision.atom", **{"If-None-Match": vision.headers["ETag"]})
        assert again.status_code == 304
    finally:
        site.store.close()


# --- hostile input ----------------------------------------------------------------------------


HOSTILE = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Hostile</title><link>https://hostile.example.org/</link>
<description>Entries that try to break feeds</description>
<item><title>&lt;script&gt;alert("t")&lt;/script&gt;Hostile pruning of LLMs</title>
<link>javascript:alert(1)</link><guid isPermaLink="false">hostile-1</guid>
<description>&lt;p onclick="alert(2)"&gt;Hostile abstract&lt;script&gt;alert(3)&lt;/script&gt;
&lt;a href="javascript:alert(4)"&gt;x&lt;/a&gt;&lt;img src=x onerror=alert(5)&gt;
&lt;iframe src="https://evil.example.org/"&gt;&lt;/iframe&gt;&lt;/p&gt;</description>
<author>evil@example.org (Mallory &lt;script&gt;alert(6)&lt;/script&gt;)</author>
<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>
<item>
<title>Hostile fish &amp; chips &lt; pie &gt; tart &amp;amp; &amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt;</title>
<link>https://hostile.example.org/a?x=1&amp;y=2</link><guid>https://hostile.example.org/a?x=1&amp;y=2</guid>
<description>A &amp;amp; B &lt; C, &amp;lt;script&amp;gt;alert(7)&amp;lt;/script&amp;gt; as text</description>
<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Hostile control\x01 chars\x08 in\x0b a\x0c title\x1f and\x7f more</title>
<link>https://hostile.example.org/b</link><description>bell\x07 and escape\x1b</description>
<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Hostile emoji \U0001f600 in a title \U0001f9ea</title>
<link>https://hostile.example.org/c</link><description>\U0001f4a9 and \u202e reversed</description>
<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Hostile links of other schemes</title>
<link>data:text/html,&lt;script&gt;alert(8)&lt;/script&gt;</link>
<description>&lt;a href="vbscript:msgbox(1)"&gt;v&lt;/a&gt;
&lt;a href="/relative"&gt;r&lt;/a&gt;</description>
<pubDate>Wed, 25 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>
""".encode()


def test_hostile_entries_stay_valid_and_inert(tmp_path: Path, database_url: str) -> None:
    topics = dict(TOPICS, hostile="hostile")
    site = build(tmp_path, database_url, topics=topics, extra={"hostile": ("hostile.xml", HOSTILE)})
    try:
        for slug in ("hostile", "all", "llm"):
            for fmt in FORMATS:
                body = site.ok(f"/feeds/{slug}.{fmt}?limit=500")
                ids = check(fmt, body, f"{BASE}/feeds/{slug}.{fmt}?limit=500")
                lowered = body.lower()
                for active in (
                    b"javascript:",
                    b"vbscript:",
                    b"data:text",
                    b"onerror",
                    b"onclick",
                    b"<iframe",
                ):
                    assert active not in lowered, (slug, fmt, active)
                if slug == "hostile":
                    assert len(ids) == 5
        feed = json.loads(site.ok("/feeds/hostile.json"))
        titles = [i["title"] for i in feed["items"]]
        assert "Hostile emoji \U0001f600 in a title \U0001f9ea" in titles
        assert any("fish & chips < pie > tart" in t for t in titles)
        assert not any(XML_ILLEGAL.search(t) for t in titles)
        entries = check_atom(site.ok("/feeds/hostile.atom"), f"{BASE}/feeds/hostile.atom")
        atom_titles = [e.findtext(f"{A}title") or "" for e in entries]
        assert sorted(atom_titles) == sorted(titles)  # text survives XML escaping exactly
        for entry in entries:  # no script element anywhere an HTML reader would look
            for field in ("content", "summary"):
                assert "<script" not in (entry.findtext(f"{A}{field}") or "").lower()
            for name in entry.iter(f"{A}name"):
                assert "<" not in (name.text or "")
    finally:
        site.store.close()


def _paper(**changes: Any) -> PaperView:
    fields: dict[str, Any] = {
        "id": 1,
        "feed_id": "tag:papers.example.org,2026-11-26:paper/x",
        "arxiv_id": None,
        "version": None,
        "doi": None,
        "title": "A title",
        "authors": ("Ada",),
        "abstract": "An abstract.",
        "published": datetime(2026, 11, 25, 10, tzinfo=UTC),
        "updated": datetime(2026, 11, 25, 10, tzinfo=UTC),
        "first_seen": datetime(2026, 11, 25, 10, tzinfo=UTC),
        "links": {"link": "https://example.org/p"},
        "categories": (),
        "upvotes": None,
        "comment": None,
        "journal_ref": None,
        "topics": (TopicMatch("llm", 3.0, ("LLM* in title",)),),
    }
    fields.update(changes)
    return PaperView(**fields)


def _page(*items: PaperView) -> FeedPage:
    return FeedPage(
        title="T\x01 <b>",
        description="D",
        self_url=f"{BASE}/feeds/llm.atom",
        feed_url=f"{BASE}/feeds/llm.atom",
        html_url=f"{BASE}/topics/llm",
        topics_url=f"{BASE}/topics/",
        papers=items,
    )


def test_the_renderer_defends_against_what_normalisation_should_have_removed() -> None:
    """Papers that reach the renderer some other way: illegal characters, markup in names,
    links a browser would run, and no authors at all."""
    bad = _paper(
        title="Bell\x07 <script>alert(1)</script> \ud800",
        authors=("Mallory <script>alert(2)</script>", "<b></b>", "Eve\x1b"),
        abstract="A < B & C\x0c",
        comment="</p><script>alert(3)</script>",
        links={"link": "javascript:alert(4)", "pdf": "data:text/html,x", "code": "https://example.org/c"},
    )
    bare = _paper(id=2, feed_id="https://arxiv.org/abs/2401.00001", authors=(), title="Bare")
    page = _page(bad, bare)
    entries = check_atom(atom(page), page.self_url)
    assert [a.findtext(f"{A}name") for a in entries[0].findall(f"{A}author")] == ["Mallory alert(2)", "Eve"]
    assert entries[0].findall(f"{A}link") == []  # nothing a browser may follow
    assert entries[1].findall(f"{A}author") == []  # the feed's author applies
    check_rss(rss(page), page.self_url)
    check_json(json_feed(page), page.self_url)
    html = content_html(bad, page.topics_url)
    assert_inert_html(html)
    assert "javascript" not in html and "data:" not in html and "https://example.org/c" in html


def test_an_empty_page_has_a_plausible_date() -> None:
    for render, fmt in ((atom, "atom"), (rss, "rss"), (json_feed, "json")):
        assert check(fmt, render(_page()), f"{BASE}/feeds/llm.atom") == []
    root = ET.fromstring(atom(_page()))
    assert rfc3339(root.findtext(f"{A}updated")).year >= 1990
    assert rfc822(ET.fromstring(rss(_page())).findtext("channel/lastBuildDate")).year >= 1990


# --- the W3C feed validator, when this machine has one ----------------------------------------


VALIDATOR = Path(__file__).parent.parent / "tools" / "feedvalidator" / "run"  # W3C's, vendored
REQUIRE_VALIDATOR = os.environ.get("AGGREGATOR_REQUIRE_VALIDATOR") == "1"


def test_the_w3c_feed_validator_finds_nothing(tmp_path: Path, database_url: str) -> None:
    """Every feed and digest, plain and paged, through the W3C feed validator (its first use
    builds a venv with its three dependencies from PyPI; without them it skips, but not in CI)."""
    command = os.environ.get("AGGREGATOR_FEEDVALIDATOR") or str(VALIDATOR)
    topics = dict(TOPICS, hostile="hostile")
    site = build(tmp_path, database_url, topics=topics, extra={"hostile": ("hostile.xml", HOSTILE)})
    try:
        files = []
        for slug in site.slugs():
            for fmt in ("atom", "rss"):
                for query in ("", "?limit=5", "?limit=5&offset=5"):
                    path = tmp_path / f"{slug}{query.replace('?', '-').replace('&', '-')}.{fmt}"
                    path.write_bytes(site.ok(f"/feeds/{slug}.{fmt}{query}"))
                    files.append(str(path))
                for kind in ("daily", "weekly"):  # the digests too
                    path = tmp_path / f"{slug}-{kind}.{fmt}"
                    path.write_bytes(site.ok(f"/feeds/{slug}/{kind}.{fmt}"))
                    files.append(str(path))
        done = subprocess.run(
            [*shlex.split(command), f"{BASE}/feeds/", *files], capture_output=True, text=True, timeout=600
        )
        if done.returncode == 2 and not REQUIRE_VALIDATOR:  # its venv could not be built (offline)
            pytest.skip(f"the feed validator could not be set up: {done.stderr[-300:]}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(files) > 20
    finally:
        site.store.close()


def test_hugging_face_rss_papers_arrive_whole(tmp_path: Path, database_url: str) -> None:
    """The Hugging Face papers RSS, through ingest to the feeds: authors, upvotes, a summary
    without labels, the thumbnail as the JSON Feed item's image, one paper per arXiv id."""
    sample = Path(__file__).parent.parent / "config" / "samples" / "hf-weekly-2026-08-08.xml"
    (tmp_path / "hf.xml").write_bytes(sample.read_bytes())
    config_path = tmp_path / "aggregator.yaml"
    config_path.write_text(
        f"database: {database_url}\nsite: {{base_url: '{BASE}'}}\n"
        "sources:\n  - {name: hf, url: 'file:hf.xml'}\n"
    )
    config = load_config(config_path, env={})
    store = open_store(config)
    try:
        pipeline = Pipeline(config, store)
        assert not [o for o in pipeline.run(pipeline.select()) if o.failed]
        client = create_app(config, store=store).test_client()
        found = client.get("/api/papers?limit=50").get_json()["papers"]
        assert len(found) == 6
        for paper in found:
            assert paper["authors"] and isinstance(paper["upvotes"], int) and paper["arxiv_id"]
            assert not paper["abstract"].startswith(("Authors", "Upvotes", "Summary"))
        items = client.get("/feeds/all.json").get_json()["items"]
        assert all(i["image"].startswith("https://cdn-thumbnails.huggingface.co/") for i in items)
    finally:
        store.close()


# --- digest feeds -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["daily", "weekly"])
def test_digests_hold_each_periods_top_papers(site: Site, kind: str) -> None:
    """One entry per period that has papers, newest first, each with at most `top` papers ranked
    by score, then upvotes, then date; every format passes the validator's rules."""
    for slug in ("llm", "all"):
        for fmt in FORMATS:
            assert check(fmt, site.ok(f"/feeds/{slug}/{kind}.{fmt}"), f"{BASE}/feeds/{slug}/{kind}.{fmt}")
        items = json.loads(site.ok(f"/feeds/{slug}/{kind}.json?top=3"))["items"]
        assert items
        labels = [i["_digest"]["period"] for i in items]
        assert labels == sorted(labels, reverse=True) and len(set(labels)) == len(labels)
        query = PageQuery(limit=500, topic=None if slug == "all" else slug)
        ranked = {p.feed_id: p for p in site.store.papers_page(query).papers}
        for item in items:
            chosen = [ranked[f] for f in item["_digest"]["papers"]]
            assert 1 <= len(chosen) <= 3
            start = datetime.fromisoformat(item["date_published"].replace("Z", "+00:00"))
            start -= timedelta(days=1 if kind == "daily" else 7)
            assert all(
                start <= p.published < start + timedelta(days=1 if kind == "daily" else 7) for p in chosen
            )
            votes = [-1 if p.upvotes is None else p.upvotes for p in chosen]
            if slug == "llm":
                keys = [
                    (-next(t.score for t in p.topics if t.slug == "llm"), -v)
                    for p, v in zip(chosen, votes, strict=True)
                ]
                assert keys == sorted(keys)
            else:  # all papers: the most upvoted first
                assert votes == sorted(votes, reverse=True)
            assert all(html.escape(p.title)[:20] in item["content_html"] for p in chosen)


def test_digest_ids_are_stable_and_the_running_period_waits(fresh_site: Site) -> None:
    site = fresh_site
    before = json.loads(site.ok("/feeds/all/daily.json?periods=50"))["items"]
    site.ingest()  # the same sources again: nothing changes
    again = json.loads(site.ok("/feeds/all/daily.json?periods=50"))["items"]
    assert [i["id"] for i in again] == [i["id"] for i in before]
    assert [i["content_html"] for i in again] == [i["content_html"] for i in before]
    assert all(i["id"].startswith("tag:papers.example.org,") and "/all/daily" in i["id"] for i in before)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert all(i["_digest"]["period"] != today for i in before)  # the day is not over


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/feeds/llm/monthly.atom", 404),
        ("/feeds/nope/daily.atom", 404),
        ("/feeds/llm/daily.xml", 404),
        ("/feeds/llm/daily.atom?top=0", 400),
        ("/feeds/llm/daily.atom?top=51", 400),
        ("/feeds/llm/daily.atom?periods=x", 400),
        ("/feeds/llm/daily.atom?limit=5", 400),
        ("/feeds/llm/daily.atom?top=50&periods=11", 400),  # more papers than a feed page holds
    ],
)
def test_digest_urls_that_name_nothing_or_ask_too_much(site: Site, path: str, status: int) -> None:
    assert site.get(path).status_code == status


@pytest.mark.parametrize("fmt", FORMATS)
def test_digests_of_an_empty_store_are_valid_and_empty(tmp_path: Path, database_url: str, fmt: str) -> None:
    site = build(tmp_path, database_url)
    try:
        empty = create_app(site.config, store=site.store)
        with site.store.engine.begin() as conn:  # a store whose papers are all gone
            conn.execute(papers.delete())
        client = empty.test_client()
        for path in (f"/feeds/all/daily.{fmt}", f"/feeds/llm/weekly.{fmt}"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert check(fmt, response.data, BASE + path) == []
    finally:
        site.store.close()
