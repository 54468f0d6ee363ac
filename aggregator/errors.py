"""One exception hierarchy; each message starts with the stage that raised it."""

from __future__ import annotations


class AggregatorError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(AggregatorError):
    """The config file is invalid; `problems` lists every mistake with its place."""

    def __init__(self, problems: list[str], path: str | None = None) -> None:
        self.problems = problems
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "invalid config:\n  " + "\n  ".join(problems))


class SourceError(AggregatorError):
    """A source could not be read; recorded on the source, never fatal to the others."""


class FetchError(SourceError):
    """fetch: the transport failed (DNS, refused, timeout, HTTP error, too large, blocked address)."""


class ParseError(SourceError):
    """parse: the body is not a feed we understand, or it is a service's error document."""


class StoreError(AggregatorError):
    """store: the database could not be reached or migrated."""


class Unavailable(AggregatorError):
    """The store cannot answer this request now (a 503)."""


class BudgetExceeded(Unavailable):
    """A query that would take longer than a request may: the reader is asked to narrow it."""


class SearchesBusy(Unavailable):
    """Every search turn of this process stayed taken while the request waited: try again soon."""


class LeaseLost(AggregatorError):
    """store: another worker took over the source being recorded; this worker's work is void."""


class WriteConflict(StoreError):
    """store: two writers met over the same papers (PostgreSQL); the batch may be tried again."""
