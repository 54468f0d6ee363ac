"""Fetch one source's bytes over HTTP(S) or from a local file: the only module that does HTTP.

It sends conditional GETs over httpcore, follows redirects by hand, connects only to addresses it
checked (transport.py: private ones refused unless the config allows them; one deadline for the
whole exchange, redirects included, enforced on every socket operation), caps the size counted
after decompression, and turns every failure into a FetchError whose message starts with
"fetch: ". How often a host may be asked is the pipeline's business (schedule.py, with the store).

It must not parse feeds (beyond pulling the message out of an arXiv error document), touch the
store, or decide when a source is due.
"""

from __future__ import annotations

import html
import mimetypes
import re
import ssl
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

from aggregator.errors import FetchError
from aggregator.ingest.addresses import Network, address_allowed
from aggregator.ingest.transport import GuardedBackend, RefusedAddress
from aggregator.text import format_size
from aggregator.types import FetchedBody, FetchSettings, NotModified

_DEFAULT_SETTINGS = FetchSettings()
_INFLATE_STEP = 64 * 1024  # the most bytes one decompression step may produce
_ERROR_BODY_LIMIT = 64 * 1024  # how much of an error body is read for its message
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SUMMARY = re.compile(r"<summary[^>]*>(.*?)</summary>", re.S | re.I)
_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")
_DIGITS = re.compile(r"[0-9]{1,15}")
_TLS = ssl.create_default_context()  # certificates verified against the host named in the URL


@dataclass(frozen=True, slots=True)
class _Hop:
    """One request of a fetch: its URL, and the limits and deadline shared by every hop."""

    url: str
    settings: FetchSettings
    deadline: float  # time.monotonic() value

    def timed_out(self) -> FetchError:
        return FetchError(f"fetch: timed out after {self.settings.timeout:g} s fetching {self.url}")

    def too_large(self) -> FetchError:
        return FetchError(
            f"fetch: response larger than {format_size(self.settings.max_bytes)} from {self.url}"
        )


class RetryLater(FetchError):
    """The server asked us to come back later: 429, or 503 with Retry-After."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds, None when absent or unparseable


class Gone(FetchError):
    """The server says the feed is gone for good (410): fetching it again is pointless."""


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    settings: FetchSettings = _DEFAULT_SETTINGS,
) -> FetchedBody | NotModified:
    """Fetch `url`; NotModified when the validators still hold. Raises FetchError or RetryLater."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return _read_file(url, settings.max_bytes)
    if scheme not in ("http", "https"):
        raise FetchError(f"fetch: unsupported URL scheme {scheme!r} in {url} (use http, https or file)")
    headers = _request_headers(etag, last_modified, settings)
    deadline = time.monotonic() + settings.timeout
    backend = GuardedBackend(deadline, lambda address: address_allowed(address, settings.allow_networks))
    with httpcore.ConnectionPool(ssl_context=_TLS, network_backend=backend, max_connections=1) as pool:
        result = _follow(pool, url, headers, _Hop(url, settings, deadline))
    if isinstance(result, NotModified):
        if not (etag or last_modified):  # "not modified" since what? Taken as success, it would
            # keep the source healthy forever without a single paper.
            raise FetchError(f"fetch: HTTP 304 Not Modified from {url}, to a request with no validators")
        # 304s may omit the validators; their freshness is their own
        return NotModified(result.etag or etag, result.last_modified or last_modified, result.fresh_for)
    return result


def _request_headers(etag: str | None, last_modified: str | None, settings: FetchSettings) -> dict[str, str]:
    # Only encodings _inflate undoes in bounded steps (no br or zstd, even if installed).
    headers = {"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _follow(
    pool: httpcore.ConnectionPool, url: str, headers: dict[str, str], hop: _Hop
) -> FetchedBody | NotModified:
    """GET url, following up to max_redirects redirects, each target checked; all within one deadline."""
    for _ in range(hop.settings.max_redirects + 1):
        with _transport_errors(hop), _open(pool, hop, headers) as response:
            location = _redirect_target(response, hop.url)
            if location is None:
                return _outcome(response, hop)
        hop = replace(hop, url=location)
    raise FetchError(f"fetch: more than {hop.settings.max_redirects} redirects from {url}")


