"""Where the config lives and how the configured store is opened: shared by the CLI and the web app."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.config import Config
from aggregator.store.repository import Store
from aggregator.topics.match import Tagger, fingerprints
from aggregator.types import TopicSpec

DEFAULT_CONFIG = "config/aggregator.yaml"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config, else AGGREGATOR_CONFIG, else config/aggregator.yaml."""
    return Path(explicit or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)


def topic_specs(config: Config) -> list[TopicSpec]:
    """The configured topics as the tagger takes them (each `TopicConfig` is a `TopicSpec`)."""
    return list(config.topics)


def open_store(config: Config, *, apply_topics: bool = True, read_only: bool = False) -> Store:
    """The configured store, migrated to the current schema, with a row for every configured
    source, and (unless told otherwise) topics added or edited since the last start re-applied.
    `read_only`: neither sources nor topics are written (a preview changes nothing)."""
    host = urlsplit(config.site.base_url).hostname or "localhost"
    specs = topic_specs(config)
    # a connection for each fetch running at once, the lease keeper and a few web requests
    connections = config.fetch.concurrency + 5
    tagger = Tagger(specs) if specs else None
    store = Store.open(config.database_url, tag_authority=host, tagger=tagger, connections=connections)
    if read_only:
        return store
    store.sync_sources((s.name, s.url) for s in config.sources)
    if apply_topics:
        store.apply_topic_changes(fingerprints(specs))
    return store
