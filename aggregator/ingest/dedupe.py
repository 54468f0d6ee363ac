"""Decide which sightings are the same paper, and what the merged paper says.

Pure: sightings and the candidate papers the store found for them go in, a plan comes out.

Two sightings are one paper when they share an identity key (arXiv id, DOI, canonical URL), or,
failing that, when their title keys match exactly and their authors agree. Two clusters that
carry different arXiv ids never merge, whatever else they share. The merged record is computed
from all of a paper's sightings in an order that does not depend on when they arrived, so the
result is the same whatever order the sources were ingested in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

from aggregator.ingest.merge import merge_record
from aggregator.records import (
    MIN_TITLE_KEY,
    ClusterPlan,
    KnownPaper,
    StoredSighting,
)
from aggregator.types import Sighting

# Without authors to compare, only a title this long and unshared is specific enough to merge on.
MIN_UNATTRIBUTED_TITLE_KEY = 40
# Share of the smaller author list whose family names must appear in the other.
AUTHOR_AGREEMENT = 0.5


def authors_agree(a: Iterable[str], b: Iterable[str]) -> bool:
    """Enough shared family names to call two author lists the same people."""
    # Sets as they are, a cluster's counted names by their keys (a Counter holds no name at zero).
    left = a.keys() if isinstance(a, dict) else a if isinstance(a, (set, frozenset)) else set(a)
    right = b.keys() if isinstance(b, dict) else b if isinstance(b, (set, frozenset)) else set(b)
    if not left or not right:
        return False
    shared = len(left & right)
    return shared >= 1 and shared >= AUTHOR_AGREEMENT * min(len(left), len(right))


Node = tuple[str, int]  # ("paper", stored id) or ("new", index in the batch)


class _Clusters:
    """Union-find over stored papers and incoming sightings, refusing arXiv-id conflicts.

    It also holds each node's sightings, each root's nodes and, once a title match first asks
    for them, a root's family names, counted by how many of its sightings name each, then kept
    up to date: title merges read a cluster's authors there instead of rescanning the batch (a
    batch of many same-titled papers was quadratic). Counts, not a set, so that a sighting
    leaving a node takes its names out without a rescan; only when asked, because most batches
    never match a title and family names are not free.
    """

    def __init__(self) -> None:
        self.parent: dict[Node, Node] = {}
        self.arxiv: dict[Node, str | None] = {}
        self.members: dict[Node, list[StoredSighting]] = {}
        self.nodes: dict[Node, list[Node]] = {}  # by root
        self.names: dict[Node, Counter[str]] = {}  # by root, for those counted
        self.left: set[Node] = set()  # stored papers a sighting left: merged again without it

    def add(self, node: Node, arxiv_id: str | None) -> None:
        self.parent[node] = node
        self.arxiv[node] = arxiv_id
        self.members[node] = []
        self.nodes[node] = [node]

    @staticmethod
    def author_keys(stored: StoredSighting) -> frozenset[str]:
        return stored.names

    def names_of(self, root: Node) -> Counter[str]:
        """The family names of a root's sightings, with how many sightings name each."""
        names = self.names.get(root)
        if names is None:
            names = self.names[root] = Counter()
            for node in self.nodes[root]:
                for stored in self.members[node]:
                    names.update(self.author_keys(stored))
        return names

    def join(self, node: Node, stored: StoredSighting) -> None:
        self.members[node].append(stored)
        names = self.names.get(self.find(node))
        if names is not None:
            names.update(self.author_keys(stored))

    def replace(self, node: Node, stored: StoredSighting) -> None:
        """Make `stored` the node's copy of its entry, dropping any earlier copy."""
        held = self.members[node]
        self.members[node] = [m for m in held if m.identity != stored.identity]
        names = self.names.get(self.find(node))
        if names is not None and len(self.members[node]) < len(held):
            for gone in (m for m in held if m.identity == stored.identity):
                _forget(names, self.author_keys(gone))
        self.join(node, stored)

    def leave(self, node: Node, stored: StoredSighting) -> None:
        self.members[node].remove(stored)
        self.left.add(node)
        names = self.names.get(self.find(node))
        if names is not None:
            _forget(names, self.author_keys(stored))

    def find(self, node: Node) -> Node:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: Node, b: Node) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        ida, idb = self.arxiv[ra], self.arxiv[rb]
        if ida and idb and ida != idb:
            return False
        self.parent[rb] = ra
        self.arxiv[ra] = ida or idb
        self._pool(ra, rb)
        return True

    def _pool(self, ra: Node, rb: Node) -> None:
        """rb's nodes and names go to ra, the smaller into the larger whichever root survives, so
        that each moves O(log n) times in all. A cluster once counted stays counted: counting the
        other side costs no more than the rescan it saves."""
        if ra in self.names or rb in self.names:
            small, large = sorted((self.names_of(ra), self.names_of(rb)), key=len)
            large.update(small)
            del self.names[rb]
            self.names[ra] = large
        fewer, more = sorted((self.nodes.pop(ra), self.nodes.pop(rb)), key=len)
        more.extend(fewer)
        self.nodes[ra] = more


