"""LaTeX in titles, names and abstracts as Unicode text, read by pylatexenc: accents become
letters (`Erd\\H{o}s` -> Erdős), symbols and math readable text (`$z \\sim 0.3$` -> z ∼ 0.3,
``quotes'' -> “quotes”). Pure; text without LaTeX is returned as it came, cheaply.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from pylatexenc import latexwalker
from pylatexenc.latex2text import LatexNodes2Text, get_default_latex_context_db

# Something LaTeX would read differently from plain text: a command, an accent, a math
# segment, TeX quotes, a group opened before a command.
_LATEX = re.compile(r"\\[A-Za-z`'^\"~=.&%#_$]|\$[^$\s][^$]*\$|``|\{\\")
_MATH = re.compile(r"(\$[^$]+\$)")
# Metadata often glues a one-letter text command to the letters after it ("Przemys\law",
# "Kad\ioğlu", "Holb\aek"): LaTeX would read one unknown command and drop it.
_COMMAND_RUN = re.compile(r"\\([A-Za-z]+)")
_TEXT_SYMBOLS = ("ss", "ae", "AE", "oe", "OE", "aa", "AA", "l", "L", "o", "O", "i", "j")
# Characters LaTeX treats as markup that titles use as text ("Vision & Language", "50% of").
_SPECIALS = re.compile(r"(?<!\\)([&%#])")
# LaTeX swallows the space after a command word; metadata means it ("Pawe\l Niedbalski").
_COMMAND_SPACE = re.compile(r"(\\[A-Za-z]+)(?=\s)")
# What a browser would read as the start of markup.
_MARKUP = re.compile(r"<[A-Za-z/!?]")
# A segment this long is left as written: the parser's time is bounded, whatever a source sends.
MAX_SEGMENT = 4_000

_MACROS = get_default_latex_context_db()
# pylatexenc logs a warning for each macro it cannot expand; the text keeps the macro instead,
# and one warning per abstract would bury the ingest summary.
logging.getLogger("pylatexenc").setLevel(logging.ERROR)
_TO_TEXT = LatexNodes2Text(math_mode="text", strict_latex_spaces=False)
# What the parser knows of each macro's arguments. Made once: a walker given none builds the whole
# default set again (an eighth of normalising the arXiv listing); parsing only reads it.
_PARSING = latexwalker.get_default_latex_context_db()


def latex_to_text(text: str, *, math: bool = True) -> str:
    """A title or a name with its LaTeX read as text; `math=False` leaves `$...$` segments as
    written (a blog's "$5 or $10" is money, not math)."""
    if "\\" not in text and "$" not in text and "``" not in text:
        return text
    if not _LATEX.search(text):
        return text
    parts = _MATH.split(text) if not math else [text]
    return "".join(
        part if (not math and n % 2) or not _LATEX.search(part) else _convert(part)
        for n, part in enumerate(parts)
    )


# In prose, the LaTeX outside math is a few short pieces: an accented letter, a command and its
# braces, a group, TeX quotes, an escaped character.
_PROSE_PIECE = re.compile(
    r"\{\\[^{}$]*\}"
    r"|\\[`'^\"~=.](?:\{[^{}$]*\}|[A-Za-z])"
    r"|\\[A-Za-z]+\*?(?:\{[^{}$]*\})*"
    r"|\\[&%#_$]"
    r"|``|''"
)


def latex_in_prose(text: str) -> str:
    """An abstract with the LaTeX of its prose read as text, piece by piece (a whole abstract
    through the parser cost milliseconds), and its math left as written, readable as it is."""
    if "\\" not in text and "``" not in text:
        return text
    parts = _MATH.split(text)
    return "".join(
        part if n % 2 else _PROSE_PIECE.sub(lambda m: _convert(m[0]).strip() or m[0], part)
        for n, part in enumerate(parts)
    )


@lru_cache(maxsize=4096)  # names and titles recur across sources and fetches
def _convert(segment: str) -> str:
    if len(segment) > MAX_SEGMENT:
        return segment
    prepared = _COMMAND_SPACE.sub(r"\1{}", _SPECIALS.sub(r"\\\1", _COMMAND_RUN.sub(_unglue, segment)))
    try:
        # Strict: the tolerant parser backtracks exponentially on unclosed arguments
        # ("\\cite[" sixteen times took 8 s); strict fails at once, and the text stays as written.
        converted = _TO_TEXT.latex_to_text(prepared, latex_context=_PARSING, tolerant_parsing=False)
    except Exception:  # pylatexenc raises on malformed input; the text as written is better than none
        return segment
    words = " ".join(converted.split())
    if _MARKUP.search(words):
        return segment  # `$<$img ...$>$` must not become the markup it spells out
    if not words or (not any(c.isalnum() for c in words) and any(c.isalnum() for c in segment)):
        return segment  # an environment or a command that prints nothing: keep what was written
    # The segment's own edges: it may sit between two math segments left as written.
    lead, trail = segment[: len(segment) - len(segment.lstrip())], segment[len(segment.rstrip()) :]
    return f"{' ' if lead else ''}{words}{' ' if trail else ''}"


def _unglue(match: re.Match[str]) -> str:
    """`\\law` -> `\\l{}aw` when `\\law` is no command but `\\l` is."""
    name = match[1]
    if _MACROS.get_macro_spec(name) is not None:
        return match[0]
    for symbol in _TEXT_SYMBOLS:
        if name.startswith(symbol) and len(name) > len(symbol):
            return f"\\{symbol}{{}}{name[len(symbol) :]}"
    return match[0]
