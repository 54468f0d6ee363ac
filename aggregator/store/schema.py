"""The database schema as typed SQLAlchemy 2.0 models; Alembic migrations mirror it.

Papers are the merged records readers see; sightings keep every place a paper was seen, with
the normalised entry as that source wrote it (so the merged record can be recomputed, in an
order that does not depend on arrival); paper_keys index the identity keys for deduplication.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    column,
    table,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class Source(Base):
    """A configured source and its fetch state."""

    __tablename__ = "sources"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    last_fetch_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_warning: Mapped[str | None] = mapped_column(Text)  # read with trouble, papers kept
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    next_fetch_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(32))  # who holds the lease (Lease.token)
    hints: Mapped[str | None] = mapped_column(Text)  # FeedHints as JSON (codec.encode_hints)
    entries: Mapped[int] = mapped_column(Integer, default=0)


class HostSlot(Base):
    """When the next request to a host (or to arXiv, whose hosts count as one) may start, shared by
    every worker of the store: a worker holds the slot while its request runs."""

    __tablename__ = "host_slots"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    next_at: Mapped[datetime]


class Paper(Base):
    """One paper, merged from all its sightings."""

    __tablename__ = "papers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feed_id: Mapped[str] = mapped_column(Text, unique=True)
    arxiv_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    version: Mapped[int | None]
    doi: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    authors: Mapped[list[str]]
    abstract: Mapped[str] = mapped_column(Text)
    categories: Mapped[list[str]]
    primary_category: Mapped[str | None] = mapped_column(String(64))
    announce_types: Mapped[list[str]]
    links: Mapped[dict[str, Any]]
    upvotes: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
    journal_ref: Mapped[str | None] = mapped_column(Text)
    published: Mapped[datetime]
    updated: Mapped[datetime]
    first_seen: Mapped[datetime]
    content_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_papers_feed_order", "published", "id"),
        # The feed-order keys of ids found elsewhere (a search's candidates), without the rows.
        Index("ix_papers_id_published", "id", "published"),
        # The upvoted papers of a period (digests of all papers), a few rows in a hundred.
        Index(
            "ix_papers_upvoted",
            "published",
            sqlite_where=text("upvotes IS NOT NULL"),
            postgresql_where=text("upvotes IS NOT NULL"),
        ),
    )


class Sighting(Base):
    """One entry of one source, as that source wrote it, pointing at its paper."""

    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(100))  # the (source, entry_id) index serves lookups by source
    entry_id: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    title_key: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime]
    authority: Mapped[int] = mapped_column(Integer, server_default="3")  # types.Authority of its format
    data: Mapped[str] = mapped_column(Text)  # the normalised entry as JSON
    data_hash: Mapped[str] = mapped_column(String(64))
    # What a title merge reads of the entry besides its title, without decoding `data`: its
    # identity keys and its authors' family names (codec.encode_match_keys); NULL when not known,
    # and then its paper is read in full.
    match_keys: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("source", "entry_id", name="uq_sightings_source_entry"),
        # (title, paper): the papers bearing a title, the first few of them without reading the rest
        Index("ix_sightings_title_paper", "title_key", "paper_id"),
    )


class PaperTopic(Base):
    """A paper in a topic, with its score and the terms that matched; `published` is copied from
    the paper so that a topic's newest papers come straight off one index."""

    __tablename__ = "paper_topics"

    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    score: Mapped[float] = mapped_column(Float)
    matched: Mapped[list[str]]
    published: Mapped[datetime]

    __table_args__ = (Index("ix_paper_topics_feed_order", "slug", "published", "paper_id"),)


class TopicState(Base):
    """The definition each topic was last applied with, to re-tag only topics that changed."""

    __tablename__ = "topic_state"

    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))


class PaperKey(Base):
    """An identity key (arxiv:…, doi:…, url:…) and the paper it names."""

    __tablename__ = "paper_keys"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), index=True)


class StoreMeta(Base):
    """Small named values: the store's version counter, bumped on every write readers can see."""

    __tablename__ = "store_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


# Core handles for the bulk paths (SQLAlchemy types __table__ loosely as a FromClause).
sources = cast(Table, Source.__table__)
host_slots = cast(Table, HostSlot.__table__)
papers = cast(Table, Paper.__table__)
sightings = cast(Table, Sighting.__table__)
paper_keys = cast(Table, PaperKey.__table__)
paper_topics = cast(Table, PaperTopic.__table__)
topic_state = cast(Table, TopicState.__table__)
store_meta = cast(Table, StoreMeta.__table__)
# A view (migration 0006): (id, published) of every paper, read from the index on (id, published).
paper_order_keys = table("paper_order_keys", column("id", Integer), column("published", UTCDateTime()))
