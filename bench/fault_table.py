"""Every kind of misbehaving source through the real pipeline, one at a time: the fault table in
docs/reliability.md.

    python bench/fault_table.py [--only KIND ...] [-v]

A threaded HTTP server on 127.0.0.1 answers one path per kind of misbehaviour (errors, redirects,
stalls, broken bodies, compression, hostile XML, scheduling hints). Each kind is one source
(`every: 1h`, `fetch: {timeout: 5s, allow_networks: [127.0.0.0/8]}`) refreshed in process by
`Pipeline.refresh` into a fresh SQLite store of its own, with a fixed clock (Thursday 2026-12-03
12:00 UTC; one kind uses Friday 2026-12-04 23:30 UTC), so that the next fetch time is the same
at every run. Some kinds are fetched twice: first healthy (to get validators, or papers that a
later failure must keep), an hour earlier, then misbehaving. Per kind: the outcome, the wall
time of the last refresh, the next fetch read back from the store relative to the clock, and
whether the papers stored before were kept. Prints the Markdown table; exits 0 when every kind
behaved as expected (its own predicate, and for all: refresh never raises, no internal error,
no refresh takes longer than the timeout + 1 s), 1 otherwise.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import logging
import socket
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aggregator.config import config_from_text  # noqa: E402
from aggregator.ingest.pipeline import Pipeline, retry_delay  # noqa: E402
from aggregator.runtime import open_store  # noqa: E402
from aggregator.store.repository import Store  # noqa: E402
from aggregator.types import STOPPED, SourceOutcome  # noqa: E402

DATA = ROOT / "tests" / "data" / "dedup-dev"
LISTING = (DATA / "arxiv-rss.xml").read_bytes()  # arXiv's RSS listing, 53 items
ATOM = (DATA / "venue.atom").read_bytes()  # a venue's Atom feed
BLOG = (DATA / "blog.xml").read_bytes()  # a blog's RSS
HF = (DATA / "hf-daily.json").read_bytes()  # Hugging Face's daily papers API
THURSDAY = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
FRIDAY_NIGHT = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
TIMEOUT = 5.0
EVERY = timedelta(hours=1)
MAX_BYTES = 10 * 1024 * 1024  # the default fetch.max_bytes
RSS = "application/rss+xml"
# The error document the arXiv API answers to a malformed id, as it served it (tests/data).
ARXIV_ERROR = (ROOT / "tests/data/arxiv-api/arxiv-py-2026/id_abc_s0_m100_b79c8dcf6bc3.xml").read_bytes()


def channel(items: str, head: str = "", prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<rss version="2.0"><channel><title>Lab notes</title>'
        f"<link>https://lab.example.org/</link>{head}{items}</channel></rss>"
    ).encode()


def items(count: int, start: int = 10000) -> str:
    return "".join(
        f"<item><title>Study {n}: {WORDS[n % 10]} {WORDS[n // 10 % 10]} at scale</title>"
        f"<link>https://arxiv.org/abs/2412.{n:05d}</link><guid>oai:arXiv.org:2412.{n:05d}v1</guid>"
        f"<description>arXiv:2412.{n:05d}v1 Announce Type: new Abstract: Finding number {n}.</description>"
        "</item>"
        for n in range(start, start + count)
    )


WORDS = ["sparse", "dense", "graph", "token", "vision", "speech", "robot", "memory", "kernel", "agent"]
LAUGHS = (
    '<!DOCTYPE rss [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + "]>"
)
XXE = '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
CP1252 = (
    channel(
        "<item><title>Über Schrödinger’s café – a “naïve” study</title>"
        "<link>https://lab.example.org/cafe</link><description>Ça marche déjà.</description></item>"
    )
    .decode("utf-8")
    .encode("cp1252")
)  # declared UTF-8, sent as Windows-1252


# --- the server: one path per kind; `phase` is which fetch of its kind is being made ----------------


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Callable[[Handler, int], None]] = {}
        self.phase: dict[str, int] = {}
        self.stopping = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        slug = urlsplit(self.path).path.strip("/").split("/")[0]
        route = self.server.routes.get(slug)
        try:
            if route is None:
                send(self, 404, b"no such kind")
            else:
                route(self, self.server.phase.get(slug, 1))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: as intended
            self.close_connection = True

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True


def send(
    h: Handler, status: int, body: bytes = b"", headers: dict[str, str] | None = None, ctype: str = RSS
) -> None:
    h.send_response(status)
    headers = {"Content-Type": ctype, **(headers or {})}
    for name, value in headers.items():
        h.send_header(name, value)
    if "Content-Length" not in headers:
        h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def body(data: bytes, ctype: str = RSS, **headers: str) -> Callable[[Handler, int], None]:
    return lambda h, _phase: send(h, 200, data, _header_names(headers), ctype)


def status(code: int, data: bytes = b"", ctype: str = "text/plain", **headers: str) -> Callable[..., None]:
    return lambda h, _phase: send(h, code, data, _header_names(headers), ctype)


def then(
    first: Callable[[Handler, int], None], second: Callable[[Handler, int], None]
) -> Callable[..., None]:
    """The first fetch of the kind gets `first`, every later one `second`."""
    return lambda h, phase: (first if phase == 1 else second)(h, phase)


def _header_names(headers: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


def validated(*, etag: bool = True, fresh: str | None = None) -> Callable[[Handler, int], None]:
    """200 with a validator (an ETag, or Last-Modified); 304 to a request that sends it back
    (with Cache-Control: `fresh`, if given)."""
    tag, modified = '"v1"', "Thu, 03 Dec 2026 10:00:00 GMT"

    def route(h: Handler, _phase: int) -> None:
        cache = {"Cache-Control": fresh} if fresh else {}
        if etag and h.headers.get("If-None-Match") == tag:
            send(h, 304, headers={"ETag": tag, **cache})
        elif not etag and h.headers.get("If-Modified-Since") == modified:
            send(h, 304, headers=cache)
        else:
            send(h, 200, LISTING, {"ETag": tag} if etag else {"Last-Modified": modified})

    return route


def redirect(to: Callable[[Handler], str], code: int = 301) -> Callable[[Handler, int], None]:
    return lambda h, _phase: send(h, code, headers={"Location": to(h)}, ctype="text/plain")


def hops(h: Handler, _phase: int) -> None:
    """/hopsN/k redirects to /hopsN/k+1 until k == N, which serves the feed."""
    slug, _, rest = urlsplit(h.path).path.strip("/").partition("/")
    count, step = int(slug.removeprefix("hops")), int(rest or 0)
    if step >= count:
        send(h, 200, ATOM, ctype="application/atom+xml")
    else:
        send(h, 302, headers={"Location": f"/{slug}/{step + 1}"}, ctype="text/plain")


def loop(h: Handler, _phase: int) -> None:
    there = "b" if h.path.endswith("/a") or h.path.rstrip("/").endswith("loop") else "a"
    send(h, 302, headers={"Location": f"/loop/{there}"}, ctype="text/plain")


def stall(h: Handler, _phase: int) -> None:
    """Accept the request and send nothing until well past the client's deadline."""
    h.server.stopping.wait(TIMEOUT + 3)
    h.close_connection = True


