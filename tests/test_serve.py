"""`aggregator serve` as a real process on 127.0.0.1: it serves, fetches in the background, stops on SIGTERM.

Each test starts its own server on a free port and stops it (SIGTERM, then SIGKILL after 10 s).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

DEDUP = Path(__file__).parent / "data" / "dedup-dev"
HEALTHY = {"blog": "blog.xml", "venue": "venue.atom"}
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aggregator_command() -> list[str]:
    """The installed console script beside this Python, else the same entry point through -c."""
    script = Path(sys.executable).with_name("aggregator")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from aggregator.cli import main; sys.exit(main())"]


def write_config(folder: Path, database_url: str, sources: dict[str, str]) -> Path:
    lines = [f"database: {database_url}", "site:", "  base_url: http://papers.example.org", "sources:"]
    for name, file in sources.items():
        if (DEDUP / file).exists():
            shutil.copy(DEDUP / file, folder / file)
        lines += [f"  - name: {name}", f"    url: file:{file}"]
    path = folder / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float = START_TIMEOUT) -> T:
        """Call `probe` until it returns something truthy; fail if the server dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"server exited ({self.process.returncode}) waiting for {what}:\n{self.output()}")
            try:
                found = probe()
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                found = None
            if found:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout:g} s:\n{self.output()}")
            time.sleep(0.1)

    def wait_healthy(self) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status, body = self.get("/healthz")
            return body if status == 200 else None

        return self.wait_for("200 from /healthz", probe)


