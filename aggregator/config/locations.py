"""Where the config's files and stores are: SQLite files and `file:` sources relative to the
config folder (so that nothing moves with the working directory), and the base URL `serve`
actually answers at."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import make_url

from aggregator.config.model import Config

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite store, None for any other."""
    url = make_url(database_url)
    file = url.database
    if url.get_backend_name() != "sqlite" or not file or file == ":memory:" or file.startswith("file:"):
        return None
    return Path(file)


def sqlite_absolute(database_url: str, base_dir: Path) -> str:
    """The URL with a relative SQLite file made absolute against `base_dir`; others unchanged."""
    file = sqlite_file(database_url)
    if file is None or file.is_absolute():
        return database_url
    absolute = str((base_dir / file).resolve())
    return make_url(database_url).set(database=absolute).render_as_string(hide_password=False)


def local_file(url: str) -> Path | None:
    """The path of a `file:` source URL, None for any other."""
    return Path(unquote(urlsplit(url).path)) if url.startswith("file:") else None


def file_url_absolute(url: str, base_dir: Path) -> str:
    """A `file:` source URL as an absolute file:/// URL, a relative path taken against `base_dir`;
    other URLs unchanged."""
    file = local_file(url)
    if file is None:
        return url
    return (file if file.is_absolute() else base_dir / file).resolve().as_uri()


def served_config(config: Config, host: str, port: int) -> Config:
    """The config as `serve --host --port` runs it: a base URL on this machine (the default, a
    local try-out) follows the port actually served, so that OPML and subscribe links work; a
    public base URL (behind a proxy) is left alone."""
    parts = urlsplit(config.site.base_url)
    if parts.hostname not in _LOOPBACK or port == 0 or parts.port == port:
        return config
    name = parts.hostname if host in ("0.0.0.0", "::", "") else host
    netloc = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    return replace(config, site=replace(config.site, base_url=f"{parts.scheme}://{netloc}{parts.path}"))
