"""fetch: conditional GET, limits, redirects, address policy, errors and per-host pacing.

Every server here listens on 127.0.0.1; nothing reaches the network (`.invalid` never resolves).
"""

from __future__ import annotations

import gzip
import http.server
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

import aggregator.ingest.fetch as fetch_module
from aggregator.errors import FetchError
from aggregator.ingest.addresses import address_allowed
from aggregator.ingest.fetch import (
    _INFLATE_STEP,
    RetryLater,
    _inflate,
    check_host,
    fetch,
    parse_retry_after,
)
from aggregator.types import USER_AGENT, FetchedBody, FetchSettings, NotModified

LOOPBACK = (ip_network("127.0.0.0/8"),)
SETTINGS = FetchSettings(timeout=1.0, connect_timeout=1.0, max_bytes=1 << 20, allow_networks=LOOPBACK)
MiB = 1 << 20
BOMB = gzip.compress(bytes(20 * MiB))


@pytest.fixture(scope="module")
def _server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(_server: HTTPServer) -> Iterator[HTTPServer]:
    yield _server
    _server.clear()


# --- a raw server for what pytest-httpserver cannot do: slow drips, lying lengths, silence ---------


class _RawHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/drip":  # one byte every 0.2 s, for at most 10 s
            self._head(10_000)
            for _ in range(50):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        elif self.path == "/huge-length":  # claims a gigabyte, sends ten bytes
            self._head(10**9)
            self.wfile.write(b"0123456789")
        elif self.path == "/bomb":  # 20 KB of gzip that inflates to 20 MB
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(BOMB)))
            self.end_headers()
            self.wfile.write(BOMB)
        elif self.path == "/silent":  # never answers within the test's timeout
            time.sleep(2.0)

    def _head(self, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def raw_url() -> Iterator[Callable[[str], str]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RawHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield lambda path: f"http://127.0.0.1:{httpd.server_port}{path}"
    httpd.shutdown()
    httpd.server_close()


# --- conditional GET -------------------------------------------------------------------------------

LAST_MODIFIED = "Wed, 02 Oct 2024 08:00:00 GMT"


def test_200_returns_body_and_validators(server: HTTPServer) -> None:
    server.expect_request("/feed").respond_with_data(
        b"<rss/>",
        content_type="application/rss+xml",
        headers={"ETag": '"v1"', "Last-Modified": LAST_MODIFIED},
    )
    result = fetch(server.url_for("/feed"), settings=SETTINGS)
    assert result == FetchedBody(
        body=b"<rss/>",
        url=server.url_for("/feed"),
        content_type="application/rss+xml",
        etag='"v1"',
        last_modified=LAST_MODIFIED,
    )


def test_conditional_get_sends_both_validators_and_304_is_not_modified(server: HTTPServer) -> None:
    server.expect_request(
        "/feed", headers={"If-None-Match": '"v1"', "If-Modified-Since": LAST_MODIFIED}
    ).respond_with_data("", status=304, headers={"ETag": '"v2"'})
    result = fetch(server.url_for("/feed"), etag='"v1"', last_modified=LAST_MODIFIED, settings=SETTINGS)
    # the new ETag wins; the Last-Modified the 304 left out is kept
    assert result == NotModified(etag='"v2"', last_modified=LAST_MODIFIED)


def test_no_validators_sends_no_conditional_headers(server: HTTPServer) -> None:
    server.expect_request("/feed").respond_with_data(b"ok")
    fetch(server.url_for("/feed"), settings=SETTINGS)
    request = server.log[-1][0]
    assert "If-None-Match" not in request.headers
    assert "If-Modified-Since" not in request.headers


def test_user_agent_and_accept_encoding_sent(server: HTTPServer) -> None:
    server.expect_request("/ua").respond_with_data(b"ok")
    fetch(server.url_for("/ua"), settings=SETTINGS)
    request = server.log[-1][0]
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Accept-Encoding"] == "gzip, deflate"


# --- files and schemes -----------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["file:///{}", "file:/{}"])
def test_file_url_reads_the_file(tmp_path: Path, form: str) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"<feed/>")
    url = form.format(str(path).lstrip("/"))
    result = fetch(url, settings=SETTINGS)
    assert isinstance(result, FetchedBody)
    assert result.body == b"<feed/>"
    assert result.url == url


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"^fetch: no such file: .*nope\.xml$"):
        fetch((tmp_path / "nope.xml").as_uri(), settings=SETTINGS)


