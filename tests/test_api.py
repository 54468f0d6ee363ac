"""/api/papers, /api/sources and /healthz as the contract's JSON API says."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from aggregator import create_app
from aggregator.ingest.pipeline import Pipeline
from aggregator.store.repository import Store
from tests.conftest import make_config, shared_database_url

DEDUP = Path(__file__).parent / "data" / "dedup-dev"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One site over two sources and a missing one, for the tests that only read it."""
    folder = tmp_path_factory.mktemp("api")
    for name in ("arxiv-api.xml", "hf-daily.json"):
        shutil.copy(DEDUP / name, folder / name)
    body = (
        "sources:\n  - {name: api, url: 'file:arxiv-api.xml'}\n  - {name: hf, url: 'file:hf-daily.json'}\n"
        "  - {name: down, url: 'file:missing.xml'}\n"
    )
    config = make_config(folder, body, shared_database_url(folder, "api"))
    store = Store.open(config.database_url, tag_authority="papers.example.org")
    pipeline = Pipeline(config, store)
    pipeline.run(pipeline.select())
    yield create_app(config, store=store)
    store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_papers_shape(client: FlaskClient) -> None:
    page = client.get("/api/papers?limit=500").get_json()
    assert page["total"] == len(page["papers"]) > 0 and page["next"] is None
    paper = next(p for p in page["papers"] if len(p["sightings"]) == 2)
    assert set(paper) >= {
        "id",
        "arxiv_id",
        "doi",
        "title",
        "authors",
        "abstract",
        "published",
        "updated",
        "links",
        "categories",
        "upvotes",
        "topics",
        "sightings",
    }
    assert paper["id"] == f"https://arxiv.org/abs/{paper['arxiv_id']}"
    assert paper["links"]["abs"] == paper["id"] and paper["links"]["pdf"].startswith("https://arxiv.org/pdf/")
    assert paper["published"].endswith("Z")
    assert {s["source"] for s in paper["sightings"]} == {"api", "hf"}
    hf = next(s for s in paper["sightings"] if s["source"] == "hf")
    assert hf["entry_id"] == paper["arxiv_id"]  # the entry's own id exactly as HF wrote it
    assert isinstance(paper["upvotes"], int)
    assert "<" not in paper["abstract"]


def test_paging_follows_next_links_in_feed_order(client: FlaskClient) -> None:
    everything = client.get("/api/papers?limit=500").get_json()["papers"]
    seen, url = [], "/api/papers?limit=10&source=api"
    while url:
        page = client.get(url).get_json()
        seen += page["papers"]
        url = page["next"] and page["next"].removeprefix("http://papers.example.org")
        assert not url or "source=api" in url
    assert [p["id"] for p in seen] == [
        p["id"] for p in everything if any(s["source"] == "api" for s in p["sightings"])
    ]
    keys = [(p["published"], p["id"]) for p in everything]
    assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=True)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=banana", "limit: 'banana' is not a whole number"),
        ("limit=0", "limit: 0 is out of range"),
        ("limit=501", "limit: 501 is out of range"),
        ("offset=-1", "offset: -1 is out of range"),
        ("since=yesterday", "since: 'yesterday' is not a date"),
        ("source=nope", "source: no source named 'nope'"),
        ("colour=red", "unknown parameter 'colour'"),
        ("offset=99999999999999999999", "offset: 99999999999999999999 is out of range"),
        ("since=0001-01-01T00:00:00%2B05:00", "since: '0001-01-01T00:00:00+05:00' is out of range"),
        ("after=yesterday", "after: 'yesterday' is not a page cursor"),
        ("after=12.x", "after: '12.x' is not a page cursor"),
        ("after=999999999999999999.1", "after: '999999999999999999.1' is out of range"),
        ("q=(LLM", "q: unbalanced parenthesis"),
        ("q=topic:nope", "q: topic:nope names no topic"),
    ],
)
def test_bad_parameters_get_a_400_with_a_plain_message(client: FlaskClient, query: str, message: str) -> None:
    response = client.get(f"/api/papers?{query}")
    assert response.status_code == 400
    assert message in response.get_json()["error"]


@pytest.mark.parametrize("since", ["2000-01-01", "2000-01-01T00:00:00Z", "2000-01-01T01:00:00+01:00"])
def test_since_takes_dates_and_datetimes(client: FlaskClient, since: str) -> None:
    all_total = client.get("/api/papers").get_json()["total"]
    assert client.get("/api/papers", query_string={"since": since}).get_json()["total"] == all_total
    assert client.get("/api/papers?since=2100-01-01").get_json()["total"] == 0


def test_sources_and_health_report_a_failing_source_but_stay_200(client: FlaskClient) -> None:
    sources = {s["name"]: s for s in client.get("/api/sources").get_json()["sources"]}
    assert sources["api"]["ok"] and sources["api"]["entries"] > 0
    assert not sources["down"]["ok"] and sources["down"]["last_error"].startswith("fetch:")
    assert sources["down"]["next_fetch"]
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.get_json()["sources_failing"] == ["down"]


