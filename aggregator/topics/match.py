"""Matching papers against topics: paper in, (topic, score, explanation) out. Pure, no I/O.

Text is folded (case, accents) and cut into atoms: runs of letters and digits, plus `x:y` with
one letter or digit on each side (`n:m`, `2:4`). Hyphens and spaces both separate atoms, so a
phrase or a hyphenated term (`"semi-structured"`, `GPT-4o`) matches the words in order whether
the text hyphenates them or not, and a word matches a part of a hyphenated compound.

A Tagger compiles every topic once. Every distinct term of every topic goes into one
Aho-Corasick automaton (pyahocorasick) as space-delimited text: " llm " for a word, " prun" for
a prefix, " language model " for a phrase; a paper's fields, as atoms joined by single spaces,
are then scanned once each, so word boundaries cost nothing. Each topic's query is compiled to
closures over the set of term ids hit (an OR of terms is one set test, an AND of such ORs one
function), and only topics one of whose terms was hit are evaluated.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import ahocorasick

from aggregator.records import PaperText
from aggregator.text import fold
from aggregator.topics.query import (
    And,
    Node,
    Not,
    Or,
    Term,
    TopicRef,
    parse_query,
    positive_terms,
    topic_refs,
)
from aggregator.types import ANNOUNCE_TYPES, TopicMatch, TopicSpec

_SECOND = itemgetter(1)
TITLE_WEIGHT = 3  # a term in the title says more than one in passing in the abstract
OTHER_WEIGHT = 1
FACETS = ("category", "source", "id")
# Which terms a field's hits count for: a term without a field is looked for in title and abstract.
_SCOPES_OF_FIELD: dict[str, tuple[str | None, ...]] = {
    "title": (None, "title"),
    "abstract": (None, "abstract"),
    "author": ("author",),
}

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


@dataclass(frozen=True, slots=True)
class _CompiledTerm:
    id: int
    term: Term
    needle: str  # what the automaton looks for, or the folded value of a facet term


# A compiled query: over the term ids a paper hit and the topics it matched so far.
Test = Callable[[set[int], dict[str, "TopicMatch"]], bool]


@dataclass(slots=True)
class _CompiledTopic:
    spec: TopicSpec
    test: Test
    exclude: Test | None
    terms: tuple[int, ...]  # distinct positive term ids, in query order
    refs: tuple[str, ...]
    sources: frozenset[str] = field(default_factory=frozenset)


class Tagger:
    """Every configured topic, compiled once; `tag(document)` gives the topics a paper belongs to."""

    def __init__(self, topics: Sequence[TopicSpec]) -> None:
        self._terms: dict[tuple[str | None, str, str], _CompiledTerm] = {}
        self._facet_terms: list[_CompiledTerm] = []
        self._topics = [self._compile_topic(t) for t in _dependency_order(topics)]
        # One automaton per kind of field a term names (None: title or abstract).
        self._automata = {
            scope: _automaton(t for t in self._terms.values() if t.term.field == scope)
            for scope in (None, "title", "abstract", "author")
            if any(t.term.field == scope for t in self._terms.values())
        }
        self._by_term: dict[int, list[int]] = {}
        for n, topic in enumerate(self._topics):
            for tid in topic.terms:
                self._by_term.setdefault(tid, []).append(n)
        self._by_id = {t.id: t for t in self._terms.values()}
        # Topics evaluated for every paper: those that refer to others, or have no positive term.
        self._always = {n for n, t in enumerate(self._topics) if t.refs or not t.terms}
        # Every term a topic's score can count: its own and, through `topic:`, those of the
        # topics it refers to (in dependency order, so referenced topics are done first).
        self._closure: dict[str, tuple[int, ...]] = {}
        for topic in self._topics:
            inherited = [t for ref in topic.refs for t in self._closure.get(ref, ())]
            self._closure[topic.spec.slug] = tuple(dict.fromkeys([*topic.terms, *inherited]))

    @property
    def slugs(self) -> list[str]:
        return [t.spec.slug for t in self._topics]

    # --- compiling ---------------------------------------------------------------------------

    def _compile_topic(self, spec: TopicSpec) -> _CompiledTopic:
        tree = parse_query(spec.query)
        exclude = parse_query(spec.exclude) if spec.exclude else None
        terms = tuple(dict.fromkeys(self._term(t).id for t in positive_terms(tree)))
        return _CompiledTopic(
            spec=spec,
            test=self._test(tree),
            exclude=self._test(exclude) if exclude else None,
            terms=terms,
            refs=tuple(sorted(topic_refs(tree))),
            sources=frozenset(s.lower() for s in spec.sources),
        )

    def _test(self, node: Node) -> Test:
        """The query tree as nested closures over (term ids hit, topics matched so far)."""
        if isinstance(node, Term):
            term = self._term(node).id
            return lambda hit, matched: term in hit
        if isinstance(node, TopicRef):
            slug = node.slug
            return lambda hit, matched: slug in matched
        if isinstance(node, Not):
            inner = self._test(node.child)
            return lambda hit, matched: not inner(hit, matched)
        # An AND of OR-lists of terms, the shape of most topics, as set tests in one function.
        groups = [self._any_of(child) for child in node.children]
        if isinstance(node, And) and all(g is not None for g in groups):
            sets = [g for g in groups if g is not None]
            if len(sets) == 2:
                a, b = sets
                return lambda hit, matched: not a.isdisjoint(hit) and not b.isdisjoint(hit)
            return lambda hit, matched: all(not s.isdisjoint(hit) for s in sets)
        # The terms among the children as one set test (C speed: topics are long OR-lists of
        # terms), then the other children.
        ids = frozenset(self._term(c).id for c in node.children if isinstance(c, Term))
        parts = [self._test(child) for child in node.children if not isinstance(child, Term)]
        if ids:
            if isinstance(node, And):
                parts.insert(0, lambda hit, matched: ids <= hit)
            else:
                parts.insert(0, lambda hit, matched: not ids.isdisjoint(hit))
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:  # the usual shape, without a loop
            first, second = parts
            if isinstance(node, And):
                return lambda hit, matched: first(hit, matched) and second(hit, matched)
            return lambda hit, matched: first(hit, matched) or second(hit, matched)
        if isinstance(node, And):
            return lambda hit, matched: all(part(hit, matched) for part in parts)
        return lambda hit, matched: any(part(hit, matched) for part in parts)

    def _any_of(self, node: Node) -> frozenset[int] | None:
        """The term ids of a term or an OR of terms (true when any is hit); None for other shapes."""
        if isinstance(node, Term):
            return frozenset((self._term(node).id,))
        if isinstance(node, Or) and all(isinstance(c, Term) for c in node.children):
            return frozenset(self._term(c).id for c in node.children if isinstance(c, Term))
        return None

    def _term(self, term: Term) -> _CompiledTerm:
        if term.field in FACETS:
            needle = term.text.lower()
        else:
            words = atoms(term.text)
            needle = " " + " ".join(words) + ("" if term.prefix else " ")
        key = (term.field, needle, "*" if term.prefix else "")
        found = self._terms.get(key)
        if found is None:
            found = self._terms[key] = _CompiledTerm(len(self._terms), term, needle)
            if term.field in FACETS:
                self._facet_terms.append(found)
        return found

    # --- matching ----------------------------------------------------------------------------

    def hits(self, doc: Document) -> dict[str, set[int]]:
        """Term ids hit in each field (title, abstract, author; "facet" for the others)."""
        found: dict[str, set[int]] = {}
        for name, scopes in _SCOPES_OF_FIELD.items():
            hit: set[int] = set()
            for scope in scopes:
                automaton = self._automata.get(scope)
                if automaton is not None:
                    # map/set keep the per-hit work in C: a paper hits common words many times
                    hit.update(*set(map(_SECOND, automaton.iter(doc.text(name)))))
            if hit:
                found[name] = hit
        facets = {t.id for t in self._facet_terms if _facet_hit(t, doc)}
        if facets:
            found["facet"] = facets
        return found

    def tag_paper(self, paper: PaperText) -> list[TopicMatch]:
        """`tag`, for a paper as the store describes it (records.PaperTagger)."""
        return self.tag(Document.of(paper))

    def tag(self, doc: Document) -> list[TopicMatch]:
        """Every topic this paper belongs to, with its score and why."""
        found = self.hits(doc)
        every = set().union(*found.values()) if found else set()
        results: dict[str, TopicMatch] = {}
        # Topics none of whose terms this paper holds cannot match; the rest go in dependency order.
        candidates = {n for tid in every for n in self._by_term.get(tid, ())}
        for n in sorted(candidates | self._always):
            topic = self._topics[n]
            match = self._evaluate(topic, doc, every, found, results)
            if match is not None:
                results[topic.spec.slug] = match
        return list(results.values())

    def _evaluate(
        self,
        topic: _CompiledTopic,
        doc: Document,
        every: set[int],
        found: dict[str, set[int]],
        done: dict[str, TopicMatch],
    ) -> TopicMatch | None:
        if not topic.test(every, done):
            return None
        if topic.exclude is not None and topic.exclude(every, done):
            return None
        if topic.sources and not (doc.sources & topic.sources):
            return None
        if doc.only_listings and not (doc.announce_types & set(topic.spec.announce)):
            return None
        # Distinct terms count once, whether written here or in a topic referred to (one that
        # matched this paper).
        inherited = [t for ref in topic.refs if ref in done for t in self._closure[ref]]
        score, matched = 0.0, []
        for tid in dict.fromkeys([*topic.terms, *inherited]):
            if tid not in every:
                continue
            term = self._by_id[tid].term
            where = next((f for f in ("title", "abstract", "author") if tid in found.get(f, ())), None)
            score += TITLE_WEIGHT if where == "title" else OTHER_WEIGHT
            matched.append(f"{_shown(term)} in {where or term.field}")
        if score < topic.spec.min_score:
            return None
        return TopicMatch(topic.spec.slug, score, tuple(matched))


def _automaton(terms: Iterable[_CompiledTerm]) -> ahocorasick.Automaton:
    """One automaton for every text term; a needle shared by terms of several fields lists them all."""
    needles: dict[str, list[int]] = {}
    for t in terms:
        needles.setdefault(t.needle, []).append(t.id)
    automaton = ahocorasick.Automaton()
    for needle, entries in needles.items():
        automaton.add_word(needle, tuple(entries))
    if needles:
        automaton.make_automaton()
    return automaton


def _shown(term: Term) -> str:
    """A term as the query wrote it, field included (`title:agent*` and `agent*` are two terms)."""
    return str(term)


AD_HOC = " query"  # the slug of a query asked for once (no configured slug has a space)


def query_tagger(
    query: str,
    topics: Sequence[TopicSpec] = (),
    *,
    exclude: str | None = None,
    announce: Sequence[str] = ANNOUNCE_TYPES,
) -> Tagger:
    """A tagger for one ad-hoc query (`q=`, preview) that may refer to the configured topics; a
    preview may give it a topic's `exclude` and `announce` too."""
    used = topic_refs(parse_query(query))
    if exclude:
        used |= topic_refs(parse_query(exclude))
    # A topic the query names may name others in turn: with any reference, every configured
    # topic comes along (the tagger orders them); with none, the query stands alone.
    needed = list(topics) if used else []
    return Tagger([*needed, TopicSpec(AD_HOC, query, exclude=exclude or None, announce=tuple(announce))])