def test_file_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(b"x" * 2001)
    small = FetchSettings(max_bytes=2000)
    with pytest.raises(FetchError, match=r"^fetch: file .*big\.xml is larger than 2000 bytes$"):
        fetch(path.as_uri(), settings=small)
    path.write_bytes(b"x" * 2000)
    assert isinstance(fetch(path.as_uri(), settings=small), FetchedBody)


def test_relative_file_url_is_refused() -> None:
    with pytest.raises(FetchError, match=r"^fetch: file URL must be absolute"):
        fetch("file:samples/arxiv.xml", settings=SETTINGS)


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "gopher://example.org/", "example.org/feed"])
def test_unsupported_scheme(url: str) -> None:
    with pytest.raises(FetchError, match=r"^fetch: unsupported URL scheme"):
        fetch(url, settings=SETTINGS)


# --- size cap, after decompression -----------------------------------------------------------------


def test_plain_body_over_the_cap(server: HTTPServer) -> None:
    server.expect_request("/big").respond_with_data(b"x" * (MiB + 1))
    server.expect_request("/exact").respond_with_data(b"x" * MiB)
    with pytest.raises(FetchError, match=r"^fetch: response larger than 1 MiB from "):
        fetch(server.url_for("/big"), settings=SETTINGS)
    result = fetch(server.url_for("/exact"), settings=SETTINGS)
    assert isinstance(result, FetchedBody)
    assert len(result.body) == MiB


def test_content_length_over_the_cap_is_refused_before_reading(raw_url: Callable[[str], str]) -> None:
    # The server sends 10 of a claimed 10**9 bytes: only the early check can say "larger".
    with pytest.raises(FetchError, match=r"^fetch: response larger than 1 MiB"):
        fetch(raw_url("/huge-length"), settings=SETTINGS)


def test_gzip_bomb_is_cut_at_the_cap(server: HTTPServer) -> None:
    bomb = gzip.compress(bytes(5 * MiB))
    assert len(bomb) < 10_000
    server.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match=r"^fetch: response larger than 1 MiB"):
        fetch(server.url_for("/bomb"), settings=SETTINGS)


