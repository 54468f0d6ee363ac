"""Paper feeds: ingest research papers from many sources, deduplicate, tag, republish.

`create_app()` is the WSGI entry point (gunicorn "aggregator:create_app()"). Flask is imported
only when an app is made, so that commands such as `aggregator ingest` start quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregator.runtime import config_path, open_store

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["config_path", "create_app", "open_store"]


def create_app(config: Any = None, **kwargs: Any) -> Flask:
    """The web application over one config (a Config, a path, or None for the default) and one store."""
    from aggregator.web.app import create_app as make

    return make(config, **kwargs)
