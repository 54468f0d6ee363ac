"""The config as the rest of the program reads it: frozen dataclasses, every default filled in
and every path made absolute, so that no reader needs to know the file's syntax."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aggregator.types import FetchSettings


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    url: str  # http(s) or an absolute file:/// URL
    kind: str | None  # None: detect from the body
    every: float  # seconds between fetches


@dataclass(frozen=True, slots=True)
class TopicConfig:
    slug: str
    title: str
    description: str
    query: str
    exclude: str | None
    sources: tuple[str, ...]  # empty: every source
    announce: tuple[str, ...]
    min_score: float


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
