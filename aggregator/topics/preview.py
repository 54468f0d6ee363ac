"""What a query would match: counts per week, a sample of titles with the matched words marked.

Pure: it is handed the stored papers (title, date, PaperText) and a query; `aggregator preview`
and `GET /api/preview` print or serve what it returns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.records import PaperText
from aggregator.text import fold
from aggregator.topics.document import ATOM, atoms
from aggregator.topics.match import AD_HOC, query_tagger
from aggregator.topics.query import Term, parse_query, positive_terms
from aggregator.types import ANNOUNCE_TYPES, TopicSpec

SAMPLE = 10


@dataclass(frozen=True, slots=True)
class PreviewHit:
    id: str
    title: str
    published: datetime
    score: float
    matched: tuple[str, ...]
    highlights: tuple[tuple[int, int], ...]  # [start, end) spans of the title to mark


@dataclass(frozen=True, slots=True)
class Preview:
    query: str
    total: int
    weeks: tuple[tuple[str, int], ...]  # ("2024-W48", 12), newest first
    sample: tuple[PreviewHit, ...]  # newest first


def preview(
    query: str,
    papers: Iterable[tuple[str, str, datetime, PaperText]],
    *,
    sample: int = SAMPLE,
    topics: Sequence[TopicSpec] = (),
    exclude: str | None = None,
    announce: Sequence[str] = ANNOUNCE_TYPES,
) -> Preview:
    """Match a query (QueryError if it or `exclude` does not parse) against (id, title, published,
    paper text)s, as a topic with this query, `exclude` and `announce` would."""
    tree = parse_query(query)
    tagger = query_tagger(query, topics, exclude=exclude, announce=announce)
    terms = positive_terms(tree)
    weeks: Counter[str] = Counter()
    hits: list[PreviewHit] = []
    for paper_id, title, published, paper in papers:
        found = [m for m in tagger.tag_paper(paper) if m.slug == AD_HOC]
        if not found:
            continue
        year, week, _ = published.isocalendar()
        weeks[f"{year}-W{week:02d}"] += 1
        hits.append(
            PreviewHit(paper_id, title, published, found[0].score, found[0].matched, highlight(title, terms))
        )
    hits.sort(key=lambda h: (h.published, h.id), reverse=True)
    return Preview(query, len(hits), tuple(sorted(weeks.items(), reverse=True)), tuple(hits[:sample]))


def highlight(title: str, terms: Iterable[Term]) -> tuple[tuple[int, int], ...]:
    """Spans of the title where a term (a word, a prefix, or a phrase's words in order) occurs."""
    words = [(m.start(), m.end(), fold(m.group())) for m in ATOM.finditer(title)]
    spans: list[tuple[int, int]] = []
    for term in terms:
        if term.field not in (None, "title"):
            continue
        wanted = atoms(term.text)
        if not wanted:
            continue
        for i in range(len(words) - len(wanted) + 1):
            window = words[i : i + len(wanted)]
            if all(w[2] == t for w, t in zip(window[:-1], wanted[:-1], strict=True)) and _last_matches(
                window[-1][2], wanted[-1], term.prefix
            ):
                spans.append((window[0][0], window[-1][1]))
    return tuple(_merged(sorted(spans)))


def _last_matches(word: str, wanted: str, prefix: bool) -> bool:
    return word.startswith(wanted) if prefix else word == wanted


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


def marked(title: str, spans: Iterable[tuple[int, int]], before: str = "[", after: str = "]") -> str:
    """The title with each span wrapped, for a terminal or plain text."""
    out, last = [], 0
    for start, end in spans:
        out += [title[last:start], before, title[start:end], after]
        last = end
    out.append(title[last:])
    return "".join(out)
