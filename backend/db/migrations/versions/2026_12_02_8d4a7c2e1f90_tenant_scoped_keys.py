"""Tenant-scoped keys: records whose id a phone chooses are keyed by (tenant_id, id), and reference each other by
(tenant_id, x_id), so one tenant's id says nothing about another's and no row can point into another tenant

Before, `id` alone was the primary key: a create with an id another tenant had used answered 409
`idempotency_conflict`, telling the caller the id exists elsewhere. Converted in place: the data already obeys the
new keys (ids were globally unique, and every reference stays inside its tenant; a row that does not makes the
composite foreign key fail to build, which is the point).

Revision ID: 8d4a7c2e1f90
Revises: 6c2e9d41a7b5
Create Date: 2026-12-02 08:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8d4a7c2e1f90"
down_revision: str | None = "6c2e9d41a7b5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, old primary key columns, new primary key columns)
PRIMARY_KEYS = [
    ("pois", ["id"], ["tenant_id", "id"]),
    ("poi_contacts", ["id"], ["tenant_id", "id"]),
    ("visits", ["id"], ["tenant_id", "id"]),
    ("campaigns", ["id"], ["tenant_id", "id"]),
    ("work_items", ["id"], ["tenant_id", "id"]),
    ("work_item_visits", ["work_item_id", "visit_id"], ["tenant_id", "work_item_id", "visit_id"]),
    ("jobs", ["id"], ["tenant_id", "id"]),
    ("job_codes", ["job_id"], ["tenant_id", "job_id"]),
    ("photos", ["id"], ["tenant_id", "id"]),
]

# (name, table, column, referred table): every one ON DELETE CASCADE, before and after. The names stay.
FOREIGN_KEYS = [
    ("fk_poi_contacts_poi_id_pois", "poi_contacts", "poi_id", "pois"),
    ("fk_visits_poi_id_pois", "visits", "poi_id", "pois"),
    ("fk_work_items_campaign_id_campaigns", "work_items", "campaign_id", "campaigns"),
    ("fk_work_items_poi_id_pois", "work_items", "poi_id", "pois"),
    ("fk_work_item_history_work_item_id_work_items", "work_item_history", "work_item_id", "work_items"),
    ("fk_work_item_visits_work_item_id_work_items", "work_item_visits", "work_item_id", "work_items"),
    ("fk_work_item_visits_visit_id_visits", "work_item_visits", "visit_id", "visits"),
    ("fk_job_events_job_id_jobs", "job_events", "job_id", "jobs"),
    ("fk_job_codes_job_id_jobs", "job_codes", "job_id", "jobs"),
    ("fk_photos_job_id_jobs", "photos", "job_id", "jobs"),
]

# (name, table, old columns, new columns): indexes that find rows by a parent's id now lead with the tenant, so
# the composite keys' joins and the cascades use them.
INDEXES = [
    ("ix_poi_contacts_poi", "poi_contacts", ["poi_id"], ["tenant_id", "poi_id"]),
    ("ix_visits_poi_checked_in", "visits", ["poi_id", "checked_in_at"], ["tenant_id", "poi_id", "checked_in_at"]),
    ("ix_work_items_poi_status", "work_items", ["poi_id", "status"], ["tenant_id", "poi_id", "status"]),
    ("ix_work_item_history_item", "work_item_history", ["work_item_id", "id"], ["tenant_id", "work_item_id", "id"]),
    (
        "ix_work_item_history_writer",
        "work_item_history",
        ["work_item_id", "field", "writer", "id"],
        ["tenant_id", "work_item_id", "field", "writer", "id"],
    ),
    ("ix_job_events_job", "job_events", ["job_id", "id"], ["tenant_id", "job_id", "id"]),
    # Deleting a visit cascades to its links: without this, each deletion scans the link table.
    ("ix_work_item_visits_visit", "work_item_visits", None, ["tenant_id", "visit_id"]),
]

UNIQUES = [
    ("uq_work_items_campaign_poi", "work_items", ["campaign_id", "poi_id"], ["tenant_id", "campaign_id", "poi_id"])
]


def _convert(new: bool) -> None:
    for name, table, _column, _referred in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
    for table, old_columns, new_columns in PRIMARY_KEYS:
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, new_columns if new else old_columns)
    for name, table, column, referred in FOREIGN_KEYS:
        if new:
            op.create_foreign_key(name, table, referred, ["tenant_id", column], ["tenant_id", "id"], ondelete="CASCADE")
        else:
            op.create_foreign_key(name, table, referred, [column], ["id"], ondelete="CASCADE")
    for name, table, old_index, new_index in INDEXES:
        op.drop_index(name, table_name=table, if_exists=True)
        columns = new_index if new else old_index
        if columns is not None:
            op.create_index(name, table, columns)
    for name, table, old_unique, new_unique in UNIQUES:
        op.drop_constraint(name, table, type_="unique")
        op.create_unique_constraint(name, table, new_unique if new else old_unique)


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    _convert(new=True)


def downgrade() -> None:
    # Fails where two tenants now hold the same id: that data cannot go back to global keys.
    _convert(new=False)
