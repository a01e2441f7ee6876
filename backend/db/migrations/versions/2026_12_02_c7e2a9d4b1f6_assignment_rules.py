"""Rule-based assignment: territories (polygons per team) and `territory_of`, the tenant's rule set with its
versions, round-robin cursors, the decisions with their explanation, and users' leave

Revision ID: c7e2a9d4b1f6
Revises: c4a9e2d7f013
Create Date: 2026-12-02 14:45:00
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c7e2a9d4b1f6"
down_revision: str | None = "c4a9e2d7f013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The one definition of "the territory a place lies in": the smallest territory covering it (a business circle
# inside a district wins over the district), ties by id. Every use (rules, dry-run, lists) calls this function.
TERRITORY_OF = """
CREATE OR REPLACE FUNCTION territory_of(p_tenant uuid, p_location geography) RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT t.id FROM territories t
    WHERE t.tenant_id = p_tenant AND ST_Covers(t.area, p_location)
    ORDER BY ST_Area(t.area), t.id
    LIMIT 1
$$
"""


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("users", sa.Column("on_leave_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "territories",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column(
            "area",
            geoalchemy2.types.Geography(geometry_type="POLYGON", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_territories_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_territories_team_id_teams"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_territories")),
    )
    op.create_index("ix_territories_area", "territories", ["area"], unique=False, postgresql_using="gist")
    op.execute(TERRITORY_OF)
    op.create_table(
        "assignment_rule_versions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("saved_by", sa.Uuid(), nullable=True),
        sa.Column("saved_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_assignment_rule_versions_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["saved_by"], ["users.id"], name=op.f("fk_assignment_rule_versions_saved_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "version", name=op.f("pk_assignment_rule_versions")),
    )
    op.create_table(
        "assignment_cursors",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("last_user_id", sa.Uuid(), nullable=True),
        sa.Column("turns", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_assignment_cursors_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "group_key", name=op.f("pk_assignment_cursors")),
    )
    op.create_table(
        "assignment_decisions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=True),
        sa.Column("rule_name", sa.String(length=200), nullable=True),
        sa.Column("strategy", sa.String(length=32), nullable=True),
        sa.Column("chosen_user_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("skipped", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_assignment_decisions_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_assignment_decisions")),
    )
    op.create_index(
        "ix_assignment_decisions_record", "assignment_decisions", ["tenant_id", "kind", "record_id", "decided_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_assignment_decisions_record", table_name="assignment_decisions")
    op.drop_table("assignment_decisions")
    op.drop_table("assignment_cursors")
    op.drop_table("assignment_rule_versions")
    op.execute("DROP FUNCTION IF EXISTS territory_of(uuid, geography)")
    op.drop_index("ix_territories_area", table_name="territories", postgresql_using="gist")
    op.drop_table("territories")
    op.drop_column("users", "on_leave_until")
