"""The ingest path's reads: the stored papers a batch may touch, found by the batch's identity
keys and titles; those found only through a title read light first (sightings.match_keys), and
in full only when a sighting of the batch could join them.

Part of one IngestWriter (store/writer.py): the rows it loads are those the writer updates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select, text

from aggregator.records import (
    MIN_TITLE_KEY,
    KnownPaper,
    StoredCandidates,
    StoredSighting,
    TitleReach,
)
from aggregator.store.bulk import chunks
from aggregator.store.codec import decode_match_keys, decode_sighting
from aggregator.store.schema import paper_keys, papers, sightings

ARXIV_KEY = "arxiv:"  # arXiv ids are found through papers.arxiv_id, not paper_keys
# A title carried by more papers than this ("Editorial", a series name) is generic: loading every
# paper that bears it would make each ingest slower than the last, and none of them could merge
# on the title alone anyway.
MAX_TITLE_CANDIDATES = 20
# Papers found only through a title are read light (sightings.match_keys, a few bytes a row) and
# loaded in full only when an incoming sighting could join them. False: every candidate is loaded
# in full, as before; the tests compare the two.
READ_LIGHT = True


class CandidateReads:
    """Reads the stored papers a batch may touch, keeping their rows and identity keys for the
    writer (`rows`, `keys`)."""

    conn: Connection
    rows: dict[int, Any]  # papers loaded in full, by id
    keys: dict[str, int]  # identity keys (not arXiv ids) met, with the paper holding each

    def load_candidates(
        self, changed: Sequence[StoredSighting], held: set[int], reach: TitleReach
    ) -> StoredCandidates:
        """The stored papers this batch may touch: in full those that hold its entries or share
        an identity key with it, and those found only through a shared title that `reach` says
        a sighting could join (or whose match keys are not known); the other same-titled ones
        only counted by title."""
        wanted = {k for s in changed for k in s.sighting.keys}
        arxiv_ids = sorted(k.removeprefix(ARXIV_KEY) for k in wanted if k.startswith(ARXIV_KEY))
        other_keys = sorted(k for k in wanted if not k.startswith(ARXIV_KEY))
        titles = sorted({s.sighting.title_key for s in changed if len(s.sighting.title_key) >= MIN_TITLE_KEY})
        ids = set(held)
        for chunk in chunks(arxiv_ids):
            ids.update(self.conn.scalars(select(papers.c.id).where(papers.c.arxiv_id.in_(chunk))))
        for chunk in chunks(other_keys):
            query = select(paper_keys.c.key, paper_keys.c.paper_id).where(paper_keys.c.key.in_(chunk))
            for key, pid in self.conn.execute(query):
                self.keys[key] = pid
                ids.add(pid)
        titled = self._title_candidates(titles) - ids
        reached, unread = self._read_light(titled, reach) if READ_LIGHT else (titled, {})
        return StoredCandidates(self.load_papers(ids | reached), unread)

    def load_papers(self, ids: set[int]) -> list[KnownPaper]:
        """These stored papers in full, with all their sightings, by id."""
        if not ids:
            return []
        members: dict[int, list[StoredSighting]] = {}
        loaded: list[int] = []
        rows = select(papers).order_by(papers.c.id)
        if self.conn.dialect.name == "postgresql":  # a merge starts from the latest committed paper
            rows = rows.with_for_update(of=papers)
        for chunk in chunks(sorted(ids)):
            for row in self.conn.execute(rows.where(papers.c.id.in_(chunk))).mappings():
                self.rows[row["id"]] = row
                loaded.append(row["id"])
            query = select(
                sightings.c.paper_id, sightings.c.first_seen, sightings.c.data, sightings.c.match_keys
            )
            for r in self.conn.execute(query.where(sightings.c.paper_id.in_(chunk))):
                known = decode_match_keys(r.match_keys)  # its family names, as written with it
                members.setdefault(r.paper_id, []).append(
                    StoredSighting.with_names(
                        decode_sighting(r.data), r.first_seen, frozenset(known[1]) if known else None
                    )
                )
        for chunk in chunks(sorted(ids)):  # keys already held by these papers need no insert
            for key, pid in self.conn.execute(
                select(paper_keys.c.key, paper_keys.c.paper_id).where(paper_keys.c.paper_id.in_(chunk))
            ):
                self.keys[key] = pid
        return [KnownPaper(pid, self.rows[pid]["first_seen"], tuple(members.get(pid, ()))) for pid in loaded]

    def _title_candidates(self, titles: Sequence[str]) -> set[int]:
        """The papers bearing each title, for every title that no more than MAX_TITLE_CANDIDATES
        papers bear; more, a generic title, which never decides alone. Read from the (title,
        paper) index, MAX_TITLE_CANDIDATES + 1 distinct papers a title at most: a title carried
        by thousands costs no more than one carried by twenty-one."""
        if self.conn.dialect.name == "postgresql":
            joined = "string_agg(CAST(paper_id AS TEXT), ' ')"
        else:
            joined = "group_concat(paper_id, ' ')"
        found: set[int] = set()
        for chunk in chunks(titles):
            marks = ", ".join(f"(:t{n})" for n in range(len(chunk)))
            query = text(
                f"WITH t(title) AS (VALUES {marks}) SELECT (SELECT {joined} FROM "
                "(SELECT DISTINCT paper_id FROM sightings WHERE title_key = t.title "
                f"ORDER BY paper_id LIMIT {MAX_TITLE_CANDIDATES + 1}) AS p) FROM t"
            )
            for (pids,) in self.conn.execute(query, {f"t{n}": title for n, title in enumerate(chunk)}):
                bearing = pids.split() if pids else ()
                if len(bearing) <= MAX_TITLE_CANDIDATES:
                    found.update(map(int, bearing))
        return found

    def _read_light(self, ids: set[int], reach: TitleReach) -> tuple[set[int], dict[str, int]]:
        """These papers, found only through a shared title, read light: their sightings' title
        keys and match_keys (a few bytes a row). Those `reach` says a sighting could join, and
        those with a sighting whose match keys are not known, go to be loaded in full; the others
        are only counted, by each of their title keys (a repeated title meets tens of thousands
        a batch, and an object for each, to be dropped at once, cost more than reading them)."""
        reached: set[int] = set()
        unread: dict[str, int] = {}
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        for chunk in chunks(sorted(ids)):  # a paper's rows all come in its id's chunk
            sql = (
                "SELECT paper_id, title_key, match_keys FROM sightings "
                f"WHERE paper_id IN ({', '.join([mark] * len(chunk))})"
            )
            rows: dict[int, list[tuple[str, str | None]]] = {}
            for pid, title, encoded in self.conn.exec_driver_sql(sql, tuple(chunk)):
                rows.setdefault(pid, []).append((title, encoded))
            for pid, sightings_of in rows.items():
                found = _match_keys(sightings_of)
                if found is None or reach.reaches(*found):
                    reached.add(pid)
                else:
                    for title in found[0]:
                        unread[title] = unread.get(title, 0) + 1
        return reached, unread


def _match_keys(rows: Iterable[tuple[str, str | None]]) -> tuple[set[str], list[str], list[str]] | None:
    """A paper's title keys (those long enough to merge on), identity keys and family names,
    from its sightings' (title_key, match_keys); None if one's are not known."""
    titles: set[str] = set()
    keys: list[str] = []
    names: list[str] = []
    for title, encoded in rows:
        decoded = decode_match_keys(encoded)
        if decoded is None:
            return None
        if len(title) >= MIN_TITLE_KEY:
            titles.add(title)
        keys += decoded[0]
        names += decoded[1]
    return titles, keys, names
