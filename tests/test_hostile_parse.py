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
