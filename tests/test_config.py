"""Config loading: typed values, defaults, env overrides, and every mistake reported with its place."""

from __future__ import annotations

import textwrap
from ipaddress import ip_network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import (
    Config,
    SiteConfig,
    SourceConfig,
    TopicConfig,
    config_from_text,
    explain,
    format_duration,
    load_config,
    parse_duration,
    parse_size,
    served_config,
)
from aggregator.errors import ConfigError
from aggregator.runtime import topic_specs
from aggregator.types import FetchSettings, TopicSpec

BASE = Path("/srv/feeds/config")

FULL = """\
database: postgresql+psycopg://feeds:s3cret@db.example.org:5432/feeds
site:
  title: Lab Papers
  base_url: https://papers.example.org/lab/
defaults:
  every: 3h
fetch:
  timeout: 45s
  max_bytes: 2MiB
  allow_networks: [127.0.0.0/8, "::1/128"]
sources:
  - name: arxiv-cs-cl
    url: https://rss.arxiv.org/rss/cs.CL
    every: 12h
  - name: hf-daily
    url: https://huggingface.co/api/daily_papers
    kind: hf-daily-papers
  - name: sample-arxiv
    url: file:samples/arxiv-cs.xml
    every: 1h30m
topics:
  - slug: llm-pruning
    title: LLM pruning
    description: Pruning and sparsity for large language models
    query: (prun* OR sparsity) AND (LLM* OR "language model*")
    exclude: vision OR image
    sources: [arxiv-cs-cl, hf-daily]
    announce: [new, cross, replace]
    min_score: 2
  - slug: efficient-llms
    query: topic:llm-pruning OR quantiz*
"""


def load(text: str, env: dict[str, str] | None = None) -> Config:
    return config_from_text(textwrap.dedent(text), base_dir=BASE, env=env or {})


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text, env)
    return caught.value.problems


def one_problem(text: str, env: dict[str, str] | None = None) -> str:
    found = problems(text, env)
    assert len(found) == 1, found
    return found[0]


# --- valid configs ------------------------------------------------------------------------------


def test_full_config_round_trips_to_typed_objects() -> None:
    config = load(FULL)
    assert config.database_url == "postgresql+psycopg://feeds:s3cret@db.example.org:5432/feeds"
    assert config.site == SiteConfig(title="Lab Papers", base_url="https://papers.example.org/lab")
    assert config.default_every == 3 * 3600
    assert config.fetch == FetchSettings(
        timeout=45.0,
        connect_timeout=10.0,
        max_bytes=2 * 1024 * 1024,
        allow_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128")),
    )
    assert config.sources == (
        SourceConfig("arxiv-cs-cl", "https://rss.arxiv.org/rss/cs.CL", None, 12 * 3600.0),
        SourceConfig("hf-daily", "https://huggingface.co/api/daily_papers", "hf-daily-papers", 3 * 3600.0),
        SourceConfig("sample-arxiv", (BASE / "samples/arxiv-cs.xml").as_uri(), None, 5400.0),
    )
    assert config.topics == (
        TopicConfig(
            slug="llm-pruning",
            title="LLM pruning",
            description="Pruning and sparsity for large language models",
            query='(prun* OR sparsity) AND (LLM* OR "language model*")',
            exclude="vision OR image",
            sources=("arxiv-cs-cl", "hf-daily"),
            announce=("new", "cross", "replace"),
            min_score=2.0,
        ),
        TopicConfig(
            slug="efficient-llms",
            title="efficient-llms",
            description="",
            query="topic:llm-pruning OR quantiz*",
            exclude=None,
            sources=(),
            announce=("new", "cross"),
            min_score=0.0,
        ),
    )
    assert config.source("hf-daily").kind == "hf-daily-papers"
    with pytest.raises(KeyError):
        config.source("nope")


def test_a_configured_topic_is_what_the_tagger_reads() -> None:
    # One definition of a topic: the tagger is handed the configured topics themselves.
    config = load(FULL)
    assert all(isinstance(topic, TopicSpec) for topic in config.topics)
    assert topic_specs(config) == list(config.topics)


