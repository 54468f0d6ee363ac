"""gunicorn settings for `gunicorn "aggregator:create_app()"` (read from the working folder).

Threaded workers, because a request spends much of its time waiting on the database and a slow
one must not hold up the rest; one process per core, because Python runs one thread at a time
per process, and each process runs one search at a time (store/search_turns.py), so more
processes is how a machine runs more searches at once. Every query carries its own time budget
(under a second), so `timeout` only catches a worker that is truly stuck. Each setting can be
overridden from the environment.
"""

from __future__ import annotations

import os
import sys
from typing import Any

bind = (
    os.environ.get("GUNICORN_BIND")
    or f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, os.cpu_count() or 1))
# Enough that /healthz and cached feeds find a thread free while searches hold theirs (one
# running and at most 8 waiting per process: store/search_turns.py).
threads = int(os.environ.get("GUNICORN_THREADS") or 16)
timeout = 30  # seconds without a heartbeat before a worker is replaced (requests stop long before)
graceful_timeout = 20
keepalive = 5
max_requests = 20_000  # recycle workers now and then: per-worker caches and fragmentation stay bounded
max_requests_jitter = 2_000
# Load the app once before forking: migrations and topic re-tagging run once, not once per worker.
preload_app = True
accesslog = os.environ.get("GUNICORN_ACCESS_LOG")  # e.g. "-" for standard output; off by default
errorlog = "-"


def pre_fork(server: Any, worker: Any) -> None:
    """The loaded app (preload_app) is frozen out of the garbage collector's walks before the
    workers inherit it: a full collection in a worker then walks what its requests made, not the
    100,000 objects of the app and its libraries (80 ms with every thread held, every twenty or
    so feed renders), and no collection writes to the memory pages holding them, which each
    worker would otherwise copy from the master."""
    from aggregator.collector import freeze_loaded

    freeze_loaded()


def post_fork(server: Any, worker: Any) -> None:
    """Each worker opens its own database connections: a pooled connection inherited across a
    fork would be shared by two processes. Its threads take turns every millisecond instead of
    every five, so a quick request (/healthz, a cached feed) is not held behind a thread that is
    matching papers: 8 clients searching a 1M store kept /healthz waiting up to 125 ms."""
    sys.setswitchinterval(0.001)
    app = worker.app.wsgi()
    services = getattr(app, "extensions", {}).get("aggregator")
    if services is not None:
        services.store.engine.dispose(close=False)


def child_exit(server: Any, worker: Any) -> None:
    """With PROMETHEUS_MULTIPROC_DIR set (aggregator/metrics.py), tell prometheus_client that a
    worker ended; its counts stay in what /metrics sums."""
    from aggregator.metrics import forget_process

    forget_process(worker.pid)
