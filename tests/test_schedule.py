"""When a source is due again: its interval with jitter, pushed later by what the feed and the
server say (RSS ttl, skipHours, skipDays, Cache-Control max-age, Expires), never more than a day."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from aggregator.ingest.fetch import fresh_for
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.parse.hints import feed_hints
from aggregator.ingest.schedule import ARXIV_BUDGET, JITTER, LONGEST_HINT, host_budget, next_fetch
from aggregator.store.codec import decode_hints, encode_hints
from aggregator.types import FeedHints

LISTING = Path(__file__).parent / "data" / "arxiv-rss" / "aioarxiv-2024-11-28" / "rss_trimmed.xml"
THURSDAY = datetime(2026, 12, 3, 20, tzinfo=UTC)
FRIDAY = datetime(2026, 12, 4, 20, tzinfo=UTC)
HOUR = 3600.0


def rss(
    channel: str, items: str = "<item><title>A paper</title><link>https://example.org/a</link></item>"
) -> bytes:
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    return f"{head}{channel}{items}</channel></rss>".encode()


# --- what a feed says ----------------------------------------------------------------------------


def test_arxiv_listing_says_it_skips_the_weekend() -> None:
    hints = parse_feed(LISTING.read_bytes()).hints
    assert hints == FeedHints(skip_days=frozenset({5, 6}))  # Saturday, Sunday


def test_ttl_skip_hours_and_skip_days_are_read_from_the_channel() -> None:
    body = rss(
        "<ttl> 90 </ttl><skipHours><hour>0</hour><hour>23</hour><hour>24</hour><hour>99</hour></skipHours>"
        "<skipDays><day>Monday</day><day>sunday</day><day>Caturday</day></skipDays>"
    )
    assert feed_hints(body) == FeedHints(
        ttl=90 * 60.0, skip_hours=frozenset({0, 23}), skip_days=frozenset({0, 6})
    )
    assert parse_feed(body).hints == feed_hints(body)


@pytest.mark.parametrize(
    "channel",
    ["", "<ttl>0</ttl>", "<ttl>-5</ttl>", "<ttl>1.5</ttl>", "<ttl>soon</ttl>", "<skipHours></skipHours>"],
)
def test_no_usable_hint_is_no_hint(channel: str) -> None:
    assert feed_hints(rss(channel)) is None


def test_hints_inside_items_are_not_the_channels() -> None:
    assert feed_hints(rss("", "<item><title>x</title><ttl>600</ttl></item>")) is None


def test_an_atom_entry_cannot_set_hints() -> None:
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><title>x</title><content>'
        b"<![CDATA[<skipHours>" + b"".join(b"<hour>%d</hour>" % h for h in range(24)) + b"</skipHours>]]>"
        b"</content></entry></feed>"
    )
    assert feed_hints(atom) is None


def test_a_ttl_alone_is_a_hint() -> None:
    assert feed_hints(rss("<ttl>60</ttl>")) == FeedHints(ttl=3600.0)


@pytest.mark.parametrize(("hour", "skipped"), [("24", frozenset({0})), ("25", None)])
def test_hour_24_is_midnight_and_later_hours_are_ignored(hour: str, skipped: frozenset[int] | None) -> None:
    hints = feed_hints(rss(f"<skipHours><hour>{hour}</hour></skipHours>"))
    assert (hints.skip_hours if hints else None) == skipped


def test_hints_inside_any_item_are_not_the_channels() -> None:
    items = "<item><title>x</title><ttl>600</ttl></item><item><title>y</title></item>"
    assert feed_hints(rss("", items)) is None


def test_the_store_reads_back_the_hints_it_wrote() -> None:
    """A source's hints are stored as a text (store.codec) and read back as they were, each of
    ttl, skipHours and skipDays; a feed that gave none stores none."""
    hints = FeedHints(ttl=90 * 60.0, skip_hours=frozenset({23, 0, 7}), skip_days=frozenset({6, 5}))
    assert decode_hints(encode_hints(hints)) == hints
    assert decode_hints(encode_hints(FeedHints())) == FeedHints()
    assert encode_hints(None) is None and decode_hints(None) is None


def test_hints_after_a_long_channel_description_are_read() -> None:
    """The bound is on each list, not on where it starts in the channel's head."""
    body = rss(f"<description>{'words ' * 2000}</description><skipDays><day>Saturday</day></skipDays>")
    assert feed_hints(body) == FeedHints(skip_days=frozenset({5}))