@contextmanager
def serving(tmp_path: Path, config: Path, *options: str) -> Iterator[Server]:
    port = free_port()
    command = [*aggregator_command(), "--config", str(config), "serve", "--host", "127.0.0.1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    log = tmp_path / f"serve-{port}.log"
    process = spawn([*command, "--port", str(port), *options], tmp_path, env, log)
    try:
        yield Server(process, f"http://127.0.0.1:{port}", log)
    finally:
        stop(process)


def spawn(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A server process in its own session (so that stop() can end all of it), output to log."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then SIGKILL to the whole session if it is not gone within STOP_TIMEOUT."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)
            return None
    return process.returncode


def test_serve_fetches_file_sources_in_the_background(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    with serving(tmp_path, config) as server:
        server.wait_healthy()

        def sources_done() -> dict[str, Any] | None:
            found = {s["name"]: s for s in server.get("/api/sources")[1]["sources"]}
            done = set(found) == set(HEALTHY) and all(s["last_fetch"] for s in found.values())
            return found if done else None

        sources = server.wait_for("both sources fetched", sources_done)
        for state in sources.values():
            assert state["ok"] is True and state["last_error"] is None, state
            assert state["last_success"] and state["next_fetch"] and state["entries"] > 0, state
        page = server.get("/api/papers?limit=500")[1]
        assert page["total"] == len(page["papers"]) > 0
        assert {s["source"] for p in page["papers"] for s in p["sightings"]} == set(HEALTHY)


def test_serve_no_fetch_fetches_nothing(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    with serving(tmp_path, config, "--no-fetch") as server:
        body = server.wait_healthy()
        assert body["status"] == "ok" and body["sources_failing"] == []
        time.sleep(2)
        status, page = server.get("/api/papers")
        assert status == 200 and page["total"] == 0 and page["papers"] == []
        sources = server.get("/api/sources")[1]["sources"]
        assert sorted(s["name"] for s in sources) == sorted(HEALTHY)  # listed, though never fetched
        assert all(s["last_fetch"] is None and s["entries"] == 0 for s in sources), sources
        assert "not fetching" in server.output()


@pytest.mark.parametrize("options", [["--no-fetch"], []], ids=["no-fetch", "fetching"])
def test_sigterm_stops_the_server(tmp_path: Path, database_url: str, options: list[str]) -> None:
    config = write_config(tmp_path, database_url, HEALTHY)
    with serving(tmp_path, config, *options) as server:
        server.wait_healthy()
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            code = server.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_TIMEOUT:g} s after SIGTERM:\n{server.output()}")
        assert code in (0, -signal.SIGTERM), server.output()
        assert time.monotonic() - started < STOP_TIMEOUT
        assert "Traceback" not in server.output()


def test_healthz_reports_a_failing_source_and_still_answers_200(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, {"blog": "blog.xml", "missing": "missing.xml"})
    with serving(tmp_path, config) as server:
        server.wait_healthy()

        def reported() -> tuple[int, dict[str, Any]] | None:
            status, body = server.get("/healthz")
            fetched = {s["name"] for s in body.get("sources", []) if s["last_fetch"]}
            return (status, body) if fetched >= {"blog", "missing"} else None

        status, body = server.wait_for("both sources fetched in /healthz", reported)
        assert status == 200
        assert body["status"] == "ok" and body["store"] == "ok"
        assert body["sources_failing"] == ["missing"]
        states = {s["name"]: s for s in body["sources"]}
        assert states["missing"]["ok"] is False and "last_error" not in states["missing"]
        assert states["blog"]["ok"] is True and states["blog"]["entries"] > 0
        _, detail = server.get("/api/sources")  # where the error's text is told
        errors = {s["name"]: s["last_error"] for s in detail["sources"]}
        assert errors["missing"].startswith("fetch: no such file")


def test_worker_fetches_due_sources_and_stops_on_sigterm(tmp_path: Path, database_url: str) -> None:
    from aggregator.config import load_config
    from aggregator.runtime import open_store
    from aggregator.store.repository import PageQuery

    config_path = write_config(tmp_path, database_url, HEALTHY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    with open(tmp_path / "worker.log", "wb") as log:
        process = subprocess.Popen(
            [*aggregator_command(), "--config", str(config_path), "worker"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            store = open_store(load_config(config_path), apply_topics=False)
            deadline = time.monotonic() + START_TIMEOUT
            states: dict[str, Any] = {}
            while time.monotonic() < deadline:
                states = {s.name: s for s in store.source_states()}
                if all(states.get(n) and states[n].last_success_at for n in HEALTHY):
                    break
                assert process.poll() is None, (tmp_path / "worker.log").read_text()
                time.sleep(0.2)
            assert all(states[n].last_success_at for n in HEALTHY)
            assert store.papers_page(PageQuery(limit=1)).total > 0
            store.close()
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                code = process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                raise
    assert code in (0, -signal.SIGTERM)
    # unattended, it says what each fetch did (INFO is its default level)
    log = (tmp_path / "worker.log").read_text()
    for name in HEALTHY:
        assert re.search(
            rf"INFO aggregator.scheduler: {name}: \d+ new, \d+ updated, \d+ unchanged in [\d.]+ s", log
        ), log


def test_gunicorn_with_the_repository_settings_serves_and_stops(tmp_path: Path, database_url: str) -> None:
    """The documented deployment: gunicorn with gunicorn.conf.py (gthread, preloaded app whose
    workers open their own connections)."""
    config = write_config(tmp_path, database_url, HEALTHY)
    subprocess.run([*aggregator_command(), "--config", str(config), "ingest", "--all"], check=True)
    port = free_port()
    settings = Path(__file__).parent.parent / "gunicorn.conf.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(AGGREGATOR_CONFIG=str(config), PORT=str(port), WEB_CONCURRENCY="2")
    log = tmp_path / "gunicorn.log"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = spawn([str(gunicorn), "-c", str(settings), "aggregator:create_app()"], tmp_path, env, log)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        server.wait_healthy()
        # Both workers up before anything else: a TERM that reaches gunicorn while it is still
        # forking the second can leave that worker running past the master's stop.
        server.wait_for("both workers", lambda: server.output().count("Booting worker with pid") >= 2)
        for _ in range(8):  # both workers answer, each on its own connections
            status, body = server.get("/api/papers?q=model*&limit=3")
            assert status == 200 and body["papers"], body
        status, body = server.get("/api/papers?q=" + "+OR+".join(f"w{n}*" for n in range(20)))
        assert status == 400 and "wildcards" in body["error"]
        assert "gthread" in server.output()
    finally:
        assert stop(process) == 0, server.output()
