"""From YAML text to a `Config`: parse (a key written twice is an error, not a silent overwrite),
apply the environment's overrides, validate against `schema`, turn every problem into
`place (line N): message`, and build the frozen dataclasses with paths made absolute."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aggregator.config.locations import file_url_absolute, sqlite_absolute
from aggregator.config.model import Config, SiteConfig, SourceConfig, TopicConfig
from aggregator.config.schema import (
    FETCH_DEFAULTS,
    DefaultsSchema,
    FetchSchema,
    Loc,
    Problem,
    RootSchema,
    SiteSchema,
    TopicSchema,
    cross_checks,
)
from aggregator.config.values import show
from aggregator.errors import ConfigError
from aggregator.types import DEFAULT_ANNOUNCE, FetchSettings

ENV_DATABASE, ENV_BASE_URL = "AGGREGATOR_DATABASE_URL", "AGGREGATOR_BASE_URL"

# pydantic's messages in the words of the file rather than of Python.
_PLAIN = {"missing": "required", "extra_forbidden": "unknown key", "invalid_key": "keys must be strings"}
_TYPES = dict(string_type="a string", list_type="a list", dict_type="a mapping", model_type="a mapping")
_TYPES |= dict(float_type="a number", int_type="a whole number", bool_type="true or false")


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
            [f"top level: expected a mapping (database:, site:, sources:, ...), got {show(data)}"], where
        )
    overrides = _apply_env(data, os.environ if env is None else env)
    try:
        root: RootSchema | None = RootSchema.model_validate(data)
    except ValidationError as exc:
        root = None
        problems += [Problem(_loc(err), _plain(err)) for err in exc.errors()]
    problems += cross_checks(data)
    if problems or root is None:
        problems.sort(key=lambda p: p.line or _line(node, p.loc) or 0)
        raise ConfigError([_describe(p, node, overrides) for p in problems], where)
    # A relative SQLite path in the file is the config folder's, like `file:` sources, so the
    # store does not move with the working directory; one from the environment is the shell's.
    database = sqlite_absolute(root.database, Path.cwd() if ("database",) in overrides else base_dir)
    return _build(root.model_copy(update={"database": database}), base_dir, path)


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any, list[Problem]]:
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


def _duplicate_keys(node: yaml.Node, loc: Loc, seen_nodes: set[int]) -> Iterator[Problem]:
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
                yield Problem((*loc, name), "key appears twice", key.start_mark.line + 1)
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
        return f"expected {_TYPES[kind]}, got {show(err['input'])}"
    if kind == "greater_than_equal":
        return f"must be at least {err['ctx']['ge']:g}, got {show(err['input'])}"
    return _PLAIN.get(kind) or str(err["msg"]).lower()


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


def _describe(problem: Problem, node: yaml.Node | None, overrides: dict[Loc, str]) -> str:
    place = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem.loc)
    place = place.lstrip(".") or "top level"
    if problem.loc in overrides:
        return f"{place} (from {overrides[problem.loc]}): {problem.message}"
    line = problem.line or _line(node, problem.loc)
    return f"{place} (line {line}): {problem.message}" if line else f"{place}: {problem.message}"


def _build(root: RootSchema, base_dir: Path, path: Path | None) -> Config:
    site, fetch = root.site or SiteSchema(), root.fetch or FetchSchema()
    every = (root.defaults or DefaultsSchema()).every
    settings = FetchSettings(
        timeout=fetch.timeout,
        connect_timeout=min(FETCH_DEFAULTS.connect_timeout, fetch.timeout),
        max_bytes=fetch.max_bytes,
        allow_networks=tuple(ip_network(n) for n in fetch.allow_networks or ()),
        per_host_delay=fetch.per_host_delay,
        concurrency=fetch.concurrency,
    )
    sources = tuple(
        SourceConfig(s.name, file_url_absolute(s.url, base_dir), s.kind, s.every or every, s.per_host_delay)
        for s in root.sources or ()
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


def _topic(t: TopicSchema) -> TopicConfig:
    announce = DEFAULT_ANNOUNCE if t.announce is None else tuple(dict.fromkeys(t.announce))
    title, sources, score = t.title or t.slug, tuple(t.sources or ()), t.min_score or 0.0
    return TopicConfig(
        slug=t.slug,
        title=title,
        description=t.description or "",
        query=t.query,
        exclude=t.exclude or None,
        sources=sources,
        announce=announce,
        min_score=score,
    )
