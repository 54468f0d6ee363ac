"""Hugging Face Daily Papers as JSON, huggingface.co/api/daily_papers: a list of `paper` objects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aggregator.errors import ParseError
from aggregator.ingest.parse.common import hrefs, iso_date, json_names, text
from aggregator.types import ParsedEntry


def detect(data: Any, hint: str | None) -> bool:
    return isinstance(data, list)


def read(data: Any) -> tuple[str, Iterator[ParsedEntry]]:
    if data and not any(isinstance(item, dict) and "paper" in item for item in data):
        raise ParseError("parse: not a feed (a JSON list without Hugging Face `paper` objects)")
    return "Hugging Face Daily Papers", _entries(data)


def _entries(items: list[Any]) -> Iterator[ParsedEntry]:
    """`paper.id` is the bare arXiv id; items without one are skipped."""
    for item in items:
        paper = item.get("paper") if isinstance(item, dict) else None
        pid = text(paper.get("id")).strip() if isinstance(paper, dict) else ""
        if not pid or not isinstance(paper, dict):
            continue
        link = f"https://huggingface.co/papers/{pid}"
        repo, page = text(paper.get("githubRepo")).strip(), text(paper.get("projectPage")).strip()
        upvotes = paper.get("upvotes")
        yield ParsedEntry(
            entry_id=pid,
            title=text(paper.get("title")) or text(item.get("title")),
            link=link,
            links=hrefs((link, page, repo)),
            summary=text(paper.get("summary")) or text(item.get("summary")),
            authors=json_names(paper.get("authors")),
            published=iso_date(paper.get("publishedAt")) or iso_date(item.get("publishedAt")),
            arxiv_id=pid,
            upvotes=upvotes if isinstance(upvotes, int) and not isinstance(upvotes, bool) else None,
            code_urls=(repo,) if repo else (),  # projectPage is a link, not code
        )