def drip(h: Handler, _phase: int) -> None:
    """Headers at once, then the body a byte a second."""
    h.send_response(200)
    h.send_header("Content-Type", RSS)
    h.send_header("Content-Length", str(len(LISTING)))
    h.end_headers()
    for byte in LISTING[:30]:
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        if h.server.stopping.wait(1):
            break
    h.close_connection = True


def drip_headers(h: Handler, _phase: int) -> None:
    """The status line, then one header line a second, never the blank line that ends them."""
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n")
    for n in range(int(TIMEOUT) + 3):
        h.wfile.write(b"X-Pad-%d: %d\r\n" % (n, n))
        h.wfile.flush()
        if h.server.stopping.wait(1):
            break
    h.close_connection = True


def huge_header(h: Handler, _phase: int) -> None:
    send(h, 200, LISTING, {"X-Padding": "a" * 200_000})


def cut_short(h: Handler, _phase: int) -> None:
    """Content-Length promises the whole listing; a third is sent and the connection closed."""
    h.send_response(200)
    h.send_header("Content-Type", RSS)
    h.send_header("Content-Length", str(len(LISTING)))
    h.end_headers()
    h.wfile.write(LISTING[: len(LISTING) // 3])
    h.close_connection = True


def hang_up(h: Handler, _phase: int) -> None:
    """Read the request, close the connection without a byte of answer."""
    h.close_connection = True
    h.wfile.flush()
    h.connection.shutdown(socket.SHUT_RDWR)


def not_http(h: Handler, _phase: int) -> None:
    h.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\nthis is not HTTP at all\r\n\r\n")
    h.close_connection = True


def oversized(h: Handler, _phase: int) -> None:
    """A declared length past max_bytes; the body is sent until the client hangs up."""
    h.send_response(200)
    h.send_header("Content-Type", RSS)
    h.send_header("Content-Length", str(MAX_BYTES + 1))
    h.end_headers()
    _stream(h, MAX_BYTES + 1, chunked=False)


def oversized_chunked(h: Handler, _phase: int) -> None:
    h.send_response(200)
    h.send_header("Content-Type", RSS)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    _stream(h, MAX_BYTES + 1024 * 1024, chunked=True)


def _stream(h: Handler, total: int, *, chunked: bool) -> None:
    piece = (b"<!-- " + b"x" * 65_000 + b" -->\n")[:65_536]
    sent = 0
    h.close_connection = True
    while sent < total and not h.server.stopping.is_set():
        chunk = piece[: total - sent]
        h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        sent += len(chunk)
    if chunked:
        h.wfile.write(b"0\r\n\r\n")


def retry_at(hours: float) -> Callable[[Handler, int], None]:
    def route(h: Handler, _phase: int) -> None:
        when = datetime.now(UTC) + timedelta(hours=hours)
        send(h, 429, b"slow down", {"Retry-After": format_datetime(when, usegmt=True)}, "text/plain")

    return route


def expires_in(hours: float) -> Callable[[Handler, int], None]:
    def route(h: Handler, _phase: int) -> None:
        served = datetime.now(UTC).replace(microsecond=0)
        dated = {
            "Date": format_datetime(served, usegmt=True),
            "Expires": format_datetime(served + timedelta(hours=hours), usegmt=True),
        }
        send(h, 200, LISTING, dated)

    return route


def bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)  # gzip framing
    zeros = bytes(1024 * 1024)
    return b"".join(packer.compress(zeros) for _ in range(50)) + packer.flush()


# --- the kinds ------------------------------------------------------------------------------------


@dataclass
class Result:
    outcome: SourceOutcome | None = None
    raised: str | None = None
    seconds: float = 0.0
    next_in: timedelta | None = None  # None: no next fetch recorded
    stopped: bool = False
    error_count: int = 0
    kept: tuple[int, int, int, int] | None = None  # papers, own sightings: before, after the last fetch
    stored: str = ""  # every stored title and abstract, for the hostile XML kinds

    @property
    def failed(self) -> bool:
        return self.outcome is not None and self.outcome.failed

    @property
    def error(self) -> str:
        return (self.outcome.error or "") if self.outcome else ""

    @property
    def new(self) -> int:
        return self.outcome.new if self.outcome else 0

    @property
    def read(self) -> int:
        o = self.outcome
        return o.new + o.updated + o.unchanged if o else 0

    @property
    def papers_kept(self) -> bool:
        return (
            self.kept is not None
            and self.kept[0] > 0
            and self.kept[0] <= self.kept[2]
            and self.kept[1] <= self.kept[3]
        )


@dataclass
class Kind:
    name: str
    does: str
    route: Callable[[Handler, int], None] | None
    expect: Callable[[Result], bool]
    expectation: str
    fetches: int = 1
    clock: datetime = THURSDAY
    slug: str = ""  # its path on the server; k<number> when empty


def at(delta: timedelta, low: timedelta, high: timedelta | None = None) -> bool:
    return low <= delta <= (high or low)


def succeeded(r: Result) -> bool:
    return r.outcome is not None and not r.failed and not r.outcome.not_modified


def every_plus_jitter(r: Result) -> bool:
    return r.next_in is not None and at(r.next_in, EVERY, EVERY * 1.1)


def ok(minimum: int = 1) -> Callable[[Result], bool]:
    return lambda r: succeeded(r) and r.read >= minimum and not r.outcome.warning and every_plus_jitter(r)  # type: ignore[union-attr]


def backoff(r: Result, minutes: float = 5) -> bool:
    return r.next_in is not None and at(r.next_in, timedelta(minutes=minutes))


def fails(words: str, minutes: float = 5, *, kept: bool = False) -> Callable[[Result], bool]:
    return lambda r: r.failed and words in r.error and backoff(r, minutes) and (r.papers_kept or not kept)


def fails_fast(words: str) -> Callable[[Result], bool]:
    return lambda r: fails(words)(r) and r.seconds < 1.0


def not_modified(r: Result, next_in: timedelta | None = None) -> bool:
    if r.outcome is None or not r.outcome.not_modified or not r.papers_kept or r.next_in is None:
        return False
    return every_plus_jitter(r) if next_in is None else r.next_in == next_in


def hinted(hours: float) -> Callable[[Result], bool]:
    want = timedelta(hours=hours)
    return lambda r: succeeded(r) and r.next_in is not None and at(r.next_in, want)


def harmless(r: Result) -> bool:
    """Hostile XML: no raise, no entity expanded, nothing read from the disk, fast."""
    return r.outcome is not None and r.seconds < 2 and "lollol" not in r.stored and "root:" not in r.stored


def at_deadline(r: Result) -> bool:
    """Failed by the fetch's deadline, not much after it."""
    return fails("timed out")(r) and TIMEOUT - 0.5 <= r.seconds <= TIMEOUT + 1


def no_papers_marked(r: Result) -> bool:
    """No papers, and the source is marked: failed, or warned."""
    return r.new == 0 and (r.failed or bool(r.outcome and r.outcome.warning))


def retry_after_near(hours: float) -> Callable[[Result], bool]:
    want = timedelta(hours=hours)
    return lambda r: r.failed and r.next_in is not None and at(r.next_in, want - timedelta(seconds=5), want)


def with_head(head: bytes) -> bytes:
    """The arXiv listing with `head` among its channel's elements."""
    return LISTING.replace(b"<channel>", b"<channel>" + head, 1)


HTML = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form><input name=u></form></body></html>"
)
WEEKEND = b"<skipDays><day>Saturday</day><day>Sunday</day></skipDays>"
AFTERNOON = b"<skipHours>" + b"".join(b"<hour>%d</hour>" % h for h in range(13, 19)) + b"</skipHours>"
LOL = channel("<item><title>&lol9;</title><link>https://lab.example.org/lol</link></item>", prolog=LAUGHS)
LEAK = channel("<item><title>Leak &xxe;</title><link>https://lab.example.org/xxe</link></item>", prolog=XXE)
CORRUPT_GZIP = gzip.compress(LISTING)[:20] + b"\x00garbage" * 100
BACK_OFF = "failed, 5 min back-off"

