"""A page's papers read by id on PostgreSQL: `= ANY` of one array (store/bulk.py `among`, as
shipped) against IN lists of bound parameters (as SQLite reads them), interleaved in one process.

    python bench/bench_reads.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/bench_s_1000000 \
        [--pages 40] [--rounds 6]

The store is one bench_search.py builds (any PostgreSQL store with a topic of enough papers). The
ids are those of the biggest topic's newest papers, --pages pages of 200 in feed order; each page
is read as a feed page reads it (`StoreReads._views`: the papers, their sightings and their
topics, three statements), on a fresh connection, in --rounds rounds alternating the two ways.
Figures: median wall and CPU (this process) per page, and the ratio ANY / IN. Exit status 0 when
the array is not slower.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, func, select

from aggregator.store import bulk, reads, tagging
from aggregator.store.repository import Store
from aggregator.store.schema import paper_topics

PAGE = 200


def in_lists(conn: Connection, column: Any, ids: Sequence[int]) -> Iterator[Any]:
    """The other way: an IN list of bound parameters per CHUNK ids, on either database."""
    for chunk in bulk.chunks(ids):
        yield column.in_(chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, help="a PostgreSQL store's URL")
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    store = Store.open(args.postgres)
    with store.engine.connect() as conn:
        slug = conn.execute(
            select(paper_topics.c.slug).group_by(paper_topics.c.slug).order_by(func.count().desc()).limit(1)
        ).scalar_one()
        ids = list(
            conn.scalars(
                select(paper_topics.c.paper_id)
                .where(paper_topics.c.slug == slug)
                .order_by(paper_topics.c.published.desc(), paper_topics.c.paper_id.desc())
                .limit(args.pages * PAGE)
            )
        )
    pages = [ids[k : k + PAGE] for k in range(0, len(ids), PAGE)]
    ways = {"any": bulk.among, "in": in_lists}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    try:
        for n in range(args.rounds):
            for name in ways if n % 2 == 0 else reversed(list(ways)):
                reads.among = tagging.among = ways[name]  # type: ignore[assignment]  # the readers' own names
                for page in pages:
                    with store.engine.connect() as conn:
                        cpu, wall = time.process_time(), time.perf_counter()
                        store._views(conn, page)
                        times[name].append(
                            ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
                        )
    finally:
        reads.among = tagging.among = bulk.among
        store.close()
    walls = {name: statistics.median(w for w, _ in found) for name, found in times.items()}
    cpus = {name: statistics.median(c for _, c in found) for name, found in times.items()}
    print(f"{len(pages)} pages of {PAGE} papers of topic {slug!r}, {args.rounds} rounds, median per page:")
    for name in ways:
        print(f"  {name:3s}: {walls[name]:.2f} ms wall, {cpus[name]:.2f} ms CPU")
    print(f"ANY / IN: {walls['any'] / walls['in']:.2f}x wall, {cpus['any'] / cpus['in']:.2f}x CPU")
    sys.exit(0 if walls["any"] <= walls["in"] else 1)


if __name__ == "__main__":
    main()
