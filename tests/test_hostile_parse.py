"""XML attacks inside feeds: nothing expands, nothing is read from disk, the store stays small."""

from __future__ import annotations

import resource
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.ingest.normalize import normalize_entry
from aggregator.ingest.parse import parse_feed

ATTACKS = Path(__file__).parent / "data" / "hostile" / "xml-attacks"
NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.mark.parametrize("name", ["rss_quadratic_blowup.xml", "rss_billion_laughs.xml", "quadratic.xml"])
def test_entity_expansion_never_reaches_the_entries(name: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        feed = parse_feed((ATTACKS / name).read_bytes())
    except ParseError:
        return  # refusing the document is as good
    for entry in feed.entries:
        sighting = normalize_entry(entry, source="h", authority=feed.authority, now=NOW)
        assert len(sighting.abstract) < 20_000 and len(sighting.title) < 1_000
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100


def test_external_entities_are_never_read() -> None:
    feed = parse_feed((ATTACKS / "atom_xxe_local_file.xml").read_bytes())
    text = " ".join(e.title + e.summary for e in feed.entries)
    assert "root:" not in text


def test_a_legacy_listing_title_of_endless_spaces_costs_no_time() -> None:
    import time

    from aggregator.ingest.parse import parse_feed

    body = (
        '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/"><channel rdf:about="http://export.arxiv.org/rss/cs.CL">'
        f"<title>{' ' * 100_000}x</title><link>http://arxiv.org/</link></channel>"
        '<item rdf:about="http://arxiv.org/abs/1709.01234">'
        "<title>A paper. (arXiv:1709.01234v1 [cs.CL])</title>"
        "<link>http://arxiv.org/abs/1709.01234</link></item></rdf:RDF>"
    ).encode()
    start = time.process_time()
    feed = parse_feed(body, kind="arxiv-rdf", url="http://export.arxiv.org/rss/cs.CL")
    assert time.process_time() - start < 5  # a bound on hostile input, not a speed figure
    assert [e.arxiv_id for e in feed.entries] == ["1709.01234v1"]
