"""Tagging throughput against a near-limit baseline, and the time to re-tag a whole store.

    python bench/bench_tagging.py [--papers 100000] [--topics 50] [--retag]

Texts: the real titles and abstracts of the bundled arXiv listing (config/samples), recombined
into N papers of realistic length (a title from one paper, the abstract of another with its
sentences shuffled). Topics: the default config's topics, then generated ones up to --topics,
each like `(w1 OR w2*) AND ("w3 w4" OR w5)` built from the corpus' own frequent words.

Measured side by side in one run (this machine's timings drift 30-50 % between runs):
  * ours: Document.build + Tagger.tag per paper (the code ingest and retag run);
  * baseline: one pyahocorasick pass per text finding every term of every topic, with word
    boundary checks (it finds terms only; it evaluates no query).
Goal: ours >= 0.5x the baseline's texts/s. With --retag, the papers are also written to a fresh
SQLite store and `Store.retag()` re-applies all topics to all of them (goal: under a minute).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import ahocorasick
import feedparser

from aggregator.config import load_config
from aggregator.ingest.pipeline import store_batch
from aggregator.runtime import topic_specs
from aggregator.text import fold
from aggregator.topics.document import Document, atoms
from aggregator.topics.match import Tagger
from aggregator.topics.query import all_terms, parse_query
from aggregator.types import TopicSpec

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "config" / "samples" / "arxiv-listing-2024-11-28.xml"
STOP = frozenset(
    {
        "the",
        "of",
        "and",
        "to",
        "in",
        "a",
        "is",
        "for",
        "we",
        "that",
        "on",
        "with",
        "by",
        "as",
        "this",
        "are",
        "an",
        "be",
        "from",
        "our",
        "which",
        "can",
        "at",
        "or",
        "it",
    }
)


def corpus(n: int, rng: random.Random) -> list[tuple[str, str]]:
    feed = feedparser.parse(SAMPLE.read_bytes())
    titles = [e.title for e in feed.entries]
    abstracts = [e.summary.split("Abstract:", 1)[-1].strip() for e in feed.entries]
    papers = []
    for _ in range(n):
        sentences = re.split(r"(?<=\.)\s+", rng.choice(abstracts))
        rng.shuffle(sentences)
        papers.append((rng.choice(titles), " ".join(sentences)))
    return papers


def generated_topics(papers: list[tuple[str, str]], count: int, rng: random.Random) -> list[TopicSpec]:
    words = Counter(
        w for _, a in papers[:3000] for w in atoms(a) if len(w) > 4 and w not in STOP and w.isalpha()
    )
    common = [w for w, _ in words.most_common(600)][50:]
    specs = []
    for n in range(count):
        a, b, c, d, e, f = rng.sample(common, 6)
        specs.append(
            TopicSpec(f"gen-{n}", f'({a} OR {b[:5]}*) AND ("{c} {d}" OR {e} OR title:{f})', min_score=2)
        )
    return specs


def baseline_automaton(specs: list[TopicSpec]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    terms: set[tuple[str, bool]] = set()
    for spec in specs:
        for term in all_terms(parse_query(spec.query)) + (
            all_terms(parse_query(spec.exclude)) if spec.exclude else []
        ):
            if term.field in (None, "title", "abstract"):
                terms.add((" ".join(atoms(term.text)), term.prefix))
    for text, prefix in sorted(terms):
        automaton.add_word(text, (len(text), prefix))
    automaton.make_automaton()
    return automaton


def baseline_hits(automaton: ahocorasick.Automaton, text: str) -> int:
    """Every term occurrence on word boundaries (prefix terms need only the start boundary)."""
    found = 0
    for end, (length, prefix) in automaton.iter(text):
        start = end - length + 1
        if (start == 0 or not text[start - 1].isalnum()) and (
            prefix or end + 1 == len(text) or not text[end + 1].isalnum()
        ):
            found += 1
    return found


def run_ours(tagger: Tagger, papers: list[tuple[str, str]]) -> tuple[float, int]:
    start = time.perf_counter()
    tagged = 0
    for title, abstract in papers:
        tagged += len(tagger.tag(Document.build(title=title, abstract=abstract, sources=("bench",))))
    return time.perf_counter() - start, tagged


def run_baseline(automaton: ahocorasick.Automaton, papers: list[tuple[str, str]]) -> tuple[float, int]:
    start = time.perf_counter()
    hits = 0
    for title, abstract in papers:
        text = fold(title + " \n " + abstract).replace("-", " ")
        hits += baseline_hits(automaton, text)
    return time.perf_counter() - start, hits


def retag_store(specs: list[TopicSpec], papers: list[tuple[str, str]]) -> None:
    from datetime import UTC, datetime

    from aggregator.ingest.normalize import normalize_entry
    from aggregator.store.repository import Store
    from aggregator.types import Authority, FetchDone, ParsedEntry

    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{folder}/bench.db", tagger=Tagger(specs))
        store.sync_sources([("bench", "file:///bench.xml")])
        now = datetime.now(UTC)
        for start in range(0, len(papers), 5000):  # written without topics, as an old store would be
            store.tagger = None
            batch = [
                normalize_entry(  # titles numbered: real stores do not hold 66 papers per title
                    ParsedEntry(
                        entry_id=f"p{n}", title=f"{t} ({n})", summary=a, link=f"https://example.org/p{n}"
                    ),
                    source="bench",
                    authority=Authority.OTHER,
                    now=now,
                )
                for n, (t, a) in enumerate(papers[start : start + 5000], start=start)
            ]
            store_batch(store, "bench", batch, FetchDone(None, None, None, now), now=now)
        store.tagger = Tagger(specs)
        began = time.perf_counter()
        result = store.retag()
        took = time.perf_counter() - began
        print(
            f"retag: {result.papers:,} stored papers x {len(specs)} topics in {took:.1f} s "
            f"({result.added:,} assignments written); goal < 60 s"
        )
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--retag", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    papers = corpus(args.papers, rng)
    specs = topic_specs(load_config(ROOT / "config" / "aggregator.yaml"))
    specs += generated_topics(papers, max(0, args.topics - len(specs)), rng)
    tagger, automaton = Tagger(specs), baseline_automaton(specs)
    ratios = []
    for _ in range(args.runs):
        ours, tagged = run_ours(tagger, papers)
        base, hits = run_baseline(automaton, papers)
        ratios.append((len(papers) / ours) / (len(papers) / base))
        print(
            f"  ours {len(papers) / ours:,.0f} texts/s ({tagged:,} paper-topic matches); "
            f"baseline {len(papers) / base:,.0f} texts/s ({hits:,} term hits); ratio {ratios[-1]:.2f}"
        )
    ratio = statistics.median(ratios)
    print(
        f"tagging: {len(papers):,} papers x {len(specs)} topics: {ratio:.2f}x the Aho-Corasick baseline's "
        f"throughput (median of {args.runs}; goal >= 0.5)"
    )
    if args.retag:
        retag_store(specs, papers)
    sys.exit(0 if ratio >= 0.5 else 1)


if __name__ == "__main__":
    main()
