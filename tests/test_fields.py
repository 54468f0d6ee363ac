"""Every field of a paper, from a parsed entry through normalisation, the store, the JSON API
and the feeds: a field added to the dataclasses but missed in one of the places that copy it
fails here (docs/architecture.md, "A paper field")."""

from __future__ import annotations

import dataclasses
import html
import json
from datetime import UTC, datetime
from pathlib import Path

from aggregator import create_app
from aggregator.config import config_from_text
from aggregator.ingest.normalize import normalize_entry
from aggregator.ingest.pipeline import store_batch
from aggregator.runtime import open_store
from aggregator.types import NOTES, Authority, FetchDone, PaperView, ParsedEntry, notes_of

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)

# A value for every field a source can fill (the adapters' ParsedEntry); none left at its default.
FULL = ParsedEntry(
    entry_id="http://arxiv.org/abs/2412.01234v2",
    title="Sparse Attention for Long-Context Language Models",
    link="https://arxiv.org/abs/2412.01234v2",
    links=("https://arxiv.org/abs/2412.01234v2", "https://github.com/example/sparse"),
    summary="<p>We make attention <em>sparse</em>. Code: https://github.com/example/sparse</p>",
    summary_is_html=True,
    authors=("Ada Lovelace", "Alan Turing"),
    published=datetime(2026, 11, 30, 12, tzinfo=UTC),
    updated=datetime(2026, 11, 30, 18, tzinfo=UTC),
    categories=("cs.CL", "cs.LG"),
    arxiv_id="2412.01234v2",
    announce_type="new",
    primary_category="cs.CL",
    doi="10.1234/example.5678",
    journal_ref="Proc. ACL 2026",
    comment="12 pages, 3 figures",
    upvotes=42,
    code_urls=("https://github.com/example/sparse",),
    pdf_url="https://arxiv.org/pdf/2412.01234v2",
    image_url="https://cdn.example.org/thumb.png",
)


def test_every_parsed_field_is_filled_in_the_fixture() -> None:
    defaults = ParsedEntry(entry_id="x", title="t")
    unset = [
        f.name for f in dataclasses.fields(ParsedEntry) if getattr(FULL, f.name) == getattr(defaults, f.name)
    ]
    assert unset == [], f"give these a value in FULL: {unset}"


def test_every_field_reaches_the_store_the_api_and_the_feeds(tmp_path: Path, database_url: str) -> None:
    config = config_from_text(
        f"database: {database_url}\nsite: {{base_url: 'http://papers.example.org'}}\n"
        "sources:\n  - {name: api, url: 'file:x.xml'}\n"
        "topics:\n  - {slug: attention, query: 'attention'}\n",
        base_dir=tmp_path,
        env={},
    )
    store = open_store(config)
    try:
        sighting = normalize_entry(FULL, source="api", authority=Authority.ARXIV_API, now=T0)
        store_batch(store, "api", [sighting], FetchDone(None, None, None, T0), now=T0)
        paper = store.paper(1)
        assert paper is not None
        expected = {
            "arxiv_id": "2412.01234",
            "version": 2,
            "doi": "10.1234/example.5678",
            "title": FULL.title,
            "authors": FULL.authors,
            "abstract": "We make attention sparse. Code: https://github.com/example/sparse",
            "published": FULL.published,
            "updated": FULL.updated,
            "categories": FULL.categories,
            "upvotes": 42,
            **{note: getattr(FULL, note) for note in NOTES},
        }
        for name, value in expected.items():
            assert getattr(paper, name) == value, name
        assert paper.links["image"] == FULL.image_url and paper.links["code"] == FULL.code_urls[0]
        assert [t.slug for t in paper.topics] == ["attention"] and paper.sightings[0].source == "api"
        # Every PaperView field has its place in the API's answer.
        client = create_app(config, store=store).test_client()
        [shown] = client.get("/api/papers").get_json()["papers"]
        for field in dataclasses.fields(PaperView):
            key = {"feed_id": "id", "id": None, "first_seen": None}.get(field.name, field.name)
            if key is not None:
                assert key in shown, f"/api/papers leaves out {field.name}"
        assert shown["upvotes"] == 42
        # A note (types.PaperNotes) needs no edit past its field and its column: the API, the
        # paper page and the feeds show every one under its label.
        labelled = notes_of(FULL)
        assert [text for _, text in labelled] == [getattr(FULL, note) for note in NOTES]
        assert all(shown[note] == getattr(FULL, note) for note in NOTES)
        page = client.get("/papers/1").get_data(as_text=True)
        assert all(f"<dt>{label}</dt><dd>{html.escape(text)}</dd>" in page for label, text in labelled)
        # and the feeds carry what readers read: title, authors, abstract, links, upvotes, notes.
        item = client.get("/feeds/all.json").get_json()["items"][0]
        body = item["content_html"]
        for text in (FULL.title, "Ada Lovelace", "We make attention sparse", "42 upvotes"):
            assert text in json.dumps(item), text
        assert all(html.escape(f"{label}: {text}") in body for label, text in labelled)
        assert item["image"] == FULL.image_url and item["external_url"].startswith("https://arxiv.org/pdf/")
    finally:
        store.close()


