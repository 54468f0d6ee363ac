"""Sightings to and from the JSON kept in `sightings.data`, and the hashes that detect change."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from typing import Any, get_origin, get_type_hints

import orjson

from aggregator.types import Authority, FeedHints, Sighting

# The Sighting's fields, and those JSON cannot carry as they are, read off the dataclass: a field
# added to Sighting is stored and read back with no edit here.
_SIGHTING_FIELDS = tuple(f.name for f in fields(Sighting))
_HINTS = get_type_hints(Sighting)
_DATES = tuple(name for name in _SIGHTING_FIELDS if _HINTS[name] in (datetime, datetime | None))
_TUPLES = tuple(name for name in _SIGHTING_FIELDS if get_origin(_HINTS[name]) is tuple)
# The form of `sightings.match_keys`. Family names are stored as text.author_keys makes
# them: a change there makes stored names stale, so bump this with it, and rows of another
# version are read as unknown (their papers loaded in full) until refilled.
MATCH_KEYS_VERSION = 1


def json_text(value: Any) -> str:
    """JSON for a text or JSON column (orjson: several times faster than json on the ingest path)."""
    return orjson.dumps(value).decode()


def encode_sighting(s: Sighting) -> str:
    """Compact, stable JSON of every field of the Sighting: the same sighting always encodes to
    the same text (keys sorted; dates ISO 8601, as orjson writes them)."""
    return orjson.dumps(
        {name: getattr(s, name) for name in _SIGHTING_FIELDS}, option=orjson.OPT_SORT_KEYS
    ).decode()


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


def encode_match_keys(keys: Iterable[str], names: Iterable[str]) -> str:
    """What a title merge reads of a sighting besides its title: its identity keys and its
    authors' family names (text.author_keys), as `[version, keys, family names]`, the
    names sorted: the same text every time."""
    return orjson.dumps([MATCH_KEYS_VERSION, list(keys), sorted(names)]).decode()


def decode_match_keys(text: str | None) -> tuple[list[str], list[str]] | None:
    """(identity keys, family names) of `encode_match_keys`; None when not known or of another
    version. Lists as decoded: the title merge reads tens of thousands a batch, most only once."""
    if text is None:
        return None
    decoded = orjson.loads(text)
    if decoded[0] != MATCH_KEYS_VERSION:  # another version may hold other fields
        return None
    _, keys, names = decoded
    return keys, names


def encode_hints(hints: FeedHints | None) -> str | None:
    if hints is None:
        return None
    return orjson.dumps([hints.ttl, sorted(hints.skip_hours), sorted(hints.skip_days)]).decode()


def decode_hints(text: str | None) -> FeedHints | None:
    if text is None:
        return None
    ttl, hours, days = orjson.loads(text)
    return FeedHints(ttl=ttl, skip_hours=frozenset(hours), skip_days=frozenset(days))


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def record_digest(values: dict[str, Any]) -> str:
    """A hash of a paper's merged content, to tell a real change from a re-sighting."""
    return hashlib.blake2b(orjson.dumps(values, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()
