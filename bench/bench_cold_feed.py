"""The cold 200-entry topic feed alone, as bench_search.py measures it, on the stores it built:
for comparing two versions of the code, whole processes alternated.

    python bench/bench_cold_feed.py --workdir /work/bench-s [--size 1000000] [--rounds 2] \
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/bench_s] [--no-sqlite]

Each round asks the biggest topic's feed at 11 offsets never asked before in this process (so the
response cache cannot answer), one request at a time through the app's test client, after the
store was read into the page cache, with the app frozen out of the collector as the server
freezes it (bench_search's InProcess does); the figure is the median wall time of the 11 (and
this process's CPU time). The stores are bench_search.py's (`--workdir`, and `<name>_<size>`
databases on --postgres); this never builds one.

To set one commit beside another, run this file from a worktree of each in turn, a few times:
the code imported is the one beside this file. Exit status 0 when every median is within
bench_search.py's goal (40 ms).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_search as bs

GOAL_MS = 40.0
OFFSETS = 11


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="where bench_search.py keeps its stores")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", help="base URL of bench_search.py's PostgreSQL stores")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    folder = args.workdir.resolve()
    targets = []
    if args.postgres:
        info = json.loads((folder / f"pg-{args.size}.json").read_text())
        targets.append(bs.Target("postgresql", args.size, f"{args.postgres}_{args.size}", info))
    if not args.no_sqlite:
        if not (folder / f"store-{args.size}.db").exists():
            raise SystemExit(f"bench_cold_feed: no store-{args.size}.db in {folder}: run bench_search.py")
        targets.append(bs.sqlite_target(folder, args.size, [], []))
    apps = []
    for target in targets:
        bs.warm_cache(target)
        apps.append(bs.InProcess(folder, target))
    slug = max(targets[0].info["topics"], key=targets[0].info["topics"].get)
    ok = True
    for number in range(args.rounds):
        for app in apps:
            first = 1 + number * 2 * OFFSETS  # offsets no earlier round asked
            offsets = range(first, first + OFFSETS)
            paths = [f"/feeds/{slug}.atom?limit={bs.FEED_LIMIT}&offset={k}" for k in offsets]
            got = app.both(paths)
            ok = ok and got["wall"] <= GOAL_MS
            print(
                f"round {number + 1} {app.target.name}: median {got['wall']:.1f} ms "
                f"(CPU {got['cpu']:.1f}; {min(got['walls']):.0f}-{max(got['walls']):.0f})",
                flush=True,
            )
    for app in apps:
        app.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
