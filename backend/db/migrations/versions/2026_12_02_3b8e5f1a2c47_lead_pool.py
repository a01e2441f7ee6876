"""The lead pool: each merchant's lead state, its transition history, versioned tenant lead policies

Revision ID: 3b8e5f1a2c47
Revises: 4e8b2d6f1a93
Create Date: 2026-12-02 13:35:16.666946
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '3b8e5f1a2c47'
down_revision: str | None = '4e8b2d6f1a93'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table('lead_policies',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('rules', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('adopted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('adopted_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['adopted_by'], ['users.id'], name=op.f('fk_lead_policies_adopted_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_lead_policies_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'version', name=op.f('pk_lead_policies'))
    )
    op.create_table('lead_events',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('poi_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('from_user_id', sa.Uuid(), nullable=True),
    sa.Column('to_user_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.CheckConstraint("action IN ('claim', 'assign', 'extend', 'release', 'win')", name=op.f('ck_lead_events_action')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_lead_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['from_user_id'], ['users.id'], name=op.f('fk_lead_events_from_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id', 'poi_id'], ['pois.tenant_id', 'pois.id'], name='fk_lead_events_poi_id_pois', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_lead_events_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_user_id'], ['users.id'], name=op.f('fk_lead_events_to_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_lead_events'))
    )
    op.create_index('ix_lead_events_actor', 'lead_events', ['tenant_id', 'actor_id', 'action', 'at'], unique=False)
    op.create_index('ix_lead_events_from', 'lead_events', ['tenant_id', 'from_user_id', 'poi_id', 'at'], unique=False)
    op.create_index('ix_lead_events_poi', 'lead_events', ['tenant_id', 'poi_id', 'at'], unique=False)
    op.create_table('leads',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('poi_id', sa.Uuid(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('how', sa.String(length=8), nullable=True),
    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('extensions_used', sa.Integer(), server_default='0', nullable=False),
    sa.Column('extended_days', sa.Integer(), server_default='0', nullable=False),
    sa.Column('warned_release_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('won_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("how IN ('claimed', 'assigned')", name=op.f('ck_leads_how')),
    sa.CheckConstraint("state IN ('pool', 'private', 'won')", name=op.f('ck_leads_state')),
    sa.ForeignKeyConstraint(['tenant_id', 'poi_id'], ['pois.tenant_id', 'pois.id'], name='fk_leads_poi_id_pois', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_leads_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'poi_id', name=op.f('pk_leads'))
    )


def downgrade() -> None:
    op.drop_table('leads')
    op.drop_index('ix_lead_events_poi', table_name='lead_events')
    op.drop_index('ix_lead_events_from', table_name='lead_events')
    op.drop_index('ix_lead_events_actor', table_name='lead_events')
    op.drop_table('lead_events')
    op.drop_table('lead_policies')