# What `sightings.data` holds for FULL. The text is hashed to tell a changed entry from a
# re-sent one: if it changes, every stored sighting reads as changed on its next fetch, so a
# change here must come with a bump of ingest.pipeline.PIPELINE_VERSION and a note.
STORED_FULL = (
    '{"abstract":"We make attention sparse. Code: https://github.com/example/sparse","announce_type":"new",'
    '"arxiv_id":"2412.01234","authority":0,"authors":["Ada Lovelace","Alan Turing"],'
    '"categories":["cs.CL","cs.LG"],"code_urls":["https://github.com/example/sparse"],'
    '"comment":"12 pages, 3 figures","doi":"10.1234/example.5678","entry_id":"http://arxiv.org/abs/2412.01234v2",'
    '"journal_ref":"Proc. ACL 2026","keys":["arxiv:2412.01234","doi:10.1234/example.5678"],'
    '"link":"https://arxiv.org/abs/2412.01234v2","links":{"abs":"https://arxiv.org/abs/2412.01234",'
    '"code":"https://github.com/example/sparse","doi":"https://doi.org/10.1234/example.5678",'
    '"image":"https://cdn.example.org/thumb.png","pdf":"https://arxiv.org/pdf/2412.01234"},'
    '"primary_category":"cs.CL","published":"2026-11-30T12:00:00+00:00","source":"api",'
    '"title":"Sparse Attention for Long-Context Language Models",'
    '"title_key":"sparseattentionforlongcontextlanguagemodels","updated":"2026-11-30T18:00:00+00:00",'
    '"upvotes":42,"version":2}'
)


def test_a_sighting_is_stored_with_every_field_and_read_back_whole() -> None:
    from aggregator.store.codec import decode_sighting, encode_sighting
    from aggregator.types import Sighting

    sighting = normalize_entry(FULL, source="api", authority=Authority.ARXIV_API, now=T0)
    stored = encode_sighting(sighting)
    assert stored == STORED_FULL
    assert sorted(json.loads(stored)) == sorted(f.name for f in dataclasses.fields(Sighting))
    assert decode_sighting(stored) == sighting


def test_a_sighting_stored_by_the_first_release_still_reads_back() -> None:
    """The first release stored each sighting's author keys too; reading such a row drops them
    (they are computed when needed) instead of failing."""
    from aggregator.store.codec import decode_sighting

    sighting = normalize_entry(FULL, source="api", authority=Authority.ARXIV_API, now=T0)
    legacy = STORED_FULL.replace('"authors":', '"author_keys":["lovelace","turing"],"authors":', 1)
    assert '"author_keys"' in legacy
    assert decode_sighting(legacy) == sighting


