"""A paper as topic matching sees it: its text folded (case, accents) and cut into atoms, runs
of letters and digits plus `x:y` with one letter or digit on each side (`n:m`, `2:4`). Hyphens
and spaces both separate atoms, so a phrase or a hyphenated term (`"semi-structured"`, `GPT-4o`)
matches the words in order whether the text hyphenates them or not, and a word matches a part
of a hyphenated compound. The full-text index cuts text the same way (index_query.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from aggregator.records import PaperText
from aggregator.text import fold

# ASCII punctuation, spaces and "_" separate atoms.
_ASCII_SEPARATORS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum() and c != "\x01"})
_X_COLON_Y = re.compile(r"(?<![a-z0-9])[a-z0-9]:[a-z0-9](?![a-z0-9])")
# An atom: a run of letters and digits, or an "x:y" pair (N:M sparsity). preview.highlight finds
# them in titles with it.
ATOM = re.compile(r"[^\W_]:[^\W_](?![^\W_])|[^\W_]+")


def atoms(text: str) -> list[str]:
    """The folded atoms of a text: 'LLM-based N:M Sparsity' -> ['llm', 'based', 'n:m', 'sparsity']."""
    folded = fold(text)
    if not folded.isascii():
        return ATOM.findall(folded)
    if not _has_x_colon_y(folded):
        return folded.translate(_ASCII_SEPARATORS).split()  # the same atoms, at C speed
    # x:y atoms keep their colon (as \x01: neither a separator nor space); other colons separate
    protected = _X_COLON_Y.sub(lambda m: m[0].replace(":", "\x01"), folded)
    words = protected.translate(_ASCII_SEPARATORS).split()
    return [w.replace("\x01", ":") for w in words] if "\x01" in protected else words


def atom_text(text: str) -> str:
    """The atoms of a text separated by runs of spaces: what `atoms` would split, left unsplit
    (for the full-text index, whose tokenizer splits on spaces at C speed)."""
    folded = fold(text)
    if folded.isascii() and not _has_x_colon_y(folded):
        return folded.translate(_ASCII_SEPARATORS)
    return " ".join(atoms(text))


def _has_x_colon_y(text: str) -> bool:
    """Whether some colon has a letter or digit right on each side (cheaper than the regex:
    most colons in prose are followed by a space)."""
    at = text.find(":")
    while at != -1:
        if 0 < at < len(text) - 1 and text[at - 1].isalnum() and text[at + 1].isalnum():
            return _X_COLON_Y.search(text) is not None
        at = text.find(":", at + 1)
    return False


def padded(words: Iterable[str]) -> str:
    """Atoms joined by single spaces with a space at each end: the text the automaton scans."""
    return " " + " ".join(words) + " "


class Document:
    """A paper as matching sees it: each text field as padded atoms, and its facets.

    The authors' text is made only when a query looks at authors; "|" keeps authors apart so
    that no phrase spans two of them.
    """

    __slots__ = (
        "_author",
        "abstract",
        "announce_types",
        "authors",
        "categories",
        "ids",
        "only_listings",
        "sources",
        "title",
    )

    def __init__(
        self,
        title: str,
        abstract: str,
        authors: tuple[str, ...] = (),
        categories: frozenset[str] = frozenset(),
        sources: frozenset[str] = frozenset(),
        ids: frozenset[str] = frozenset(),
        announce_types: frozenset[str] = frozenset(),
        only_listings: bool = False,  # every sighting is an arXiv listing entry: `announce` applies
    ) -> None:
        self.title = title  # padded atoms
        self.abstract = abstract
        self.authors = authors
        self._author: str | None = None
        self.categories = categories
        self.sources = sources
        self.ids = ids
        self.announce_types = announce_types
        self.only_listings = only_listings

    @classmethod
    def build(
        cls,
        *,
        title: str,
        abstract: str = "",
        authors: Sequence[str] = (),
        categories: Iterable[str] = (),
        sources: Iterable[str] = (),
        ids: Iterable[str] = (),
        announce_types: Iterable[str] = (),
        only_listings: bool = False,
    ) -> Document:
        return cls(
            padded(atoms(title)),
            padded(atoms(abstract)),
            tuple(authors),
            categories=frozenset(c.lower() for c in categories),
            sources=frozenset(s.lower() for s in sources),
            ids=frozenset(i.lower() for i in ids),
            announce_types=frozenset(announce_types),
            only_listings=only_listings,
        )

    @classmethod
    def of(cls, paper: PaperText) -> Document:
        """The document of a paper as the store describes it, made once per PaperText."""
        made = paper._document
        if isinstance(made, Document):
            return made
        document = cls.build(
            title=paper.title,
            abstract=paper.abstract,
            authors=paper.authors,
            categories=paper.categories,
            sources=paper.sources,
            ids=paper.ids,
            announce_types=paper.announce_types,
            only_listings=paper.only_listings,
        )
        object.__setattr__(paper, "_document", document)  # a cache on a frozen value, made once
        return document

    def text(self, name: str) -> str:
        if name == "title":
            return self.title
        if name == "abstract":
            return self.abstract
        if self._author is None:
            self._author = padded(w for author in self.authors for w in (*atoms(author), "|"))
        return self._author

    def facet(self, name: str) -> frozenset[str]:
        return self.categories if name == "category" else self.sources if name == "source" else self.ids
