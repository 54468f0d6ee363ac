"""Marginal cost of `aggregator ingest` on a big real feed, over feedparser.parse of the same bytes.

    python bench/bench_ingest.py BIG.xml EMPTY.xml [--runs 5]

Each run, interleaved so that machine noise hits every arm alike:
  * `aggregator ingest --all` of BIG into a fresh SQLite store, in a fresh process;
  * the same for EMPTY (start-up, imports and migrations: they cancel out);
  * `feedparser.parse(BIG bytes)` with default options, in a fresh process.
The figure is (big - empty) / parse, median over runs; the goal is <= 1.3, and peak RSS of the
big ingest <= 150 MB.

    python bench/bench_ingest.py BIG.xml EMPTY.xml --instructions

counts instructions under valgrind (callgrind) instead of timing: one slow run, but immune to the
noise of a shared machine (wall-clock ratios here swing by 0.3 from run to run).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARSE_ONLY = (
    "import sys, time, feedparser\n"
    "body = open(sys.argv[1], 'rb').read()\n"
    "t = time.perf_counter(); feedparser.parse(body); print(time.perf_counter() - t)\n"
)


CALLGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]


@contextmanager
def fresh_store(feed: Path) -> Iterator[Path]:
    """A config naming this feed as its one source, over an empty SQLite store; removed after."""
    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        shutil.copy(feed, folder / "feed.xml")
        config = folder / "config.yaml"
        config.write_text(
            f"database: sqlite:///{folder}/store.db\nsources:\n  - {{name: feed, url: 'file:feed.xml'}}\n"
        )
        yield config
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ingest_command(config: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "aggregator"), "--config", str(config), "ingest", "--all"]


def ingest_once(feed: Path) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one `aggregator ingest --all` of this feed into a fresh store."""
    with fresh_store(feed) as config:
        start = time.perf_counter()
        child = subprocess.Popen(ingest_command(config), stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"ingest of {feed} failed")
        return elapsed, usage.ru_maxrss


def parse_once(feed: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, str(feed)], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def instructions(command: list[str]) -> int:
    """Instructions a command executes, counted by callgrind."""
    out = subprocess.run([*CALLGRIND, *command], capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", out.stderr)[1])  # type: ignore[index]


def count_instructions(big: Path, empty: Path) -> None:
    counts = {}
    for name, feed in (("big", big), ("empty", empty)):
        with fresh_store(feed) as config:
            counts[name] = instructions(ingest_command(config))
    start_only = "import sys, feedparser; body = open(sys.argv[1], 'rb').read()"
    parse_total = instructions([sys.executable, "-c", start_only + "; feedparser.parse(body)", str(big)])
    parse_start = instructions([sys.executable, "-c", start_only, str(big)])
    parse = parse_total - parse_start
    ratio = (counts["big"] - counts["empty"]) / parse
    print(
        f"instructions: ingest big {counts['big']:,}, empty {counts['empty']:,}; feedparser.parse {parse:,}"
    )
    print(f"ingest marginal cost: {ratio:.2f}x feedparser.parse in instructions (goal <= 1.3)")
    sys.exit(0 if ratio <= 1.3 else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("big", type=Path)
    parser.add_argument("empty", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind")
    args = parser.parse_args()
    if args.instructions:
        count_instructions(args.big, args.empty)
    ratios, peaks, rows = [], [], []
    for _ in range(args.runs):
        big, peak = ingest_once(args.big)
        empty, _ = ingest_once(args.empty)
        parse = parse_once(args.big)
        ratios.append((big - empty) / parse)
        peaks.append(peak)
        rows.append(f"  big {big:.3f} s  empty {empty:.3f} s  parse {parse:.3f} s  ratio {ratios[-1]:.2f}")
    print("\n".join(rows))
    ratio = statistics.median(ratios)
    print(
        f"ingest marginal cost: {ratio:.2f}x feedparser.parse (median of {args.runs}; goal <= 1.3); "
        f"peak RSS {max(peaks) / 1024:.0f} MB (goal <= 150)"
    )
    sys.exit(0 if ratio <= 1.3 and max(peaks) <= 150 * 1024 else 1)


if __name__ == "__main__":
    main()