def _forget(names: Counter[str], keys: Iterable[str]) -> None:
    """One sighting fewer names these; a name nobody names any more leaves the count."""
    for key in keys:
        names[key] -= 1
        if not names[key]:
            del names[key]


def plan_ingest(
    incoming: Sequence[StoredSighting],
    known: Sequence[KnownPaper],
    *,
    unread: Mapping[str, int] | None = None,
) -> list[ClusterPlan]:
    """Group incoming sightings with each other and with known papers; one plan per resulting paper.

    `unread` counts, by title key, the stored papers bearing it that the store read only light,
    as TitleReach found that no sighting of this batch could join them: they take no part in a
    merge but to count among the papers bearing the title (a long title merges without authors
    only when no other paper bears it), and the plans are those the papers in full would give."""
    rivals = Counter(unread or {})
    clusters = _Clusters()
    by_key: dict[str, list[Node]] = {}
    by_title: dict[str, list[Node]] = {}
    owner_of: dict[tuple[str, str], Node] = {}

    def index(node: Node, s: Sighting) -> None:
        for key in s.keys:
            by_key.setdefault(key, []).append(node)
        if len(s.title_key) >= MIN_TITLE_KEY:
            by_title.setdefault(s.title_key, []).append(node)

    for paper in known:
        node = ("paper", paper.id)
        clusters.add(node, next((s.sighting.arxiv_id for s in paper.sightings if s.sighting.arxiv_id), None))
        for stored in paper.sightings:
            clusters.join(node, stored)
            owner_of[stored.identity] = node
            index(node, stored.sighting)

    for n, stored in enumerate(incoming):
        s = stored.sighting
        node = owner_of.get(stored.identity) or ("new", n)
        if node not in clusters.parent:
            clusters.add(node, s.arxiv_id)
        clusters.replace(node, stored)
        node = _settle_arxiv_id(clusters, node, stored, ("new", n))
        owner_of[stored.identity] = node
        for key in s.keys:
            for other in by_key.get(key, ()):
                clusters.union(node, other)
        if len(s.title_key) >= MIN_TITLE_KEY:
            _merge_by_title(clusters, node, stored, by_title.get(s.title_key, ()), rivals[s.title_key])
        index(node, s)

    return _plans(clusters, known, incoming)


class TitleReach:
    """Which stored papers found through a shared title a sighting of this batch could join.

    Before its first union a stored paper is a cluster of its own, and an incoming sighting joins
    it only through `plan_ingest`'s two doors: a shared identity key, or `_merge_by_title` on one
    of its title keys, comparing the sighting's family names with the paper's own. A paper that
    no sighting reaches through either (its authors disagree with every same-titled sighting's,
    both naming authors) is never joined; the rest are reached, a few more than will join (an
    arXiv-id conflict, or a rival bearing the title, may still refuse them): those load in full.

    Agreeing takes a shared family name: a set test of the paper's names against those of its
    titles' sightings passes over most papers at once; only one that shares a name is compared
    with each sighting of the title (at most MAX_TITLE_CANDIDATES papers a title are asked:
    linear in the batch). The store asks it of every same-titled paper it reads light, from the
    paper's sightings' match keys, before it makes any object of it: most are reached by nothing
    and are only counted (`plan_ingest`'s `unread`)."""

    def __init__(self, incoming: Sequence[StoredSighting]) -> None:
        self.incoming = incoming
        self.keys: set[str] = set()
        self.named: dict[str, list[frozenset[str]]] = {}  # title -> family names of its sightings
        self.unnamed: set[str] = set()  # titles borne by a sighting naming no authors
        self.names_of: dict[str, frozenset[str]] = {}
        self._built = False  # built when first asked: most batches find no same-titled paper

    def _build(self) -> None:
        self._built = True
        for stored in self.incoming:
            self.keys.update(stored.sighting.keys)
            title = stored.sighting.title_key
            if len(title) < MIN_TITLE_KEY:
                continue
            if ours := stored.names:
                self.named.setdefault(title, []).append(ours)
            else:
                self.unnamed.add(title)
        self.names_of = {title: frozenset().union(*named) for title, named in self.named.items()}

    def reaches(self, titles: Iterable[str], keys: Iterable[str], names: Collection[str]) -> bool:
        """Whether a sighting of the batch could join a stored paper with these title keys (those
        long enough to merge on), identity keys and family names (of all its sightings)."""
        if not self._built:
            self._build()
        if not self.keys.isdisjoint(keys):
            return True
        for title in titles:
            named = self.named.get(title)
            if len(title) >= MIN_UNATTRIBUTED_TITLE_KEY and (title in self.unnamed or (named and not names)):
                return True  # one side names no authors: the long title alone could join them
            if named and not self.names_of[title].isdisjoint(names):
                theirs = names if isinstance(names, (set, frozenset)) else frozenset(names)
                if any(authors_agree(ours, theirs) for ours in named):
                    return True
        return False


