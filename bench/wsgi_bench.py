"""The real app for bench/bench_serve.py, with two trivial views added to it as the baseline.

    AGGREGATOR_CONFIG=cfg.yaml AGGREGATOR_BASE_URL=http://127.0.0.1:PORT BENCH_FEED=<slug> \
        gunicorn -w 2 -k gthread --threads 4 -b 127.0.0.1:PORT bench.wsgi_bench:app

`app` is `aggregator.create_app()` over the config named by AGGREGATOR_CONFIG, unchanged, plus:
  * /bench/trivial: exactly the bytes /feeds/<BENCH_FEED>.atom returns (fetched once at start
    through the test client), precomputed, with the same Content-Type, ETag, Last-Modified and
    Cache-Control;
  * /bench/trivial304: a bare 304 with the same ETag, Last-Modified and Cache-Control.
Both run through the same app (its before/after-request hooks and metrics), so a difference
measured against them is what the feed view itself costs on top of Flask and gunicorn.
"""

from __future__ import annotations

import os

from flask import Response

from aggregator import create_app
from aggregator.runtime import config_path

FEED = os.environ.get("BENCH_FEED", "llm-agents")
FEED_PATH = f"/feeds/{FEED}.atom"
VALIDATORS = ("ETag", "Last-Modified", "Cache-Control")

app = create_app(str(config_path()))


def trivial() -> Response:
    return Response(BODY, content_type=CONTENT_TYPE, headers=HEADERS)


def trivial304() -> Response:
    return Response(status=304, headers=HEADERS)


app.add_url_rule("/bench/trivial", "bench_trivial", trivial)
app.add_url_rule("/bench/trivial304", "bench_trivial304", trivial304)

with app.test_client() as _client:
    _real = _client.get(FEED_PATH)
if _real.status_code != 200:
    raise RuntimeError(f"wsgi_bench: {FEED_PATH} answered {_real.status_code}: {_real.get_data()[:200]!r}")
BODY: bytes = _real.get_data()
CONTENT_TYPE: str = _real.headers["Content-Type"]
HEADERS: dict[str, str] = {name: _real.headers[name] for name in VALIDATORS}
