"""Sightings to and from the JSON kept in `sightings.data`, and the hashes that detect change."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from aggregator.types import Authority, Sighting

_DATES = ("published", "updated")
_TUPLES = ("authors", "keys", "categories", "code_urls")


def json_text(value: Any) -> str:
    """JSON for a text or JSON column (orjson: several times faster than json on the ingest path)."""
    return orjson.dumps(value).decode()


def encode_sighting(s: Sighting) -> str:
    """Compact, stable JSON: the same sighting always encodes to the same text."""
    data: dict[str, Any] = {
        "source": s.source,
        "entry_id": s.entry_id,
        "link": s.link,
        "title": s.title,
        "title_key": s.title_key,
        "authors": s.authors,
        "abstract": s.abstract,
        "authority": int(s.authority),
        "keys": s.keys,
        "arxiv_id": s.arxiv_id,
        "version": s.version,
        "doi": s.doi,
        "published": s.published.isoformat() if s.published else None,
        "updated": s.updated.isoformat() if s.updated else None,
        "categories": s.categories,
        "primary_category": s.primary_category,
        "announce_type": s.announce_type,
        "journal_ref": s.journal_ref,
        "comment": s.comment,
        "upvotes": s.upvotes,
        "code_urls": s.code_urls,
        "links": s.links,
    }
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def decode_sighting(text: str) -> Sighting:
    data = orjson.loads(text)
    for name in _DATES:
        if data[name]:
            data[name] = datetime.fromisoformat(data[name])
    for name in _TUPLES:
        data[name] = tuple(data[name])
    data.pop("author_keys", None)  # written by the first release; now computed when needed
    data["authority"] = Authority(data["authority"])
    return Sighting(**data)


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def record_digest(values: dict[str, Any]) -> str:
    """A hash of a paper's merged content, to tell a real change from a re-sighting."""
    return hashlib.blake2b(orjson.dumps(values, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()