@dataclass(frozen=True, slots=True)
class _Response:
    """What fetching reads of an HTTP response: status, headers, and the body as it arrives."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    iter_raw: Callable[[], Iterator[bytes]]


@contextmanager
def _open(pool: httpcore.ConnectionPool, hop: _Hop, headers: dict[str, str]) -> Iterator[_Response]:
    left = hop.deadline - time.monotonic()
    if left <= 0:
        raise hop.timed_out()
    try:
        target = httpx.URL(hop.url)
        url = httpcore.URL(
            scheme=target.raw_scheme, host=target.raw_host, port=target.port, target=target.raw_path
        )
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise FetchError(f"fetch: invalid URL {hop.url}: {exc}") from exc
    if not target.raw_host:
        raise FetchError(f"fetch: URL without a host: {hop.url}")
    timeouts = {"connect": min(hop.settings.connect_timeout, left), "read": left, "write": left, "pool": left}
    with pool.stream("GET", url, headers=list(headers.items()), extensions={"timeout": timeouts}) as response:
        reason = response.extensions.get("reason_phrase", b"")
        yield _Response(
            response.status,
            reason.decode("ascii", "replace") if isinstance(reason, bytes) else str(reason),
            httpx.Headers(response.headers),
            response.iter_stream,
        )


def _redirect_target(response: _Response, url: str) -> str | None:
    location = response.headers.get("location")
    if response.status_code not in _REDIRECTS or not location:
        return None
    target = str(httpx.URL(url).join(location))
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        raise FetchError(f"fetch: {url} redirects to unsupported URL {location}")
    return target


def _outcome(response: _Response, hop: _Hop) -> FetchedBody | NotModified:
    headers = response.headers
    if response.status_code == 304:
        return NotModified(headers.get("etag"), headers.get("last-modified"), fresh_for(headers))
    if not 200 <= response.status_code < 300:
        _raise_http_error(response, hop)
    length = headers.get("content-length", "")
    if (
        not _encoding(headers)
        and length.isascii()
        and length.isdigit()
        and int(length) > hop.settings.max_bytes
    ):
        raise hop.too_large()
    return FetchedBody(
        body=_read_body(response, hop),
        url=hop.url,
        content_type=headers.get("content-type"),
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
        fresh_for=fresh_for(headers),
    )


def fresh_for(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds the server says this response stays fresh: Cache-Control max-age, else Expires
    less the server's Date; None when it says nothing (or no-cache, no-store)."""
    directives = [d.strip().lower() for d in headers.get("cache-control", "").split(",")]
    if "no-cache" in directives or "no-store" in directives:
        return None
    for directive in directives:
        name, _, value = directive.partition("=")
        seconds = value.strip().strip('"')
        if name.strip() == "max-age" and _DIGITS.fullmatch(seconds):  # not str.isdigit: "²" is a digit
            return float(seconds) or None
    expires = _http_date(headers.get("expires"))
    if expires is None:
        return None
    served = _http_date(headers.get("date")) or now or datetime.now(UTC)
    seconds = (expires - served).total_seconds()
    return seconds if seconds > 0 else None


def _http_date(value: str | None) -> datetime | None:
    try:
        when = parsedate_to_datetime(value or "")
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _raise_http_error(response: _Response, hop: _Hop) -> NoReturn:
    status, url = response.status_code, hop.url
    label = f"HTTP {status} {response.reason_phrase}".rstrip()
    retry_after = response.headers.get("retry-after")
    if status == 429 or (status == 503 and retry_after is not None):
        seconds = parse_retry_after(retry_after)
        hint = f" (retry after {seconds:g} s)" if seconds is not None else ""
        raise RetryLater(f"fetch: {label} from {url}{hint}", seconds)
    if status == 410:
        raise Gone(f"fetch: {label} from {url}: the feed is gone; fetching stopped until its URL changes")
    if status == 400:  # the arXiv API explains a bad query in an Atom document
        summary = _error_summary(_read_prefix(response, hop))
        if summary:
            raise FetchError(f"fetch: HTTP 400 from {url}: {summary}")
    raise FetchError(f"fetch: {label} from {url}")


