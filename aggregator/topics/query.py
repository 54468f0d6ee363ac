"""The topic query language: text in, a small typed tree out, or an error that points at the place.

    pruning AND (LLM* OR "language model*") -title:vision topic:quantization

Grammar (lark, LALR): OR binds loosest, then AND (explicit or by juxtaposition), then NOT / `-`.
Upper-case AND, OR, NOT are operators; lower-case ones are plain words. A word may hold
hyphens and a colon between single letters or digits (`GPT-4o`, `k-NN`, `N:M`, `2:4`); any
other `word:` must be a known field. Pure: no I/O, no knowledge of papers.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

FIELDS = ("title", "abstract", "author", "category", "source", "id", "topic")

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (OR and_expr)*
?and_expr: not_expr (AND? not_expr)*
?not_expr: NOT not_expr       -> negate
         | MINUS atom          -> negate
         | atom
?atom: LPAR or_expr RPAR      -> group
     | FIELD LPAR or_expr RPAR -> field_group
     | FIELD PHRASE            -> field_phrase
     | PHRASE                  -> phrase
     | WORD                    -> word

OR.3: /OR(?=[\s()"]|$)/
AND.3: /AND(?=[\s()"]|$)/
NOT.3: /NOT(?=[\s()"]|$)/
FIELD.2: /[A-Za-z]+:(?=["(])/
MINUS.2: /-(?=[^\s)-])/
LPAR: "("
RPAR: ")"
PHRASE: /"[^"]*"/
WORD: /[^\s()"\-][^\s()"]*/

%ignore /\s+/
"""


MAX_QUERY = 4_000
_LEADING_MINUS = re.compile(r"(?:^|[\s(])-")
MAX_NESTING = 64  # the compiled expression nests once per level; Python's parser stops near 200


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += char == "("
        depth -= char == ")"
        deepest = max(deepest, depth)
    return deepest


