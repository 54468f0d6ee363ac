"""The network under one fetch: every connection goes to an address that was checked, and every
step of the exchange ends by the fetch's deadline.

A hostname is resolved once per connection, here; every address it resolves to must be allowed
(public, or inside fetch.allow_networks), and the connection is made to one of those very
addresses, so a name that answers a public address to the check and a private one to the
connect (DNS rebinding) reaches nothing. TLS still names and verifies the original host (httpcore
passes it to the handshake). The deadline is enforced below the HTTP client, on each socket
operation: a read waits at most the time left, so a server that sends one header line a second
fails at the deadline like one that sends nothing; the name lookup, which has no timeout of its
own, runs in a thread that is waited for no longer than that.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import typing
from collections.abc import Callable, Iterable

import httpcore

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(httpcore.ConnectError):
    """A name resolved to an address fetching may not reach."""


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, reached only through checked addresses, within one deadline."""

    def __init__(
        self,
        deadline: float,
        allowed: Callable[[Address], bool],
        resolve: Callable[[str, int], list[str]] | None = None,
    ) -> None:
        self.deadline = deadline  # time.monotonic() value
        self._allowed = allowed
        self._resolve = resolve or _getaddrinfo
        self._sockets = httpcore.SyncBackend()

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the fetch's deadline has passed")
        return left

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.addresses(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                stream = self._sockets.connect_tcp(
                    address, port, _within(timeout, self.left()), local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # the next address may answer
                last = exc
                continue
            return _DeadlineStream(stream, self)
        raise last or httpcore.ConnectError(f"no address for {host}")

    def addresses(self, host: str, port: int) -> list[str]:
        """The host's addresses, each one allowed; RefusedAddress if any is not."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            found = _in_time(lambda: self._resolve(host, port), self.left(), host)
        else:
            found = [str(literal)]
        for text in found:
            address = ipaddress.ip_address(text.split("%")[0])
            if not self._allowed(address):
                raise RefusedAddress(f"address {address} of {host} is not allowed (fetch.allow_networks)")
        return found

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[typing.Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("fetching never uses a Unix socket")

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, self.left()))


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read and write waits at most until the deadline."""

    def __init__(self, stream: httpcore.NetworkStream, backend: GuardedBackend) -> None:
        self._stream, self._backend = stream, backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within(timeout, self._backend.left()))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within(timeout, self._backend.left()))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        secured = self._stream.start_tls(ssl_context, server_hostname, _within(timeout, self._backend.left()))
        return _DeadlineStream(secured, self._backend)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


def _within(timeout: float | None, left: float) -> float:
    return left if timeout is None else min(timeout, left)


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _in_time(resolve: Callable[[], list[str]], left: float, host: str) -> list[str]:
    """resolve() in a daemon thread, waited for at most `left` seconds (getaddrinfo cannot be
    interrupted; a lookup that outlives the fetch ends on its own, its answer unused)."""
    answer: list[list[str]] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            answer.append(resolve())
        except BaseException as exc:  # handed to the fetch's thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(left)
    if failure:
        raise httpcore.ConnectError(f"cannot resolve {host}: {failure[0]}")
    if not answer:
        raise httpcore.ConnectTimeout(f"resolving {host} took longer than the fetch's deadline")
    return answer[0]
