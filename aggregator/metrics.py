"""Prometheus metrics: fetches by outcome, papers stored, requests and their latency.

With PROMETHEUS_MULTIPROC_DIR set (to one empty folder for the gunicorn workers and the fetch
workers of a deployment), every process writes its counts there and `/metrics` sums them all:
prometheus_client's multiprocess mode. Without it, each process exports its own.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from aggregator.types import SourceOutcome

FETCHES = Counter("aggregator_fetches_total", "Source fetches, by source and outcome", ["source", "outcome"])
FETCH_ERRORS = Counter("aggregator_fetch_errors_total", "Source fetches that failed", ["source"])
PAPERS_WRITTEN = Counter("aggregator_papers_written_total", "Papers created or changed by ingest", ["kind"])
# Read off the store when scraped: the latest reading is the value, whichever process took it.
PAPERS = Gauge("aggregator_papers", "Papers in the store", multiprocess_mode="mostrecent")
SOURCES_FAILING = Gauge(
    "aggregator_sources_failing", "Configured sources whose last fetch failed", multiprocess_mode="mostrecent"
)
REQUESTS = Counter(
    "aggregator_http_requests_total", "HTTP requests, by endpoint and status", ["endpoint", "status"]
)
LATENCY = Histogram(
    "aggregator_http_request_seconds",
    "HTTP request latency, by endpoint",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def record_fetch(outcome: SourceOutcome) -> None:
    if outcome.discarded:
        FETCHES.labels(outcome.source, "discarded").inc()
    elif outcome.failed:
        FETCHES.labels(outcome.source, "failed").inc()
        FETCH_ERRORS.labels(outcome.source).inc()
    elif outcome.not_modified:
        FETCHES.labels(outcome.source, "not_modified").inc()
    else:
        FETCHES.labels(outcome.source, "ok").inc()
        PAPERS_WRITTEN.labels("new").inc(outcome.new)
        PAPERS_WRITTEN.labels("updated").inc(outcome.updated)


def record_request(endpoint: str, status: int, seconds: float) -> None:
    REQUESTS.labels(endpoint, str(status)).inc()
    LATENCY.labels(endpoint).observe(seconds)


def exposition(papers: int, failing: int) -> tuple[bytes, str]:
    PAPERS.set(papers)
    SOURCES_FAILING.set(failing)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def forget_process(pid: int) -> None:
    """A process of the deployment ended (gunicorn's child_exit): prometheus_client drops the
    gauges it kept "live"; counters and our "mostrecent" gauges keep its last values."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
