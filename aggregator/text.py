"""Pure text functions every layer shares: folding for comparison keys, family names, safe web
URLs, XML-legal characters, sizes for messages.

At the bottom of the package beside `types`: it imports nothing of the package, so ingest,
topics, the store and the web can all use it without depending on each other.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

# Characters XML 1.0 cannot carry (C0 controls but tab/newline/return, DEL, non-characters, lone surrogates).
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


def xml_legal(text: str | None) -> str:
    """The text without the characters XML cannot carry."""
    if not text:
        return ""
    # No printable character is one of them (controls, surrogates and non-characters are all
    # unprintable), and isprintable() looks at a text several times faster than the regex does.
    return text if text.isprintable() else XML_ILLEGAL.sub("", text)


# --- folding ---------------------------------------------------------------------------------

_LATEX_ACCENT = re.compile(r"\\[`'^\"~=.uvHckr]\s*\{?([A-Za-z])\}?")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+\s*")
NOT_ALNUM = re.compile(r"[\W_]+")  # keeps letters of every script, drops punctuation and spaces
# The Unicode blocks of combining marks (what NFKD splits accents into).
_COMBINING_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold(text: str) -> str:
    """Lower case, accents and LaTeX accent commands removed: the basis of every comparison key."""
    if text.isascii() and "\\" not in text:
        return text.lower()
    if "\\" in text:
        text = _LATEX_COMMAND.sub("", _LATEX_ACCENT.sub(r"\1", text))
    return _COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", text)).lower()


# --- family names ----------------------------------------------------------------------------

_NAME_SUFFIXES = {"jr", "sr", "ii", "iii", "iv"}


def author_keys(authors: tuple[str, ...]) -> frozenset[str]:
    """The family names of an author list, as dedupe compares them (only when titles match)."""
    return frozenset(k for k in map(surname_key, authors) if k)


def surname_key(name: str) -> str:
    """The folded family name: 'Schöffel, Maximilian', 'M. Schöffel' and 'Maximilian Schoffel' agree."""
    if name.isascii() and "," not in name and "\\" not in name:  # the common case, without the regexes
        words = name.lower().split()
        while len(words) > 1 and words[-1].strip(".") in _NAME_SUFFIXES:
            words.pop()
        last = "".join(c for c in words[-1] if c.isalnum()) if words else ""
        if last:
            return last
    family = name.split(",", 1)[0] if "," in name else name
    words = [w for w in NOT_ALNUM.split(fold(family)) if w]
    if "," not in name:
        while len(words) > 1 and words[-1] in _NAME_SUFFIXES:
            words.pop()
    return words[-1] if words else ""


# --- links -----------------------------------------------------------------------------------

_URL_BREAKERS = re.compile(r"[\x00-\x20\x7f<>\"\\`]")


def web_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL; anything else (javascript:, data:, tag:, a
    relative path) is no link a reader should be sent to."""
    if not url:
        return None
    url = url.strip().replace(" ", "%20")
    if _URL_BREAKERS.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


# --- sizes -----------------------------------------------------------------------------------

SIZE_UNITS = dict(B=1, KB=10**3, kB=10**3, MB=10**6, GB=10**9, KiB=1024, MiB=1024**2, GiB=1024**3)


def format_size(size: int) -> str:
    """Bytes for a message, in the largest binary unit that divides them: '10 MiB', '1000 bytes'."""
    unit = next((unit for unit in ("GiB", "MiB", "KiB") if size and size % SIZE_UNITS[unit] == 0), None)
    return f"{size // SIZE_UNITS[unit]} {unit}" if unit else f"{size} bytes"
