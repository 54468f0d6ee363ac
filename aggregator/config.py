"""Load and validate `config/aggregator.yaml` into frozen dataclasses.

PyYAML's safe loader reads the text, private pydantic models check it (unknown keys are errors),
and the rest of the program sees only `Config` and its parts. Every mistake is collected and
raised at once in one ConfigError, each as `place (line N): message`, for example
`sources[3].every (line 14): "6x" is not a duration (use s, m, h or d, e.g. 6h)`.
Topic queries are kept as strings here; the query module checks their syntax.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from aggregator.errors import ConfigError
from aggregator.text import SIZE_UNITS, format_size
from aggregator.topics.query import check_topics
from aggregator.types import SOURCE_KINDS, FetchSettings

DEFAULT_DATABASE = "sqlite:///var/aggregator.db"
DEFAULT_TITLE = "Paper Feeds"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")
DEFAULT_ANNOUNCE = ("new", "cross")
ENV_DATABASE, ENV_BASE_URL = "AGGREGATOR_DATABASE_URL", "AGGREGATOR_BASE_URL"

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(r"\s*".join(rf"(?:({_NUMBER}){unit})?" for unit in _UNITS))
_SIZE = re.compile(rf"({_NUMBER})\s*({'|'.join(SIZE_UNITS)})?")
_PLAIN = {"missing": "required", "extra_forbidden": "unknown key", "invalid_key": "keys must be strings"}
_TYPES = dict(string_type="a string", list_type="a list", dict_type="a mapping", model_type="a mapping")
_TYPES |= dict(float_type="a number", int_type="a whole number", bool_type="true or false")
_FETCH = FetchSettings()

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    url: str  # http(s) or an absolute file:/// URL
    kind: str | None  # None: detect from the body
    every: float  # seconds between fetches


@dataclass(frozen=True, slots=True)
class TopicConfig:
    slug: str
    title: str
    description: str
    query: str
    exclude: str | None
    sources: tuple[str, ...]  # empty: every source
    announce: tuple[str, ...]
    min_score: float


@dataclass(frozen=True, slots=True)
class SiteConfig:
    title: str
    base_url: str  # absolute http(s), no trailing slash
    hide_source_urls: bool = False  # /api/sources names sources without their URLs


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None
    database_url: str
    site: SiteConfig
    default_every: float
    fetch: FetchSettings
    sources: tuple[SourceConfig, ...]
    topics: tuple[TopicConfig, ...]

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)


def parse_duration(text: str | int | float) -> float:
    """Seconds in `30s`, `5m`, `6h`, `1d` or `1h30m`; a bare number counts seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool) and math.isfinite(text) and text >= 0:
        return float(text)
    if isinstance(text, str):
        if re.fullmatch(_NUMBER, text.strip()):
            return float(text)
        match = _DURATION.fullmatch(text.strip())
        if match and any(match.groups()):
            return sum(float(n) * f for n, f in zip(match.groups(), _UNITS.values(), strict=True) if n)
    raise ValueError(f"{_show(text)} is not a duration (use s, m, h or d, e.g. 6h)")


