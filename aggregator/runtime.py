"""Where the config lives and how the configured store is opened: shared by the CLI and the web app."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.config import Config
from aggregator.store.repository import Store

DEFAULT_CONFIG = "config/aggregator.yaml"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config, else AGGREGATOR_CONFIG, else config/aggregator.yaml."""
    return Path(explicit or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)


def open_store(config: Config) -> Store:
    """The configured store, migrated to the current schema, with a row for every configured source."""
    host = urlsplit(config.site.base_url).hostname or "localhost"
    store = Store.open(config.database_url, tag_authority=host)
    store.sync_sources((s.name, s.url) for s in config.sources)
    return store
