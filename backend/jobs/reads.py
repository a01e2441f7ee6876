"""What other domains read of a job, defined here once: who may see it, where its site is, and the count of
proof photos that media keeps for it. The media domain imports this; the jobs domain imports nothing of media.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ColumnElement, Float, literal_column, or_, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.assignment.service import DISPATCHERS
from backend.auth.scopes import effective_scope, visible_to
from backend.auth.tokens import Principal
from backend.jobs.models import Job
from geo.postgis import degrees_sql
from mobile_contract.auth import Role

# The site as plain degrees: for the wire, the arrival's geofence and the judging of a photo alike.
SITE_LAT_SQL, SITE_LON_SQL = degrees_sql("jobs.location")
SITE_LAT = literal_column(SITE_LAT_SQL, Float).label("lat")
SITE_LON = literal_column(SITE_LON_SQL, Float).label("lon")


def job_visible_to(principal: Principal) -> ColumnElement[bool]:
    """Predicate on `jobs`: the caller may see this job (tenant filtering is separate; bind `scope_params`).

    Its assignee sees it. Operations and admins see the whole tenant's; a supervisor the jobs assigned within
    their data scope, the unassigned ones, and every job they created (a dispatcher never loses sight of a job
    they made). Nobody else sees a job: a pooled job reaches technicians only as a pool listing, without the
    customer's identity, until one takes it.
    """
    mine: ColumnElement[bool] = Job.assignee_id == principal.user_id
    if not principal.has_role(*DISPATCHERS):
        return mine
    if principal.role in (Role.OPS, Role.ADMIN):
        return true()
    return or_(
        mine,
        Job.assignee_id.is_(None),
        Job.created_by == principal.user_id,
        visible_to(effective_scope(principal), Job.assignee_id),
    )


async def add_proof_photo(session: AsyncSession, tenant_id: UUID, job_id: UUID) -> None:
    """One more photo proves work on the job (media calls this once per stored photo that counts as proof). An
    increment under the row's lock, so two uploads at once both count."""
    await session.execute(
        update(Job)
        .where(Job.tenant_id == tenant_id, Job.id == job_id)
        .values(proof_photos=Job.proof_photos + 1)
        .execution_options(synchronize_session=False)
    )
