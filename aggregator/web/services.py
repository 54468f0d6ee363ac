"""What a request handler may use, kept on the app: the config and the store."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from aggregator.config import Config
from aggregator.store.repository import Store


@dataclass(frozen=True, slots=True)
class Services:
    config: Config
    store: Store


def services() -> Services:
    found: Services = current_app.extensions["aggregator"]
    return found
