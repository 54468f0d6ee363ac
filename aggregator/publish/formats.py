"""The output formats, once: each one's file extension, name for people, media type and its
renderers of a feed page and of a digest. URLs, subscribe links and autodiscovery read this."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aggregator.publish.digests import DigestPage, digest_atom, digest_json, digest_rss
from aggregator.publish.feeds import FeedPage, atom, json_feed, rss


@dataclass(frozen=True, slots=True)
class FeedFormat:
    ext: str  # in URLs: /feeds/<slug>.<ext>
    label: str  # for people: "JSON Feed"
    media_type: str  # for autodiscovery links
    render: Callable[[FeedPage], bytes]
    render_digest: Callable[[DigestPage], bytes]

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8"


FORMATS = {
    f.ext: f
    for f in (
        FeedFormat("atom", "Atom", "application/atom+xml", atom, digest_atom),
        FeedFormat("rss", "RSS", "application/rss+xml", rss, digest_rss),
        FeedFormat("json", "JSON Feed", "application/feed+json", json_feed, digest_json),
    )
}
