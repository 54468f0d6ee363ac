"""The ingest write path: the dedupe plans written in bulk, after the papers a batch may touch
were read (store/candidates.py).

One IngestWriter lives for one source's transaction. Lookups are batched (one IN query per kind
of key), writes go through the driver's executemany (store/bulk.py), and every new or changed
paper is tagged with the configured topics and written to the full-text index (store/search.py)
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from aggregator.records import (
    ClusterPlan,
    PaperRecord,
    PaperTagger,
    PaperText,
    StoredSighting,
)
from aggregator.store.bulk import bulk_insert, chunks, insert_ignore
from aggregator.store.candidates import ARXIV_KEY, CandidateReads
from aggregator.store.codec import encode_match_keys
from aggregator.store.rows import content_digest, indexed_plan, paper_text, paper_values
from aggregator.store.schema import paper_keys, paper_topics, papers, sightings
from aggregator.store.search import delete_index, write_index
from aggregator.topics.index_query import indexed_text

SUBSTANCE = ("title", "abstract", "authors", "version")  # a change here is a real update for readers


class IngestWriter(CandidateReads):
    """Loads the papers a batch may touch (CandidateReads) and writes the plans for them, in bulk,
    in one transaction."""

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
        since) cannot be minted again: ids never move, so the new paper gets a tag: URI. That
        tag is taken too when its earliest sighting made the tag of a paper it has left (first
        seen with no arXiv id, then corrected twice): a count is added to it."""
        minted = [row["feed_id"] for row in rows if row["feed_id"].startswith("https://arxiv.org/abs/")]
        taken: set[str] = set()
        for chunk in chunks(minted):
            taken.update(self.conn.scalars(select(papers.c.feed_id).where(papers.c.feed_id.in_(chunk))))
        for plan, row in zip(plans, rows, strict=True):
            if row["feed_id"] in taken:
                first = min(
                    plan.sightings, key=lambda s: (s.first_seen, s.sighting.source, s.sighting.entry_id)
                )
                tag = row["feed_id"] = self.mint_feed_id(replace(plan.record, arxiv_id=None), first)
                count = 1
                while self.conn.scalar(select(func.count()).where(papers.c.feed_id == row["feed_id"])):
                    count += 1
                    row["feed_id"] = f"{tag}-{count}"

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
