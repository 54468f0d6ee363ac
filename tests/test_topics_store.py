"""Topics through the store, the CLI and the API: tagging at ingest, re-tagging, preview."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from aggregator import create_app
from aggregator.cli import cli
from aggregator.config import Config, load_config
from aggregator.ingest.pipeline import Pipeline, store_batch
from aggregator.runtime import open_store, topic_specs
from aggregator.store import tagging
from aggregator.store.repository import PageQuery, Store
from aggregator.store.schema import paper_topics
from aggregator.store.tagging import RetagResult
from aggregator.topics.match import Tagger, fingerprints
from aggregator.types import TopicSpec
from tests.test_store import T0, done, entry

DEDUP = Path(__file__).parent / "data" / "dedup-dev"
TOPICS = {
    "llm": 'title:(LLM* OR "language model*") OR (LLM* "language model*")',
    "vision": "image* OR vision OR visual OR video*",
    "security": "secur* OR attack* OR privacy OR jailbreak*",
}


def write_config(folder: Path, database_url: str, topics: dict[str, str], extra: str = "") -> Path:
    for name in ("arxiv-rss.xml", "hf-daily.json", "venue.atom"):
        shutil.copy(DEDUP / name, folder / name)
    lines = [
        f"database: {database_url}",
        "site:",
        "  base_url: http://papers.example.org",
        "sources:",
        "  - {name: rss, url: 'file:arxiv-rss.xml'}",
        "  - {name: hf, url: 'file:hf-daily.json'}",
        "  - {name: venue, url: 'file:venue.atom'}",
        "topics:",
    ]
    for slug, query in topics.items():
        lines += [f"  - slug: {slug}", f"    query: '{query}'"]
    path = folder / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def ingested(folder: Path, database_url: str, topics: dict[str, str] = TOPICS) -> tuple[Config, Store]:
    config = load_config(write_config(folder, database_url, topics))
    store = open_store(config)
    pipeline = Pipeline(config, store)
    pipeline.run(pipeline.select())
    return config, store


def pairs(store: Store) -> dict[tuple[int, str], tuple[float, tuple[str, ...]]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(paper_topics)).all()
    return {(r.paper_id, r.slug): (r.score, tuple(r.matched)) for r in rows}


def test_papers_are_tagged_at_ingest_with_score_and_explanation(tmp_path: Path, database_url: str) -> None:
    config, store = ingested(tmp_path, database_url)
    client = create_app(config, store=store).test_client()
    page = client.get("/api/papers?topic=llm&limit=500").get_json()
    assert page["total"] > 0
    for paper in page["papers"]:
        [llm] = [t for t in paper["topics"] if t["slug"] == "llm"]
        assert llm["score"] >= 1 and llm["matched"]
        assert all(" in " in m for m in llm["matched"])
    everything = client.get("/api/papers?limit=500").get_json()["papers"]
    expected = [p["id"] for p in everything if any(t["slug"] == "llm" for t in p["topics"])]
    assert [p["id"] for p in page["papers"]] == expected  # same feed order
    counts = {t["slug"]: t["count"] for t in client.get("/api/topics").get_json()["topics"]}
    assert counts["llm"] == page["total"]
    store.close()


def test_q_filters_with_the_query_language(tmp_path: Path, database_url: str) -> None:
    config, store = ingested(tmp_path, database_url)
    client = create_app(config, store=store).test_client()
    page = client.get("/api/papers", query_string={"q": '"language model*" OR LLM*', "limit": 3}).get_json()
    assert page["total"] >= 3 and len(page["papers"]) == 3 and page["next"]
    assert "q=" in page["next"] and "after=" in page["next"] and page["total_exact"]
    following = client.get(page["next"]).get_json()
    assert not {p["id"] for p in following["papers"]} & {p["id"] for p in page["papers"]}
    both = client.get("/api/papers", query_string={"q": "image*", "topic": "llm", "limit": 500}).get_json()
    assert all(any(t["slug"] == "llm" for t in p["topics"]) for p in both["papers"])
    for bad, message in [
        ({"q": "(a OR b"}, "q: unbalanced parenthesis"),
        ({"topic": "nope"}, "topic: no topic"),
    ]:
        response = client.get("/api/papers", query_string=bad)
        assert response.status_code == 400
        assert message in response.get_json()["error"]
    store.close()


def test_editing_one_topic_retags_exactly_its_pairs(tmp_path: Path, database_url: str) -> None:
    config, store = ingested(tmp_path, database_url)
    before = pairs(store)
    store.close()
    edited = dict(TOPICS, vision="image* OR vision OR visual OR video* OR 3D OR camera*")
    config = load_config(write_config(tmp_path, database_url, edited))
    store = open_store(config)  # a changed topic set is re-applied at start
    after = pairs(store)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed, "the edit should change something in this data"
    assert {slug for _, slug in changed} == {"vision"}
    assert {k: v for k, v in before.items() if k[1] != "vision"} == {
        k: v for k, v in after.items() if k[1] != "vision"
    }

    # a second start with the same topics changes nothing, and `retag` agrees there is nothing to do
    store.close()
    again = open_store(config)
    assert pairs(again) == after
    result = again.retag()
    assert result.changed == 0 and result.papers > 0
    again.close()


def test_removing_a_topic_removes_its_pairs(tmp_path: Path, database_url: str) -> None:
    _, store = ingested(tmp_path, database_url)
    store.close()
    config = load_config(
        write_config(tmp_path, database_url, {k: v for k, v in TOPICS.items() if k != "security"})
    )
    store = open_store(config)
    assert {slug for _, slug in pairs(store)} <= {"llm", "vision"}
    store.close()


def test_retag_command_reports_what_changed(tmp_path: Path, database_url: str) -> None:
    _, store = ingested(tmp_path, database_url)
    with store.engine.begin() as conn:  # simulate a stale assignment the topics no longer give
        conn.execute(paper_topics.delete().where(paper_topics.c.slug == "llm"))
    store.close()
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "aggregator.yaml"), "retag"])
    assert result.exit_code == 0, result.output
    assert "topic assignments added" in result.output
    added = int(result.output.split("re-tagged: ")[1].split(" ")[0])
    assert added > 0


def test_preview_command_and_api(tmp_path: Path, database_url: str) -> None:
    config, store = ingested(tmp_path, database_url)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--config", str(tmp_path / "aggregator.yaml"), "preview", 'LLM* OR "language model*"']
    )
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    total = int(first.split()[0])
    assert total > 0 and "papers match" in first
    assert any("-W" in line for line in result.output.splitlines())

    client = create_app(config, store=store).test_client()
    body = client.get("/api/preview", query_string={"q": 'LLM* OR "language model*"'}).get_json()
    assert body["total"] == total
    assert sum(w["count"] for w in body["weeks"]) == total
    sample = body["sample"][0]
    start, end = sample["highlights"][0]
    assert sample["title"][start:end].lower().startswith(("llm", "language model"))

    bad = runner.invoke(cli, ["--config", str(tmp_path / "aggregator.yaml"), "preview", "titel:x"])
    assert bad.exit_code == 2 and "unknown field 'titel'" in bad.output
    response = client.get("/api/preview?q=titel:x")
    assert response.status_code == 400 and "did you mean 'title'" in response.get_json()["error"]
    store.close()


@pytest.mark.parametrize("query", ["(prun*", "titel:x", "topic:nope"])
def test_a_bad_topic_query_stops_the_config_with_its_place(
    tmp_path: Path, database_url: str, query: str
) -> None:
    path = write_config(tmp_path, database_url, {"broken": query})
    result = CliRunner().invoke(cli, ["--config", str(path), "check-config"])
    assert result.exit_code != 0
    assert "topics[0].query" in str(result.exception) + result.output


def test_q_and_preview_may_refer_to_configured_topics(tmp_path: Path, database_url: str) -> None:
    config, store = ingested(tmp_path, database_url)
    client = create_app(config, store=store).test_client()
    by_topic = client.get("/api/papers?topic=llm&limit=500").get_json()["total"]
    assert by_topic > 0
    assert client.get("/api/papers", query_string={"q": "topic:llm"}).get_json()["total"] == by_topic
    assert client.get("/api/preview", query_string={"q": "topic:llm"}).get_json()["total"] == by_topic
    response = client.get("/api/papers", query_string={"q": "topic:nope"})
    assert response.status_code == 400 and "topic:nope names no topic" in response.get_json()["error"]
    store.close()


def test_preview_reads_and_writes_nothing(tmp_path: Path, database_url: str) -> None:
    """A preview with a config that adds a topic and a source changes neither the store's
    version, its topics nor its sources."""
    _, store = ingested(tmp_path, database_url)
    before = (store.version(), pairs(store), [s.name for s in store.source_states()])
    path = write_config(tmp_path, database_url, {**TOPICS, "new-topic": "model*"})
    path.write_text(path.read_text().replace("topics:", "  - {name: extra, url: 'file:x.xml'}\ntopics:", 1))
    result = CliRunner().invoke(cli, ["--config", str(path), "preview", "model*"])
    assert result.exit_code == 0, result.output
    assert (store.version(), pairs(store), [s.name for s in store.source_states()]) == before
    store.close()


def test_preview_applies_exclude_and_announce_and_shows_what_matched(
    tmp_path: Path, database_url: str
) -> None:
    config, store = ingested(tmp_path, database_url)
    client = create_app(config, store=store).test_client()
    runner = CliRunner()
    args = ["--config", str(tmp_path / "aggregator.yaml"), "preview"]

    def total(*extra: str) -> int:
        result = runner.invoke(cli, [*args, *extra])
        assert result.exit_code == 0, result.output
        return int(result.output.split()[0])

    everything, excluded = total("model*"), total("model*", "--exclude", "language")
    assert 0 < excluded < everything
    assert excluded == total("model* AND NOT language")
    shown = runner.invoke(cli, [*args, "model*"]).output
    assert "(score 3: model* in title)" in shown  # each title says which terms matched, where

    api = client.get("/api/preview", query_string={"q": "model*", "exclude": "language"}).get_json()
    assert api["total"] == excluded and api["exclude"] == "language"
    assert api["announce"] == ["new", "cross"]  # a topic's default
    every_kind = "new,cross,replace,replace-cross"
    wide = client.get("/api/preview", query_string={"q": "model*", "announce": every_kind}).get_json()
    replaced = total("model*", *(f"--announce={a}" for a in every_kind.split(",")))
    assert wide["total"] == replaced >= everything
    narrow_ = client.get("/api/preview", query_string={"q": "model*", "announce": "new"}).get_json()
    assert narrow_["total"] == total("model*", "--announce", "new") <= everything

    for bad in ({"announce": "old"}, {"announce": ""}, {"exclude": "(x"}):
        response = client.get("/api/preview", query_string={"q": "model*", **bad})
        assert response.status_code == 400, bad
    assert runner.invoke(cli, [*args, "model*", "--exclude", "(x"]).exit_code == 2
    store.close()


def test_preview_of_a_store_that_is_not_there_creates_nothing(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'var' / 'none.db'}", TOPICS)
    result = CliRunner().invoke(cli, ["--config", str(path), "preview", "model*"])
    assert result.exit_code == 1 and "no store at" in result.output
    assert not (tmp_path / "var").exists()


def test_a_paper_a_batch_changes_is_tagged_again_from_its_new_record(database_url: str) -> None:
    """A paper whose record a batch changes is tagged again: the topic its old title matched
    goes, the one its new title matches comes; a paper the batch leaves alone keeps its own."""
    tagger = Tagger([TopicSpec("vision", "vision"), TopicSpec("llm", '"language model*"')])
    store = Store.open(database_url, tag_authority="papers.example.org", tagger=tagger)
    try:
        store.sync_sources([("blog", "file:///blog.xml")])
        link = "https://blog.example.org/changed"
        batch = [
            entry("blog", "b1", "Vision for the rest of us", link=link),
            entry("blog", "b2", "Computer vision, one more time", link="https://blog.example.org/kept"),
        ]
        store_batch(store, "blog", batch, done(), now=T0)
        assert {slug for _, slug in pairs(store)} == {"vision"}
        later = T0 + timedelta(hours=1)
        renamed = entry("blog", "b1", "Language models for the rest of us", link=link, now=later)
        assert store_batch(store, "blog", [renamed, batch[1]], done(later), now=later).updated == 1
        by_paper = {
            view.sightings[0].entry_id: sorted(t.slug for t in view.topics)
            for view in store.papers_page(PageQuery()).papers
        }
        assert by_paper == {"b1": ["llm"], "b2": ["vision"]}
    finally:
        store.close()


def stored_pairs(store: Store) -> dict[tuple[int, str], tuple[float, list[str], object]]:
    with store.engine.connect() as conn:
        return {
            (r.paper_id, r.slug): (r.score, r.matched, r.published)
            for r in conn.execute(select(paper_topics))
        }


def test_retag_puts_back_exactly_the_pairs_the_topics_give_a_batch_at_a_time(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch reads and writes the pairs of its own papers: pairs gone are added, pairs the
    topics do not give are removed, changed ones (score, date) set again, each counted; a re-tag
    of some topics leaves the others alone, and a start with the same topics re-tags nothing."""
    monkeypatch.setattr(tagging, "RETAG_BATCH", 3)
    config, store = ingested(tmp_path, database_url)
    assert store.apply_topic_changes(fingerprints(topic_specs(config))) is None
    count = store.paper_count()
    before = stored_pairs(store)
    first = min(v.id for v in store.papers_page(PageQuery(limit=500)).papers)  # re-tagged first
    firsts = {k for k in before if k[0] == first}
    assert {slug for _, slug in firsts} == {"vision"}
    vision = next(k for k in before if k[1] == "vision" and k[0] != first and (k[0], "llm") in before)
    untagged = next(pid for pid, _ in before if (pid, "security") not in before)
    sizes: list[int] = []
    assert store.retag(on_batch=sizes.append) == RetagResult(papers=count)
    assert sizes == [3] * (count // 3) + ([count % 3] if count % 3 else [])

    bogus = {"slug": "security", "paper_id": untagged, "score": 1.0, "matched": [], "published": T0}
    with store.engine.begin() as conn:
        conn.execute(paper_topics.delete().where(paper_topics.c.paper_id == first))
        conn.execute(paper_topics.insert().values(**bogus))
        moved = before[vision][2] + timedelta(days=3)
        where = (paper_topics.c.paper_id == vision[0]) & (paper_topics.c.slug == "vision")
        conn.execute(paper_topics.update().where(where).values(published=moved))
    # a re-tag of one topic: its pairs are put back, the others' left as they are
    assert store.retag(slugs=["vision"]) == RetagResult(papers=count, added=1, rescored=1)
    assert stored_pairs(store) == {k: v for k, v in before.items() if k[0] != first or k[1] == "vision"} | {
        (untagged, "security"): (1.0, [], T0)
    }
    with store.engine.begin() as conn:
        conn.execute(paper_topics.delete().where(paper_topics.c.slug == "llm"))
    llm = {k for k in before if k[1] == "llm"}
    assert store.retag() == RetagResult(papers=count, added=len(llm), removed=1)
    assert stored_pairs(store) == before
    views = store.papers_page(PageQuery(limit=500)).papers
    assert any(len({t.score for t in v.topics}) > 1 for v in views)
    assert all(
        [(-t.score, t.slug) for t in v.topics] == sorted((-t.score, t.slug) for t in v.topics) for v in views
    )
    store.close()


def test_a_topic_s_count_since_a_moment_and_its_digests_hold_its_own_papers_only(database_url: str) -> None:
    """What the index page says of a topic: how many of its papers were published from a moment
    on (that moment included), and its digest of a period: its papers of the period, not those
    of other topics."""
    tagger = Tagger([TopicSpec("vision", "vision"), TopicSpec("llm", '"language model*"')])
    store = Store.open(database_url, tag_authority="papers.example.org", tagger=tagger)
    try:
        store.sync_sources([("blog", "file:///blog.xml")])
        now, hour = T0 + timedelta(hours=2), timedelta(hours=1)
        titles = {
            "b1": ("Vision, the day before", T0 - timedelta(days=1)),
            "b2": ("Vision at the very moment", T0),
            "b3": ("Vision an hour later", T0 + hour),
            "b4": ("Language models an hour later", T0 + hour),
        }
        batch = [
            entry("blog", eid, title, link=f"https://blog.example.org/{eid}", published=at, now=now)
            for eid, (title, at) in titles.items()
        ]
        store_batch(store, "blog", batch, done(now), now=now)
        assert store.topic_count_since("vision", T0) == 2
        assert store.topic_count_since("llm", T0) == 1
        assert store.topic_count_since("vision", T0 - timedelta(days=2)) == 3
        assert store.topic_count_since("vision", T0 + 2 * hour) == 0
        assert store.topic_count_since("nope", T0 - timedelta(days=2)) == 0
        days = store.digest("vision", "daily", top=5, periods=3, now=T0 + timedelta(days=2))
        assert [sorted(p.title for p in d.papers) for d in days] == [
            sorted([titles["b2"][0], titles["b3"][0]]),
            [titles["b1"][0]],
        ]
    finally:
        store.close()


def test_a_retag_of_some_topics_touches_only_theirs_and_reports_each_batch(
    tmp_path: Path, database_url: str
) -> None:
    """`retag(slugs=...)` (what a start does for edited topics) re-applies only those topics,
    and tells `on_batch` (the CLI's progress bar) of every paper it read; `remember_topics`
    (after a full re-tag) forgets the pairs of a topic no longer configured."""
    _, store = ingested(tmp_path, database_url)
    try:
        before = pairs(store)
        assert {slug for _, slug in before} == {"llm", "vision", "security"}
        with store.engine.begin() as conn:  # stale: the pairs of two topics are gone
            conn.execute(paper_topics.delete().where(paper_topics.c.slug.in_(["llm", "vision"])))
        batches: list[int] = []
        result = store.retag(slugs=["vision"], on_batch=batches.append)
        assert result.added == sum(1 for _, slug in before if slug == "vision")
        assert result.removed == result.rescored == 0
        assert pairs(store) == {k: v for k, v in before.items() if k[1] != "llm"}
        assert sum(batches) == result.papers == store.paper_count() > 0
        store.remember_topics({"llm": "0" * 16, "vision": "1" * 16})
        assert {slug for _, slug in pairs(store)} == {"vision"}
        assert set(store.topic_counts()) == {"vision"}
    finally:
        store.close()


def test_topic_changes_at_start_re_tag_only_the_edited_topics_and_read_nothing_for_a_removed_one(
    tmp_path: Path, database_url: str
) -> None:
    """What a start applies (`apply_topic_changes`): an edited topic is re-tagged alone (a
    stale pair of another topic stays as it is), with `on_batch` told of every paper read; a
    topic removed, and nothing edited, costs no read of the papers; nothing changed: None."""
    config, store = ingested(tmp_path, database_url)
    try:
        applied = fingerprints(topic_specs(config))
        before = pairs(store)
        with store.engine.begin() as conn:  # stale: the llm pairs are gone
            conn.execute(paper_topics.delete().where(paper_topics.c.slug == "llm"))
        edited = dict(applied, vision="0" * 16)  # as if its query had changed
        batches: list[int] = []
        result = store.apply_topic_changes(edited, on_batch=batches.append)
        assert result is not None and result.changed == 0
        assert sum(batches) == result.papers == store.paper_count() > 0
        assert pairs(store) == {k: v for k, v in before.items() if k[1] != "llm"}
        without_security = {slug: fp for slug, fp in edited.items() if slug != "security"}
        assert store.apply_topic_changes(without_security) == RetagResult()
        assert {slug for _, slug in pairs(store)} == {"vision"}
        assert store.apply_topic_changes(without_security) is None
    finally:
        store.close()
