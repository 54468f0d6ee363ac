"""The config as the rest of the program reads it: frozen dataclasses, every default filled in
and every path made absolute, so that no reader needs to know the file's syntax."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aggregator.types import FetchSettings, TopicSpec


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    url: str  # http(s) or an absolute file:/// URL
    kind: str | None  # None: detect from the body
    every: float  # seconds between fetches
    per_host_delay: float | None = None  # seconds between requests to its host; None: fetch.per_host_delay


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicConfig(TopicSpec):
    """A configured topic: what the tagger reads (slug, query, exclude, sources, announce,
    min_score) and what readers see besides."""

    title: str
    description: str


@dataclass(frozen=True, slots=True)
class SiteConfig:
    title: str
    base_url: str  # absolute http(s), no trailing slash
    hide_source_urls: bool = False  # /api/sources names sources without their URLs


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None
    database_url: str
    site: SiteConfig
    default_every: float
    fetch: FetchSettings
    sources: tuple[SourceConfig, ...]
    topics: tuple[TopicConfig, ...]

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)
