"""A query as a full-text index can answer it, and what a paper puts into that index. Pure.

The index holds, for each paper, the atoms the matcher scans (title, abstract, authors) and its
facets (categories, sources, ids) as one token each. `narrow(tree)` turns a query into an
IndexQuery whose matches include every paper the exact matcher accepts, usually few more; the
store asks the index for those candidates and confirms and scores each one with the matcher,
so what a reader gets is the matcher's answer alone, found without reading every paper.

Superset rules: a term becomes its atoms, in order, in the same field; NOT becomes "anything"
(the index is not exact, so it cannot exclude); `topic:slug` becomes that topic's query; a term
the index would answer too slowly or not at all (a short prefix, an atom longer than MAX_ATOM,
no atoms) becomes "anything". `None` stands for "anything": no narrowing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aggregator.records import PaperText
from aggregator.topics.document import Document, atom_text, atoms
from aggregator.topics.query import And, Node, Not, Or, Term, TopicRef, parse_query

MAX_ATOM = 200  # longer atoms are cut in the index: PostgreSQL refuses lexemes over 2 kB
MIN_PREFIX = 2  # `a*` names a good part of the vocabulary: scanning papers is cheaper
FACET_KINDS = {"category": "c", "source": "s", "id": "i"}
# Carried by a paper no ad-hoc query can match: seen only in arXiv listings, with no announcement
# type (the matcher's `announce` rule). Candidates leave such papers out, so that for a query the
# index answers exactly (see `is_exact`) candidates and matches are the same papers.
UNMATCHABLE = "x"
TEXT_FIELDS = ("text", "title", "abstract", "author")  # "text": title or abstract


@dataclass(frozen=True, slots=True)
class Tokens:
    """Atoms in this order in one field ("text" is title or abstract; "facet" a facet token),
    the last one a prefix if `prefix`."""

    field: str
    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[IndexQuery, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[IndexQuery, ...]


IndexQuery = Tokens | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class IndexedPaper:
    """A paper's index entry: each field as space-separated tokens."""

    title: str
    abstract: str
    authors: str
    facets: str


def indexed_fields(
    title: str,
    abstract: str,
    authors: Iterable[str],
    categories: Iterable[str],
    sources: Iterable[str],
    ids: Iterable[str],
    unmatchable: bool = False,
) -> IndexedPaper:
    """What the index holds for a paper: the matcher's own atoms (so the two cannot disagree),
    and its facets."""
    return IndexedPaper(
        title=_bounded(atom_text(title)),
        abstract=_bounded(atom_text(abstract)),
        authors=_bounded(_author_text(authors)),
        facets=_facets(categories, sources, ids, unmatchable),
    )


def indexed_text(paper: PaperText) -> IndexedPaper:
    """What the index holds for a paper as the store describes it, from the Document tagging
    made of it (its atoms are made once)."""
    return indexed_paper(Document.of(paper))


def indexed_paper(doc: Document) -> IndexedPaper:
    """The same, from a Document already made for tagging (its atoms are made once)."""
    return IndexedPaper(
        title=_bounded(doc.title),
        abstract=_bounded(doc.abstract),
        authors=_bounded(_author_text(doc.authors)),
        facets=_facets(doc.categories, doc.sources, doc.ids, doc.only_listings and not doc.announce_types),
    )


def _author_text(authors: Iterable[str]) -> str:
    """The atoms of every author at once: ", " keeps two names' atoms apart exactly as folding
    them one by one would (no atom, LaTeX command or accent spans a comma and a space)."""
    return atom_text(", ".join(authors))


def _facets(categories: Iterable[str], sources: Iterable[str], ids: Iterable[str], unmatchable: bool) -> str:
    return " ".join(
        [
            *(facet_token("category", c) for c in sorted(set(categories))),
            *(facet_token("source", s) for s in sorted(set(sources))),
            *(facet_token("id", i) for i in sorted(set(ids))),
            *([UNMATCHABLE] if unmatchable else []),
        ]
    )


_LONG_ATOM = re.compile(rf"\S{{{MAX_ATOM + 1}}}")


def _bounded(text: str) -> str:
    """Atoms cut to MAX_ATOM (a scan at C speed finds whether any is longer: almost never)."""
    if _LONG_ATOM.search(text) is None:
        return text
    return " ".join(w[:MAX_ATOM] for w in text.split())


def facet_token(kind: str, value: str) -> str:
    """A facet value as one token of letters and digits. Hex keeps prefixes prefixes: the token
    of `cs.` starts the tokens of `cs.cl` and `cs.lg`, so `category:cs.*` is a prefix search."""
    return FACET_KINDS[kind] + value.lower().encode().hex()


def narrow(tree: Node, topics: Mapping[str, str] | None = None) -> IndexQuery | None:
    """An index query matching at least what `tree` matches (None: anything). `topics` maps a
    slug to its query, for `topic:` references."""
    return _narrow(tree, topics or {}, frozenset())


def _narrow(node: Node, topics: Mapping[str, str], seen: frozenset[str]) -> IndexQuery | None:
    if isinstance(node, Term):
        return _term(node)
    if isinstance(node, Not):
        return None
    if isinstance(node, TopicRef):
        query = topics.get(node.slug)
        if query is None or node.slug in seen:  # unknown or cyclic: the matcher decides
            return None
        return _narrow(parse_query(query), topics, seen | {node.slug})
    children = [_narrow(c, topics, seen) for c in node.children]
    if isinstance(node, And):
        kept = tuple(dict.fromkeys(c for c in children if c is not None))
        return None if not kept else kept[0] if len(kept) == 1 else AllOf(kept)
    assert isinstance(node, Or)
    if any(c is None for c in children):
        return None
    unique = tuple(dict.fromkeys(c for c in children if c is not None))
    return unique[0] if len(unique) == 1 else AnyOf(unique)


def _term(term: Term) -> Tokens | None:
    if term.field in FACET_KINDS:
        value = term.text.lower()
        if term.prefix and len(value) < MIN_PREFIX:
            return None
        return Tokens("facet", (facet_token(term.field, value),), term.prefix)
    words = atoms(term.text)
    if not words or any(len(w) > MAX_ATOM for w in words):
        return None
    if term.prefix and len(words) == 1 and len(words[0]) < MIN_PREFIX:
        return None
    return Tokens(term.field or "text", tuple(words), term.prefix)


def is_exact(tree: Node) -> bool:
    """Whether the index's candidates for this query are exactly its matches: every term one
    atom (a word or a prefix, of two characters or more, shorter than MAX_ATOM, where index
    tokens are never cut) or one facet value, joined by AND and OR only."""
    if isinstance(tree, Term):
        if tree.field in FACET_KINDS:
            return _term(tree) is not None
        words = atoms(tree.text)
        return len(words) == 1 and len(words[0]) < MAX_ATOM and _term(tree) is not None
    if isinstance(tree, And | Or):
        return all(is_exact(c) for c in tree.children)
    return False  # NOT, topic: references
