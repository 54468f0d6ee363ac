"""Hugging Face Daily Papers republished as RSS by community generators: markers, adapter.

The item is the paper's arXiv link and title; a thumbnail, then the authors, upvotes and summary
sit in labelled paragraphs of the description (`<p><b>Authors:</b> A, B</p>`)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from lxml import etree
from lxml import html as lxml_html

from aggregator.ingest.parse import generic
from aggregator.ingest.parse.common import Context, Sample, get
from aggregator.types import ParsedEntry

_UPVOTES = re.compile(r"[0-9]{1,9}")  # ASCII digits: "²".isdigit() is true, int("²") fails
_HF_LABEL = re.compile(r"<(?:b|strong)>\s*(?:Authors|Upvotes|Summary)\s*:\s*</(?:b|strong)>", re.IGNORECASE)


def marks(sample: Sample) -> bool:
    return "huggingface.co/papers" in sample.where and any(
        _HF_LABEL.search(get(e, "summary") or "") for e in sample.first
    )


def read_entry(e: Any, ctx: Context) -> ParsedEntry | None:
    entry = generic.read_entry(e, ctx)
    if entry is None:
        return None
    labelled, image, rest = _labelled_paragraphs(entry.summary)
    if not labelled:
        return entry  # not the shape this adapter knows: as any RSS item
    upvotes = labelled.get("upvotes", "").replace(",", "")
    authors = labelled.get("authors", "")
    return replace(
        entry,
        summary=labelled.get("summary") or labelled.get("abstract") or rest,
        summary_is_html=False,
        authors=tuple(n for n in (p.strip() for p in authors.split(",")) if n) or entry.authors,
        upvotes=int(upvotes) if _UPVOTES.fullmatch(upvotes) else None,
        image_url=image,
    )


def _labelled_paragraphs(fragment: str) -> tuple[dict[str, str], str | None, str]:
    """`{label: text}` of the paragraphs that open with a bold label ending in ':', the first
    image's src, and the text of the other paragraphs; read by an HTML parser."""
    if not fragment.strip():
        return {}, None, ""
    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return {}, None, ""
    labelled: dict[str, str] = {}
    rest: list[str] = []
    for paragraph in root.iter("p"):
        first = next(iter(paragraph), None)
        label = first.text_content().strip() if first is not None and first.tag in ("b", "strong") else ""
        text = paragraph.text_content()
        if label.endswith(":") and not (paragraph.text or "").strip():
            labelled.setdefault(label[:-1].strip().lower(), text.strip()[len(label) :].strip())
        elif text.strip():
            rest.append(text.strip())
    image = next((img.get("src") for img in root.iter("img") if img.get("src")), None)
    return labelled, image, " ".join(rest)