@pytest.mark.parametrize(
    "text", ["", "# only a comment\n", "sources: []\ntopics: []\n", "sources:\ntopics:\n"]
)
def test_empty_config_takes_every_default(text: str) -> None:
    config = load(text)
    assert config.database_url == f"sqlite:///{BASE / 'var/aggregator.db'}"
    assert config.site == SiteConfig("Paper Feeds", "http://127.0.0.1:8000")
    assert config.default_every == 6 * 3600
    assert config.fetch == FetchSettings()
    assert (config.sources, config.topics) == ((), ())


def test_empty_sections_take_defaults() -> None:
    config = load("site:\ndefaults:\nfetch:\n")
    assert config.site == SiteConfig("Paper Feeds", "http://127.0.0.1:8000")
    assert config.fetch.max_bytes == 10 * 1024 * 1024


def test_source_every_falls_back_to_defaults() -> None:
    config = load("defaults: {every: 2d}\nsources: [{name: a, url: 'https://a.example/feed'}]\n")
    assert config.source("a").every == 2 * 86400


def test_fetch_spacing_and_pool_are_read() -> None:
    config = load(
        "fetch: {concurrency: 16, per_host_delay: 0}\n"
        "sources: [{name: a, url: 'https://x.org/f', per_host_delay: 5s}, {name: b, url: 'https://y.org/f'}]"
    )
    assert (config.fetch.concurrency, config.fetch.per_host_delay) == (16, 0.0)
    assert [s.per_host_delay for s in config.sources] == [5.0, None]


def test_short_timeout_lowers_connect_timeout() -> None:
    assert load("fetch: {timeout: 5s}").fetch.connect_timeout == 5.0


@pytest.mark.parametrize(
    ("env", "database", "base_url"),
    [
        ({}, None, "https://a.example"),
        ({"AGGREGATOR_DATABASE_URL": "postgresql+psycopg://u@h/db"}, "postgresql+psycopg://u@h/db", None),
        ({"AGGREGATOR_BASE_URL": "https://feeds.example.org/"}, None, "https://feeds.example.org"),
        ({"AGGREGATOR_DATABASE_URL": "", "AGGREGATOR_BASE_URL": ""}, None, None),  # empty: unset
    ],
)
def test_env_overrides_win(env: dict[str, str], database: str | None, base_url: str | None) -> None:
    config = load("database: sqlite:///var/x.db\nsite: {base_url: 'https://a.example'}\n", env)
    assert config.database_url == (database or f"sqlite:///{BASE / 'var/x.db'}")
    assert config.site.base_url == (base_url or "https://a.example")


def test_env_base_url_applies_without_site_section() -> None:
    assert load("", {"AGGREGATOR_BASE_URL": "http://h:9000"}).site.base_url == "http://h:9000"


