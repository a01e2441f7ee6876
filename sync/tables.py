"""The engine's own tables, on a metadata of their own that backend's migrations include."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (`pg_current_xact_id()`), never wrapping around."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "xid8"


# Reflection (alembic check) should know the type too.
ischema_names["xid8"] = Xid8

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row per (user, record): the latest change of that record for that user. Upserting keeps the feed collapsed
# per record, so a pull never has to group, and a first sync reads each record once.
sync_changes = Table(
    "sync_changes",
    metadata,
    Column("user_id", Uuid, nullable=False),
    Column("collection", String(32), nullable=False),
    Column("record_id", Uuid, nullable=False),
    Column("tenant_id", Uuid, nullable=False),
    Column("op", String(8), nullable=False),  # 'upsert' | 'remove'
    Column("xid", Xid8(), nullable=False, server_default=text("pg_current_xact_id()")),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "collection", "record_id"),
    # The pull's only index: "what changed for me since xid N", in page order.
    Index("ix_sync_changes_user_xid", "user_id", "xid", "collection", "record_id"),
    Index("ix_sync_changes_tombstones", "changed_at", postgresql_where=text("op = 'remove'")),
)

# The stored result of every mutation a client pushed: written in the same transaction as its effects, so a
# replay answers from here and changes nothing.
sync_mutations = Table(
    "sync_mutations",
    metadata,
    Column("user_id", Uuid, nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("mutation_id", BigInteger, nullable=False),
    Column("tenant_id", Uuid, nullable=False),
    Column("name", String(64), nullable=False),
    Column(
        "status", String(16), nullable=False
    ),  # 'pending' (claimed, uncommitted) | 'applied' | 'rejected' | 'failed'
    Column("code", String(64)),
    Column("detail", Text),
    Column("args", JSONB, nullable=False),  # kept as sent: evidence, and replayable by hand
    Column("result", JSONB),
    Column("args_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True)),  # the phone's claim of when it queued the mutation
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # What the phone had seen when it queued the mutation (its pull cursor's base), kept for a re-run.
    Column("base_xid", BigInteger),
    PrimaryKeyConstraint("user_id", "client_id", "mutation_id"),
    # An operator's `groundwork sync rerun --all-failed` finds the failed ones without a scan.
    Index("ix_sync_mutations_failed", "user_id", postgresql_where=text("status = 'failed'")),
)

# Tombstones older than the retention are deleted; a cursor from before the newest deleted one may have missed
# a removal, so it can no longer be served incrementally.
sync_horizon = Table(
    "sync_horizon",
    metadata,
    Column("id", BigInteger, primary_key=True),  # always 1
    Column("horizon", Xid8(), nullable=False),
)
