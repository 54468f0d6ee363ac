"""/healthz: 200 while the server and its store work, whatever the sources' state."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from aggregator.metrics import exposition
from aggregator.web.api import iso
from aggregator.web.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    store = services().store
    try:
        store.ping()
        states = store.source_states()
    except SQLAlchemyError as exc:
        return jsonify(status="error", store=f"unavailable: {type(exc).__name__}"), 503
    configured = {s.name for s in services().config.sources}
    states = [s for s in states if s.name in configured]
    failing = [s.name for s in states if s.last_error]
    body = {
        "status": "ok",
        "store": "ok",
        "sources_failing": failing,
        # States, never URLs or error texts (which name hosts and paths): anyone may ask here.
        # /api/sources has the detail.
        "sources": [
            {
                "name": s.name,
                "ok": s.last_error is None,
                "entries": s.entries,
                "last_fetch": iso(s.last_fetch_at),
                "last_success": iso(s.last_success_at),
                "error_count": s.error_count,
            }
            for s in states
        ],
    }
    return jsonify(body), 200


@bp.get("/metrics")
def metrics() -> Response:
    store = services().store
    configured = {s.name for s in services().config.sources}
    failing = sum(1 for s in store.source_states() if s.name in configured and s.last_error)
    body, content_type = exposition(store.paper_count(), failing)
    return Response(body, content_type=content_type)