def test_metrics_expose_papers_fetches_and_requests(client: FlaskClient) -> None:
    from aggregator.metrics import record_fetch
    from aggregator.types import SourceOutcome

    record_fetch(SourceOutcome("api", new=3))
    record_fetch(SourceOutcome("down", error="fetch: gone"))
    client.get("/api/papers?limit=1")
    body = client.get("/metrics")
    assert body.status_code == 200 and body.content_type.startswith("text/plain")
    text = body.data.decode()
    total = client.get("/api/papers").get_json()["total"]
    assert f"aggregator_papers {float(total)}" in text
    assert "aggregator_sources_failing 1.0" in text
    assert 'aggregator_fetches_total{outcome="failed",source="down"}' in text
    assert 'aggregator_http_requests_total{endpoint="api.papers",status="200"}' in text
    assert "aggregator_http_request_seconds_bucket" in text


def test_search_on_an_empty_store(tmp_path: Path, database_url: str, store: Store) -> None:
    """A new server, nothing ingested yet: every search answers, with nothing."""
    config = make_config(tmp_path, "sources:\n  - {name: rss, url: 'file:none.xml'}\n", database_url)
    client = create_app(config, store=store).test_client()
    phrases = ('"language mod*" OR llm', '"large language model" AND prun*')  # PostgreSQL: pairs, UNION, IN
    for query in ("LLM", "prun* AND model", '"language model"', "NOT x", "x*", *phrases):
        page = client.get("/api/papers", query_string={"q": query}).get_json()
        assert page == {"papers": [], "total": 0, "total_exact": True, "next": None}, query
        assert client.get("/api/preview", query_string={"q": query}).get_json()["total"] == 0
        assert client.get("/search", query_string={"q": query}).status_code == 200
        assert client.get("/feeds/all.atom", query_string={"q": query}).status_code == 200


def test_health_shows_states_but_no_urls_or_error_texts(client: FlaskClient) -> None:
    """Anyone may ask /healthz: it names sources and their states, never where they are."""
    body = client.get("/healthz").get_data(as_text=True)
    health = client.get("/healthz").get_json()
    assert {s["name"] for s in health["sources"]} >= {"api", "down"}
    assert all(
        set(s) == {"name", "ok", "entries", "last_fetch", "last_success", "error_count"}
        for s in health["sources"]
    )
    assert "file:" not in body and "http" not in body and "fetch:" not in body


def test_sources_show_a_files_name_not_its_place() -> None:
    from aggregator.web.api import shown_url

    assert shown_url("file:///srv/secret/feeds/arxiv.xml") == "file:arxiv.xml"
    assert shown_url("file:samples/listing.xml") == "file:listing.xml"
    assert shown_url("https://rss.arxiv.org/rss/cs.CL") == "https://rss.arxiv.org/rss/cs.CL"


def test_a_site_may_hide_every_source_url(tmp_path: Path, database_url: str, store: Store) -> None:
    shutil.copy(DEDUP / "arxiv-api.xml", tmp_path / "arxiv-api.xml")
    from aggregator.config import config_from_text

    config = config_from_text(
        f"database: {database_url}\nsite: {{base_url: 'http://papers.example.org', hide_source_urls: true}}\n"
        "sources:\n  - {name: api, url: 'file:arxiv-api.xml'}\n  - {name: web, url: 'https://example.org/feed'}\n",
        base_dir=tmp_path,
        env={},
    )
    assert config.site.hide_source_urls
    store.sync_sources([(s.name, s.url) for s in config.sources])
    sources = create_app(config, store=store).test_client().get("/api/sources").get_json()["sources"]
    assert {s["name"]: s["url"] for s in sources} == {"api": None, "web": None}


@pytest.mark.parametrize(
    "path",
    ["/api/papers?limit=5", "/api/papers?q=model*", "/api/topics", "/api/preview?q=model*", "/api/sources"],
)
def test_the_api_answers_with_etags_and_304s(client: FlaskClient, path: str) -> None:
    first = client.get(path)
    assert first.status_code == 200 and first.headers.get("ETag")
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_metrics_sum_every_process_of_a_deployment(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, fetches counted by two worker processes show in the
    /metrics of a third (a gunicorn worker), summed."""
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = (
        "from aggregator.metrics import record_fetch\n"
        "from aggregator.types import SourceOutcome\n"
        "record_fetch(SourceOutcome('arxiv', new=2))\n"
        "record_fetch(SourceOutcome('blog', error='fetch: down'))\n"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True)
    show = "from aggregator.metrics import exposition\nprint(exposition(7, 1)[0].decode())"
    text = subprocess.run(
        [sys.executable, "-c", show], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert 'aggregator_fetches_total{outcome="ok",source="arxiv"} 2.0' in text
    assert 'aggregator_fetches_total{outcome="failed",source="blog"} 2.0' in text
    assert 'aggregator_papers_written_total{kind="new"} 4.0' in text
    assert "aggregator_papers 7.0" in text
