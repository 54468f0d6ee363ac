"""Sources served from 127.0.0.1 through the whole pipeline: conditional GET, failures, back-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.ingest.pipeline import Pipeline, retry_delay
from aggregator.store.repository import PageQuery, Store
from tests.conftest import Clock, make_config

DATA = Path(__file__).parent / "data"
LISTING = (DATA / "dedup-dev" / "arxiv-rss.xml").read_bytes()
HF = (DATA / "dedup-dev" / "hf-daily.json").read_bytes()


def config_for(tmp_path: Path, database_url: str, sources: dict[str, str]) -> str:
    lines = ["fetch:", "  allow_networks: [127.0.0.0/8]", "  timeout: 5s", "sources:"]
    for name, url in sources.items():
        lines += [f"  - name: {name}", f"    url: {url}", "    every: 1h"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 26, 9, tzinfo=UTC))


def test_conditional_get_costs_no_parse_and_no_write(
    httpserver: HTTPServer,
    tmp_path: Path,
    database_url: str,
    store: Store,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"200": 0, "304": 0}

    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            calls["304"] += 1
            return Response(status=304, headers={"ETag": '"v1"'})
        calls["200"] += 1
        return Response(LISTING, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    httpserver.expect_request("/rss").respond_with_handler(handler)
    config = make_config(
        tmp_path, config_for(tmp_path, database_url, {"rss": httpserver.url_for("/rss")}), database_url
    )
    pipeline = Pipeline(config, store, clock=clock)
    first = pipeline.run(pipeline.select())[0]
    assert first.new == 53 and not first.failed
    version = store.version()

    import aggregator.ingest.pipeline as pipeline_module

    def no_parse(*_a: object, **_k: object) -> None:
        raise AssertionError("a 304 must not be parsed")

    monkeypatch.setattr(pipeline_module, "parse_feed", no_parse)
    clock.now += timedelta(hours=2)
    second = pipeline.run(pipeline.due())[0]
    assert second.not_modified and not second.failed
    assert calls == {"200": 1, "304": 1}
    assert store.version() == version


def test_a_broken_source_is_marked_and_the_others_go_on(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> None:
    httpserver.expect_request("/hf").respond_with_data(HF, content_type="application/json")
    httpserver.expect_request("/broken").respond_with_data(
        "<html><body>Oops</body></html>", content_type="text/html"
    )
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    sources = {
        "hf": httpserver.url_for("/hf"),
        "broken": httpserver.url_for("/broken"),
        "gone": httpserver.url_for("/gone"),
        "missing": "file:nowhere.xml",
    }
    config = make_config(tmp_path, config_for(tmp_path, database_url, sources), database_url)
    pipeline = Pipeline(config, store, clock=clock)
    outcomes = {o.source: o for o in pipeline.run(pipeline.select())}
    assert outcomes["hf"].new == 28 and not outcomes["hf"].failed
    assert outcomes["broken"].error and outcomes["broken"].error.startswith("parse:")
    assert outcomes["gone"].error and "404" in outcomes["gone"].error
    assert outcomes["missing"].error and outcomes["missing"].error.startswith("fetch:")
    states = {s.name: s for s in store.source_states()}
    assert states["broken"].error_count == 1 and states["hf"].error_count == 0
    assert states["gone"].next_fetch_at == clock.now + timedelta(minutes=5)

    # the healthy source keeps its papers when it later breaks too
    httpserver.clear()
    httpserver.expect_request("/hf").respond_with_data("not json at all", content_type="application/json")
    clock.now += timedelta(hours=2)
    again = {o.source: o for o in pipeline.run(pipeline.select())}
    assert again["hf"].failed
    assert store.papers_page(PageQuery(source="hf", limit=1)).total == 28


def test_retry_after_is_obeyed(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> None:
    httpserver.expect_request("/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7200"}
    )
    config = make_config(
        tmp_path, config_for(tmp_path, database_url, {"busy": httpserver.url_for("/busy")}), database_url
    )
    pipeline = Pipeline(config, store, clock=clock)
    [outcome] = pipeline.run(pipeline.select())
    assert outcome.failed
    state = store.source_state("busy")
    assert state is not None and state.next_fetch_at == clock.now + timedelta(hours=2)
    assert pipeline.due() == []


@pytest.mark.parametrize(
    ("errors", "every", "retry_after", "expected"),
    [
        (1, timedelta(hours=6), None, timedelta(minutes=5)),
        (2, timedelta(hours=6), None, timedelta(minutes=10)),
        (10, timedelta(hours=6), None, timedelta(hours=6)),
        (30, timedelta(days=7), None, timedelta(days=1)),
        (1, timedelta(hours=6), 3600.0, timedelta(hours=1)),
        (1, timedelta(minutes=1), None, timedelta(minutes=5)),
    ],
)
def test_retry_delay(errors: int, every: timedelta, retry_after: float | None, expected: timedelta) -> None:
    assert retry_delay(errors, every, retry_after) == expected


def test_a_gone_feed_stops_until_its_url_changes_and_the_others_still_ingest(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> None:
    from aggregator import create_app
    from aggregator.types import STOPPED

    httpserver.expect_request("/gone").respond_with_data("", status=410)
    httpserver.expect_request("/fine").respond_with_data(LISTING, content_type="application/rss+xml")
    httpserver.expect_request("/no-validators").respond_with_data("", status=304)
    urls = {name: httpserver.url_for(f"/{name}") for name in ("gone", "fine", "no-validators")}
    config = make_config(tmp_path, config_for(tmp_path, database_url, urls), database_url)
    pipeline = Pipeline(config, store, clock=clock)
    outcomes = {o.source: o for o in pipeline.run(pipeline.select())}
    assert outcomes["fine"].new > 0 and not outcomes["fine"].failed
    assert outcomes["gone"].error and "410" in outcomes["gone"].error
    assert outcomes["no-validators"].error and "no validators" in outcomes["no-validators"].error
    gone = store.source_state("gone")
    assert gone is not None and gone.next_fetch_at == STOPPED
    clock.now += timedelta(days=30)  # never due again, whatever the back-off
    assert "gone" not in {s.name for s in pipeline.due()} and "fine" in {s.name for s in pipeline.due()}

    client = create_app(config, store=store).test_client()
    sources = {s["name"]: s for s in client.get("/api/sources").get_json()["sources"]}
    assert sources["gone"]["stopped"] is True and sources["gone"]["next_fetch"] is None
    assert sources["fine"]["stopped"] is False
    assert "No longer fetched" in client.get("/").get_data(as_text=True)

    moved = dict(urls, gone=httpserver.url_for("/fine"))  # the config gives it a new URL
    pipeline = Pipeline(
        make_config(tmp_path, config_for(tmp_path, database_url, moved), database_url), store, clock=clock
    )
    assert "gone" in {s.name for s in pipeline.due()}


def test_a_truncated_document_keeps_what_it_read_and_is_read_again(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> None:
    """A download cut short parses with errors and loses entries: the papers read are stored,
    the source carries a warning, and no validators or hash are kept, so the next fetch reads
    the document again instead of taking it as unchanged."""
    from aggregator import create_app

    whole = (DATA / "dedup-dev" / "blog.xml").read_bytes()
    cut = whole[: len(whole) * 2 // 3]
    served = {"body": cut}
    httpserver.expect_request("/blog").respond_with_handler(
        lambda request: Response(
            served["body"], headers={"ETag": '"same"', "Content-Type": "application/rss+xml"}
        )
    )
    httpserver.expect_request("/fine").respond_with_data(LISTING, content_type="application/rss+xml")
    urls = {"blog": httpserver.url_for("/blog"), "fine": httpserver.url_for("/fine")}
    config = make_config(tmp_path, config_for(tmp_path, database_url, urls), database_url)
    pipeline = Pipeline(config, store, clock=clock)
    outcomes = {o.source: o for o in pipeline.run(pipeline.select())}
    first = outcomes["blog"]
    assert not first.failed and first.new > 0 and first.warning and "not well-formed" in first.warning
    assert outcomes["fine"].new > 0 and not outcomes["fine"].warning
    state = store.source_state("blog")
    assert state is not None and state.last_warning == first.warning
    assert state.etag is None and state.body_hash is None and state.last_error is None
    api = {
        s["name"]: s
        for s in create_app(config, store=store).test_client().get("/api/sources").get_json()["sources"]
    }
    assert api["blog"]["warning"] == first.warning and api["blog"]["ok"] is True

    served["body"] = whole  # the next fetch reads the whole document, and the warning goes
    clock.now += timedelta(hours=2)
    [again] = pipeline.run(pipeline.select(["blog"]))
    assert not again.not_modified and again.new > 0 and again.warning is None
    state = store.source_state("blog")
    assert state is not None and state.last_warning is None and state.etag == '"same"'


def _fetch_once(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> tuple[Pipeline, datetime]:
    config = make_config(
        tmp_path, config_for(tmp_path, database_url, {"hinted": httpserver.url_for("/feed")}), database_url
    )
    pipeline = Pipeline(config, store, clock=clock)
    [outcome] = pipeline.run(pipeline.select())
    assert not outcome.failed, outcome.error
    state = store.source_state("hinted")
    assert state is not None and state.next_fetch_at is not None
    return pipeline, state.next_fetch_at


def test_a_server_that_says_fresh_for_three_hours_is_asked_again_in_three(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        LISTING, content_type="application/rss+xml", headers={"Cache-Control": "public, max-age=10800"}
    )
    pipeline, next_at = _fetch_once(httpserver, tmp_path, database_url, store, clock)
    assert next_at == clock.now + timedelta(hours=3)  # not after its `every` of 1 h
    clock.now += timedelta(hours=2)
    assert pipeline.due() == []  # a restart would not fetch it early either: the time is stored
    clock.now = next_at
    assert [s.name for s in pipeline.due()] == ["hinted"]


def test_a_feed_with_a_ttl_is_asked_again_after_it(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> None:
    body = LISTING.replace(b"<channel>", b"<channel><ttl>300</ttl>", 1)
    assert body != LISTING
    httpserver.expect_request("/feed").respond_with_data(body, content_type="application/rss+xml")
    _, next_at = _fetch_once(httpserver, tmp_path, database_url, store, clock)
    assert next_at == clock.now + timedelta(hours=5)


def test_a_feed_that_skips_the_weekend_is_not_asked_on_saturday(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> None:
    weekend = b"<skipDays><day>Saturday</day><day>Sunday</day></skipDays>"
    httpserver.expect_request("/feed").respond_with_data(
        LISTING.replace(b"<channel>", b"<channel>" + weekend, 1), content_type="application/rss+xml"
    )
    clock.now = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)  # Friday night; every 1 h is Saturday
    _, next_at = _fetch_once(httpserver, tmp_path, database_url, store, clock)
    assert next_at == clock.now + timedelta(hours=24)  # as far as a hint may push it


def test_a_304_that_says_fresh_for_two_hours_is_asked_again_in_two(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> None:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"', "Cache-Control": "max-age=7200"})
        return Response(LISTING, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    pipeline, _ = _fetch_once(httpserver, tmp_path, database_url, store, clock)
    clock.now += timedelta(hours=2)
    [outcome] = pipeline.run(pipeline.due())
    assert outcome.not_modified
    state = store.source_state("hinted")
    assert state is not None and state.next_fetch_at == clock.now + timedelta(hours=2)


def test_a_304_keeps_the_schedule_the_feed_asked_for(
    httpserver: HTTPServer, tmp_path: Path, database_url: str, store: Store, clock: Clock
) -> None:
    """The feed's hints come with its body; a 304 has none, and the last body's hints stand."""
    weekend = b"<skipDays><day>Saturday</day><day>Sunday</day></skipDays>"
    body = LISTING.replace(b"<channel>", b"<channel>" + weekend, 1)

    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(body, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    clock.now = datetime(2026, 12, 4, 12, tzinfo=UTC)  # Friday noon: every 1 h is still Friday
    pipeline, first = _fetch_once(httpserver, tmp_path, database_url, store, clock)
    assert first < clock.now + timedelta(hours=2)
    state = store.source_state("hinted")
    assert state is not None and state.hints is not None and state.hints.skip_days == {5, 6}
    clock.now = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)  # Friday night: every 1 h is Saturday
    [outcome] = pipeline.run(pipeline.due())
    assert outcome.not_modified
    state = store.source_state("hinted")
    assert state is not None and state.next_fetch_at == clock.now + timedelta(hours=24)
    assert state.hints is not None and state.hints.skip_days == {5, 6}  # kept for the next 304