def test_bad_env_value_is_blamed_on_the_variable() -> None:
    message = one_problem("", {"AGGREGATOR_BASE_URL": "feeds.example.org"})
    assert message.startswith("site.base_url (from AGGREGATOR_BASE_URL): ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:samples/arxiv.xml", (BASE / "samples/arxiv.xml").as_uri()),
        ("file:../data/x.xml", Path("/srv/feeds/data/x.xml").as_uri()),
        ("file:/abs/feed.xml", "file:///abs/feed.xml"),
        ("file:///abs/feed.xml", "file:///abs/feed.xml"),
        ("file:samples/with%20space.xml", (BASE / "samples/with space.xml").as_uri()),
        ("https://example.org/feed?x=1", "https://example.org/feed?x=1"),
    ],
)
def test_source_urls_resolve_against_the_config_folder(url: str, expected: str) -> None:
    assert load(f"sources: [{{name: s, url: '{url}'}}]").source("s").url == expected


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("database: sqlite:///var/x.db\n", {}, "{config}/var/x.db"),
        ("database: sqlite:///../papers.db\n", {}, "{parent}/papers.db"),
        ("", {}, "{config}/var/aggregator.db"),  # the default store is the config's too
        ("database: sqlite:////abs/x.db\n", {}, "/abs/x.db"),
        ("database: sqlite:///var/x.db\n", {"AGGREGATOR_DATABASE_URL": "sqlite:///env.db"}, "{cwd}/env.db"),
    ],
)
def test_a_relative_sqlite_store_is_the_config_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: dict[str, str], expected: str
) -> None:
    """Not the working directory's: `--config /elsewhere/aggregator.yaml` reads the same store from
    anywhere (from the environment, a relative path is the shell's, made absolute at once)."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "work").mkdir()
    path = tmp_path / "conf" / "aggregator.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path / "work")
    config = load_config(path, env=env)
    folders = {"config": tmp_path / "conf", "parent": tmp_path, "cwd": tmp_path / "work"}
    assert config.database_url == "sqlite:///" + expected.format(**{k: str(v) for k, v in folders.items()})


def test_other_databases_are_left_as_written() -> None:
    url = "postgresql+psycopg://u:secret@db.example:5432/papers"
    assert load(f"database: {url}\n").database_url == url
    assert load("database: 'sqlite:///:memory:'\n").database_url == "sqlite:///:memory:"


def test_load_config_reads_a_file_and_resolves_against_its_folder(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "aggregator.yaml"
    path.write_text("sources:\n  - name: local\n    url: file:samples/a.xml\n", encoding="utf-8")
    config = load_config(path, env={})
    assert config.path == path
    assert config.source("local").url == (tmp_path / "conf" / "samples" / "a.xml").as_uri()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml", env={})
    assert caught.value.problems == [f"config file not found: {tmp_path / 'nope.yaml'}"]


def test_explain_masks_the_password_and_lists_everything() -> None:
    text = explain(load(FULL))
    assert "s3cret" not in text
    assert "postgresql+psycopg://feeds:***@db.example.org:5432/feeds" in text
    assert "https://papers.example.org/lab" in text
    assert "arxiv-cs-cl: auto, every 12h" in text
    assert "hf-daily: hf-daily-papers, every 3h" in text
    assert "sample-arxiv: auto, every 1h30m" in text
    assert 'query: (prun* OR sparsity) AND (LLM* OR "language model*")' in text
    assert "exclude: vision OR image" in text


# --- mistakes -----------------------------------------------------------------------------------

SOURCES = """\
sources:
  - name: arxiv-cs-cl
    url: https://rss.arxiv.org/rss/cs.CL
  - name: arxiv-cs-cl
    url: https://rss.arxiv.org/rss/cs.LG
  - name: no-url
  - name: bad-every
    url: https://example.org/feed
    every: 6x
topics:
  - slug: t
    query: x
    colour: red
  - slug: u
    query: y
    sources: [hf-dialy]
