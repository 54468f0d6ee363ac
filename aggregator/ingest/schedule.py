"""When a source is fetched next, and whose request budget its fetch counts against.

The next fetch is the source's `every`, spread by a little jitter so that sources configured
together do not stay in step; what the feed (RSS `ttl`, `skipHours`, `skipDays`) and the
server (Cache-Control `max-age`, `Expires`) say pushes it later, never earlier, and never more
than a day past now. Pure functions: the pipeline brings the clock and the store.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from aggregator.types import FeedHints

JITTER = 0.1  # a fetch comes up to this share of `every` late, never early
LONGEST_HINT = timedelta(hours=24)  # what a hint may push a fetch to, from now
# arXiv asks for one request every 3 s from a client, whichever of its hosts is asked.
ARXIV_HOSTS = ("arxiv.org", "export.arxiv.org", "rss.arxiv.org", "www.arxiv.org")
ARXIV_BUDGET = "arxiv.org"


def next_fetch(
    name: str,
    now: datetime,
    every: float,
    *,
    hints: FeedHints | None = None,
    fresh_for: float | None = None,
) -> datetime:
    """When source `name`, fetched at `now`, is due again."""
    planned = now + timedelta(seconds=every * (1 + JITTER * _spread(name, now)))
    latest = max(planned, now + LONGEST_HINT)
    hinted = planned
    if hints is not None and hints.ttl:
        hinted = max(hinted, now + timedelta(seconds=hints.ttl))
    if fresh_for:
        hinted = max(hinted, now + timedelta(seconds=min(fresh_for, LONGEST_HINT.total_seconds())))
    hinted = min(hinted, latest)
    if hints is not None and (hints.skip_hours or hints.skip_days):
        hinted = _outside_skipped(hinted, hints, latest)
    return hinted


def _outside_skipped(when: datetime, hints: FeedHints, latest: datetime) -> datetime:
    """The first time from `when` on in neither a skipped hour nor a skipped day (UTC), or
    `latest` if there is none before it."""
    while when < latest:
        if when.hour not in hints.skip_hours and when.weekday() not in hints.skip_days:
            return when
        when = when.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return latest


def _spread(name: str, now: datetime) -> float:
    """A number in [0, 1) fixed by the source and the time: jitter a test can repeat."""
    digest = hashlib.blake2b(f"{name}\n{now.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def host_budget(url: str) -> str | None:
    """The name requests to this URL are spaced under: its host, or one name for all of arXiv;
    None for files and the user's own machine, which nobody needs to be polite to."""
    if not url.startswith(("http://", "https://")):
        return None
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if not host or host == "localhost" or host.startswith("127.") or host == "::1":
        return None
    if host in ARXIV_HOSTS or host.endswith(".arxiv.org"):
        return ARXIV_BUDGET
    return host
