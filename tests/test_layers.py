"""Imports point down the pipeline: `types`, `records`, `text` and `errors` at the bottom; the
stages (`ingest`, `topics`) above them; the store, which persists what the stages decided, below
`publish` and `web`. Read from the source with `ast`, so a new import that points the wrong way
fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "aggregator"

# The bottom of the package: plain values, the stages' interfaces and pure text functions.
BOTTOM = {"types", "records", "text", "errors"}
# What each layer may import of the package besides itself and the bottom.
ALLOWED = {
    "types": set(),
    "records": {"types", "text"},
    "text": set(),
    "errors": set(),
    "ingest": {"config", "collector"},
    "topics": set(),
    "publish": set(),
    "store": {"topics.index_query"},
    "config": {"topics.query"},
    "metrics": set(),
    "collector": set(),
    "runtime": {"config", "store", "topics"},
    "scheduler": {"config", "ingest", "metrics"},
    "web": {"config", "runtime", "store", "topics", "publish", "metrics"},
    "cli": {"config", "runtime", "store", "topics", "ingest", "scheduler", "web", "collector"},
    "__init__": {"config", "runtime", "web"},
    "__main__": {"cli"},
}
# Modules with more than their layer: the pipeline runs the stages and hands the store their plans.
MODULE_ALLOWED = {"ingest.pipeline": {"store"}}


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
    rules = ALLOWED[layer] | MODULE_ALLOWED.get(importer, set())
    if layer in BOTTOM:
        return imported in ALLOWED[layer]
    if imported in BOTTOM:
        return True
    return any(imported == rule or imported.startswith(rule + ".") for rule in rules)


def test_imports_point_down_the_pipeline() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        importer = module_name(path)
        wrong += [
            f"{importer} imports {imported}"
            for imported in sorted(imports(path))
            if not allowed(importer, imported)
        ]
    assert wrong == [], "\n".join(wrong)


def test_the_rules_refuse_what_used_to_point_up() -> None:
    # The imports this layout took out: the store running dedupe and the tagger, topics and the
    # web reaching into ingest for text functions, the bottom importing anything above it.
    for importer, imported in [
        ("store.writer", "ingest.dedupe"),
        ("store.repository", "topics.match"),
        ("store.tagging", "topics.match"),
        ("topics.match", "ingest.normalize"),
        ("web.pages", "ingest.normalize"),
        ("text", "types"),
        ("records", "ingest.dedupe"),
        ("ingest.normalize", "store.repository"),
    ]:
        assert not allowed(importer, imported), (importer, imported)
    assert allowed("ingest.pipeline", "store.repository")
    assert allowed("store.writer", "records")


def test_no_module_is_over_400_lines() -> None:
    # One job per module: past this size a module has usually taken on a second one.
    long = {
        module_name(path): n
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}