def test_gzip_bomb_never_lands_whole_in_memory(
    raw_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 KB that inflates to 20 MB: inflated a step at a time, and no further than the cap.
    # (Spied on rather than measured with tracemalloc, which also counts other server threads.)
    sizes: list[int] = []

    def spy(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for piece in _inflate(chunks):
            sizes.append(len(piece))
            yield piece

    monkeypatch.setattr(fetch_module, "_inflate", spy)
    with pytest.raises(FetchError, match=r"larger than 1 MiB"):
        fetch(raw_url("/bomb"), settings=SETTINGS)
    assert max(sizes) <= _INFLATE_STEP
    assert MiB < sum(sizes) <= MiB + _INFLATE_STEP


def test_inflate_never_yields_more_than_one_step() -> None:
    bomb = gzip.compress(bytes(5 * MiB))
    sizes = [len(piece) for piece in _inflate(iter([bomb]))]
    assert max(sizes) <= _INFLATE_STEP
    assert sum(sizes) == 5 * MiB


@pytest.mark.parametrize(
    ("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress), ("x-gzip", gzip.compress)]
)
def test_compressed_body_under_the_cap_is_decoded(
    server: HTTPServer, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    text = b"<feed>" + b"paper " * 50_000 + b"</feed>"
    server.expect_request("/z").respond_with_data(compress(text), headers={"Content-Encoding": encoding})
    result = fetch(server.url_for("/z"), settings=SETTINGS)
    assert isinstance(result, FetchedBody)
    assert result.body == text


def test_corrupt_gzip_is_a_fetch_error(server: HTTPServer) -> None:
    server.expect_request("/z").respond_with_data(b"not gzip at all", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match=r"^fetch: bad compressed body from "):
        fetch(server.url_for("/z"), settings=SETTINGS)


def test_unknown_content_encoding_is_refused(server: HTTPServer) -> None:
    server.expect_request("/z").respond_with_data(b"??", headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError, match=r"^fetch: unsupported Content-Encoding 'br'"):
        fetch(server.url_for("/z"), settings=SETTINGS)


# --- time ------------------------------------------------------------------------------------------


def test_slow_drip_body_is_cut_at_the_total_deadline(raw_url: Callable[[str], str]) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"^fetch: timed out after 1 s fetching http://127\.0\.0\.1"):
        fetch(raw_url("/drip"), settings=SETTINGS)
    assert time.monotonic() - started < 3.0


def test_silent_server_times_out(raw_url: Callable[[str], str]) -> None:
    started = time.monotonic()
    quick = FetchSettings(timeout=0.5, allow_networks=LOOPBACK)
    with pytest.raises(FetchError, match=r"^fetch: timed out after 0\.5 s"):
        fetch(raw_url("/silent"), settings=quick)
    assert time.monotonic() - started < 1.5


# --- redirects -------------------------------------------------------------------------------------


def _chain(server: HTTPServer, hops: int) -> str:
    for i in range(hops):
        server.expect_request(f"/r{i}").respond_with_data("", status=302, headers={"Location": f"/r{i + 1}"})
    server.expect_request(f"/r{hops}").respond_with_data(b"arrived")
    return server.url_for("/r0")


def test_five_redirects_are_followed(server: HTTPServer) -> None:
    result = fetch(_chain(server, 5), settings=SETTINGS)
    assert isinstance(result, FetchedBody)
    assert result.body == b"arrived"
    assert result.url == server.url_for("/r5")


def test_six_redirects_fail(server: HTTPServer) -> None:
    with pytest.raises(FetchError, match=r"^fetch: more than 5 redirects from .*/r0$"):
        fetch(_chain(server, 6), settings=SETTINGS)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://10.0.0.1/feed", r"^fetch: address 10\.0\.0\.1 of 10\.0\.0\.1 is not allowed"),
        ("http://169.254.169.254/latest/meta-data/", r"^fetch: address 169\.254\.169\.254 of .* not allowed"),
        ("file:///etc/passwd", r"^fetch: .* redirects to unsupported URL file:///etc/passwd$"),
    ],
)
def test_redirect_targets_are_checked(server: HTTPServer, location: str, message: str) -> None:
    server.expect_request("/hop").respond_with_data("", status=301, headers={"Location": location})
    with pytest.raises(FetchError, match=message):
        fetch(server.url_for("/hop"), settings=SETTINGS)


# --- address policy --------------------------------------------------------------------------------

TEN = (ip_network("10.0.0.0/8"),)
V6_LOOPBACK = (ip_network("::1/128"),)


@pytest.mark.parametrize(
    ("address", "allow", "allowed"),
    [
        ("8.8.8.8", (), True),
        ("2606:4700:4700::1111", (), True),
        ("127.0.0.1", (), False),
        ("127.0.0.1", LOOPBACK, True),
        ("127.5.6.7", LOOPBACK, True),
        ("10.1.2.3", (), False),
        ("10.1.2.3", TEN, True),
        ("10.1.2.3", LOOPBACK, False),
        ("172.16.0.1", (), False),
        ("192.168.1.1", (), False),
        ("100.64.0.1", (), False),  # shared address space (carrier NAT)
        ("169.254.169.254", (), False),  # link-local: cloud metadata
        ("224.0.0.1", (), False),  # multicast
        ("240.0.0.1", (), False),  # reserved
        ("0.0.0.0", (), False),  # unspecified
        ("::1", (), False),
        ("::1", LOOPBACK, False),  # an IPv4 network does not cover IPv6 loopback
        ("::1", V6_LOOPBACK, True),
        ("::", (), False),
        ("fe80::1", (), False),
        ("fc00::1", (), False),
        ("ff02::1", (), False),
        ("::ffff:127.0.0.1", (), False),  # IPv4-mapped loopback
        ("::ffff:127.0.0.1", LOOPBACK, True),
        ("::ffff:8.8.8.8", (), True),
        # IPv6 forms that carry an IPv4 address are judged by it
        ("2002:7f00:1::", (), False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", (), False),  # 6to4 of 169.254.169.254
        ("2002:0a00:0001::", (), False),  # 6to4 of 10.0.0.1
        ("2002:0808:0808::", (), True),  # 6to4 of 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", (), False),  # Teredo, client 127.0.0.1
        ("64:ff9b::7f00:1", (), False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", (), False),  # NAT64 of the metadata address
        ("64:ff9b::808:808", (), True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::1", (), False),  # local-use NAT64
        ("::127.0.0.1", (), False),  # IPv4-compatible (deprecated)
        ("fec0::1", (), False),  # site-local (deprecated, still routed inside some sites)
        ("fec0::1", (ip_network("fec0::/10"),), True),
    ],
)
def test_address_policy(address: str, allow: tuple[IPv4Network | IPv6Network, ...], allowed: bool) -> None:
    assert address_allowed(ip_address(address), allow) is allowed


def test_loopback_refused_without_allow_networks(server: HTTPServer) -> None:
    server.expect_request("/feed").respond_with_data(b"secret")
    message = "fetch: address 127.0.0.1 of 127.0.0.1 is not allowed (fetch.allow_networks)"
    with pytest.raises(FetchError, match=f"^{re.escape(message)}$"):
        fetch(server.url_for("/feed"), settings=FetchSettings(timeout=1.0))
    assert not server.log  # refused before any connection


def test_check_host_names_the_host() -> None:
    with pytest.raises(FetchError, match=r"^fetch: address (127\.0\.0\.1|::1) of localhost is not allowed"):
        check_host("localhost", 80, ())
    check_host("localhost", 80, (*LOOPBACK, *V6_LOOPBACK))


# --- HTTP errors -----------------------------------------------------------------------------------


def test_404_names_the_status(server: HTTPServer) -> None:
    server.expect_request("/gone").respond_with_data("nope", status=404)
    with pytest.raises(
        FetchError, match=r"^fetch: HTTP 404 [A-Za-z ]+ from http://127\.0\.0\.1:\d+/gone$"
    ) as info:
        fetch(server.url_for("/gone"), settings=SETTINGS)
    assert not isinstance(info.value, RetryLater)


def test_500_is_a_plain_error(server: HTTPServer) -> None:
    server.expect_request("/boom").respond_with_data("", status=500)
    with pytest.raises(FetchError, match=r"^fetch: HTTP 500 ") as info:
        fetch(server.url_for("/boom"), settings=SETTINGS)
    assert not isinstance(info.value, RetryLater)


def test_429_with_retry_after_seconds(server: HTTPServer) -> None:
    server.expect_request("/busy").respond_with_data("", status=429, headers={"Retry-After": "120"})
    with pytest.raises(RetryLater, match=r"^fetch: HTTP 429 .*\(retry after 120 s\)$") as info:
        fetch(server.url_for("/busy"), settings=SETTINGS)
    assert info.value.retry_after == 120


def test_429_without_retry_after(server: HTTPServer) -> None:
    server.expect_request("/busy").respond_with_data("", status=429)
    with pytest.raises(RetryLater) as info:
        fetch(server.url_for("/busy"), settings=SETTINGS)
    assert info.value.retry_after is None


def test_503_with_retry_after_date(server: HTTPServer) -> None:
    server.expect_request("/down").respond_with_data(
        "", status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    with pytest.raises(RetryLater) as info:
        fetch(server.url_for("/down"), settings=SETTINGS)
    assert info.value.retry_after == 0  # a date in the past: come back now


def test_503_without_retry_after_is_a_plain_error(server: HTTPServer) -> None:
    server.expect_request("/down").respond_with_data("", status=503)
    with pytest.raises(FetchError) as info:
        fetch(server.url_for("/down"), settings=SETTINGS)
    assert not isinstance(info.value, RetryLater)


NOW = datetime(2024, 10, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("Wed, 02 Oct 2024 08:02:00 GMT", 120.0),
        ("Wed, 02 Oct 2024 07:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


ARXIV_ERROR = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>arXiv Query: search_query=&amp;id_list=abc</title>
  <entry>
    <id>http://arxiv.org/api/errors#incorrect_id_format_for_abc</id>
    <title>Error</title>
    <summary>incorrect id format for abc</summary>
  </entry>
</feed>
"""


def test_400_with_an_atom_error_body_carries_its_summary(server: HTTPServer) -> None:
    server.expect_request("/api/query").respond_with_data(ARXIV_ERROR, status=400)
    url = server.url_for("/api/query")
    with pytest.raises(
        FetchError, match=f"^{re.escape(f'fetch: HTTP 400 from {url}: incorrect id format for abc')}$"
    ):
        fetch(url, settings=SETTINGS)


def test_400_without_xml_is_a_plain_error(server: HTTPServer) -> None:
    server.expect_request("/q").respond_with_data("<<< not a summary", status=400)
    with pytest.raises(FetchError, match=r"^fetch: HTTP 400 [A-Za-z ]+ from "):
        fetch(server.url_for("/q"), settings=SETTINGS)


# --- transport errors ------------------------------------------------------------------------------


def test_dns_failure_is_a_clean_error() -> None:
    with pytest.raises(FetchError, match=r"^fetch: cannot reach no-such-host\.invalid: \S") as info:
        fetch("https://no-such-host.invalid/feed", settings=SETTINGS)
    assert "\n" not in str(info.value)


def test_refused_connection_is_a_clean_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match=r"^fetch: cannot reach 127\.0\.0\.1: .*refused"):
        fetch(f"http://127.0.0.1:{port}/feed", settings=SETTINGS)


# --- per-host pacing -------------------------------------------------------------------------------


def test_a_304_to_a_request_without_validators_is_an_error(server: HTTPServer) -> None:
    """Not modified since what? Taken as success it would keep a source healthy with no papers."""
    server.expect_request("/feed").respond_with_data("", status=304)
    with pytest.raises(FetchError, match=r"304 Not Modified .* no validators"):
        fetch(server.url_for("/feed"), settings=SETTINGS)


def test_410_says_the_feed_is_gone(server: HTTPServer) -> None:
    from aggregator.ingest.fetch import Gone

    server.expect_request("/old").respond_with_data("", status=410)
    with pytest.raises(Gone, match=r"(?i)HTTP 410 Gone .* fetching stopped until its URL changes"):
        fetch(server.url_for("/old"), settings=SETTINGS)


# --- one deadline, checked addresses -----------------------------------------------------------


def test_a_server_sending_one_header_a_second_fails_at_the_deadline() -> None:
    """httpx's read timeout is per read: a header line every 0.2 s never trips it. The deadline
    is enforced on every socket operation, so the whole exchange ends at the timeout."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def dribble() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=dribble, daemon=True)
    thread.start()
    settings = FetchSettings(timeout=1.0, allow_networks=LOOPBACK)
    began = time.monotonic()
    try:
        with pytest.raises(FetchError, match="timed out after 1 s"):
            fetch(f"http://127.0.0.1:{listener.getsockname()[1]}/feed", settings=settings)
        assert time.monotonic() - began < 2.0  # the deadline + 1 s at most
    finally:
        stop.set()
        listener.close()


def test_the_connection_goes_to_the_address_that_was_checked(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name that answers an allowed address first and a forbidden one next.
    The name is resolved once per connection, and the connection made to what was checked."""
    from aggregator.ingest import transport

    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    monkeypatch.setattr(transport, "_getaddrinfo", rebinding)
    server.expect_request("/feed").respond_with_data(b"<rss/>")
    url = server.url_for("/feed").replace("localhost", "rebind.test").replace("127.0.0.1", "rebind.test")
    result = fetch(url, settings=FetchSettings(allow_networks=LOOPBACK))
    assert isinstance(result, FetchedBody) and result.body == b"<rss/>"
    assert asked == ["rebind.test"]  # one lookup: no second answer to connect to
    assert server.log[-1][0].headers["Host"].startswith("rebind.test")  # the name, not the address


def test_a_name_with_any_forbidden_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from aggregator.ingest import transport

    monkeypatch.setattr(transport, "_getaddrinfo", lambda host, port: ["93.184.216.34", "169.254.169.254"])
    with pytest.raises(FetchError, match=r"address 169\.254\.169\.254 of mixed\.test is not allowed"):
        fetch("http://mixed.test/feed")


def test_a_lookup_that_never_answers_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    from aggregator.ingest import transport

    monkeypatch.setattr(transport, "_getaddrinfo", lambda host, port: time.sleep(5) or ["8.8.8.8"])
    began = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 0\.5 s"):
        fetch("http://slow-dns.test/feed", settings=FetchSettings(timeout=0.5))
    assert time.monotonic() - began < 1.5
