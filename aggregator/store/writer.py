"""The ingest write path: find the papers a batch may touch, then write the dedupe plans in bulk.

One IngestWriter lives for one source's transaction. Lookups are batched (one IN query per kind
of key), writes go through the driver's executemany (store/bulk.py), and every new or changed
paper is tagged with the configured topics and written to the full-text index (store/search.py)
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, text, update

from aggregator.records import (
    MIN_TITLE_KEY,
    ClusterPlan,
    KnownPaper,
    PaperRecord,
    PaperTagger,
    PaperText,
    StoredSighting,
    TitleStub,
)
from aggregator.store.bulk import bulk_insert, chunks, insert_ignore
from aggregator.store.codec import decode_match_keys, decode_sighting, encode_match_keys
from aggregator.store.rows import content_digest, indexed_plan, paper_text, paper_values
from aggregator.store.schema import paper_keys, paper_topics, papers, sightings
from aggregator.store.search import delete_index, write_index
from aggregator.topics.index_query import indexed_text

ARXIV_KEY = "arxiv:"  # arXiv ids are found through papers.arxiv_id, not paper_keys
# A title carried by more papers than this ("Editorial", a series name) is generic: loading every
# paper that bears it would make each ingest slower than the last, and none of them could merge
# on the title alone anyway.
MAX_TITLE_CANDIDATES = 20
# Papers found only through a title are read as TitleStubs (sightings.match_keys, a few bytes a
# row) and loaded in full only when an incoming sighting could join them. False: every candidate
# is loaded in full, as before; the tests compare the two.
TITLE_STUBS = True
_NO_TITLES: frozenset[str] = frozenset()
SUBSTANCE = ("title", "abstract", "authors", "version")  # a change here is a real update for readers


class IngestWriter:
    """Loads the papers a batch may touch and writes the plans for them, in bulk, in one transaction."""

    def __init__(
        self,
        conn: Connection,
        now: datetime,
        encoded: dict[str, tuple[str, str]],
        stored_entries: set[str],
        *,
        mint_feed_id: Callable[[PaperRecord, StoredSighting], str],
        tagger: PaperTagger | None = None,
    ) -> None:
        self.conn, self.now = conn, now
        self.mint_feed_id = mint_feed_id
        self.tagger = tagger
        self.encoded = encoded  # entry id -> (data, hash) of this source's batch
        self.stored_entries = stored_entries  # entry ids of this source already in the store
        self.rows: dict[int, Any] = {}
        self.keys: dict[str, int] = {}
        self.removed = 0  # stored papers merged into others (deleted) by this batch

    def load_candidates(
        self, changed: Sequence[StoredSighting], held: set[int]
    ) -> tuple[list[KnownPaper], list[TitleStub]]:
        """The stored papers this batch may touch: in full those that hold its entries or share
        an identity key with it; those found only through a shared title as TitleStubs (in
        full when their match keys are not known). The caller loads in full, by `load_papers`,
        the stubs a sighting could join (dedupe.stubs_to_load)."""
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
        stubs = self._stubs(titled) if TITLE_STUBS else {}
        ids |= titled - stubs.keys()
        return self.load_papers(ids), sorted(stubs.values(), key=lambda stub: stub.id)

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
                    StoredSighting.with_names(decode_sighting(r.data), r.first_seen, known and known[1])
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

    def _stubs(self, ids: set[int]) -> dict[int, TitleStub]:
        """These papers as TitleStubs, from their sightings' title keys and match_keys (a few
        bytes a row, read straight from the driver); a paper with a sighting whose match_keys are
        not known is left out, to be loaded in full."""
        stubs: dict[int, TitleStub] = {}
        unknown: set[int] = set()
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        for chunk in chunks(sorted(ids)):
            sql = (
                "SELECT paper_id, title_key, match_keys FROM sightings "
                f"WHERE paper_id IN ({', '.join([mark] * len(chunk))})"
            )
            for pid, title, encoded in self.conn.exec_driver_sql(sql, tuple(chunk)).all():
                decoded = decode_match_keys(encoded)
                if decoded is None:
                    unknown.add(pid)
                    continue
                titles = frozenset((title,)) if len(title) >= MIN_TITLE_KEY else _NO_TITLES
                stub = TitleStub(pid, titles, *decoded)
                seen = stubs.get(pid)
                if seen is not None:  # a paper seen more than once: all its sightings together
                    stub = TitleStub(
                        pid, seen.title_keys | stub.title_keys, seen.keys | stub.keys, seen.names | stub.names
                    )
                stubs[pid] = stub
        for pid in unknown:
            stubs.pop(pid, None)
        return stubs

    def apply(self, plans: list[ClusterPlan]) -> tuple[int, int]:
        """Write every plan; returns (papers created, papers changed)."""
        fresh = [p for p in plans if p.survivor is None]
        ids = self._insert_papers(fresh)
        self._absorb(plans)
        updates: list[dict[str, Any]] = []
        changed = [p for p in plans if p.survivor is not None and self._update_paper(p, updates)]
        self._write_updates(updates)
        owner = {id(p): pid for p, pid in zip(fresh, ids, strict=True)}
        owner.update({id(p): p.survivor for p in plans if p.survivor is not None})
        self._write_sightings(plans, owner)
        self._write_keys(plans, owner)
        if self.tagger is not None:
            texts = [(p, self._text(p)) for p in fresh + changed]
            self._write_topics(texts, owner, replace={owner[id(p)] for p in changed})
            entries = [(owner[id(p)], indexed_text(t)) for p, t in texts]  # the atoms tagging made
        else:  # no tagging: the index takes its atoms straight from the record
            entries = [(owner[id(p)], indexed_plan(p)) for p in fresh + changed]
        write_index(self.conn, entries[: len(fresh)], replace=False)
        write_index(self.conn, entries[len(fresh) :], replace=True)
        return len(fresh), len(changed)

    @staticmethod
    def _text(plan: ClusterPlan) -> PaperText:
        return paper_text(plan.record, [(s.sighting.source, s.sighting.authority) for s in plan.sightings])

    def _insert_papers(self, plans: list[ClusterPlan]) -> list[int]:
        if not plans:
            return []
        rows = []
        for plan in plans:
            values = paper_values(plan.record)
            published = plan.record.published or plan.record.first_seen
            first = min(plan.sightings, key=lambda s: (s.first_seen, s.sighting.source, s.sighting.entry_id))
            rows.append(
                {
                    **values,
                    "feed_id": self.mint_feed_id(plan.record, first),
                    "published": published,
                    "updated": max(published, plan.record.source_updated or published),
                    "first_seen": plan.record.first_seen,
                    "content_hash": content_digest(plan, values),
                }
            )
        self._avoid_taken_ids(plans, rows)
        bulk_insert(self.conn, papers, rows)
        # One batched lookup of the new ids: a multi-row INSERT cannot return them in order on SQLite.
        feed_ids = [row["feed_id"] for row in rows]
        found: dict[str, int] = {}
        query = select(papers.c.feed_id, papers.c.id)
        for chunk in chunks(feed_ids):
            found.update((f, i) for f, i in self.conn.execute(query.where(papers.c.feed_id.in_(chunk))))
        return [found[f] for f in feed_ids]

    def _avoid_taken_ids(self, plans: list[ClusterPlan], rows: list[dict[str, Any]]) -> None:
        """An arXiv abstract URL already held by an older paper (whose arXiv id was corrected
        since) cannot be minted again: ids never move, so the new paper gets a tag: URI."""
        minted = [row["feed_id"] for row in rows if row["feed_id"].startswith("https://arxiv.org/abs/")]
        taken: set[str] = set()
        for chunk in chunks(minted):
            taken.update(self.conn.scalars(select(papers.c.feed_id).where(papers.c.feed_id.in_(chunk))))
        for plan, row in zip(plans, rows, strict=True):
            if row["feed_id"] in taken:
                first = min(
                    plan.sightings, key=lambda s: (s.first_seen, s.sighting.source, s.sighting.entry_id)
                )
                row["feed_id"] = self.mint_feed_id(replace(plan.record, arxiv_id=None), first)

    def _absorb(self, plans: list[ClusterPlan]) -> None:
        """Every paper a plan absorbs handed over to its survivor (sightings and keys) and
        deleted, for all the plans at once: each absorbed paper has one survivor, which no plan
        absorbs, so the order does not matter."""
        survivor_of = {gone: p.survivor for p in plans if p.survivor is not None for gone in p.absorbed}
        if not survivor_of:
            return
        moves = [{"b_gone": gone, "b_survivor": survivor} for gone, survivor in survivor_of.items()]
        for table in (sightings, paper_keys):
            self.conn.execute(
                update(table)
                .where(table.c.paper_id == bindparam("b_gone"))
                .values(paper_id=bindparam("b_survivor")),
                moves,
            )
        for chunk in chunks(sorted(survivor_of)):
            self.conn.execute(delete(papers).where(papers.c.id.in_(chunk)))
        self.removed += len(survivor_of)
        if self.conn.dialect.name != "postgresql":  # there, the index row goes by cascade
            delete_index(self.conn, survivor_of)
        for key, pid in list(self.keys.items()):
            if pid in survivor_of:
                self.keys[key] = survivor_of[pid]

    def _update_paper(self, plan: ClusterPlan, updates: list[dict[str, Any]]) -> bool:
        """Queue the refresh of the survivor's record in `updates` (for `_write_updates`); True
        if readers see a change (an absorbed paper is one)."""
        assert plan.survivor is not None
        old = self.rows[plan.survivor]
        values = paper_values(plan.record)
        content_hash = content_digest(plan, values)
        if content_hash == old["content_hash"] and not plan.absorbed:
            return False
        published = plan.record.published or plan.record.first_seen
        updated = old["updated"]
        if any(values[name] != old[name] for name in SUBSTANCE):
            source_updated = plan.record.source_updated
            updated = source_updated if source_updated and source_updated > updated else self.now
        updates.append(
            {
                **values,
                "published": published,
                "updated": max(updated, published),
                "first_seen": plan.record.first_seen,
                "content_hash": content_hash,
                "b_id": plan.survivor,
            }
        )
        return True

    def _write_updates(self, updates: list[dict[str, Any]]) -> None:
        """The refreshed records of the surviving papers, in one executemany (each plan has its
        own survivor, which no other plan absorbs: the order of the writes does not matter)."""
        if not updates:
            return
        names = [name for name in updates[0] if name != "b_id"]
        self.conn.execute(
            update(papers)
            .where(papers.c.id == bindparam("b_id"))
            .values({name: bindparam(name, type_=papers.c[name].type) for name in names}),
            updates,
        )

    def _write_sightings(self, plans: list[ClusterPlan], owner: dict[int, int]) -> None:
        inserts, updates = [], []
        for plan in plans:
            for stored in plan.changed:
                s = stored.sighting
                data, data_hash = self.encoded[s.entry_id]
                row = {
                    "paper_id": owner[id(plan)],
                    "authority": int(s.authority),
                    "link": s.link,
                    "title_key": s.title_key,
                    "data": data,
                    "data_hash": data_hash,
                    "match_keys": encode_match_keys(s.keys, stored.names),
                }
                if s.entry_id not in self.stored_entries:
                    inserts.append(
                        {**row, "source": s.source, "entry_id": s.entry_id, "first_seen": self.now}
                    )
                else:
                    updates.append({**row, "b_source": s.source, "b_entry_id": s.entry_id})
        if inserts:
            bulk_insert(self.conn, sightings, inserts)
        if updates:
            self.conn.execute(
                update(sightings)
                .where(
                    sightings.c.source == bindparam("b_source"),
                    sightings.c.entry_id == bindparam("b_entry_id"),
                )
                .values(
                    paper_id=bindparam("paper_id"),
                    authority=bindparam("authority"),
                    link=bindparam("link"),
                    title_key=bindparam("title_key"),
                    data=bindparam("data"),
                    data_hash=bindparam("data_hash"),
                    match_keys=bindparam("match_keys"),
                ),
                updates,
            )

    def _write_topics(
        self, texts: list[tuple[ClusterPlan, PaperText]], owner: dict[int, int], replace: set[int]
    ) -> None:
        """The topics of every new or changed paper, tagged from its merged record."""
        assert self.tagger is not None
        if replace:
            self.conn.execute(delete(paper_topics).where(paper_topics.c.paper_id.in_(sorted(replace))))
        rows = []
        for plan, paper in texts:
            record = plan.record
            published = record.published or record.first_seen
            for match in self.tagger.tag_paper(paper):
                rows.append(
                    {
                        "slug": match.slug,
                        "paper_id": owner[id(plan)],
                        "score": match.score,
                        "matched": list(match.matched),
                        "published": published,
                    }
                )
        if rows:
            bulk_insert(self.conn, paper_topics, rows)

    def _write_keys(self, plans: list[ClusterPlan], owner: dict[int, int]) -> None:
        """The identity keys of each planned paper: new ones added, and those a paper of this
        batch no longer holds moved to the paper that does (an entry that left its paper for a
        corrected arXiv id takes its DOI along). A key held by a paper this batch did not plan
        stays where it is (two papers whose arXiv ids differ may share one)."""
        rows, moves = [], []
        held = {owner[id(plan)]: set(plan.record.keys) for plan in plans}
        for plan in plans:
            pid = owner[id(plan)]
            for key in plan.record.keys:
                if key.startswith(ARXIV_KEY):
                    continue
                holder = self.keys.get(key)
                if holder is None:
                    rows.append({"key": key, "paper_id": pid})
                elif holder != pid and holder in held and key not in held[holder]:
                    moves.append({"b_key": key, "b_paper": pid})
                else:
                    continue
                self.keys[key] = pid
        if rows:
            self.conn.execute(insert_ignore(self.conn, paper_keys), rows)
        if moves:
            self.conn.execute(
                update(paper_keys)
                .where(paper_keys.c.key == bindparam("b_key"))
                .values(paper_id=bindparam("b_paper")),
                moves,
            )