def parse_size(text: str | int) -> int:
    """Bytes in `2048`, `512KiB`, `10MiB`, `1GB` (KB, MB, GB count 1000s; KiB, MiB, GiB 1024s)."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{_show(text)} is not a size (use B, KB, MB, GB, KiB, MiB or GiB, e.g. 10MiB)")
    return int(Decimal(match[1]) * SIZE_UNITS[match[2] or "B"])


def format_duration(seconds: float) -> str:
    """The shortest text parse_duration reads back: 43200 -> `12h`, 5400 -> `1h30m`."""
    if seconds <= 0 or seconds != int(seconds):
        return f"{seconds:g}s"
    rest, parts = int(seconds), []
    for unit, factor in _UNITS.items():
        if rest >= factor:
            parts.append(f"{rest // factor}{unit}")
            rest %= factor
    return "".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return json.dumps(value, ensure_ascii=False, default=str)


def _check(ok: Callable[[Any], object], message: str) -> AfterValidator:
    """A validator refusing values where `ok` is false; `{}` in `message` shows the value."""

    def check(value: Any) -> Any:
        if not ok(value):
            raise ValueError(message.format(_show(value)))
        return value

    return AfterValidator(check)


def _filled(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _http_url(value: str, what: str = "an absolute http(s) URL") -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        hint = "; add https://" if "://" not in value and "." in value else ""
        raise ValueError(f"{_show(value)} is not {what}{hint}")
    return value


def _base_url(value: str) -> str:
    if urlsplit(_http_url(value)).query or "#" in value:
        raise ValueError(f"{_show(value)} must not have a query or fragment")
    return value.rstrip("/")


def _source_url(value: str) -> str:
    if not value.startswith("file:"):
        return _http_url(value, "an http(s) or file: URL")
    parts = urlsplit(value)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"{_show(value)} names host {parts.netloc!r}; write file:PATH for a local file")
    if not parts.path:
        raise ValueError(f"{_show(value)} names no file")
    return value


def _network(value: str) -> str:
    try:
        ip_network(value)
    except ValueError:
        try:
            hint = f"; did you mean {ip_network(value, strict=False)}?"
        except ValueError:
            hint = " (use CIDR notation, e.g. 127.0.0.0/8 or ::1/128)"
        raise ValueError(f"{_show(value)} is not a network{hint}") from None
    return value


def _database(value: str) -> str:
    """A database URL the product can open: SQLite (a file) or PostgreSQL, whose `postgres://`
    and `postgresql://` (what hosting services print) mean the psycopg driver."""
    url_text = re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", value)
    example = f"e.g. {DEFAULT_DATABASE} or postgresql://USER@HOST:5432/NAME"
    try:
        url = make_url(url_text)
    except (ArgumentError, ValueError):
        raise ValueError(f"{_show(value)} is not a database URL ({example})") from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"{_show(value)}: {backend} is not supported; use SQLite or PostgreSQL ({example})")
    if backend == "postgresql" and driver != "psycopg":
        raise ValueError(f"{_show(value)}: the driver is psycopg; write postgresql://...")
    if backend == "sqlite" and (url.host or url.port or url.username):
        raise ValueError(
            f"{_show(value)} names a host; SQLite is a file: sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    return url_text


_positive = _check(lambda value: value > 0, "must be more than 0")
# Bounds past which a setting is a mistake (and dates or counters would overflow).
MAX_EVERY, MAX_TIMEOUT, MAX_BYTES = 366 * 86400.0, 3600.0, 1 << 30
Duration = Annotated[float, BeforeValidator(parse_duration), _positive]


def _at_most(limit: float, what: str, show: Callable[[Any], str]) -> AfterValidator:
    def check(value: Any) -> Any:
        if value > limit:
            raise ValueError(f"{show(value)} is more than {what}")
        return value

    return AfterValidator(check)


Every = Annotated[Duration, _at_most(MAX_EVERY, "a year (366d)", format_duration)]
Timeout = Annotated[Duration, _at_most(MAX_TIMEOUT, "an hour", format_duration)]
Size = Annotated[int, BeforeValidator(parse_size), _positive]
Bytes = Annotated[Size, _at_most(MAX_BYTES, "1GiB", lambda n: f"{n:,} bytes")]
Text = Annotated[str, AfterValidator(_filled)]
Name = Annotated[
    str, _check(re.compile("[a-z0-9-]+").fullmatch, "{} is not a valid name (use a-z, 0-9 and -)")
]
Slug = Annotated[Name, _check(lambda slug: slug != "all", "{} is reserved for the feed of every paper")]
Kind = Annotated[
    str, _check(SOURCE_KINDS.__contains__, f"{{}} is not a source kind ({', '.join(SOURCE_KINDS)})")
]
Announce = Annotated[
    str, _check(ANNOUNCE_TYPES.__contains__, f"{{}} is not one of {', '.join(ANNOUNCE_TYPES)}")
]
TopicSources = Annotated[list[str], _check(bool, "empty list; leave the key out to use every source")]
Database = Annotated[str, AfterValidator(_database)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Source(_Model):
    name: Name
    url: Annotated[str, AfterValidator(_source_url)]
    kind: Kind | None = None
    every: Every | None = None


class _Topic(_Model):
    slug: Slug
    title: Text | None = None
    description: Annotated[str, AfterValidator(str.strip)] | None = None
    query: Text
    exclude: Annotated[str, AfterValidator(str.strip)] | None = None
    sources: TopicSources | None = None
    announce: list[Announce] | None = None
    min_score: Annotated[float, Field(ge=0)] | None = None


class _Site(_Model):
    title: Text = DEFAULT_TITLE
    base_url: Annotated[str, AfterValidator(_base_url)] = DEFAULT_BASE_URL
    hide_source_urls: bool = False


class _Defaults(_Model):
    every: Every = 6 * 3600.0


class _Fetch(_Model):
    timeout: Timeout = _FETCH.timeout
    max_bytes: Bytes = _FETCH.max_bytes
    allow_networks: list[Annotated[str, AfterValidator(_network)]] | None = None


class _Root(_Model):
    database: Database = DEFAULT_DATABASE
    site: _Site | None = None
    defaults: _Defaults | None = None
    fetch: _Fetch | None = None
    sources: list[_Source] | None = None
    topics: list[_Topic] | None = None


@dataclass(frozen=True, slots=True)
class _Problem:
    loc: Loc
    message: str
    line: int | None = None


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and check the config file; ConfigError lists every problem found."""
    file = Path(path).absolute()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"config file not found: {path}"], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read config file {path}: {exc}"], str(path)) from None
    return config_from_text(text, base_dir=file.parent, env=env, path=file)