"""


def test_every_problem_is_reported_at_once_in_document_order() -> None:
    assert problems(SOURCES) == [
        'sources[1].name (line 4): "arxiv-cs-cl" is used twice',
        "sources[2].url (line 6): required",
        'sources[3].every (line 9): "6x" is not a duration (use s, m, h or d, e.g. 6h)',
        "topics[0].colour (line 13): unknown key",
        'topics[1].sources[0] (line 16): no source named "hf-dialy"',
    ]


def test_the_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.yaml"
    path.write_text("sources: 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}: invalid config:\n  sources (line 1): expected a list")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour: red", "colour (line 1): unknown key"),
        ("site: {title: x, logo: y}", "site.logo (line 1): unknown key"),
        ("defaults: {every: 1h, jitter: 5m}", "defaults.jitter (line 1): unknown key"),
        ("fetch: {retries: 3}", "fetch.retries (line 1): unknown key"),
        (
            "sources:\n  - name: a\n    url: https://a.example\n    tags: [x]",
            "sources[0].tags (line 4): unknown key",
        ),
        ("topics:\n  - slug: a\n    query: x\n    colour: red", "topics[0].colour (line 4): unknown key"),
    ],
)
def test_unknown_keys_at_every_level(text: str, expected: str) -> None:
    assert one_problem(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # top level and sections
        ("- a\n- b", "top level: expected a mapping (database:, site:, sources:, ...), got a list"),
        ("sources: {name: a}", "sources (line 1): expected a list, got a mapping"),
        ("site: [a]", "site (line 1): expected a mapping, got a list"),
        ("site: {title: 5}", "site.title (line 1): expected a string, got 5"),
        ("site: {title: ' '}", "site.title (line 1): must not be empty"),
        (
            "database: foo.db",
            'database (line 1): "foo.db" is not a database URL (e.g. sqlite:///var/aggregator.db or '
            "postgresql://USER@HOST:5432/NAME)",
        ),
        (
            "database: 'mysql://u@db.example.org/feeds'",
            'database (line 1): "mysql://u@db.example.org/feeds": mysql is not supported; use SQLite or '
            "PostgreSQL (e.g. sqlite:///var/aggregator.db or postgresql://USER@HOST:5432/NAME)",
        ),
        (
            "database: 'sqlite://:::'",
            'database (line 1): "sqlite://:::" is not a database URL (e.g. sqlite:///var/aggregator.db or '
            "postgresql://USER@HOST:5432/NAME)",
        ),
        (
            "database: 'sqlite://host/feeds.db'",
            'database (line 1): "sqlite://host/feeds.db" names a host; SQLite is a file: '
            "sqlite:///relative/path.db or sqlite:////absolute/path.db",
        ),
        (
            "database: 'postgresql+psycopg2://u@h/f'",
            'database (line 1): "postgresql+psycopg2://u@h/f": the driver is psycopg; write postgresql://...',
        ),
        (
            "sources: [{name: a, url: 'file:a.xml', every: 400d}]",
            "sources[0].every (line 1): 400d is more than a year (366d)",
        ),
        ("fetch: {timeout: 2h}", "fetch.timeout (line 1): 2h is more than an hour"),
        ("fetch: {max_bytes: 2GiB}", "fetch.max_bytes (line 1): 2,147,483,648 bytes is more than 1GiB"),
        ("site: {base_url: /feeds}", 'site.base_url (line 1): "/feeds" is not an absolute http(s) URL'),
        (
            "site: {base_url: feeds.example.org}",
            'site.base_url (line 1): "feeds.example.org" is not an absolute http(s) URL; add https://',
        ),
        (
            "site: {base_url: 'ftp://x.org'}",
            'site.base_url (line 1): "ftp://x.org" is not an absolute http(s) URL',
        ),
        (
            "site: {base_url: 'http://x.org/?a=1'}",
            'site.base_url (line 1): "http://x.org/?a=1" must not have a query or fragment',
        ),
        ("defaults: {every: 0s}", "defaults.every (line 1): must be more than 0"),
        (
            "defaults: {every: true}",
            "defaults.every (line 1): true is not a duration (use s, m, h or d, e.g. 6h)",
        ),
        (
            "fetch: {timeout: soon}",
            'fetch.timeout (line 1): "soon" is not a duration (use s, m, h or d, e.g. 6h)',
        ),
        (
            "fetch: {max_bytes: 10 MB!}",
            'fetch.max_bytes (line 1): "10 MB!" is not a size'
            " (use B, KB, MB, GB, KiB, MiB or GiB, e.g. 10MiB)",
        ),
        ("fetch: {max_bytes: 0}", "fetch.max_bytes (line 1): must be more than 0"),
        ("fetch: {concurrency: 0}", "fetch.concurrency (line 1): 0 sources at once: use 1 to 64"),
        ("fetch: {concurrency: 65}", "fetch.concurrency (line 1): 65 sources at once: use 1 to 64"),
        ("fetch: {concurrency: lots}", 'fetch.concurrency (line 1): expected a whole number, got "lots"'),
        ("fetch: {per_host_delay: 2h}", "fetch.per_host_delay (line 1): 2h is more than an hour"),
        (
            "fetch: {per_host_delay: -1s}",
            'fetch.per_host_delay (line 1): "-1s" is not a duration (use s, m, h or d, e.g. 6h)',
        ),
        (
            "sources: [{name: a, url: 'file:a.xml', per_host_delay: soon}]",
            'sources[0].per_host_delay (line 1): "soon" is not a duration (use s, m, h or d, e.g. 6h)',
        ),
        # sources
        ("sources: [{url: 'https://a.example'}]", "sources[0].name (line 1): required"),
        (
            "sources: [{name: Arxiv_CL, url: 'https://a.example'}]",
            'sources[0].name (line 1): "Arxiv_CL" is not a valid name (use a-z, 0-9 and -)',
        ),
        (
            "sources: [{name: 2024, url: 'https://a.example'}]",
            "sources[0].name (line 1): expected a string, got 2024",
        ),
        (
            "sources: [{name: a, url: 'gopher://a.example'}]",
            'sources[0].url (line 1): "gopher://a.example" is not an http(s) or file: URL',
        ),
        (
            "sources: [{name: a, url: 'https://'}]",
            'sources[0].url (line 1): "https://" is not an http(s) or file: URL',
        ),
        ("sources: [{name: a, url: 'file:'}]", 'sources[0].url (line 1): "file:" names no file'),
        (
            "sources: [{name: a, url: 'file://samples/a.xml'}]",
            "sources[0].url (line 1): \"file://samples/a.xml\" names host 'samples';"
            " write file:PATH for a local file",
        ),
        (
            "sources: [{name: a, url: 'https://a.example', kind: atom2}]",
            'sources[0].kind (line 1): "atom2" is not a source kind'
            " (rss, atom, rdf, json-feed, arxiv-api, arxiv-rss, arxiv-rdf, hf-daily-papers, hf-papers-rss)",
        ),
        (
            "sources: [{name: a, url: 'https://a.example', every: -5}]",
            "sources[0].every (line 1): -5 is not a duration (use s, m, h or d, e.g. 6h)",
        ),
        ("sources: [5]", "sources[0] (line 1): expected a mapping, got 5"),
        # topics
        (
            "topics: [{slug: all, query: x}]",
            'topics[0].slug (line 1): "all" is reserved for the feed of every paper',
        ),
        (
            "topics: [{slug: LLM, query: x}]",
            'topics[0].slug (line 1): "LLM" is not a valid name (use a-z, 0-9 and -)',
        ),
        ("topics: [{slug: a}]", "topics[0].query (line 1): required"),
        ("topics: [{slug: a, query: ''}]", "topics[0].query (line 1): must not be empty"),
        ("topics: [{slug: a, query: [x]}]", "topics[0].query (line 1): expected a string, got a list"),
        (
            "topics: [{slug: a, query: x, sources: []}]",
            "topics[0].sources (line 1): empty list; leave the key out to use every source",
        ),
        ("topics: [{slug: a, query: x, sources: x}]", 'topics[0].sources (line 1): expected a list, got "x"'),
        (
            "topics: [{slug: a, query: x, announce: [new, old]}]",
            'topics[0].announce[1] (line 1): "old" is not one of new, cross, replace, replace-cross',
        ),
        (
            "topics: [{slug: a, query: x, min_score: -1}]",
            "topics[0].min_score (line 1): must be at least 0, got -1",
        ),
        (
            "topics: [{slug: a, query: x, min_score: high}]",
            'topics[0].min_score (line 1): expected a number, got "high"',
        ),
        # YAML itself
        ("site:\n  title: a\n  title: b", "site.title (line 3): key appears twice"),
    ],
)
def test_single_mistakes(text: str, expected: str) -> None:
    assert one_problem(text) == expected


def test_multi_line_places_point_at_the_key() -> None:
    text = """\
        sources:
          - name: a
            url: https://a.example

          - name: b
            url: https://b.example
            every: 6x
        """
    assert one_problem(text).startswith("sources[1].every (line 7): ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "topics:\n  - {slug: a, query: x}\n  - {slug: a, query: y}\n",
            'topics[1].slug (line 3): "a" is used twice',
        ),
        (
            "sources:\n  - {name: a, url: 'https://a.example'}\n  - {name: a, url: 'https://b.example'}\n",
            'sources[1].name (line 3): "a" is used twice',
        ),
        (
            "sources: [{name: hf-daily, url: 'https://h.example'}]\n"
            "topics: [{slug: t, query: x, sources: [hf-dialy]}]",
            'topics[0].sources[0] (line 2): no source named "hf-dialy" (did you mean "hf-daily"?)',
        ),
        (
            "topics: [{slug: t, query: x, sources: [zzz]}]",
            'topics[0].sources[0] (line 1): no source named "zzz"',
        ),
    ],
)
def test_duplicates_and_unknown_sources(text: str, expected: str) -> None:
    assert one_problem(text) == expected


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("10.0.0.300/8", '"10.0.0.300/8" is not a network (use CIDR notation, e.g. 127.0.0.0/8 or ::1/128)'),
        ("localhost", '"localhost" is not a network (use CIDR notation, e.g. 127.0.0.0/8 or ::1/128)'),
        ("10.1.2.3/8", '"10.1.2.3/8" is not a network; did you mean 10.0.0.0/8?'),
    ],
)
def test_bad_cidr_is_reported_with_its_index(cidr: str, expected: str) -> None:
    text = f"fetch:\n  allow_networks:\n    - 127.0.0.0/8\n    - '{cidr}'\n"
    assert one_problem(text) == f"fetch.allow_networks[1] (line 4): {expected}"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("sources:\n  - name: a\n    url: x: y\n", 3),
        ("topics:\n  - slug: a\n    query: (x\n  bad\n", 5),  # PyYAML notices at the next line
        ('site:\n  title: "unclosed\n', 3),
        ("site:\n\ttitle: a\n", 2),
    ],
)
def test_yaml_syntax_error_reports_its_line(text: str, line: int) -> None:
    message = one_problem(text)
    assert message.startswith(f"YAML syntax error at line {line}, column "), message


def test_unsafe_yaml_tags_are_refused() -> None:
    assert "YAML" in one_problem("site: !!python/object/apply:os.system ['true']\n")


def test_yaml_merge_keys_are_not_duplicates() -> None:
    text = "x-base: &base {url: 'https://a.example', every: 1h}\n"
    assert one_problem(text) == "x-base (line 1): unknown key"
    config = load("sources:\n  - &a {name: a, url: 'https://a.example', every: 1h}\n  - {<<: *a, name: b}\n")
    assert config.source("b").every == 3600


# --- durations and sizes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("6h", 21600),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1d 2h 3m 4s", 93784),
        ("1.5h", 5400),
        ("90", 90),
        (" 12h ", 43200),
        (45, 45),
        (2.5, 2.5),
        (0, 0),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "6x", "h", "6 hours", "1m1h", "1h1h", "500ms", "-5m", "6H", -1, True, float("inf")]
)
def test_parse_duration_refuses(text: str | int | float) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2048", 2048),
        (2048, 2048),
        ("512KiB", 512 * 1024),
        ("10MiB", 10 * 1024 * 1024),
        ("1GiB", 1024**3),
        ("1GB", 10**9),
        ("5 KB", 5000),
        ("1.5MiB", 1572864),
        ("100B", 100),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "10XB", "10 mib", "-1", -1, True, "1e6"])
def test_parse_size_refuses(text: str | int) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(UNITS)))
def test_duration_with_one_unit_is_n_times_its_factor(n: int, unit: str) -> None:
    assert parse_duration(f"{n}{unit}") == n * UNITS[unit]


@given(
    st.lists(st.integers(min_value=0, max_value=999), min_size=4, max_size=4),
    st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_compound_durations_add_up(counts: list[int], keep: list[bool]) -> None:
    parts = [(n, u) for n, u, k in zip(counts, "dhms", keep, strict=True) if k]
    if not parts:
        return
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_duration(text) == sum(n * UNITS[u] for n, u in parts)


@given(st.integers(min_value=1, max_value=10**8))
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_an_absurd_duration_is_a_placed_error_not_an_overflow() -> None:
    found = one_problem("defaults: {every: 99999999999999999999d}")
    assert found.startswith("defaults.every (line 1): ") and found.endswith("is more than a year (366d)")


@pytest.mark.parametrize(
    "url", ["postgres://feeds@db.example.org/feeds", "postgresql://feeds@db.example.org/feeds"]
)
def test_postgres_urls_as_hosting_services_print_them_mean_psycopg(url: str) -> None:
    assert load(f"database: '{url}'").database_url == "postgresql+psycopg://feeds@db.example.org/feeds"
    assert load("", {"AGGREGATOR_DATABASE_URL": url}).database_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(
    ("base_url", "host", "port", "expected"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1", 18100, "http://127.0.0.1:18100"),
        ("http://localhost:8000/feeds", "0.0.0.0", 9000, "http://localhost:9000/feeds"),
        ("http://127.0.0.1:8000", "127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("https://papers.example.org", "127.0.0.1", 18100, "https://papers.example.org"),  # a proxy's
    ],
)
def test_serving_on_another_port_moves_local_links_with_it(
    base_url: str, host: str, port: int, expected: str
) -> None:
    config = load(f"site: {{base_url: '{base_url}'}}\n")
    assert served_config(config, host, port).site.base_url == expected
