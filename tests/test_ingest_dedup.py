"""The dedup-dev set through the CLI and /api/papers, as a user would: one record per real paper."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator import create_app
from aggregator.cli import cli
from aggregator.config import load_config

DEDUP = Path(__file__).parent / "data" / "dedup-dev"


def bcubed(pred: dict[tuple[str, str], object], true: dict[tuple[str, str], str]) -> tuple[float, float]:
    """B-cubed precision and recall of a clustering of sightings against the truth."""
    by_pred: dict[object, set[tuple[str, str]]] = defaultdict(set)
    by_true: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for item, cluster in pred.items():
        by_pred[cluster].add(item)
    for item, cluster in true.items():
        by_true[cluster].add(item)
    precision = sum(len(by_pred[pred[i]] & by_true[true[i]]) / len(by_pred[pred[i]]) for i in true) / len(
        true
    )
    recall = sum(len(by_pred[pred[i]] & by_true[true[i]]) / len(by_true[true[i]]) for i in true) / len(true)
    return precision, recall


def write_config(folder: Path, database_url: str, order: list[str]) -> Path:
    truth = json.loads((DEDUP / "truth.json").read_text())
    lines = [f"database: {database_url}", "site:", "  base_url: http://papers.example.org", "sources:"]
    for name in order:
        shutil.copy(DEDUP / truth["sources"][name], folder / truth["sources"][name])
        lines += [f"  - name: {name}", f"    url: file:{truth['sources'][name]}"]
    path = folder / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def all_papers(config_path: Path) -> list[dict]:
    app = create_app(load_config(config_path))
    client = app.test_client()
    papers, url = [], "/api/papers?limit=7"
    while url:
        page = client.get(url).get_json()
        papers += page["papers"]
        url = page["next"] and page["next"].removeprefix("http://papers.example.org")
    return papers


def clustering(papers: list[dict]) -> dict[tuple[str, str], object]:
    return {(s["source"], s["entry_id"]): p["id"] for p in papers for s in p["sightings"]}


ORDERS = {
    "authoritative-first": ["arxiv-rss", "arxiv-api", "hf-daily", "blog", "venue"],
    "authoritative-last": ["venue", "blog", "hf-daily", "arxiv-api", "arxiv-rss"],
}


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_dedup_dev_through_the_cli_and_api(tmp_path: Path, database_url: str, order: list[str]) -> None:
    config_path = write_config(tmp_path, database_url, order)
    result = CliRunner().invoke(cli, ["--config", str(config_path), "ingest", "--all"])
    assert result.exit_code == 0, result.output
    papers = all_papers(config_path)

    truth = json.loads((DEDUP / "truth.json").read_text())
    true = {(s["source"], s["entry_id"]): s["cluster"] for s in truth["sightings"]}
    pred = clustering(papers)
    assert set(pred) == set(true), "every sighting is kept"
    precision, recall = bcubed(pred, true)
    assert precision == 1.0
    assert recall >= 0.98
    assert len(papers) == truth["clusters"]


def test_result_does_not_depend_on_ingest_order(tmp_path: Path, database_url: str) -> None:
    results = []
    for n, order in enumerate(ORDERS.values()):
        folder = tmp_path / str(n)
        folder.mkdir()
        url = database_url if n == 0 else f"sqlite:///{folder / 'store.db'}"
        config_path = write_config(folder, url, order)
        assert CliRunner().invoke(cli, ["--config", str(config_path), "ingest", "--all"]).exit_code == 0
        papers = all_papers(config_path)
        results.append(
            {
                p["arxiv_id"] or p["title"]: (
                    p["title"],
                    p["authors"],
                    p["abstract"],
                    p["version"],
                    p["categories"],
                    p["upvotes"],
                )
                for p in papers
            }
        )
    assert results[0] == results[1]


def test_reingesting_the_same_data_changes_nothing(tmp_path: Path, database_url: str) -> None:
    config_path = write_config(tmp_path, database_url, ORDERS["authoritative-first"])
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config_path), "ingest", "--all"]).exit_code == 0
    before = all_papers(config_path)
    for name in ORDERS["authoritative-first"]:  # touch the files: same bytes, new mtime, re-read
        (tmp_path / json.loads((DEDUP / "truth.json").read_text())["sources"][name]).touch()
    second = runner.invoke(cli, ["--config", str(config_path), "ingest", "--all"])
    assert second.exit_code == 0
    assert "0 new papers, 0 updated" in second.output
    assert all_papers(config_path) == before
