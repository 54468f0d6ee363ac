"""Matching papers against topics: paper in, (topic, score, explanation) out. Pure, no I/O.

Text is folded (case, accents) and cut into atoms: runs of letters and digits, plus `x:y` with
one letter or digit on each side (`n:m`, `2:4`). Hyphens and spaces both separate atoms, so a
phrase or a hyphenated term (`"semi-structured"`, `GPT-4o`) matches the words in order whether
the text hyphenates them or not, and a word matches a part of a hyphenated compound.

A Tagger compiles every topic once: all distinct terms get an id, each topic's query becomes a
Python expression over the set of term ids a paper hits (generated from our own tree, so only
ints and `and`/`or`/`not` ever reach `compile`). Per paper, one pass per field finds every term
hit; only topics one of whose terms was hit are evaluated.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import CodeType

from aggregator.ingest.normalize import fold
from aggregator.topics.query import And, Node, Not, Or, Term, TopicRef, parse_query, positive_terms
from aggregator.types import TopicMatch

ALL_ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")
TITLE_WEIGHT = 3  # a term in the title says more than one in passing in the abstract
OTHER_WEIGHT = 1
TEXT_FIELDS = ("title", "abstract", "author")

_NO_BUILTINS: dict[str, object] = {"__builtins__": {}}
_ATOM = re.compile(r"[^\W_]:[^\W_](?![^\W_])|[^\W_]+")


def atoms(text: str) -> list[str]:
    """The folded atoms of a text: 'LLM-based N:M Sparsity' -> ['llm', 'based', 'n:m', 'sparsity']."""
    return _ATOM.findall(fold(text))


def padded(words: Iterable[str]) -> str:
    """Atoms joined by single spaces with a space at each end, for whole-word phrase search."""
    return " " + " ".join(words) + " "


@dataclass(frozen=True, slots=True)
class Document:
    """A paper as matching sees it: folded atoms per field and its facets."""

    title: str  # padded atoms
    abstract: str
    author: str  # every author's atoms, authors separated by " | "
    title_atoms: frozenset[str]
    abstract_atoms: frozenset[str]
    author_atoms: frozenset[str]
    categories: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    announce_types: frozenset[str] = frozenset()
    only_listings: bool = False  # every sighting is an arXiv listing entry: `announce` applies

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
        title_words, abstract_words = atoms(title), atoms(abstract)
        author_words = [atoms(a) for a in authors]
        return cls(
            title=padded(title_words),
            abstract=padded(abstract_words),
            author=" | ".join(padded(w) for w in author_words),
            title_atoms=frozenset(title_words),
            abstract_atoms=frozenset(abstract_words),
            author_atoms=frozenset(w for ws in author_words for w in ws),
            categories=frozenset(c.lower() for c in categories),
            sources=frozenset(s.lower() for s in sources),
            ids=frozenset(i.lower() for i in ids),
            announce_types=frozenset(announce_types),
            only_listings=only_listings,
        )

    def text(self, name: str) -> str:
        return self.title if name == "title" else self.abstract if name == "abstract" else self.author

    def atom_set(self, name: str) -> frozenset[str]:
        return (
            self.title_atoms
            if name == "title"
            else self.abstract_atoms
            if name == "abstract"
            else self.author_atoms
        )

    def facet(self, name: str) -> frozenset[str]:
        return self.categories if name == "category" else self.sources if name == "source" else self.ids


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What the tagger needs of a configured topic."""

    slug: str
    query: str
    exclude: str | None = None
    sources: tuple[str, ...] = ()
    announce: tuple[str, ...] = ("new", "cross")
    min_score: float = 0.0


@dataclass(slots=True)
class _CompiledTerm:
    id: int
    term: Term
    scopes: tuple[str, ...]  # fields searched: title/abstract/author, or one facet
    words: tuple[str, ...]  # folded atoms of the term
    facet_value: str = ""
    pattern: re.Pattern[str] | None = None  # phrases ending in a prefix


@dataclass(slots=True)
class _CompiledTopic:
    spec: TopicSpec
    test: CodeType  # the query as an expression over h (term ids hit) and r (topics matched)
    exclude: CodeType | None
    terms: tuple[int, ...]  # distinct positive term ids, in query order
    refs: tuple[str, ...]
    sources: frozenset[str] = field(default_factory=frozenset)


