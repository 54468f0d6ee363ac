"""The config's own value syntax: durations (`6h`, `1h30m`) and sizes (`10MiB`) read and written
back, and how a value is quoted in an error message."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from aggregator.text import SIZE_UNITS

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(r"\s*".join(rf"(?:({_NUMBER}){unit})?" for unit in _UNITS))
_SIZE = re.compile(rf"({_NUMBER})\s*({'|'.join(SIZE_UNITS)})?")


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
    raise ValueError(f"{show(text)} is not a duration (use s, m, h or d, e.g. 6h)")


def parse_size(text: str | int) -> int:
    """Bytes in `2048`, `512KiB`, `10MiB`, `1GB` (KB, MB, GB count 1000s; KiB, MiB, GiB 1024s)."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{show(text)} is not a size (use B, KB, MB, GB, KiB, MiB or GiB, e.g. 10MiB)")
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


def show(value: Any) -> str:
    """A value as a message quotes it: JSON for a scalar, so that `"6x"` and `6` read apart; a
    whole mapping or list only named, since it may run to many lines."""
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return json.dumps(value, ensure_ascii=False, default=str)
