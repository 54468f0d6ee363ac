"""Paper feeds: ingest research papers from many sources, deduplicate, tag, republish.

`create_app()` is the WSGI entry point (gunicorn "aggregator:create_app()"): config, then the
store (migrated), then the blueprints.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from aggregator.config import Config, load_config
from aggregator.store.repository import Store

DEFAULT_CONFIG = "config/aggregator.yaml"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    return Path(explicit or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)


def open_store(config: Config) -> Store:
    """The configured store, migrated to the current schema, with a row for every configured source."""
    host = urlsplit(config.site.base_url).hostname or "localhost"
    store = Store.open(config.database_url, tag_authority=host)
    store.sync_sources((s.name, s.url) for s in config.sources)
    return store


def create_app(config: Config | str | None = None, *, store: Store | None = None) -> Flask:
    """The web application over one config and one store."""
    from aggregator.web import api, health
    from aggregator.web.services import Services

    if not isinstance(config, Config):
        config = load_config(config_path(config))
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["aggregator"] = Services(config, store or open_store(config))
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.add_url_rule("/", "index", _index)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.description), exc.code or 500

    return app


def _index() -> Response:
    return jsonify(papers="/api/papers", sources="/api/sources", health="/healthz")