class Tagger:
    """Every configured topic, compiled once; `tag(document)` gives the topics a paper belongs to."""

    def __init__(self, topics: Sequence[TopicSpec]) -> None:
        self._terms: dict[tuple[object, ...], _CompiledTerm] = {}
        self._by_id: dict[int, _CompiledTerm] = {}
        self._word: dict[str, dict[str, list[int]]] = {f: {} for f in TEXT_FIELDS}
        self._prefix: dict[str, dict[str, list[int]]] = {f: {} for f in TEXT_FIELDS}
        self._phrase: dict[str, dict[str, list[_CompiledTerm]]] = {f: {} for f in TEXT_FIELDS}
        self._facet: list[_CompiledTerm] = []
        self._topics = [self._compile_topic(t) for t in _dependency_order(topics)]
        self._prefix_re = {f: _prefix_regex(self._prefix[f]) for f in TEXT_FIELDS}
        self._by_term: dict[int, list[int]] = {}
        for n, topic in enumerate(self._topics):
            for tid in topic.terms:
                self._by_term.setdefault(tid, []).append(n)

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
            test=compile(self._expression(tree), f"<topic {spec.slug}>", "eval"),
            exclude=compile(self._expression(exclude), f"<exclude {spec.slug}>", "eval") if exclude else None,
            terms=terms,
            refs=tuple(sorted(_refs(tree))),
            sources=frozenset(s.lower() for s in spec.sources),
        )

    def _expression(self, node: Node) -> str:
        if isinstance(node, Term):
            return f"({self._term(node).id} in h)"
        if isinstance(node, TopicRef):
            return f"({node.slug!r} in r)"
        if isinstance(node, Not):
            return f"(not {self._expression(node.child)})"
        joiner = " and " if isinstance(node, And) else " or "
        return "(" + joiner.join(self._expression(c) for c in node.children) + ")"

    def _term(self, term: Term) -> _CompiledTerm:
        scopes = ("title", "abstract") if term.field is None else (term.field,)
        words = tuple(atoms(term.text)) if term.field not in ("category", "source", "id") else ()
        key = (scopes, words, term.prefix, term.text.lower() if not words else "")
        found = self._terms.get(key)
        if found is not None:
            return found
        compiled = _CompiledTerm(len(self._terms), term, scopes, words, facet_value=term.text.lower())
        self._terms[key] = compiled
        self._by_id[compiled.id] = compiled
        self._index(compiled)
        return compiled

    def _index(self, term: _CompiledTerm) -> None:
        if not term.words:
            self._facet.append(term)
            return
        for scope in term.scopes:
            if len(term.words) == 1 and not term.term.prefix:
                self._word[scope].setdefault(term.words[0], []).append(term.id)
            elif len(term.words) == 1:
                self._prefix[scope].setdefault(term.words[0], []).append(term.id)
            else:
                if term.term.prefix:
                    body = " ".join(map(re.escape, term.words))
                    term.pattern = re.compile(rf" {body}[^ ]* ")
                self._phrase[scope].setdefault(term.words[0], []).append(term)

    # --- matching ----------------------------------------------------------------------------

    def hits(self, doc: Document) -> dict[str, set[int]]:
        """Term ids hit in each field (title, abstract, author, facets)."""
        found: dict[str, set[int]] = {}
        for name in TEXT_FIELDS:
            hit = self._text_hits(doc, name)
            if hit:
                found[name] = hit
        facets = {t.id for t in self._facet if _facet_hit(t, doc)}
        if facets:
            found["facet"] = facets
        return found

    def _text_hits(self, doc: Document, name: str) -> set[int]:
        words, text = doc.atom_set(name), doc.text(name)
        hit: set[int] = set()
        index = self._word[name]
        for atom in words & index.keys():
            hit.update(index[atom])
        prefixes = self._prefix[name]
        pattern = self._prefix_re[name]
        if pattern is not None:
            for atom in set(pattern.findall(text)):
                for size in range(1, len(atom) + 1):
                    ids = prefixes.get(atom[:size])
                    if ids:
                        hit.update(ids)
        phrases = self._phrase[name]
        for atom in words & phrases.keys():
            for term in phrases[atom]:
                if term.pattern is not None:
                    if term.pattern.search(text):
                        hit.add(term.id)
                elif padded(term.words) in text:
                    hit.add(term.id)
        return hit

    def tag(self, doc: Document) -> list[TopicMatch]:
        """Every topic this paper belongs to, with its score and why."""
        found = self.hits(doc)
        every = set().union(*found.values()) if found else set()
        title = found.get("title", set())
        results: dict[str, TopicMatch] = {}
        candidates = {n for tid in every for n in self._by_term.get(tid, ())}
        for n, topic in enumerate(self._topics):
            if n not in candidates and topic.terms and not topic.refs:
                continue  # none of its terms is in this paper: it cannot match
            match = self._evaluate(topic, doc, every, title, found, results)
            if match is not None:
                results[topic.spec.slug] = match
        return list(results.values())

    def _evaluate(
        self,
        topic: _CompiledTopic,
        doc: Document,
        every: set[int],
        title: set[int],
        found: dict[str, set[int]],
        done: dict[str, TopicMatch],
    ) -> TopicMatch | None:
        scope = {"h": every, "r": done}
        if not eval(topic.test, _NO_BUILTINS, scope):
            return None
        if topic.exclude is not None and eval(topic.exclude, _NO_BUILTINS, scope):
            return None
        if topic.sources and not (doc.sources & topic.sources):
            return None
        if doc.only_listings and not (doc.announce_types & set(topic.spec.announce)):
            return None
        score, matched = 0.0, []
        for tid in topic.terms:
            if tid in title:
                score += TITLE_WEIGHT
                matched.append(f"{self._term_by_id(tid).term} in title")
            elif tid in every:
                score += OTHER_WEIGHT
                where = next((f for f in ("abstract", "author") if tid in found.get(f, ())), "facet")
                matched.append(f"{self._term_by_id(tid).term} in {_facet_name(self._term_by_id(tid), where)}")
        for slug in topic.refs:
            if slug in done:
                score += done[slug].score
                matched.extend(m for m in done[slug].matched if m not in matched)
        if score < topic.spec.min_score:
            return None
        return TopicMatch(topic.spec.slug, score, tuple(matched))

    def _term_by_id(self, tid: int) -> _CompiledTerm:
        return self._by_id[tid]


