"""The Flask application factory: config -> store -> blueprints."""

from __future__ import annotations

import time

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from aggregator.config import Config, load_config
from aggregator.errors import SearchesBusy, Unavailable
from aggregator.metrics import record_request
from aggregator.runtime import config_path, open_store
from aggregator.store.repository import Store
from aggregator.store.search_turns import SEARCH_WAIT
from aggregator.web import api, feeds, health, pages
from aggregator.web.headers import secure
from aggregator.web.services import Services

BUSY_RETRY_AFTER = round(SEARCH_WAIT)  # seconds: as long as a search may wait for its turn


def create_app(config: Config | str | None = None, *, store: Store | None = None) -> Flask:
    """The web application over one config and one store."""
    if not isinstance(config, Config):
        config = load_config(config_path(config))
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600  # the stylesheet (revalidated by ETag after)
    app.extensions["aggregator"] = Services(config, store or open_store(config))
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(feeds.bp)
    app.register_blueprint(pages.bp)

    @app.before_request
    def _started() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _measured(response: Response) -> Response:
        if "started" in g:
            endpoint = request.endpoint or "unknown"
            record_request(endpoint, response.status_code, time.perf_counter() - g.started)
        return secure(response)

    @app.errorhandler(Unavailable)
    def _unavailable(exc: Unavailable) -> tuple[Response, int]:
        """A query past its time budget: the worker is free again, the reader told to narrow it;
        or one that found every search slot taken: the reader told when to come back."""
        message = f"store: {exc}"
        if request.path.startswith("/api/"):
            response = jsonify(error=message)
        else:
            response = Response(f"503 Service Unavailable: {message}\n", mimetype="text/plain")
        if isinstance(exc, SearchesBusy):
            response.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
        return response, 503

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        """JSON for scripts under /api, a plain sentence for everything else (feeds, pages)."""
        code = exc.code or 500
        if request.path.startswith("/api/"):
            return jsonify(error=exc.description), code
        return Response(f"{code} {exc.name}: {exc.description}\n", mimetype="text/plain"), code

    return app
