"""Load and validate `config/aggregator.yaml` into frozen dataclasses.

PyYAML's safe loader reads the text, private pydantic models check it (unknown keys are errors),
and the rest of the program sees only `Config` and its parts. Every mistake is collected and
raised at once in one ConfigError, each as `place (line N): message`, for example
`sources[3].every (line 14): "6x" is not a duration (use s, m, h or d, e.g. 6h)`.
Topic queries are kept as strings here; the query module checks their syntax.

One job per module: `model` (the dataclasses the program reads), `values` (durations and
sizes), `schema` (what the file may say), `loading` (text to `Config`, problems to messages),
`locations` (files and stores relative to the config folder) and `explain` (`check-config`).
This module is the package's interface: callers import from `aggregator.config` only.
"""

from aggregator.config.explain import explain
from aggregator.config.loading import config_from_text, load_config
from aggregator.config.locations import local_file, served_config, sqlite_absolute, sqlite_file
from aggregator.config.model import Config, SiteConfig, SourceConfig, TopicConfig
from aggregator.config.values import format_duration, parse_duration, parse_size
from aggregator.types import DEFAULT_ANNOUNCE

__all__ = [
    "DEFAULT_ANNOUNCE",
    "Config",
    "SiteConfig",
    "SourceConfig",
    "TopicConfig",
    "config_from_text",
    "explain",
    "format_duration",
    "load_config",
    "local_file",
    "parse_duration",
    "parse_size",
    "served_config",
    "sqlite_absolute",
    "sqlite_file",
]