def fingerprints(specs: Sequence[TopicSpec]) -> dict[str, str]:
    """A digest of each topic's definition, including the topics it refers to: equal digests
    mean equal matches, so only topics whose digest changed need re-tagging."""
    by_slug = {s.slug: s for s in specs}
    done: dict[str, str] = {}
    for spec in _dependency_order(specs):
        refs = sorted(_refs(parse_query(spec.query)))
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


def _facet_name(term: _CompiledTerm, where: str) -> str:
    return term.scopes[0] if where == "facet" else where


def _facet_hit(term: _CompiledTerm, doc: Document) -> bool:
    values = doc.facet(term.scopes[0])
    want = term.facet_value
    if term.term.prefix:
        return any(v.startswith(want) for v in values)
    return want in values


def _prefix_regex(prefixes: dict[str, list[int]]) -> re.Pattern[str] | None:
    """One scan finds every atom that starts with any prefix; the atoms found are few."""
    if not prefixes:
        return None
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    return re.compile(rf"(?<= )((?:{alternatives})[^ ]*)")


def _refs(node: Node) -> set[str]:
    if isinstance(node, TopicRef):
        return {node.slug}
    if isinstance(node, Not):
        return _refs(node.child)
    if isinstance(node, And | Or):
        return set().union(*(_refs(c) for c in node.children))
    return set()


def _dependency_order(topics: Sequence[TopicSpec]) -> list[TopicSpec]:
    """Referenced topics before the topics that use them (the config has already refused cycles)."""
    by_slug = {t.slug: t for t in topics}
    ordered: list[TopicSpec] = []
    seen: set[str] = set()

    def visit(spec: TopicSpec) -> None:
        if spec.slug in seen:
            return
        seen.add(spec.slug)
        for ref in sorted(_refs(parse_query(spec.query))):
            if ref in by_slug:
                visit(by_slug[ref])
        ordered.append(spec)

    for spec in topics:
        visit(spec)
    return ordered