def _error_summary(body: bytes) -> str | None:
    text = body.decode("utf-8", "replace").lstrip()
    match = _SUMMARY.search(text) if text.startswith("<") else None
    if match is None:
        return None
    return " ".join(html.unescape(match.group(1)).split()) or None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay in seconds or HTTP date); None if unparseable."""
    value = (value or "").strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --- the body: decompressed in bounded steps, capped, within the deadline --------------------------


def _read_body(response: _Response, hop: _Hop) -> bytes:
    body = bytearray()
    for chunk in _decoded_chunks(response, hop):
        body += chunk
        if len(body) > hop.settings.max_bytes:
            raise hop.too_large()
    return bytes(body)


def _read_prefix(response: _Response, hop: _Hop) -> bytes:
    """Up to _ERROR_BODY_LIMIT bytes of an error body; whatever was read if reading fails."""
    body = bytearray()
    try:
        for chunk in _decoded_chunks(response, hop):
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    except (FetchError, httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError, zlib.error):
        pass
    return bytes(body[:_ERROR_BODY_LIMIT])


def _decoded_chunks(response: _Response, hop: _Hop) -> Iterator[bytes]:
    """The body after Content-Encoding, in pieces of at most _INFLATE_STEP bytes, within the deadline."""
    encoding = _encoding(response.headers)
    if encoding not in ("", "gzip", "x-gzip", "deflate"):
        raise FetchError(f"fetch: unsupported Content-Encoding {encoding!r} from {hop.url}")
    raw = _raw_chunks(response, hop)
    return _inflate(raw) if encoding else raw


def _raw_chunks(response: _Response, hop: _Hop) -> Iterator[bytes]:
    for chunk in response.iter_raw():
        if time.monotonic() > hop.deadline:
            raise hop.timed_out()
        yield chunk


def _inflate(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Undo gzip or (zlib-wrapped) deflate a bounded step at a time, so a bomb never expands whole.

    httpx's own decoders inflate each network read in one call (20 KB of zeros -> 20 MB at once).
    """
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # 32: gzip or zlib header, detected
    for data in chunks:
        piece = inflater.decompress(data, _INFLATE_STEP)
        yield piece
        while inflater.unconsumed_tail or len(piece) == _INFLATE_STEP:
            piece = inflater.decompress(inflater.unconsumed_tail, _INFLATE_STEP)
            yield piece
    yield inflater.flush()


def _encoding(headers: httpx.Headers) -> str:
    encoding = headers.get("content-encoding", "").strip().lower()
    return "" if encoding == "identity" else encoding


# --- addresses -----------------------------------------------------------------------------------


def check_host(host: str, port: int, allow_networks: tuple[Network, ...]) -> None:
    """Resolve host; refuse it if any of its addresses is not public and not in allow_networks
    (what every connection does, in transport.py, to the addresses it then connects to)."""
    backend = GuardedBackend(time.monotonic() + 30, lambda address: address_allowed(address, allow_networks))
    try:
        backend.addresses(host, port)
    except RefusedAddress as exc:
        raise FetchError(f"fetch: {exc}") from exc
    except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
        raise FetchError(f"fetch: cannot reach {host}: {exc}") from exc


# --- errors, files -------------------------------------------------------------------------------


@contextmanager
def _transport_errors(hop: _Hop) -> Iterator[None]:
    """Turn httpx and zlib exceptions into one-line FetchErrors."""
    url = hop.url
    try:
        yield
    except RefusedAddress as exc:
        raise FetchError(f"fetch: {exc}") from exc
    except httpcore.TimeoutException as exc:
        raise hop.timed_out() from exc
    except (httpcore.ConnectError, httpcore.ProxyError) as exc:
        host = urlsplit(url).hostname
        raise FetchError(f"fetch: cannot reach {host}: {exc or type(exc).__name__}") from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        raise FetchError(f"fetch: transfer from {url} failed: {exc or type(exc).__name__}") from exc
    except zlib.error as exc:
        raise FetchError(f"fetch: bad compressed body from {url}: {exc}") from exc


def _read_file(url: str, max_bytes: int) -> FetchedBody:
    parts = urlsplit(url)
    path = Path(unquote(parts.path))
    if parts.netloc not in ("", "localhost") or not path.is_absolute():
        raise FetchError(f"fetch: file URL must be absolute (file:///path): {url}")
    try:
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise FetchError(f"fetch: no such file: {path}") from exc
    except OSError as exc:
        raise FetchError(f"fetch: cannot read {path}: {exc.strerror or exc}") from exc
    if len(body) > max_bytes:
        raise FetchError(f"fetch: file {path} is larger than {format_size(max_bytes)}")
    return FetchedBody(body=body, url=url, content_type=mimetypes.guess_type(path.name)[0])