def test_a_merged_record_becomes_the_text_topic_matching_reads() -> None:
    """What topics match on, read off the merged record field for field, with the sources of its
    sightings; `announce` applies only when every sighting is an arXiv listing entry."""
    from aggregator.ingest.merge import merge_record
    from aggregator.records import PaperText, StoredSighting
    from aggregator.store.rows import paper_ids, paper_text

    record = merge_record(
        [StoredSighting(normalize_entry(FULL, source="api", authority=Authority.ARXIV_API, now=T0), T0)]
    )
    seen = [("api", Authority.ARXIV_API), ("rss", Authority.ARXIV_LISTING)]
    assert paper_text(record, seen) == PaperText(
        title="Sparse Attention for Long-Context Language Models",
        abstract=record.abstract,
        authors=("Ada Lovelace", "Alan Turing"),
        categories=("cs.CL", "cs.LG"),
        sources={"api", "rss"},
        ids=["2412.01234", "2412.01234v2", "10.1234/example.5678"],
        announce_types=("new",),
        only_listings=False,
    )
    assert record.abstract.startswith("We make attention sparse.")
    assert paper_text(record, [("rss", Authority.ARXIV_LISTING)]).only_listings
    assert not paper_text(record, []).only_listings  # no sighting: nothing says it is a listing
    assert paper_ids("2412.01234", None, None) == ["2412.01234"]  # no version: no versioned id
    assert paper_ids(None, 2, "10.1234/x") == ["10.1234/x"]


def test_the_index_entry_of_a_merged_record_is_the_one_its_paper_text_gives() -> None:
    """The store indexes a merged record without making its PaperText: the entry must hold the
    tokens the matcher's own document gives, facets and the listing-only mark included."""
    from aggregator.ingest.merge import merge_record
    from aggregator.records import StoredSighting
    from aggregator.store.rows import index_entry, paper_text
    from aggregator.topics.index_query import IndexedPaper, indexed_text

    sighting = normalize_entry(FULL, source="api", authority=Authority.ARXIV_API, now=T0)
    announced = merge_record([StoredSighting(sighting, T0)])
    unannounced = dataclasses.replace(announced, announce_types=())
    listing, api = ("Listing", Authority.ARXIV_LISTING), ("API", Authority.ARXIV_API)

    def tokens(entry: IndexedPaper) -> tuple[list[str], ...]:
        return tuple(getattr(entry, f.name).split() for f in dataclasses.fields(entry))

    for record in (announced, unannounced):
        for seen in ([listing], [listing, api], []):
            assert tokens(index_entry(record, seen)) == tokens(indexed_text(paper_text(record, seen)))
    assert index_entry(unannounced, [listing]).facets != index_entry(unannounced, [listing, api]).facets


def test_the_content_digest_changes_with_where_and_when_a_paper_was_seen() -> None:
    """Readers see a paper's date and its sources (a topic may be restricted to a source): a
    new source or another date is a real change, the same plan again is not."""
    from aggregator.ingest.merge import merge_record
    from aggregator.records import ClusterPlan, StoredSighting
    from aggregator.store.rows import content_digest, paper_values

    api = StoredSighting(normalize_entry(FULL, source="api", authority=Authority.ARXIV_API, now=T0), T0)
    rss = StoredSighting(dataclasses.replace(api.sighting, source="rss"), T0)

    def digest(*sightings: StoredSighting, **changes: object) -> str:
        record = dataclasses.replace(merge_record(list(sightings)), **changes)  # type: ignore[arg-type]
        plan = ClusterPlan(None, (), tuple(sightings), tuple(sightings), record)
        return content_digest(plan, paper_values(record))

    assert digest(api) == digest(api)
    assert digest(api, rss) != digest(api)
    assert digest(api, published=T0) != digest(api)


def test_match_keys_of_another_version_or_none_are_not_known() -> None:
    """A sighting's match keys round-trip; those a later release wrote (another version, perhaps
    other fields) or none at all read as unknown, so that the paper is loaded in full."""
    from aggregator.store.codec import MATCH_KEYS_VERSION, decode_match_keys, encode_match_keys

    encoded = encode_match_keys(["doi:10.1000/x"], {"lovelace", "hopper"})
    assert decode_match_keys(encoded) == (["doi:10.1000/x"], ["hopper", "lovelace"])
    assert decode_match_keys(None) is None
    assert decode_match_keys(f'[{MATCH_KEYS_VERSION + 1}, [], [], ["more"]]') is None
    assert decode_match_keys(f"[{MATCH_KEYS_VERSION + 1}]") is None