K = Kind
KINDS = [
    K(
        "healthy RSS (control)",
        "200, arXiv's RSS listing",
        body(LISTING),
        ok(),
        "papers read, next in 1h + jitter",
    ),
    K(
        "healthy Atom (control)",
        "200, a venue's Atom feed",
        body(ATOM, "application/atom+xml"),
        ok(),
        "papers read",
    ),
    K(
        "healthy JSON (control)",
        "200, Hugging Face daily papers JSON",
        body(HF, "application/json"),
        ok(),
        "papers read",
    ),
    K(
        "gzip-encoded feed",
        "200, Content-Encoding: gzip",
        body(gzip.compress(LISTING), Content_Encoding="gzip"),
        ok(),
        "papers read",
    ),
    K(
        "deflate-encoded feed",
        "200, Content-Encoding: deflate",
        body(zlib.compress(LISTING), Content_Encoding="deflate"),
        ok(),
        "papers read",
    ),
    K(
        "304 after ETag",
        "200 with ETag, then 304 to If-None-Match",
        validated(),
        not_modified,
        "not modified, papers kept",
        fetches=2,
    ),
    K(
        "304 after Last-Modified",
        "200 with Last-Modified, then 304 to If-Modified-Since",
        validated(etag=False),
        not_modified,
        "not modified, papers kept",
        fetches=2,
    ),
    K(
        "304 with max-age=7200",
        "200 with ETag, then 304 with Cache-Control: max-age=7200",
        validated(fresh="max-age=7200"),
        lambda r: not_modified(r, timedelta(hours=2)),
        "not modified, next in 2h",
        fetches=2,
    ),
    K(
        "304 without validators",
        "304 to a request that sent none",
        status(304),
        fails("no validators"),
        BACK_OFF,
    ),
    K(
        "identical body again",
        "the same body twice, no validators",
        body(BLOG),
        not_modified,
        "not modified (same hash), papers kept",
        fetches=2,
    ),
    K("404", "404 Not Found", status(404), fails("HTTP 404"), BACK_OFF),
    K(
        "410 after healthy",
        "200, then 410 Gone",
        then(body(LISTING), status(410)),
        lambda r: r.failed and r.stopped and r.papers_kept,
        "stopped, papers kept",
        fetches=2,
    ),
    K("500", "500 Internal Server Error", status(500), fails("HTTP 500"), BACK_OFF),
    K("502", "502 Bad Gateway", status(502), fails("HTTP 502"), BACK_OFF),
    K("503", "503, no Retry-After", status(503), fails("HTTP 503"), BACK_OFF),
    K(
        "503 twice",
        "503 at two fetches in a row",
        status(503),
        fails("HTTP 503", 10),
        "back-off doubles: 10 min",
        fetches=2,
    ),
    K(
        "healthy then 500",
        "200, then 500",
        then(body(LISTING), status(500)),
        fails("HTTP 500", kept=True),
        "failed, papers kept",
        fetches=2,
    ),
    K(
        "503 + Retry-After: 120",
        "503, Retry-After: 120",
        status(503, Retry_After="120"),
        fails("retry after 120 s"),
        "at least 2 min: the 5 min back-off",
    ),
    K(
        "429 + Retry-After: 7200",
        "429, Retry-After: 7200",
        status(429, Retry_After="7200"),
        fails("HTTP 429", 120),
        "next in 2h",
    ),
    K(
        "429 + Retry-After date",
        "429, Retry-After: an HTTP date 3 h ahead",
        retry_at(3),
        retry_after_near(3),
        "next in 3h",
    ),
    K(
        "429 + Retry-After in the past",
        "429, Retry-After: a date a day ago",
        retry_at(-24),
        fails("HTTP 429"),
        BACK_OFF,
    ),
    K(
        "429 + garbage Retry-After",
        "429, Retry-After: soon-ish",
        status(429, Retry_After="soon-ish"),
        fails("HTTP 429"),
        BACK_OFF,
    ),
    K(
        "429 + Retry-After: 10 days",
        "429, Retry-After: 864000",
        status(429, Retry_After="864000"),
        fails("HTTP 429", 24 * 60),
        "capped at a day",
    ),
    K(
        "301 to a good feed",
        "301 to another path serving Atom",
        redirect(lambda h: "/hops0"),
        ok(),
        "papers read",
    ),
    K("5 redirects", "302 five times, then the feed", hops, ok(), "papers read (5 is allowed)", slug="hops5"),
    K(
        "6 redirects",
        "302 six times, then the feed",
        hops,
        fails_fast("more than 5 redirects"),
        "failed: too many redirects",
        slug="hops6",
    ),
    K(
        "redirect loop",
        "302 /loop/a <-> /loop/b",
        loop,
        fails_fast("more than 5 redirects"),
        "failed: too many redirects",
        slug="loop",
    ),
    K(
        "redirect to file:",
        "302 to file:///etc/passwd",
        redirect(lambda h: "file:///etc/passwd", 302),
        fails_fast("unsupported URL"),
        "failed, nothing read",
    ),
    K(
        "redirect to 169.254.169.254",
        "302 to the cloud metadata address",
        redirect(lambda h: "http://169.254.169.254/latest/meta-data/", 302),
        fails_fast("not allowed"),
        "failed, never connected",
    ),
    K("3xx without Location", "301 with no Location header", status(301), fails_fast("HTTP 301"), "failed"),
    K(
        "headers never come",
        "accepts, sends nothing for 8 s",
        stall,
        at_deadline,
        "failed at the 5 s deadline",
    ),
    K(
        "headers drip a line/s",
        "status line, then a header line a second",
        drip_headers,
        at_deadline,
        "failed at the 5 s deadline",
    ),
    K(
        "body drips 1 byte/s",
        "headers at once, then a byte a second",
        drip,
        at_deadline,
        "failed at the 5 s deadline",
    ),
    K(
        "200 KB header line",
        "200 with a 200 KB X-Padding header",
        huge_header,
        fails_fast("failed"),
        "failed",
    ),
    K("closed port", "nothing listens", None, fails_fast("cannot reach"), "failed at once"),
    K(
        "connection closed mid-body",
        "Content-Length > bytes sent, then close",
        cut_short,
        fails_fast("failed"),
        "failed, nothing stored",
    ),
    K("hang-up before answering", "reads the request, closes", hang_up, fails_fast("failed"), "failed"),
    K("not HTTP", "answers with an SSH banner", not_http, fails_fast("fetch"), "failed"),
    K(
        "truncated XML",
        "200, the listing cut at 2/3",
        body(LISTING[: len(LISTING) * 2 // 3]),
        lambda r: succeeded(r) and r.new > 0 and bool(r.outcome.warning) and every_plus_jitter(r),
        "papers read kept, warning",
    ),  # type: ignore[union-attr]
    K(
        "HTML page",
        "200 text/html, a login page",
        body(HTML, "text/html"),
        no_papers_marked,
        "no papers; failed or warned",
    ),
    K("empty 200", "200, zero bytes", body(b""), no_papers_marked, "no papers; failed or warned"),
    K(
        "gzip bomb",
        "50 MB of zeros, gzip (50 KB sent)",
        body(bomb(), Content_Encoding="gzip"),
        fails_fast("larger than"),
        "failed at max_bytes, fast",
    ),
    K(
        "over max_bytes, length",
        "Content-Length: 10 MiB + 1",
        oversized,
        fails_fast("larger than"),
        "failed before reading",
    ),
    K(
        "over max_bytes, chunked",
        "11 MiB chunked, no length",
        oversized_chunked,
        lambda r: fails("larger than")(r) and r.seconds < 3,
        "failed at max_bytes",
    ),
    K(
        "Content-Encoding: br",
        "200, Content-Encoding: br",
        body(LISTING, Content_Encoding="br"),
        fails_fast("unsupported Content-Encoding"),
        "failed",
    ),
    K(
        "corrupt gzip",
        "200, gzip header then garbage",
        body(CORRUPT_GZIP, Content_Encoding="gzip"),
        fails_fast("bad compressed body"),
        "failed",
    ),
    K(
        "wrong charset",
        "Windows-1252 bytes declared UTF-8",
        body(CP1252),
        lambda r: succeeded(r) and "Schrödinger’s café" in r.stored,
        "read as Windows-1252",
    ),
    K(
        "invalid JSON",
        "200 application/json, a broken object",
        body(b'{"papers": [{"title": "x",', "application/json"),
        lambda r: r.new == 0 and r.failed,
        "failed, no papers",
    ),
    K(
        "arXiv API error (400)",
        "400 with arXiv's Atom error document",
        status(400, ARXIV_ERROR, "application/atom+xml"),
        fails("incorrect id format for abc"),
        "failed with arXiv's message",
    ),
    K(
        "arXiv API error (200)",
        "200 with arXiv's Atom error document",
        body(ARXIV_ERROR, "application/atom+xml"),
        fails("arXiv API error: incorrect id format"),
        "failed, no paper named Error",
    ),
    K(
        "RSS ttl of 300 min",
        "RSS with <ttl>300</ttl>",
        body(with_head(b"<ttl>300</ttl>")),
        hinted(5),
        "next in 5h",
    ),
    K(
        "Cache-Control: max-age=7200",
        "200, max-age=7200",
        body(LISTING, Cache_Control="public, max-age=7200"),
        hinted(2),
        "next in 2h",
    ),
    K(
        "max-age of 30 days",
        "200, max-age=2592000",
        body(LISTING, Cache_Control="max-age=2592000"),
        hinted(24),
        "capped at a day",
    ),
    K("Expires = Date + 3h", "200, Expires 3 h after Date", expires_in(3), hinted(3), "next in 3h"),
    K(
        "RSS skipDays, Friday night",
        "RSS skipping Saturday and Sunday, fetched Fri 23:30",
        body(with_head(WEEKEND)),
        hinted(24),
        "pushed a day (the cap)",
        clock=FRIDAY_NIGHT,
    ),
    K(
        "RSS skipHours 13-18",
        "RSS skipping 13:00-18:59 UTC, fetched 12:00",
        body(with_head(AFTERNOON)),
        hinted(7),
        "next at 19:00: 7h",
    ),
    K(
        "billion laughs",
        "RSS with 10^9 nested entities in a title",
        body(LOL),
        lambda r: harmless(r) and "&lol9;" in r.stored,
        "no expansion: the title is the text `&lol9;`",
    ),
    K(
        "external entity (XXE)",
        "RSS whose title is file:///etc/passwd",
        body(LEAK),
        lambda r: harmless(r) and "Leak &xxe;" in r.stored,
        "nothing read: the title is `Leak &xxe;`",
    ),
    K(
        "zero entries",
        "a valid RSS channel with no items",
        body(channel("")),
        lambda r: succeeded(r) and r.read == 0 and every_plus_jitter(r),
        "0 new, healthy",
    ),
    K(
        "10,000 entries",
        "a valid RSS channel, 10,000 items (2.4 MB)",
        body(channel(items(10_000))),
        lambda r: succeeded(r) and r.new == 10_000,
        "10000 new",
    ),
    K(
        "good feed, then garbage",
        "200 listing, then 200 of binary junk",
        then(body(LISTING), body(bytes(range(256)) * 40)),
        lambda r: r.papers_kept and no_papers_marked(r),
        "papers kept, source marked",
        fetches=2,
    ),
]


# --- running --------------------------------------------------------------------------------------


def slug_of(kind: Kind, index: int) -> str:
    return kind.slug or f"k{index}"


def source_name(index: int) -> str:
    return f"kind-{index:02d}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(database: str, kinds: list[tuple[int, Kind]], base: str, dead_port: int) -> str:
    lines = [
        f"database: sqlite:///{database}",
        "site:",
        "  title: Faults",
        "  base_url: http://papers.example.org",
        "fetch:",
        "  allow_networks: [127.0.0.0/8]",
        f"  timeout: {TIMEOUT:g}s",
        "sources:",
    ]
    for index, kind in kinds:
        url = f"http://127.0.0.1:{dead_port}/feed" if kind.route is None else f"{base}/{slug_of(kind, index)}"
        lines += [f"  - name: {source_name(index)}", f"    url: {url}", "    every: 1h"]
    return "\n".join(lines) + "\n"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def counts(store: Store, name: str) -> tuple[int, int]:
    with store.engine.connect() as conn:
        own = conn.execute(text("SELECT count(*) FROM sightings WHERE source = :s"), {"s": name}).scalar_one()
    return store.paper_count(), int(own)


def stored_text(store: Store) -> str:
    with store.engine.connect() as conn:
        return "\n".join(f"{t}\n{a}" for t, a in conn.execute(text("SELECT title, abstract FROM papers")))


def run_kind(index: int, kind: Kind, server: Server, tmp: Path, dead_port: int) -> Result:
    db = tmp / f"{source_name(index)}.db"
    config = config_from_text(
        config_text(str(db), [(index, kind)], server.base, dead_port), base_dir=tmp, env={}
    )
    store = open_store(config, apply_topics=False)
    result = Result()
    try:
        [source] = config.sources
        slug = slug_of(kind, index)
        clock = Clock(kind.clock - EVERY * (kind.fetches - 1))
        pipeline = Pipeline(config, store, clock=clock)
        before = (0, 0)
        for phase in range(1, kind.fetches + 1):
            server.phase[slug] = phase
            clock.now = kind.clock - EVERY * (kind.fetches - phase)
            before = counts(store, source.name)
            started = time.perf_counter()
            try:
                result.outcome = pipeline.refresh(source)
            except Exception as exc:  # must never happen: refresh records failures
                result.raised = f"{type(exc).__name__}: {exc}"
                result.outcome = None
            result.seconds = time.perf_counter() - started
        after = counts(store, source.name)
        if kind.fetches > 1:
            result.kept = (*before, *after)
        state = store.source_state(source.name)
        if state is not None and state.next_fetch_at is not None:
            result.stopped = state.next_fetch_at >= STOPPED
            result.next_in = None if result.stopped else state.next_fetch_at - kind.clock
            result.error_count = state.error_count
        result.stored = stored_text(store)
    finally:
        store.close()
    return result


def short_duration(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(p for p in parts if p) or "0m"


def next_fetch_text(r: Result) -> str:
    if r.stopped:
        return "stopped (410)"
    if r.next_in is None:
        return "none recorded"
    shown = short_duration(r.next_in)
    if r.failed:
        backed = retry_delay(r.error_count, EVERY)
        return f"{shown} ({'Retry-After' if r.next_in > backed else 'back-off'})"
    return shown if r.next_in <= EVERY * 1.1 else f"{shown} (hint)"


def outcome_text(r: Result, base: str, dead_port: int) -> str:
    if r.raised:
        return f"RAISED {r.raised}"
    assert r.outcome is not None
    said = r.outcome.describe().replace(base, "").replace(f"http://127.0.0.1:{dead_port}", "")
    return said if len(said) <= 72 else said[:70] + "…"


def kept_text(r: Result) -> str:
    if r.kept is None or r.kept[0] == 0:
        return "–"
    papers_before, own_before, papers_after, own_after = r.kept
    verdict = "yes" if r.papers_kept else "NO"
    return (
        f"{verdict} ({papers_before} → {papers_after})"
        if own_before == own_after
        else f"{verdict} ({papers_before} → {papers_after}, sightings {own_before} → {own_after})"
    )


def as_expected(kind: Kind, r: Result) -> bool:
    if r.raised or r.outcome is None or r.error.startswith("internal error"):
        return False
    if r.seconds > TIMEOUT + 1:
        return False
    return bool(kind.expect(r))


def cell(value: str) -> str:
    """Text for a Markdown table cell (a `<` would open a tag where the table is rendered)."""
    return value.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="run only kinds whose name contains one of these")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the pipeline's log")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    quiet = logging.getLogger("aggregator")  # each failure is logged as a warning: the table says it
    level = quiet.level
    quiet.setLevel(logging.WARNING if args.verbose else logging.CRITICAL)
    chosen = [
        (i, k)
        for i, k in enumerate(KINDS, 1)
        if not args.only or any(word.lower() in k.name.lower() for word in args.only)
    ]
    server = Server()
    for index, kind in chosen:
        if kind.route is not None:
            server.routes[slug_of(kind, index)] = kind.route
    server.routes.setdefault("hops0", hops)
    threading.Thread(target=server.serve_forever, name="faults", daemon=True).start()
    dead_port = closed_port()
    rows, wrong = [], []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="fault-table-") as folder:
            for index, kind in chosen:
                r = run_kind(index, kind, server, Path(folder), dead_port)
                good = as_expected(kind, r)
                if not good:
                    wrong.append(kind.name)
                said = cell(outcome_text(r, server.base, dead_port))
                rows.append(
                    f"| {index} | {cell(kind.name)} | {cell(kind.does)} | {said} | {r.seconds:.2f} s "
                    f"| {next_fetch_text(r)} | {kept_text(r)} "
                    f"| {'yes' if good else '**NO**'}: {cell(kind.expectation)} |"
                )
                print(f"{kind.name}: {'ok' if good else 'NOT AS EXPECTED'}", file=sys.stderr, flush=True)
    finally:
        quiet.setLevel(level)
        server.stopping.set()
        server.shutdown()
        server.server_close()
    print("| # | kind | the server | outcome | time | next fetch | earlier papers kept | as expected |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"\n{len(rows)} kinds in {time.perf_counter() - started:.1f} s; "
        + (f"not as expected: {', '.join(wrong)}" if wrong else "every kind as expected")
    )
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