def test_a_skip_list_longer_than_its_bound_is_not_read() -> None:
    body = rss("<skipHours>" + "<hour>1</hour>" * 400 + "</skipHours>")  # 5.6 kB, past _BLOCK
    assert feed_hints(body) is None


def test_a_hostile_body_costs_a_look_at_its_head() -> None:
    huge = rss("<skipHours>" + "<hour>1</hour>" * 2_000_000 + "</skipHours>")  # 28 MB, no end in reach
    started = time.process_time()
    assert feed_hints(huge) is None
    assert feed_hints(b"<ttl>" * 5_000_000) is None
    assert time.process_time() - started < 1.0


def test_a_feed_that_starts_with_its_channel_keeps_its_hints() -> None:
    """The parser takes a bare `<channel>` (no `<rss>` around it, no XML declaration) as RSS;
    its ttl counts as any channel's."""
    body = b"<channel><title>T</title><ttl>60</ttl><item><title>A paper</title></item></channel>"
    assert feed_hints(body) == FeedHints(ttl=3600.0)
    assert parse_feed(body).hints == feed_hints(body)


def test_an_item_cannot_open_a_channel_of_its_own() -> None:
    """The hints are the first channel's: a `<channel>` written inside an item's text does not
    start another one whose ttl would count."""
    items = "<item><description><![CDATA[<channel><ttl>5</ttl>]]></description></item>"
    assert feed_hints(rss("<ttl>60</ttl>", items)) == FeedHints(ttl=3600.0)


def test_atom_entries_cannot_set_hints_even_after_a_channel_in_the_feeds_text() -> None:
    """An Atom feed that mentions `<channel>` (here in its subtitle) still ends its head at the
    first entry: the ttl in the entry's content is not the feed's."""
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><subtitle><![CDATA[<channel>]]>'
        b"</subtitle><entry><title>x</title><content><![CDATA[<ttl>600</ttl>]]></content></entry></feed>"
    )
    assert feed_hints(atom) is None


# --- what the server says -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Cache-Control": "public, max-age=7200"}, 7200.0),
        ({"Cache-Control": 'max-age="60"'}, 60.0),
        ({"Cache-Control": "max-age=0"}, None),
        ({"Cache-Control": "no-cache, max-age=7200"}, None),
        ({"Cache-Control": "no-store"}, None),
        ({"Expires": "Fri, 04 Dec 2026 22:00:00 GMT", "Date": "Fri, 04 Dec 2026 20:00:00 GMT"}, 7200.0),
        ({"Expires": "Fri, 04 Dec 2026 19:00:00 GMT", "Date": "Fri, 04 Dec 2026 20:00:00 GMT"}, None),
        ({"Expires": "0"}, None),
        ({"Cache-Control": "max-age=oops"}, None),
        ({}, None),
    ],
)
def test_freshness_from_cache_control_and_expires(headers: dict[str, str], seconds: float | None) -> None:
    assert fresh_for(httpx.Headers(headers), now=FRIDAY) == seconds


def test_a_max_age_that_only_looks_like_digits_is_no_hint() -> None:
    raw = httpx.Headers([(b"Cache-Control", b"max-age=\xb2"), (b"Content-Length", b"\xb2")])  # latin-1 "²"
    assert raw["cache-control"] == "max-age=\u00b2"  # str.isdigit says yes; float() says no
    assert fresh_for(raw) is None


# --- when the next fetch comes --------------------------------------------------------------------


