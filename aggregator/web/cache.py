"""Rendered responses kept per worker until the store changes; the store's version is looked at
no more than once every few seconds, so an unchanged feed costs neither a query nor a render."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    content_type: str
    etag: str  # strong, quoted
    last_modified: datetime
    version: int


class VersionWatch:
    """The store's version, re-read at most every `interval` seconds."""

    def __init__(
        self,
        read: Callable[[], tuple[int, datetime]],
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read, self._interval, self._clock = read, interval, clock
        self._value: tuple[int, datetime] = (-1, datetime.min)
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> tuple[int, datetime]:
        """(version, when the store last changed)."""
        now = self._clock()
        if now - self._checked >= self._interval:
            with self._lock:
                if now - self._checked >= self._interval:
                    self._value = self._read()
                    self._checked = now
        return self._value


class ResponseCache:
    """A map from request (path and query) to its rendered response, bounded in entries and in
    bytes (anyone can vary `offset` or `q`; a 500-entry feed is a couple of megabytes)."""

    def __init__(self, size: int = 512, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._items: OrderedDict[str, Rendered] = OrderedDict()
        self._size, self._max_bytes, self._bytes = size, max_bytes, 0
        self._lock = threading.Lock()

    def get(self, key: str, version: int) -> Rendered | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found.version != version:
                return None
            self._items.move_to_end(key)
            return found

    def put(self, key: str, rendered: Rendered) -> None:
        if len(rendered.body) > self._max_bytes // 4:
            return  # one response may not push out everything else
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._items[key] = rendered
            self._bytes += len(rendered.body)
            while len(self._items) > self._size or self._bytes > self._max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= len(evicted.body)