def config_from_text(
    text: str, *, base_dir: Path, env: Mapping[str, str] | None = None, path: Path | None = None
) -> Config:
    """Check config text; relative file: URLs resolve against `base_dir`; env vars override."""
    where = str(path) if path else None
    try:
        node, data, problems = _parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], where) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(
            [f"top level: expected a mapping (database:, site:, sources:, ...), got {_show(data)}"], where
        )
    overrides = _apply_env(data, os.environ if env is None else env)
    try:
        root: _Root | None = _Root.model_validate(data)
    except ValidationError as exc:
        root = None
        problems += [_Problem(_loc(err), _plain(err)) for err in exc.errors()]
    problems += _cross_checks(data)
    if problems or root is None:
        problems.sort(key=lambda p: p.line or _line(node, p.loc) or 0)
        raise ConfigError([_describe(p, node, overrides) for p in problems], where)
    # A relative SQLite path in the file is the config folder's, like `file:` sources, so the
    # store does not move with the working directory; one from the environment is the shell's.
    database = sqlite_absolute(root.database, Path.cwd() if ("database",) in overrides else base_dir)
    return _build(root.model_copy(update={"database": database}), base_dir, path)


def sqlite_absolute(database_url: str, base_dir: Path) -> str:
    """The URL with a relative SQLite file made absolute against `base_dir`; others unchanged."""
    file = sqlite_file(database_url)
    if file is None or file.is_absolute():
        return database_url
    absolute = str((base_dir / file).resolve())
    return make_url(database_url).set(database=absolute).render_as_string(hide_password=False)


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


def local_file(url: str) -> Path | None:
    """The path of a `file:` source URL, None for any other."""
    return Path(unquote(urlsplit(url).path)) if url.startswith("file:") else None


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite store, None for any other."""
    url = make_url(database_url)
    file = url.database
    if url.get_backend_name() != "sqlite" or not file or file == ":memory:" or file.startswith("file:"):
        return None
    return Path(file)


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any, list[_Problem]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        problems = list(_duplicate_keys(node, (), set())) if node is not None else []
        return node, {} if node is None else loader.construct_document(node), problems
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return "YAML error: " + " ".join(str(exc).split())
    text = f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    if exc.context and exc.context_mark:
        text += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return text


def _duplicate_keys(node: yaml.Node, loc: Loc, seen_nodes: set[int]) -> Iterator[_Problem]:
    if id(node) in seen_nodes:
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, index), seen_nodes)
    elif isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            if name in keys and not key.tag.endswith(":merge"):
                yield _Problem((*loc, name), "key appears twice", key.start_mark.line + 1)
            keys.add(name)
            yield from _duplicate_keys(value, (*loc, name), seen_nodes)


def _apply_env(data: dict[Any, Any], env: Mapping[str, str]) -> dict[Loc, str]:
    overrides: dict[Loc, str] = {}
    if env.get(ENV_DATABASE):
        data["database"] = env[ENV_DATABASE]
        overrides[("database",)] = ENV_DATABASE
    site = data.get("site")
    if env.get(ENV_BASE_URL) and (site is None or isinstance(site, dict)):
        data["site"] = {**(site or {}), "base_url": env[ENV_BASE_URL]}
        overrides[("site", "base_url")] = ENV_BASE_URL
    return overrides


def _loc(err: Any) -> Loc:
    loc = tuple(err["loc"])
    return (*loc[:-1], str(loc[-1])) if err["type"] == "invalid_key" else loc  # the key is no index


def _plain(err: Any) -> str:
    kind = err["type"]
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind in _TYPES:
        return f"expected {_TYPES[kind]}, got {_show(err['input'])}"
    if kind == "greater_than_equal":
        return f"must be at least {err['ctx']['ge']:g}, got {_show(err['input'])}"
    return _PLAIN.get(kind) or str(err["msg"]).lower()


def _cross_checks(data: dict[Any, Any]) -> list[_Problem]:
    problems: list[_Problem] = []
    names = _unique(data.get("sources"), "sources", "name", problems)
    _unique(data.get("topics"), "topics", "slug", problems)
    for i, topic in enumerate(_items(data.get("topics"))):
        for j, name in enumerate(_items(topic.get("sources") if isinstance(topic, dict) else None)):
            if isinstance(name, str) and name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean {_show(close[0])}?)" if close else ""
                problems.append(_Problem(("topics", i, "sources", j), f"no source named {_show(name)}{hint}"))
    problems += _query_checks(data.get("topics"))
    return problems


def _query_checks(topics: Any) -> list[_Problem]:
    """Queries parse, refer only to existing topics, and never in a cycle."""
    items = [t if isinstance(t, dict) else {} for t in _items(topics)]
    given = [
        (str(t.get("slug", "")), t["query"], t.get("exclude") if isinstance(t.get("exclude"), str) else None)
        for t in items
        if isinstance(t.get("query"), str) and t["query"].strip()
    ]
    indexes = [i for i, t in enumerate(items) if isinstance(t.get("query"), str) and t["query"].strip()]
    return [_Problem(("topics", indexes[n], key), message) for n, key, message in check_topics(given)]


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _unique(items: Any, section: str, key: str, problems: list[_Problem]) -> set[str]:
    seen: set[str] = set()
    for i, item in enumerate(_items(items)):
        value = item.get(key) if isinstance(item, dict) else None
        if isinstance(value, str) and value in seen:
            problems.append(_Problem((section, i, key), f"{_show(value)} is used twice"))
        elif isinstance(value, str):
            seen.add(value)
    return seen


def _line(node: yaml.Node | None, loc: Loc) -> int | None:
    """The line of the deepest node on `loc` (1-based); the key's line for a mapping entry."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            entry = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if entry is None:
                break
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _describe(problem: _Problem, node: yaml.Node | None, overrides: dict[Loc, str]) -> str:
    place = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem.loc)
    place = place.lstrip(".") or "top level"
    if problem.loc in overrides:
        return f"{place} (from {overrides[problem.loc]}): {problem.message}"
    line = problem.line or _line(node, problem.loc)
    return f"{place} (line {line}): {problem.message}" if line else f"{place}: {problem.message}"


