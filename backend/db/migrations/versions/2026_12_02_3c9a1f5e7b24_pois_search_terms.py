"""Merchant name search by characters, pinyin and initials: pois.search_terms with a trigram index

Revision ID: 3c9a1f5e7b24
Revises: 7a1c4e2b9d10
Create Date: 2026-12-02 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.intake.names import search_terms

revision: str = "3c9a1f5e7b24"
down_revision: str | None = "7a1c4e2b9d10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5_000


def upgrade() -> None:
    op.add_column("pois", sa.Column("search_terms", sa.Text(), server_default="", nullable=False))
    # Existing merchants get their terms here (pinyin needs Python); in keyset batches so memory stays flat.
    bind = op.get_bind()
    after: tuple[object, object] | None = None
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT tenant_id, id, name, address FROM pois /* all-tenants: a migration backfills every row */"
                + (" WHERE (tenant_id, id) > (:t, :i)" if after else "")
                + " ORDER BY tenant_id, id LIMIT :n"
            ),
            {"t": after[0], "i": after[1], "n": _BATCH} if after else {"n": _BATCH},
        ).all()
        if not rows:
            break
        bind.execute(
            sa.text("UPDATE pois SET search_terms = :terms WHERE tenant_id = :t AND id = :i"),
            [{"terms": search_terms(r.name, r.address), "t": r.tenant_id, "i": r.id} for r in rows],
        )
        after = (rows[-1].tenant_id, rows[-1].id)
    op.create_index(
        "ix_pois_search_terms_trgm",
        "pois",
        ["search_terms"],
        postgresql_using="gin",
        postgresql_ops={"search_terms": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_pois_search_terms_trgm", table_name="pois")
    op.drop_column("pois", "search_terms")