class QueryError(ValueError):
    """A query that cannot be parsed; `column` is 1-based, where the problem is."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.column = column
        super().__init__(f"{message} at column {column}" if column else message)


@dataclass(frozen=True, slots=True)
class Term:
    """A word, a prefix (`prun*`) or a phrase, in one field or (field None) in title or abstract."""

    field: str | None
    text: str  # as written, without quotes or the trailing star
    prefix: bool = False
    phrase: bool = False

    def __str__(self) -> str:
        body = (
            f'"{self.text}{"*" if self.prefix else ""}"'
            if self.phrase
            else self.text + ("*" if self.prefix else "")
        )
        return f"{self.field}:{body}" if self.field else body


@dataclass(frozen=True, slots=True)
class TopicRef:
    """`topic:slug`: whatever that topic matches."""

    slug: str


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


Node = Term | TopicRef | Not | And | Or

_X_COLON_Y = re.compile(r"^[^\W_]:[^\W_]\*?$")


def _field_name(raw: str, column: int | None) -> str:
    name = raw.lower()
    if name in FIELDS:
        return name
    close = difflib.get_close_matches(name, FIELDS, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (fields: {', '.join(FIELDS)})"
    raise QueryError(f"unknown field '{raw}'{hint}", column)


def _term(field: str | None, text: str, *, phrase: bool, column: int | None) -> Node:
    prefix = text.endswith("*")
    text = text.rstrip("*").strip() if prefix else text.strip()
    if not text:
        raise QueryError("empty term", column)
    if field == "topic":
        return TopicRef(text.lower())
    return Term(field, text, prefix=prefix, phrase=phrase)


_OPERATORS = ("and", "or", "not")


# Inline arguments for every rule, set on the class rather than on each method: a decorated
# method is one that mutmut (docs/testing.md) leaves unmutated.
@v_args(inline=True)
class _Build(Transformer[Token, Node]):
    def word(self, token: Token) -> Node:
        text = str(token)
        if text.lower() in _OPERATORS:  # OR, AND, NOT in capitals never reach here
            # `prun* or sparse` would otherwise want the word "or" too and quietly match little.
            raise QueryError(
                f"'{text}' is not an operator: write {text.upper()} in capitals, or \"{text}\" "
                "in quotes to search the word",
                token.column,
            )
        if ":" in text and not _X_COLON_Y.match(text):
            name, _, rest = text.partition(":")
            return _term(_field_name(name, token.column), rest, phrase=False, column=token.column)
        return _term(None, text, phrase=False, column=token.column)

    def phrase(self, token: Token) -> Node:
        return _term(None, str(token)[1:-1], phrase=True, column=token.column)

    def field_phrase(self, field: Token, token: Token) -> Node:
        return _term(
            _field_name(str(field)[:-1], field.column), str(token)[1:-1], phrase=True, column=token.column
        )

    def field_group(self, field: Token, _lpar: Token, inner: Node, _rpar: Token) -> Node:
        return _with_field(inner, _field_name(str(field)[:-1], field.column))

    def group(self, _lpar: Token, inner: Node, _rpar: Token) -> Node:
        return inner

    def negate(self, _op: Token, child: Node) -> Node:
        return Not(child)

    def and_expr(self, *items: Node | Token) -> Node:
        return And(tuple(i for i in items if not isinstance(i, Token)))

    def or_expr(self, *items: Node | Token) -> Node:
        return Or(tuple(i for i in items if not isinstance(i, Token)))


def _with_field(node: Node, field: str) -> Node:
    """`title:(a OR "b c")`: the field applies to every term inside."""
    if isinstance(node, Term):
        return Term(node.field or field, node.text, node.prefix, node.phrase)
    if isinstance(node, Not):
        return Not(_with_field(node.child, field))
    if isinstance(node, And):
        return And(tuple(_with_field(c, field) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(_with_field(c, field) for c in node.children))
    return node


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)


@lru_cache(maxsize=1024)
def parse_query(text: str) -> Node:
    """The tree of a query, or QueryError with the column of the problem."""
    return _parse_query(text)


def _parse_query(text: str) -> Node:
    """`parse_query` uncached (a decorated function is one that mutmut leaves unmutated)."""
    if not text or not text.strip():
        raise QueryError("empty query")
    if len(text) > MAX_QUERY:
        raise QueryError(f"query longer than {MAX_QUERY} characters")
    _check_quotes_and_parentheses(text)
    negations = text.count("NOT") + len(_LEADING_MINUS.findall(text))
    if max(negations, _depth(text)) > MAX_NESTING:
        raise QueryError(f"query nested more than {MAX_NESTING} deep")
    try:
        return _Build().transform(_parser().parse(text))
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise
    except UnexpectedInput as exc:
        raise _explain(exc, text) from None


def _check_quotes_and_parentheses(text: str) -> None:
    """The two mistakes people make most, named plainly before the grammar sees them."""
    opened: list[int] = []  # columns of the '(' not yet closed
    quote = None
    for column, char in enumerate(text, start=1):
        if quote is not None:
            if char == '"':
                quote = None
            continue
        if char == '"':
            quote = column
        elif char == "(":
            opened.append(column)
        elif char == ")":
            if not opened:
                raise QueryError("unbalanced parenthesis: ')' without '('", column)
            opened.pop()
    if quote is not None:
        raise QueryError("unterminated quote", quote)
    if opened:
        raise QueryError(f"unbalanced parenthesis: {len(opened)} '(' not closed", opened[0])


def _explain(exc: UnexpectedInput, text: str) -> QueryError:
    column = getattr(exc, "column", None)
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return QueryError("query ends too early (an operator needs something after it)", len(text))
    if isinstance(exc, UnexpectedToken):
        found = str(exc.token)
        if exc.token.type in ("AND", "OR"):
            return QueryError(f"'{found}' needs a term on each side", column)
        if exc.token.type == "RPAR":
            return QueryError("empty parentheses", column)
        return QueryError(f"unexpected '{found}'", column)
    if isinstance(exc, UnexpectedCharacters):
        return QueryError(f"unexpected character '{text[exc.pos_in_stream or 0]}'", column)
    return QueryError("cannot parse query", column)


def topic_refs(node: Node) -> set[str]:
    """Slugs of the topics a query refers to."""
    if isinstance(node, TopicRef):
        return {node.slug}
    if isinstance(node, Not):
        return topic_refs(node.child)
    if isinstance(node, And | Or):
        return set().union(*(topic_refs(c) for c in node.children))
    return set()


def positive_terms(node: Node, negated: bool = False) -> list[Term]:
    """Terms that can make a query match (not under NOT), in order of appearance."""
    if isinstance(node, Term):
        return [] if negated else [node]
    if isinstance(node, Not):
        return positive_terms(node.child, not negated)
    if isinstance(node, And | Or):
        return [t for c in node.children for t in positive_terms(c, negated)]
    return []


def positive_refs(node: Node, negated: bool = False) -> list[str]:
    """Slugs of the topics that can make a query match (not under NOT)."""
    if isinstance(node, TopicRef):
        return [] if negated else [node.slug]
    if isinstance(node, Not):
        return positive_refs(node.child, not negated)
    if isinstance(node, And | Or):
        return [r for c in node.children for r in positive_refs(c, negated)]
    return []


def all_terms(node: Node) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return all_terms(node.child)
    if isinstance(node, And | Or):
        return [t for c in node.children for t in all_terms(c)]
    return []


MAX_TERMS = 64  # an ad-hoc query's terms; a topic in the config is not bounded by this
MAX_PREFIXES = 16  # each prefix reads a range of the index's vocabulary


def check_budget(node: Node) -> None:
    """Refuse, before it runs, a query (`q=`, a preview) that would ask too much of the index
    or the matcher: too many terms, or too many wildcards."""
    terms = all_terms(node)
    if len(terms) > MAX_TERMS:
        raise QueryError(f"query has {len(terms)} terms; at most {MAX_TERMS} are allowed")
    prefixes = sum(1 for t in terms if t.prefix)
    if prefixes > MAX_PREFIXES:
        raise QueryError(f"query has {prefixes} wildcards; at most {MAX_PREFIXES} are allowed")


def check_topics(topics: list[tuple[str, str, str | None]]) -> list[tuple[int, str, str]]:
    """Problems in a config's topics given as (slug, query, exclude): (index, key, message) each.

    Syntax errors, references to topics that do not exist, and reference cycles.
    """
    problems: list[tuple[int, str, str]] = []
    refs: dict[str, set[str]] = {}
    slugs = [slug for slug, _, _ in topics]
    for index, (slug, query, exclude) in enumerate(topics):
        for key, text in (("query", query), ("exclude", exclude)):
            if not text:
                continue
            try:
                tree = parse_query(text)
            except QueryError as exc:
                problems.append((index, key, str(exc)))
                continue
            for ref in sorted(topic_refs(tree)):
                if ref not in slugs:
                    close = difflib.get_close_matches(ref, slugs, n=1)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    problems.append((index, key, f"topic:{ref} names no topic{hint}"))
                elif key == "query":
                    refs.setdefault(slug, set()).add(ref)
    for index, slug in enumerate(slugs):
        cycle = _cycle_from(slug, refs)
        if cycle:
            problems.append((index, "query", "topics refer to each other in a cycle: " + " -> ".join(cycle)))
    return problems


def _cycle_from(start: str, refs: dict[str, set[str]]) -> list[str] | None:
    path = [start]

    def walk(slug: str) -> list[str] | None:
        for nxt in sorted(refs.get(slug, ())):
            if nxt == start:
                return [*path, start]
            if nxt not in path:
                path.append(nxt)
                found = walk(nxt)
                if found:
                    return found
                path.pop()
        return None

    return walk(start)
