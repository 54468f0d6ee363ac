"""Matching papers against topics: paper in, (topic, score, explanation) out. Pure, no I/O.

A paper is matched as a Document (document.py): its fields folded and cut into atoms.

A Tagger compiles every topic once. Every distinct term of every topic goes into one
Aho-Corasick automaton (pyahocorasick) as space-delimited text: " llm " for a word, " prun" for
a prefix, " language model " for a phrase; a paper's fields, as atoms joined by single spaces,
are then scanned once each, so word boundaries cost nothing. Each topic's query is compiled to
closures over the set of term ids hit (an OR of terms is one set test, an AND of such ORs one
function), and only topics one of whose terms was hit are evaluated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import ahocorasick

from aggregator.records import PaperText
from aggregator.topics.document import Document, atoms
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