def _settle_arxiv_id(clusters: _Clusters, node: Node, stored: StoredSighting, fresh: Node) -> Node:
    """A re-sighted entry may now name another arXiv id than before (a corrected link). If the
    paper's other sightings still name the old one, the entry leaves for a paper of its own;
    if it was the only one to name it, the paper's id follows the correction."""
    others = {m.sighting.arxiv_id for m in clusters.members[node] if m is not stored and m.sighting.arxiv_id}
    new_id = stored.sighting.arxiv_id
    if new_id and others and new_id not in others:
        clusters.leave(node, stored)
        clusters.add(fresh, new_id)
        clusters.join(fresh, stored)
        return fresh
    if clusters.find(node) == node:  # not yet joined to others in this batch: its id is its own
        clusters.arxiv[node] = new_id or next(iter(sorted(others)), None)
    return node


def _merge_by_title(
    clusters: _Clusters, node: Node, stored: StoredSighting, candidates: Iterable[Node], unread: int = 0
) -> None:
    """Join clusters whose title matches: with agreeing authors, or, where one side names no
    authors, only for a long title that no other paper shares (`unread` more papers bear it,
    which nothing joins)."""
    roots = {clusters.find(c) for c in candidates} - {clusters.find(node)}
    if not roots:
        return
    ours = stored.names
    alone = len(roots) + unread == 1 and len(stored.sighting.title_key) >= MIN_UNATTRIBUTED_TITLE_KEY
    # In a fixed order (a set's would vary with PYTHONHASHSEED): when two same-titled roots carry
    # different arXiv ids, the first to join decides which the other cannot. Each stays a root
    # while the loop runs: unions only hang roots under ours.
    for root in sorted(roots):
        theirs = clusters.names_of(root)
        if ours and theirs:
            if authors_agree(ours, theirs):
                clusters.union(node, root)
        elif alone:
            clusters.union(node, root)


def _plans(
    clusters: _Clusters, known: Sequence[KnownPaper], incoming: Sequence[StoredSighting]
) -> list[ClusterPlan]:
    members = clusters.members
    first_seen = {("paper", p.id): (p.first_seen, p.id) for p in known}
    groups: dict[Node, list[Node]] = {}
    for node in members:
        groups.setdefault(clusters.find(node), []).append(node)
    fresh = {s.identity for s in incoming}
    plans = []
    for nodes in groups.values():
        stored_ids = sorted((first_seen[n] for n in nodes if n in first_seen), key=lambda t: t)
        sightings = tuple(s for n in nodes for s in members[n])
        changed = tuple(s for s in sightings if s.identity in fresh)
        if not changed and len(stored_ids) < 2 and clusters.left.isdisjoint(nodes):
            continue  # a known paper nothing in this batch touched
        survivor = stored_ids[0][1] if stored_ids else None
        absorbed = tuple(pid for _, pid in stored_ids[1:])
        plans.append(ClusterPlan(survivor, absorbed, sightings, changed, merge_record(sightings)))
    return plans


# --- merging ---------------------------------------------------------------------------------
