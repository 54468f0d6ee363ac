"""What a feed says about when to fetch it again: RSS 2.0's `ttl`, `skipHours` and `skipDays`
(arXiv's listings skip Saturday and Sunday, when they are empty).

Read from the bytes before the first item, where the channel's own elements sit, with bounded
patterns: a body never costs more here than a look at its head.
"""

from __future__ import annotations

import re

from aggregator.types import FeedHints

_HEAD = 256 * 1024  # the channel's elements come before the items; past this, none are read
_TTL = re.compile(rb"<ttl>\s*(\d{1,7})\s*</ttl>")
_BLOCK = 4096  # the most bytes one skipHours or skipDays list may take
_HOUR = re.compile(rb"<hour>\s*(\d{1,2})\s*</hour>")
_DAY = re.compile(rb"<day>\s*([A-Za-z]{6,9})\s*</day>")
_DAYS = {
    name: number
    for number, name in enumerate(
        (b"monday", b"tuesday", b"wednesday", b"thursday", b"friday", b"saturday", b"sunday")
    )
}


def feed_hints(body: bytes) -> FeedHints | None:
    """The hints in a feed's channel, or None when it gives none."""
    head = body[:_HEAD]
    channel = head.find(b"<channel")
    if channel < 0:  # RSS only: an Atom or JSON document has no such elements of its own
        return None
    head = head[channel:]
    for entry in (b"<item", b"<entry"):
        first = head.find(entry)
        if first >= 0:
            head = head[:first]
    if b"<ttl" not in head and b"<skip" not in head:
        return None
    ttl = _TTL.search(head)
    minutes = int(ttl.group(1)) if ttl else 0
    hours = frozenset(int(h) % 24 for h in _HOUR.findall(_block(head, b"skipHours")) if int(h) <= 24)
    days = frozenset(_DAYS[d.lower()] for d in _DAY.findall(_block(head, b"skipDays")) if d.lower() in _DAYS)
    if not (minutes or hours or days):
        return None
    return FeedHints(ttl=minutes * 60.0 or None, skip_hours=hours, skip_days=days)


def _block(head: bytes, name: bytes) -> bytes:
    """The content of <name>...</name>, at most _BLOCK bytes of it; empty when absent."""
    start = head.find(b"<" + name + b">")
    if start < 0:
        return b""
    start += len(name) + 2
    end = head.find(b"</" + name + b">", start, start + _BLOCK)
    return head[start:end] if end >= 0 else b""
