"""Score the configured topics against the gold dev labels, through the real matcher, in-process.

    python bench/eval_topics.py --papers PAPERS.jsonl  # per-topic TP/FP/FN, P, R, F1 and macro-F1
    python bench/eval_topics.py --papers ... --split   # the same on two fixed halves of the dev set
    python bench/eval_topics.py --papers ... --half a --errors rag  # one topic's FP and FN, on half a

Topics come from a config file (load_config -> runtime.topic_specs -> topics.match.Tagger); each dev
paper becomes a Document as a JSON-feed paper does (not an arXiv listing, source "eval"). Papers come
from --papers, the labelling set's papers.jsonl (3,097 real papers of mixed origin whose texts
may not be redistributed: it is not in the repository; pass its path), of which only the
labelled keys are used: a held-out paper's line is parsed for its key and dropped, its title and
abstract never looked at. The gold labels and the guide they follow are in bench/data/labels/.
For a false negative, --errors also shows what the query alone would have scored (no exclude, no
min_score), so a miss by the query, by `exclude` and by `min_score` can be told apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from aggregator.config import load_config
from aggregator.runtime import topic_specs
from aggregator.topics.document import Document
from aggregator.topics.match import Tagger
from aggregator.types import TopicMatch, TopicSpec

LABELS = Path(__file__).resolve().parent / "data" / "labels"  # gold labels and their guide
_KEPT = "\x00kept"  # slug suffix of the copy of a topic that keeps its `exclude` (for --errors)


@dataclass(frozen=True, slots=True)
class Paper:
    key: str
    title: str
    gold: frozenset[str]
    doc: Document


def half_of(key: str) -> str:
    """'a' or 'b', fixed by a hash of the key (about half each, independent of file order)."""
    return "ab"[hashlib.blake2b(key.encode(), digest_size=4).digest()[0] & 1]


def load_papers(papers: Path, labels: Path) -> list[Paper]:
    gold = {}
    for line in labels.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            gold[row["key"]] = frozenset(row["topics"])
    found: list[Paper] = []
    with papers.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if row["key"] not in gold:
                continue  # held-out paper: never read further
            doc = Document.build(
                title=row["title"],
                abstract=row.get("abstract") or "",
                authors=row.get("authors") or (),
                sources={"eval"},
                only_listings=False,
            )
            found.append(Paper(row["key"], row["title"], gold[row["key"]], doc))
    missing = len(gold) - len(found)
    if missing:
        print(f"warning: {missing} labelled papers not found in {papers}", file=sys.stderr)
    return found


def scores(papers: list[Paper], tagged: dict[str, set[str]], slugs: list[str]) -> tuple[list[str], float]:
    rows, f1s = [], []
    rows.append(f"{'topic':<20}{'n':>5}{'TP':>5}{'FP':>5}{'FN':>5}{'P':>7}{'R':>7}{'F1':>7}")
    for slug in slugs:
        tp = sum(1 for p in papers if slug in p.gold and slug in tagged[p.key])
        fp = sum(1 for p in papers if slug not in p.gold and slug in tagged[p.key])
        fn = sum(1 for p in papers if slug in p.gold and slug not in tagged[p.key])
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1s.append(f1)
        rows.append(f"{slug:<20}{tp + fn:>5}{tp:>5}{fp:>5}{fn:>5}{prec:>7.3f}{rec:>7.3f}{f1:>7.3f}")
    macro = sum(f1s) / len(f1s) if f1s else 0.0
    rows.append(f"{'macro-F1':<40}{macro:>27.3f}")
    return rows, macro


def explain(match: TopicMatch) -> str:
    return f"score {match.score:g}: {'; '.join(match.matched)}"


def show_errors(papers: list[Paper], tagger: Tagger, loose: Tagger, spec: TopicSpec) -> None:
    """False positives and negatives of one topic; a negative shows what its query alone scored."""
    slug, fps, fns = spec.slug, [], []
    for p in papers:
        got = {m.slug: m for m in tagger.tag(p.doc)}
        if slug in got and slug not in p.gold:
            fps.append((p, explain(got[slug])))
        elif slug in p.gold and slug not in got:
            raw = {m.slug: m for m in loose.tag(p.doc)}
            fns.append((p, _miss(raw.get(slug), raw.get(slug + _KEPT), spec.min_score)))
    for name, items in (("false positives", fps), ("false negatives", fns)):
        print(f"\n== {slug}: {len(items)} {name} ==")
        for p, why in items:
            other = ",".join(sorted(p.gold)) or "-"
            print(f"- [{p.key}] {p.title}\n    {why}  (gold: {other})")


def _miss(raw: TopicMatch | None, kept: TopicMatch | None, min_score: float) -> str:
    if raw is None:
        return "no query match"
    return explain(raw) + ("  [removed by exclude]" if kept is None else f"  [below min_score {min_score:g}]")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/aggregator.yaml", help="config file with the topics")
    ap.add_argument(
        "--papers", required=True, help="the labelling set's papers.jsonl (only labelled keys read)"
    )
    ap.add_argument("--labels", default=str(LABELS / "topics-dev.jsonl"), help="gold labels (JSON lines)")
    ap.add_argument("--split", action="store_true", help="also score each half of the dev set")
    ap.add_argument("--half", choices=("a", "b"), help="use only this half of the dev set")
    ap.add_argument("--errors", metavar="SLUG", help="list this topic's false positives and negatives")
    args = ap.parse_args(argv)

    specs = topic_specs(load_config(args.config))
    if args.errors and args.errors not in {s.slug for s in specs}:
        print(f"no topic {args.errors!r} in {args.config}", file=sys.stderr)
        return 2
    tagger = Tagger(specs)
    papers = load_papers(Path(args.papers), Path(args.labels))
    if args.half:
        papers = [p for p in papers if half_of(p.key) == args.half]
    labelled = sorted({t for p in papers for t in p.gold})
    missing = [s for s in labelled if s not in tagger.slugs]
    if missing:
        print(f"warning: topics in the labels but not in the config: {', '.join(missing)}", file=sys.stderr)
    tagged = {p.key: {m.slug for m in tagger.tag(p.doc)} for p in papers}

    print(f"{len(papers)} papers{f' (half {args.half})' if args.half else ''}, config {args.config}")
    print("\n".join(scores(papers, tagged, labelled)[0]))
    if args.split:
        for half in "ab":
            part = [p for p in papers if half_of(p.key) == half]
            rows, macro = scores(part, tagged, labelled)
            print(f"\nhalf {half}: {len(part)} papers, macro-F1 {macro:.3f}")
            print("\n".join(rows[1:-1]))
    if args.errors:
        spec = next(s for s in specs if s.slug == args.errors)
        loose = Tagger([_loose(s) for s in specs] + [replace(spec, slug=spec.slug + _KEPT, min_score=0.0)])
        show_errors(papers, tagger, loose, spec)
    return 0


def _loose(spec: TopicSpec) -> TopicSpec:
    """The query alone: no exclude, no min_score."""
    return replace(spec, exclude=None, min_score=0.0)


if __name__ == "__main__":
    sys.exit(main())
