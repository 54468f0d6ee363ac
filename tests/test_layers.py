"""Imports point down the pipeline: `types`, `text` and `errors` at the bottom; the stages
(`ingest`, `topics`) above them; the store below `publish` and `web`. Read from the source with
`ast`, so a new import that points the wrong way fails here, not in review. The store's calls
into the stages are the known debt docs/architecture.md names: listed below one by one, so that
the list can only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "aggregator"

# The bottom of the package: plain values and pure text functions, importing nothing of it.
BOTTOM = {"types", "text", "errors"}
# What each layer may import of the package besides itself and the bottom.
ALLOWED = {
    "types": set(),
    "text": set(),
    "errors": set(),
    "ingest": {"config"},
    "topics": set(),
    "publish": set(),
    "store": {"topics.index_query"},
    "config": {"topics.query"},
    "metrics": set(),
    "runtime": {"config", "store", "topics"},
    "scheduler": {"ingest", "metrics"},
    "web": {"config", "runtime", "store", "topics", "publish", "metrics"},
    "cli": {"config", "runtime", "store", "topics", "ingest", "scheduler", "web"},
    "__init__": {"config", "runtime", "web"},
    "__main__": {"cli"},
}
# Imports that point the wrong way today (the issue "One place per fact" takes them out).
KNOWN_DEBT = {
    ("ingest.pipeline", "store.repository"),  # the pipeline hands the store its batch
    ("store.repository", "ingest.dedupe"),  # the store runs the dedupe decision
    ("store.writer", "ingest.dedupe"),
    ("store.repository", "topics.match"),  # and the tagger
    ("store.writer", "topics.match"),
    ("store.tagging", "topics.match"),
    ("store.pages", "topics.match"),
}


def imports(path: Path) -> set[str]:
    """The package modules a file imports, as dotted names below `aggregator`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aggregator"):
            found.add(node.module.removeprefix("aggregator").lstrip("."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("aggregator.") for a in node.names if a.name.startswith("aggregator.")
            )
    return {name for name in found if name}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def allowed(importer: str, imported: str) -> bool:
    layer = importer.split(".")[0]
    if imported.split(".")[0] == layer:
        return True
    if layer in BOTTOM:
        return False
    if imported in BOTTOM:
        return True
    return any(imported == rule or imported.startswith(rule + ".") for rule in ALLOWED[layer])


def test_imports_point_down_the_pipeline() -> None:
    wrong = []
    debts_seen = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        importer = module_name(path)
        for imported in imports(path):
            if allowed(importer, imported):
                continue
            if (importer, imported) in KNOWN_DEBT:
                debts_seen.add((importer, imported))
                continue
            wrong.append(f"{importer} imports {imported}")
    assert wrong == [], "\n".join(wrong)
    # A debt paid off leaves the list too: it must not come back unnoticed.
    assert debts_seen == KNOWN_DEBT, sorted(KNOWN_DEBT - debts_seen)
