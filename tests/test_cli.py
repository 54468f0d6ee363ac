"""The `aggregator` command as a user types it: ingest, check-config, db upgrade, AGGREGATOR_CONFIG."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect, text

from aggregator import create_app, open_store
from aggregator.cli import cli, main
from aggregator.config import load_config

DEDUP = Path(__file__).parent / "data" / "dedup-dev"
TRUTH = json.loads((DEDUP / "truth.json").read_text())
HEALTHY = {"blog": "blog.xml", "venue": "venue.atom"}
GARBAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Oops</h1></body></html>"
)
TABLES = {"sources", "papers", "sightings", "paper_keys", "store_meta"}
COUNTS = re.compile(r"(\d+) new, (\d+) updated, (\d+) unchanged")
SUMMARY = re.compile(r"(\d+) sources?, (\d+) failed; (\d+) new papers?, (\d+) updated")


@pytest.fixture(autouse=True)
def _no_aggregator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests name their config and store; a developer's own settings must not leak in."""
    for var in ("AGGREGATOR_CONFIG", "AGGREGATOR_DATABASE_URL", "AGGREGATOR_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


def write_config(folder: Path, database_url: str, sources: dict[str, str]) -> Path:
    """A config whose sources are file: URLs in `folder`; dedup-dev files are copied there."""
    lines = [f"database: {database_url}", "site:", "  base_url: http://papers.example.org", "sources:"]
    for source, file in sources.items():
        if (DEDUP / file).exists():
            shutil.copy(DEDUP / file, folder / file)
        lines += [f"  - name: {source}", f"    url: file:{file}"]
    path = folder / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(config: Path | None, *args: str, **kwargs: Any) -> Result:
    prefix = ["--config", str(config)] if config else []
    return CliRunner().invoke(cli, [*prefix, *args], **kwargs)


def source_lines(output: str) -> dict[str, str]:
    """`name  what happened` lines of the ingest summary, by source name."""
    found = {}
    for line in output.splitlines():
        name, _, rest = line.partition("  ")
        if name and rest and not SUMMARY.fullmatch(line):
            found[name] = rest.strip()
    return found


def api(config_path: Path, url: str) -> Any:
    config = load_config(config_path)
    store = open_store(config)
    try:
        return create_app(config, store=store).test_client().get(url).get_json()
    finally:
        store.close()


def stored_sightings(config_path: Path) -> dict[str, set[str]]:
    """Entry ids of every stored sighting, by source."""
    page = api(config_path, "/api/papers?limit=500")
    assert page["next"] is None
    found: dict[str, set[str]] = defaultdict(set)
    for paper in page["papers"]:
        for s in paper["sightings"]:
            found[s["source"]].add(s["entry_id"])
    return found


def truth_sightings(*names: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for s in TRUTH["sightings"]:
        if s["source"] in names:
            found[s["source"]].add(s["entry_id"])
    return found


def sources_by_name(config_path: Path) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in api(config_path, "/api/sources")["sources"]}


# --- ingest ----------------------------------------------------------------------------------


def test_ingest_all_reports_every_source_and_exits_1_when_one_fails(
    tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "garbage.html").write_bytes(GARBAGE)
    config = write_config(
        tmp_path, database_url, {**HEALTHY, "missing": "missing.xml", "garbage": "garbage.html"}
    )
    result = run(config, "ingest", "--all")
    assert result.exit_code == 1, result.output

    lines = source_lines(result.stdout)
    assert set(lines) == {"blog", "venue", "missing", "garbage"}, result.stdout
    new = 0
    for name in HEALTHY:
        counts = COUNTS.fullmatch(lines[name])
        assert counts, lines[name]
        assert sum(map(int, counts.groups())) == len(truth_sightings(name)[name])  # every entry counted
        new += int(counts[1])
    assert re.fullmatch(r"failed\s+fetch: .*missing\.xml.*", lines["missing"]), lines["missing"]
    assert re.fullmatch(r"failed\s+parse: .+", lines["garbage"]), lines["garbage"]

    summary = SUMMARY.fullmatch(result.stdout.splitlines()[-1])
    assert summary, result.stdout
    assert (int(summary[1]), int(summary[2]), int(summary[3])) == (4, 2, new)

    assert stored_sightings(config) == truth_sightings(*HEALTHY)  # the healthy sources' papers are kept
    health = sources_by_name(config)
    assert health["missing"]["ok"] is False and health["missing"]["last_error"].startswith("fetch:")
    assert health["garbage"]["ok"] is False and health["garbage"]["last_error"].startswith("parse:")
    assert health["blog"]["ok"] is True and health["blog"]["last_fetch"]


def test_ingest_all_healthy_exits_0_and_a_second_run_changes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    first = run(config, "ingest", "--all")
    assert first.exit_code == 0, first.output
    summary = SUMMARY.fullmatch(first.stdout.splitlines()[-1])
    assert summary and summary[2] == "0", first.stdout
    before = api(config, "/api/papers?limit=500")
    assert before["total"] > 0

    second = run(config, "ingest", "--all")
    assert second.exit_code == 0, second.output
    lines = source_lines(second.stdout)
    assert set(lines) == set(HEALTHY)
    for line in lines.values():
        assert line.startswith("not modified") or line.startswith("0 new"), line
    assert "0 new papers, 0 updated" in second.stdout.splitlines()[-1]
    assert api(config, "/api/papers?limit=500") == before


def test_ingest_without_flags_fetches_due_sources_only(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    first = run(config, "ingest")  # nothing fetched yet: every source is due
    assert first.exit_code == 0, first.output
    assert set(source_lines(first.stdout)) == set(HEALTHY)
    assert stored_sightings(config) == truth_sightings(*HEALTHY)

    second = run(config, "ingest")
    assert second.exit_code == 0, second.output
    assert "no source is due" in second.stdout
    assert not source_lines(second.stdout)


def test_ingest_source_touches_that_source_only(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    result = run(config, "ingest", "--source", "blog")
    assert result.exit_code == 0, result.output
    assert set(source_lines(result.stdout)) == {"blog"}
    assert stored_sightings(config) == truth_sightings("blog")
    health = sources_by_name(config)
    assert health["blog"]["last_fetch"] is not None
    assert health["venue"]["last_fetch"] is None

    rest = run(config, "ingest")  # venue is still due; blog is not
    assert rest.exit_code == 0, rest.output
    assert set(source_lines(rest.stdout)) == {"venue"}


def test_ingest_unknown_source_is_a_usage_error(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    result = run(config, "ingest", "--source", "nope")
    assert result.exit_code == 2
    assert "--source" in result.output and "nope" in result.output
    assert api(config, "/api/papers")["total"] == 0  # nothing was fetched


# --- check-config ----------------------------------------------------------------------------


def test_check_config_explains_a_good_config(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    result = run(config, "check-config")
    assert result.exit_code == 0, result.output
    for name in ("blog", "venue"):
        assert re.search(rf"^\s+{name}: ", result.stdout, re.M), result.stdout
    assert result.stdout.splitlines()[-1] == f"{config}: ok"


BAD = """\
database: {database_url}
colour: blue
sources:
  - name: blog
    url: file:blog.xml
    every: 6x
  - name: blog
    url: file:venue.atom
"""


def test_check_config_reports_every_problem_with_its_place(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(BAD.format(database_url=database_url))
    monkeypatch.setattr(sys, "argv", ["aggregator", "--config", str(config), "check-config"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "colour (line 2): unknown key" in err
    assert 'sources[0].every (line 6): "6x" is not a duration' in err
    assert 'sources[1].name (line 7): "blog" is used twice' in err
    assert "Traceback" not in err


def test_check_config_in_a_subprocess_exits_2_on_a_bad_config(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(BAD.format(database_url=database_url))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from aggregator.cli import main; main()",
            "--config",
            str(config),
            "check-config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")},
    )
    assert done.returncode == 2, done
    assert done.stderr.count("(line ") == 3, done.stderr
    assert "Traceback" not in done.stderr


def test_missing_config_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["aggregator", "--config", str(tmp_path / "nope.yaml"), "check-config"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert "config file not found" in capsys.readouterr().err


# --- db upgrade ------------------------------------------------------------------------------


def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path, empty_database_url: str) -> None:
    database_url = empty_database_url
    config = write_config(tmp_path, database_url, HEALTHY)
    engine = create_engine(database_url)
    try:
        assert not TABLES & set(inspect(engine).get_table_names())
        first = run(config, "db", "upgrade")
        assert first.exit_code == 0, first.output
        assert set(inspect(engine).get_table_names()) >= {*TABLES, "alembic_version"}
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert len(revision) == 1

        second = run(config, "db", "upgrade")
        assert second.exit_code == 0, second.output
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == revision
    finally:
        engine.dispose()


# --- AGGREGATOR_CONFIG -----------------------------------------------------------------------


def test_aggregator_config_env_names_the_config(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    checked = run(None, "check-config", env={"AGGREGATOR_CONFIG": str(config)})
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines()[-1] == f"{config}: ok"

    ingested = run(None, "ingest", "--all", env={"AGGREGATOR_CONFIG": str(config)})
    assert ingested.exit_code == 0, ingested.output
    assert set(source_lines(ingested.stdout)) == set(HEALTHY)
    assert stored_sightings(config) == truth_sightings(*HEALTHY)


def test_config_option_wins_over_aggregator_config_env(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    (tmp_path / "bad.yaml").write_text(BAD.format(database_url=database_url))
    result = run(config, "check-config", env={"AGGREGATOR_CONFIG": str(tmp_path / "bad.yaml")})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"{config}: ok"


def test_ingest_with_no_sources_says_so(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text(f"database: {database_url}\nsources: []\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "ingest", "--all"])
    assert result.exit_code == 0
    assert "no sources in" in result.output


def test_ingest_obeys_retry_after_and_back_off_unless_forced(
    tmp_path: Path, database_url: str, httpserver: Any
) -> None:
    """A cron job running `ingest --all` must not hammer a server that answered 429."""
    httpserver.expect_request("/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "3600"}
    )
    shutil.copy(DEDUP / "blog.xml", tmp_path / "blog.xml")
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"database: {database_url}\nfetch: {{allow_networks: [127.0.0.0/8]}}\nsources:\n"
        f"  - {{name: busy, url: '{httpserver.url_for('/busy')}'}}\n"
        "  - {name: blog, url: 'file:blog.xml'}\n"
    )
    first = run(config, "ingest", "--all")
    assert first.exit_code == 1 and "retry after 3600 s" in first.stdout
    assert len(httpserver.log) == 1
    again = run(config, "ingest", "--all")
    assert again.exit_code == 0, again.stdout
    assert re.search(
        r"^busy  skipped: backing off after 1 failed fetches, until .* \(--force", again.stdout, re.M
    )
    assert source_lines(again.stdout)["blog"].startswith("not modified")  # the others still run
    assert len(httpserver.log) == 1  # the busy server was left alone
    forced = run(config, "ingest", "--source", "busy", "--force")
    assert forced.exit_code == 1 and len(httpserver.log) == 2


def test_the_store_is_found_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative SQLite path is the config folder's: ingest from one folder, preview from another,
    and both see the same store; a command that would start a new store says where."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "elsewhere").mkdir()
    config = write_config(tmp_path / "conf", "sqlite:///var/papers.db", {"rss": "arxiv-rss.xml"})
    (tmp_path / "conf" / "var").mkdir()
    monkeypatch.chdir(tmp_path / "conf")
    first = run(config, "ingest", "--all")
    assert first.exit_code == 0, first.output
    assert f"note: no store at {tmp_path / 'conf' / 'var' / 'papers.db'} yet" in first.output
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = run(config, "preview", "model*")
    assert again.exit_code == 0, again.output
    assert "note: no store" not in again.output
    assert not again.output.startswith("0 papers")
    assert not list((tmp_path / "elsewhere").iterdir())  # nothing created where the command ran


def test_check_config_reports_a_local_source_that_is_not_there(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path / 's.db'}", {"rss": "arxiv-rss.xml", "gone": "gone.xml"}
    )
    result = run(config, "check-config")
    assert result.exit_code == 1
    assert f"sources[1] (gone): no such file: {tmp_path / 'gone.xml'}" in result.output
    assert "ok" not in result.output.splitlines()[-1]
    (tmp_path / "gone.xml").write_text("<rss/>")
    assert run(config, "check-config").exit_code == 0


def test_global_options_work_after_the_subcommand_too(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    aggregator_logger = logging.getLogger("aggregator")
    before = aggregator_logger.level
    try:
        result = CliRunner().invoke(cli, ["check-config", "--config", str(config), "-v"])
        assert result.exit_code == 0, result.output
        assert f"{config}: ok" in result.output
        assert aggregator_logger.level == logging.DEBUG
        result = CliRunner().invoke(cli, ["-v", "--config", str(config), "check-config"])
        assert result.exit_code == 0 and f"{config}: ok" in result.output
    finally:
        aggregator_logger.setLevel(before)
        logging.getLogger().setLevel(logging.WARNING)


def test_ingest_fetches_sources_at_once_and_reports_them_in_config_order(
    tmp_path: Path, database_url: str
) -> None:
    sources = {f"copy{n}": "blog.xml" for n in range(6)} | {"venue": "venue.atom"}
    config = write_config(tmp_path, database_url, sources)
    result = run(config, "ingest", "--all")
    assert result.exit_code == 0, result.output
    assert list(source_lines(result.output)) == list(sources)