def _build(root: _Root, base_dir: Path, path: Path | None) -> Config:
    site, fetch = root.site or _Site(), root.fetch or _Fetch()
    every = (root.defaults or _Defaults()).every
    settings = FetchSettings(
        timeout=fetch.timeout,
        connect_timeout=min(_FETCH.connect_timeout, fetch.timeout),
        max_bytes=fetch.max_bytes,
        allow_networks=tuple(ip_network(n) for n in fetch.allow_networks or ()),
    )
    sources = tuple(
        SourceConfig(s.name, _resolve(s.url, base_dir), s.kind, s.every or every) for s in root.sources or ()
    )
    topics = tuple(_topic(t) for t in root.topics or ())
    return Config(
        path,
        root.database,
        SiteConfig(site.title, site.base_url, site.hide_source_urls),
        every,
        settings,
        sources,
        topics,
    )


def _topic(t: _Topic) -> TopicConfig:
    announce = DEFAULT_ANNOUNCE if t.announce is None else tuple(dict.fromkeys(t.announce))
    title, sources, score = t.title or t.slug, tuple(t.sources or ()), t.min_score or 0.0
    return TopicConfig(
        t.slug, title, t.description or "", t.query, t.exclude or None, sources, announce, score
    )


def _resolve(url: str, base_dir: Path) -> str:
    if not url.startswith("file:"):
        return url
    file = Path(unquote(urlsplit(url).path))
    return (file if file.is_absolute() else base_dir / file).resolve().as_uri()


def _mask(url: str) -> str:
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    if ":" not in userinfo:
        return url
    return parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}").geturl()


def explain(config: Config) -> str:
    """A human summary for `aggregator check-config`."""
    f, every = config.fetch, format_duration
    networks = ", ".join(map(str, f.allow_networks)) or "none beyond public addresses"
    lines = [
        f"config: {config.path or '(text)'}",
        f"database: {_mask(config.database_url)}",
        f"site: {config.site.title!r} at {config.site.base_url}",
        f"fetch: timeout {every(f.timeout)}, at most {format_size(f.max_bytes)}, networks: {networks}",
        f"sources ({len(config.sources)}, default every {every(config.default_every)}):",
        *(f"  {s.name}: {s.kind or 'auto'}, every {every(s.every)}, {s.url}" for s in config.sources),
        f"topics ({len(config.topics)}):",
    ]
    for t in config.topics:
        lines += [f"  {t.slug}: {t.title}", f"    query: {t.query}"]
        lines += [f"    exclude: {t.exclude}"] if t.exclude else []
        lines.append(
            f"    sources: {', '.join(t.sources) or 'all'}; announce: {', '.join(t.announce) or 'none'}"
            f"; min score {t.min_score:g}"
        )
    return "\n".join(lines)