def test_the_interval_comes_with_a_little_jitter_never_early() -> None:
    times = [next_fetch(f"source-{n}", THURSDAY, 6 * HOUR) for n in range(50)]
    assert all(
        THURSDAY + timedelta(hours=6) <= t <= THURSDAY + timedelta(hours=6 * (1 + JITTER)) for t in times
    )
    assert len(set(times)) > 40  # spread, so that sources configured together drift apart
    assert max(times) > THURSDAY + timedelta(hours=6 * (1 + JITTER / 2))  # over the whole jitter
    assert next_fetch("a", THURSDAY, 6 * HOUR) == next_fetch("a", THURSDAY, 6 * HOUR)  # repeatable


def test_ttl_and_max_age_push_the_fetch_later_never_earlier() -> None:
    base = next_fetch("a", THURSDAY, HOUR)
    assert next_fetch("a", THURSDAY, HOUR, hints=FeedHints(ttl=10 * 60.0)) == base
    assert next_fetch("a", THURSDAY, HOUR, fresh_for=60.0) == base
    assert next_fetch("a", THURSDAY, HOUR, hints=FeedHints(ttl=5 * HOUR)) == THURSDAY + timedelta(hours=5)
    assert next_fetch("a", THURSDAY, HOUR, fresh_for=3 * HOUR) == THURSDAY + timedelta(hours=3)


def test_a_hint_pushes_at_most_a_day() -> None:
    assert next_fetch("a", THURSDAY, HOUR, fresh_for=30 * 24 * HOUR) == THURSDAY + LONGEST_HINT
    assert next_fetch("a", THURSDAY, HOUR, hints=FeedHints(ttl=1e9)) == THURSDAY + LONGEST_HINT
    # a source fetched every two days keeps its own interval
    every_two_days = next_fetch("a", THURSDAY, 48 * HOUR, fresh_for=30 * 24 * HOUR)
    assert every_two_days >= THURSDAY + timedelta(hours=48)


def test_skipped_hours_move_the_fetch_to_the_next_open_hour() -> None:
    hints = FeedHints(skip_hours=frozenset({21, 22}))
    assert next_fetch("a", THURSDAY, HOUR, hints=hints) == datetime(2026, 12, 3, 23, tzinfo=UTC)


def test_one_skipped_hour_moves_the_fetch_to_the_hour_after_it() -> None:
    hints = FeedHints(skip_hours=frozenset({21}))
    assert next_fetch("a", THURSDAY, HOUR, hints=hints) == datetime(2026, 12, 3, 22, tzinfo=UTC)


def test_arxiv_weekend_is_skipped_up_to_a_day() -> None:
    weekend = FeedHints(skip_days=frozenset({5, 6}))
    # Thursday evening + 6 h is Friday: fetched then
    assert next_fetch("a", THURSDAY, 6 * HOUR, hints=weekend) == next_fetch("a", THURSDAY, 6 * HOUR)
    # Friday evening + 6 h is Saturday: pushed as far as a hint may push, a day after now
    assert next_fetch("a", FRIDAY, 6 * HOUR, hints=weekend) == FRIDAY + LONGEST_HINT


# --- whose requests are spaced together -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "budget"),
    [
        ("https://rss.arxiv.org/rss/cs.CL", ARXIV_BUDGET),
        ("http://export.arxiv.org/api/query?search_query=all:llm", ARXIV_BUDGET),
        ("https://ARXIV.org/a", ARXIV_BUDGET),
        ("https://static.arxiv.org/a.css", ARXIV_BUDGET),  # any host of arXiv's
        ("https://huggingface.co/api/daily_papers", "huggingface.co"),
        ("https://Blog.Example.org./feed", "blog.example.org"),
        ("https://notarxiv.org/feed", "notarxiv.org"),
        ("http://127.0.0.1:8000/feed", None),
        ("http://localhost/feed", None),
        ("http://[::1]:8000/feed", None),
        ("http:///feed", None),  # no host at all
        ("file:///srv/feed.xml", None),
    ],
)
def test_host_budgets(url: str, budget: str | None) -> None:
    assert host_budget(url) == budget