def fingerprints(specs: Sequence[TopicSpec]) -> dict[str, str]:
    """A digest of each topic's definition, including the topics it refers to: equal digests
    mean equal matches, so only topics whose digest changed need re-tagging."""
    by_slug = {s.slug: s for s in specs}
    done: dict[str, str] = {}
    for spec in _dependency_order(specs):
        refs = sorted(topic_refs(parse_query(spec.query)))
        text = repr(
            (
                spec.query,
                spec.exclude,
                sorted(spec.sources),
                sorted(spec.announce),
                spec.min_score,
                [(r, done.get(r, "")) for r in refs if r in by_slug],
                TITLE_WEIGHT,
                OTHER_WEIGHT,
            )
        )
        done[spec.slug] = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return done


def _facet_hit(term: _CompiledTerm, doc: Document) -> bool:
    values = doc.facet(term.term.field or "")
    if term.term.prefix:
        return any(v.startswith(term.needle) for v in values)
    return term.needle in values


def _dependency_order(topics: Sequence[TopicSpec]) -> list[TopicSpec]:
    """Referenced topics before the topics that use them (the config has already refused cycles)."""
    by_slug = {t.slug: t for t in topics}
    ordered: list[TopicSpec] = []
    seen: set[str] = set()

    def visit(spec: TopicSpec) -> None:
        if spec.slug in seen:
            return
        seen.add(spec.slug)
        for ref in sorted(topic_refs(parse_query(spec.query))):
            if ref in by_slug:
                visit(by_slug[ref])
        ordered.append(spec)

    for spec in topics:
        visit(spec)
    return ordered
