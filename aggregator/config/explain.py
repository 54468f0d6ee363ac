"""The text of `aggregator check-config`: the config as it was understood, defaults filled in,
for a person to compare with what they meant to write."""

from __future__ import annotations

from urllib.parse import urlsplit

from aggregator.config.model import Config
from aggregator.config.values import format_duration
from aggregator.text import format_size


def explain(config: Config) -> str:
    """A human summary for `aggregator check-config`."""
    f, every = config.fetch, format_duration
    networks = ", ".join(map(str, f.allow_networks)) or "none beyond public addresses"
    lines = [
        f"config: {config.path or '(text)'}",
        f"database: {_mask(config.database_url)}",
        f"site: {config.site.title!r} at {config.site.base_url}",
        f"fetch: timeout {every(f.timeout)}, at most {format_size(f.max_bytes)}, networks: {networks}",
        f"  {f.concurrency} sources at once; {_spacing(f.per_host_delay)} between requests to one host "
        "(arXiv's hosts count as one; files and loopback are not spaced)",
        f"sources ({len(config.sources)}, default every {every(config.default_every)}):",
        *(
            f"  {s.name}: {s.kind or 'auto'}, every {every(s.every)}, {s.url}"
            + ("" if s.per_host_delay is None else f" ({_spacing(s.per_host_delay)} between requests)")
            for s in config.sources
        ),
        f"topics ({len(config.topics)}):",
    ]
    for t in config.topics:
        lines += [f"  {t.slug}: {t.title}", f"    query: {t.query}"]
        lines += [f"    exclude: {t.exclude}"] if t.exclude else []
        lines.append(
            f"    sources: {', '.join(t.sources) or 'all'}; announce: {', '.join(t.announce) or 'none'}"
            f"; min score {t.min_score:g}"
        )
    return "\n".join(lines)


def _mask(url: str) -> str:
    """The database URL with its password hidden, since the summary is printed (and shared)."""
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    if ":" not in userinfo:
        return url
    return parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}").geturl()


def _spacing(seconds: float) -> str:
    return format_duration(seconds) if seconds > 0 else "no wait"
